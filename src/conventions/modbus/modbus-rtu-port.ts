/**
 * The port modbus-serial's `ModbusRTU` client talks through (`new ModbusRTU(port)`), over a
 * serialport 13 `SerialPort` the bus opened itself (so the bus owns open timeouts, unplug
 * detection and reopening; modbus-serial 8.0.25 depends on serialport ^13, the same copy).
 *
 * Framing is strict RTU master framing: the reply is the bytes that arrive after our request,
 * from the first one. Every request empties the receive buffer, so a late reply to a timed-out
 * request or noise between transactions can never be taken for the next reply; bytes that arrive
 * while no request is open are dropped and counted (`noiseBytes`). A reply is complete at the
 * length its request implies (FC01/02: 5 + ⌈n/8⌉, FC03/04: 5 + 2n, FC05/06/15/16: 8) or at 5
 * bytes when it starts with the unit id and the exception function code (fc | 0x80). Garbage
 * ahead of a reply therefore makes a frame whose CRC fails: modbus-serial reports `CRC error`
 * and the transaction is lost, not misread — the bus counts it and carries on.
 *
 * @example
 * const rtu = new RtuPort(openSerialPort, () => runtime.clock.now());
 * const client = new modbusSerial.default(rtu);
 * client.open(() => client.writeFC3(1, 0, 10, (err, data) => console.log(err?.message, data?.data)));
 * rtu.noiseBytes; // bytes dropped outside any transaction
 */
import { EventEmitter } from 'node:events';
import type { SerialPort } from 'serialport';

/** The longest RTU frame (256 bytes); the receive buffer never holds more than twice that. */
const MAX_BUFFER = 512;

export class RtuPort extends EventEmitter {
  /** Read by modbus-serial (serial ports keep one transaction, id 1). */
  _transactionIdRead = 1;
  _transactionIdWrite = 1;
  /** Bytes received outside a transaction, or past the end of a reply. */
  noiseBytes = 0;
  /** Monotonic time of the last byte received (for the inter-frame gap). */
  lastRxMono = Number.NEGATIVE_INFINITY;
  private buffer: Buffer = Buffer.alloc(0);
  private expect: { unit: number; fc: number; length: number } | undefined;
  private readonly onData = (chunk: Buffer) => this.receive(chunk);

  constructor(
    private readonly serial: SerialPort,
    private readonly now: () => number,
    /** A write the serial port refused (the bus treats it as a port failure). */
    private readonly onWriteError: (error: Error) => void = () => {},
  ) {
    super();
    serial.on('data', this.onData);
  }

  get isOpen(): boolean {
    return this.serial.isOpen;
  }

  /** The serial port is already open (the bus opened it): only tells modbus-serial so. */
  open(callback?: (error: Error | null) => void): void {
    const error = this.serial.isOpen ? null : new Error('serial port is not open');
    queueMicrotask(() => callback?.(error));
  }

  /** Detaches from the serial port; closing it is the bus's job. */
  close(callback?: (error?: Error | null) => void): void {
    this.detach();
    queueMicrotask(() => callback?.(null));
  }

  detach(): void {
    this.serial.off('data', this.onData);
    this.expect = undefined;
    this.buffer = Buffer.alloc(0);
  }

  /** A request from modbus-serial: note the reply it expects, then send it. */
  write(data: Buffer): void {
    this.noiseBytes += this.buffer.length;
    this.buffer = Buffer.alloc(0);
    const length = expectedReplyLength(data);
    this.expect = length > 0 ? { unit: data[0]!, fc: data[1]!, length } : undefined;
    this.serial.write(data, (error) => {
      if (error) this.onWriteError(error);
    });
  }

  private receive(chunk: Buffer): void {
    this.lastRxMono = this.now();
    const expect = this.expect;
    if (!expect) {
      this.noiseBytes += chunk.length;
      return;
    }
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const b = this.buffer;
    const need = b.length >= 2 && b[0] === expect.unit && b[1] === (expect.fc | 0x80) ? 5 : expect.length;
    if (b.length < need) {
      if (b.length > MAX_BUFFER) this.buffer = b.subarray(b.length - MAX_BUFFER);
      return;
    }
    this.expect = undefined;
    this.buffer = Buffer.alloc(0);
    this.noiseBytes += b.length - need;
    this.emit('data', Buffer.from(b.subarray(0, need)));
  }
}

/** The length of the normal reply to an RTU request (0: unknown, no reply expected). */
export function expectedReplyLength(request: Buffer): number {
  if (request.length < 6 || request[0] === 0) return 0; // broadcasts get no reply
  const fc = request[1]!;
  const quantity = request.readUInt16BE(4);
  switch (fc) {
    case 1:
    case 2:
      return 3 + Math.ceil(quantity / 8) + 2;
    case 3:
    case 4:
      return 3 + 2 * quantity + 2;
    case 5:
    case 6:
    case 15:
    case 16:
      return 8;
    default:
      return 0;
  }
}

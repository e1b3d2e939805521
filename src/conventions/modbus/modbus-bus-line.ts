/**
 * The Modbus bus's wire (modbus-bus.ts owns when the port is opened, lost and reopened): the
 * open serial port wrapped in an {@link RtuPort} and modbus-serial's `ModbusRTU` client, one
 * transaction at a time, and the quiet gap the line needs between two frames. A request's
 * failure comes back classified (`timeout`, `exception` with its code, `crc`, `badFrame`,
 * `portDown`), never thrown.
 *
 * @example
 * const line = new BusLine(runtime, {
 *   path: '/dev/ttyUSB0', owner: pid, frameGapMs: frameGapMs(settings), closeTimeoutMs: 2000,
 *   isRunning: () => bus.status === 'running',
 * });
 * if (await line.attach(serial, (reason) => portLost(reason))) {
 *   await line.quietLine();
 *   const r = await line.transact(500, (client, cb) => sendRead(client, 3, batch, cb)); // { ok: true, data: { data: [215, 0] } }
 * }
 * await line.close();
 */
import modbusSerial from 'modbus-serial';
import type { SerialPort } from 'serialport';
import type { Pid } from '../../runtime/process.js';
import type { Runtime } from '../../runtime/runtime.js';
import { closeSerialPort, describeLoss } from '../../transports/serial-port.js';
import type { FaultCode } from './modbus-bus-types.js';
import type { Batch, WriteRequest } from './modbus-codec.js';
import { readFunctionCode } from './modbus-codec.js';
import { RtuPort } from './modbus-rtu-port.js';

export type Client = InstanceType<typeof modbusSerial.default>;
export type Callback = (error: unknown, data?: unknown) => void;

/** Why a request failed: a fault of the slave or the line, or the port is not open. */
export type TxFailure =
  | {
      readonly ok: false;
      readonly code: FaultCode;
      readonly message: string;
      readonly exceptionCode?: number;
    }
  | {
      readonly ok: false;
      readonly code: 'portDown';
      readonly message: string;
      readonly exceptionCode?: undefined;
    };

export type TxResult = { readonly ok: true; readonly data: unknown } | TxFailure;

const EXCEPTIONS: Record<number, string> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'slave device failure',
  5: 'acknowledge',
  6: 'slave device busy',
  8: 'memory parity error',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};

/** Classifies a modbus-serial callback error. */
export function classify(error: unknown): TxFailure {
  const e = error as { message?: unknown; errno?: unknown; modbusCode?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  if (typeof e?.modbusCode === 'number') {
    const name = EXCEPTIONS[e.modbusCode] ?? 'unknown exception';
    return {
      ok: false,
      code: 'exception',
      exceptionCode: e.modbusCode,
      message: `exception ${e.modbusCode} (${name})`,
    };
  }
  if (e?.errno === 'ETIMEDOUT' || message === 'Timed out') return { ok: false, code: 'timeout', message };
  if (message === 'CRC error') return { ok: false, code: 'crc', message: 'CRC error in the reply' };
  if (message === 'Port Not Open') return { ok: false, code: 'portDown', message: 'port not open' };
  return { ok: false, code: 'badFrame', message: `malformed reply: ${message}` };
}

/** Sends the read of a batch with its table's function code (FC01 to FC04). */
export function sendRead(client: Client, unitId: number, batch: Batch, cb: Callback): void {
  const fc = readFunctionCode(batch.table);
  if (fc === 1) client.writeFC1(unitId, batch.address, batch.count, cb);
  else if (fc === 2) client.writeFC2(unitId, batch.address, batch.count, cb);
  else if (fc === 3) client.writeFC3(unitId, batch.address, batch.count, cb);
  else client.writeFC4(unitId, batch.address, batch.count, cb);
}

/** Sends a write (FC05, FC06 or FC16). */
export function sendWrite(client: Client, unitId: number, req: WriteRequest, cb: Callback): void {
  if (req.fc === 5) client.writeFC5(unitId, req.address, req.state, cb);
  else if (req.fc === 6) client.writeFC6(unitId, req.address, req.value, cb);
  else client.writeFC16(unitId, req.address, [...req.values], cb);
}

/** Closes a port the bus opened, its listeners first (a port given up must not report its close). */
export function closeModbusSerial(
  runtime: Runtime,
  port: SerialPort,
  timeoutMs: number,
  owner: Pid,
): Promise<void> {
  port.removeAllListeners('close');
  port.removeAllListeners('data');
  return closeSerialPort(runtime, port, timeoutMs, owner, 'modbus.close');
}

/** The wire of one bus: its open port (or none), the request in flight, the quiet gap. */
export class BusLine {
  private serial: SerialPort | undefined;
  private rtu: RtuPort | undefined;
  private client: Client | undefined;
  /** Noise counted on the ports closed before this one. */
  private noiseBase = 0;
  private inflight: ((r: TxResult) => void) | undefined;
  /** The last request failed: the next gap is longer, to let the rest of a garbled reply drain. */
  private drain = false;

  private readonly path: string;
  private readonly owner: Pid;
  private readonly frameGapMs: number;
  private readonly closeTimeoutMs: number;
  private readonly isRunning: () => boolean;

  constructor(
    private readonly runtime: Runtime,
    options: {
      readonly path: string;
      readonly owner: Pid;
      /** 3.5 character times at the line's speed. */
      readonly frameGapMs: number;
      readonly closeTimeoutMs: number;
      /** Whether the bus still runs (a stopped bus neither waits for the line nor keeps a port). */
      readonly isRunning: () => boolean;
    },
  ) {
    this.path = options.path;
    this.owner = options.owner;
    this.frameGapMs = options.frameGapMs;
    this.closeTimeoutMs = options.closeTimeoutMs;
    this.isRunning = options.isRunning;
  }

  /** A port is attached (opened and not lost since). */
  get attached(): boolean {
    return this.serial !== undefined;
  }

  /** Monotonic time of the last byte received on the attached port. */
  get lastRxMono(): number {
    return this.rtu?.lastRxMono ?? Number.NEGATIVE_INFINITY;
  }

  /** Bytes dropped outside a transaction since the line was made. */
  get noiseBytes(): number {
    return this.noiseBase + (this.rtu?.noiseBytes ?? 0);
  }

  /**
   * Puts the client on a port just opened. `onLost` hears (once attached) that the port closed,
   * failed, or refused a write. False when the bus stopped meanwhile or the port closed: it is
   * closed again and not attached.
   */
  async attach(serial: SerialPort, onLost: (reason: string) => void): Promise<boolean> {
    const path = this.path;
    // EIO/ENXIO/ENODEV on a write: the other side hung up (an unplugged adapter, a closed pty),
    // usually a moment before the device node (or its symlink) disappears.
    const rtu = new RtuPort(
      serial,
      () => this.runtime.clock.now(),
      (error) => {
        if (this.serial === serial)
          onLost(describeLoss(path, 'error', error, 'a request could not be written').message);
      },
    );
    const client = new modbusSerial.default(rtu);
    client.on('error', () => {}); // port errors are handled on the serial port itself
    // Not watchSerialPort: closeModbusSerial removes the 'close' listeners of a port given up.
    serial.on('close', (error: (Error & { disconnected?: boolean }) | null) => {
      if (this.serial === serial) onLost(describeLoss(path, 'close', error).message);
    });
    serial.on('error', (error: Error) => {
      if (this.serial === serial) onLost(describeLoss(path, 'error', error).message);
    });
    await new Promise<void>((resolve) => client.open(() => resolve()));
    if (!this.isRunning() || !serial.isOpen) {
      await closeModbusSerial(this.runtime, serial, this.closeTimeoutMs, this.owner);
      return false;
    }
    this.serial = serial;
    this.rtu = rtu;
    this.client = client;
    return true;
  }

  /** Detaches the port and closes it (bounded by the close timeout). */
  close(): Promise<void> {
    const serial = this.serial;
    const rtu = this.rtu;
    this.serial = undefined;
    this.rtu = undefined;
    this.client = undefined;
    if (rtu) {
      this.noiseBase += rtu.noiseBytes;
      rtu.detach();
    }
    if (!serial) return Promise.resolve();
    return closeModbusSerial(this.runtime, serial, this.closeTimeoutMs, this.owner);
  }

  /** One request: its reply, or why not (`timeoutMs` is the reply's deadline). */
  transact(timeoutMs: number, send: (client: Client, cb: Callback) => void): Promise<TxResult> {
    const client = this.client;
    if (!client) return Promise.resolve({ ok: false, code: 'portDown', message: 'port not open' });
    client.setTimeout(timeoutMs);
    return new Promise<TxResult>((resolve) => {
      let done = false;
      // modbus-serial times the request out itself; this only guards against a callback that never comes.
      const guard = this.runtime.timers.schedule(
        timeoutMs + 1000,
        () => settle({ ok: false, code: 'timeout', message: 'Timed out (no callback)' }),
        { owner: this.owner, label: 'modbus.request' },
      );
      const settle = (r: TxResult) => {
        if (done) return;
        done = true;
        this.runtime.timers.cancel(guard);
        if (this.inflight === settle) this.inflight = undefined;
        resolve(r);
      };
      this.inflight = settle;
      try {
        send(client, (error, data) => settle(error ? classify(error) : { ok: true, data }));
      } catch (error) {
        settle(classify(error));
      }
    });
  }

  /** Ends the request in flight now, with `r` (the port went away, the bus stops). */
  settleInflight(r: TxResult): void {
    this.inflight?.(r);
  }

  /** The last request failed: the next gap drains the line. */
  markDrain(): void {
    this.drain = true;
  }

  /** Waits until nothing has been received for 3.5 characters (longer after an error), bounded. */
  async quietLine(): Promise<void> {
    const need = this.drain ? Math.max(20, 4 * this.frameGapMs) : this.frameGapMs;
    this.drain = false;
    for (let i = 0; i < 10 && this.isRunning(); i++) {
      const quietFor = this.runtime.clock.now() - this.lastRxMono;
      if (quietFor >= need) return;
      await this.sleepFixed(need - quietFor);
    }
  }

  /** A sleep that a write or a config change does not cut short. */
  private sleepFixed(ms: number): Promise<void> {
    return new Promise((resolve) =>
      this.runtime.timers.schedule(Math.max(1, Math.ceil(ms)), resolve, {
        owner: this.owner,
        label: 'modbus.gap',
      }),
    );
  }
}

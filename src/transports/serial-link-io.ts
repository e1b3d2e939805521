/**
 * The framing and I/O half of a serial link: reads the open port into COBS/CRC-32 frames
 * (docs/protocol.md §7), writes frames in order, one write at a time, counts bytes and frames, and
 * closes the port.
 *
 * Frames that queue up while a write is on its way, or in the same turn of the event loop, go out
 * together in the next write (a firmware window is 8 chunks): one system call for several frames
 * instead of one each. A write first hands the driver what it takes at once, on this thread
 * (serial-port.ts `writeSerialPortNow`); only the rest, if any, goes through serialport's write
 * and its thread pool. The port is read on this thread too (`readSerialPortNow`), falling back to
 * serialport's `data` events where the port has no Unix fd. A write holds at most what the line
 * carries in `writeTimeoutMs` at `baudRate` (at least one frame), and its rest may take
 * `writeTimeoutMs` plus the time the line needs for those bytes: a port that sends slower than
 * that is dangling. What the frames mean (hello, heartbeat, exits) is the
 * link's business (serial-link.ts): this part only reports frames, frame errors, a lost port and a
 * failed write to the hooks it was given.
 *
 * Nothing is read, written or counted while the owner is not running, and every handler checks the
 * port is still this one's: listeners stay attached for the port's whole life, so a late event
 * lands here and is ignored.
 *
 * @example
 * const io = new SerialFrameIo({ runtime, port, path, name, owner: pid, maxFrameBytes: 1024,
 *   writeTimeoutMs: 2000, baudRate: 115_200, isRunning, onFrame, onFrameError, onLoss, onWriteError });
 * io.attach();
 * io.send(encodeMessage(cmd)); // queued, framed, written in order
 * io.sendFrame(encodeFwChunkFrame(chunk)); // a frame encoded already, in the same queue
 * await io.close();
 */
import type { SerialPort } from 'serialport';
import type { Pid } from '../runtime/process.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Deframer, FrameError } from './framing.js';
import { createDeframer, encodeFrame } from './framing.js';
import type { SerialLoss, SerialWriteError } from './serial-port.js';
import {
  closeSerialPort,
  readSerialPortNow,
  watchSerialPort,
  writeSerialPort,
  writeSerialPortNow,
} from './serial-port.js';

export interface SerialFrameIoOptions {
  readonly runtime: Runtime;
  readonly port: SerialPort;
  readonly path: string;
  /** The owner's process name and pid, for reports and timer ownership. */
  readonly name: string;
  readonly owner: Pid;
  readonly maxFrameBytes: number;
  readonly writeTimeoutMs: number;
  /** The line's speed (10 bits a byte), which sizes a write and its timeout; ptys ignore it, so it is a floor. */
  readonly baudRate: number;
  /** Whether the owner still runs; when not, input is dropped and the queue is not pumped. */
  isRunning(): boolean;
  /** An intact frame (CRC correct), already counted in `framesIn`. */
  onFrame(payload: Uint8Array): void;
  onFrameError(error: FrameError): void;
  /** The port vanished, was closed under us, or reported an I/O error. */
  onLoss(loss: SerialLoss): void;
  /** A write failed or did not complete within `writeTimeoutMs`. */
  onWriteError(error: SerialWriteError): void;
  /** Each write handed to the port, with its size: the frames that went together (optional). */
  onWrite?(bytes: number): void;
}

export interface SerialFrameCounters {
  /** Intact frames received (CRC correct), whether or not they held a valid message. */
  readonly framesIn: number;
  /** Frames written to the port (write completed). */
  readonly framesOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** Most bytes in one write, whatever the line's speed: serialport's own read and write size. */
const MAX_BATCH_BYTES = 64 * 1024;

/** One open port's frame reader and write queue. */
export class SerialFrameIo {
  private readonly o: SerialFrameIoOptions;
  private port: SerialPort | undefined;
  private readonly deframer: Deframer;
  private readonly counts = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0 };
  private readonly queue: Buffer[] = [];
  /** Frames in the write on its way (0: none). */
  private writing = 0;
  /** A pump is due at the end of this turn. */
  private pumpDue = false;
  /** Most bytes in one write: what the line carries in `writeTimeoutMs` (at least one frame). */
  private readonly batchBytes: number;
  /** Aborted on close: a write still waiting for its callback stops waiting (and its timer goes). */
  private readonly closing = new AbortController();

  constructor(options: SerialFrameIoOptions) {
    this.o = options;
    this.port = options.port;
    this.batchBytes = Math.min(
      MAX_BATCH_BYTES,
      Math.floor((options.baudRate / 10) * (options.writeTimeoutMs / 1000)),
    );
    this.deframer = createDeframer({
      maxFrameBytes: options.maxFrameBytes,
      onFrame: (payload) => {
        if (!this.o.isRunning()) return;
        this.counts.framesIn++;
        this.o.onFrame(payload);
      },
      onError: (error) => {
        if (this.o.isRunning()) this.o.onFrameError(error);
      },
    });
  }

  /** Whether the port is still held (until {@link close}). */
  get open(): boolean {
    return this.port !== undefined;
  }

  /** Frames waiting to be written, not counting one on its way. */
  get unsent(): number {
    return this.queue.length;
  }

  /** Frames waiting to be written, and those on their way. */
  get queued(): number {
    return this.queue.length + this.writing;
  }

  counters(): SerialFrameCounters {
    return { ...this.counts };
  }

  /** Attaches the reader and the loss watch; a disconnect is reported only while the port is read. */
  attach(): void {
    const port = this.port!;
    const onData = (chunk: Buffer) => {
      if (this.port === port) this.onData(chunk);
    };
    if (!readSerialPortNow(port, onData)) port.on('data', onData);
    watchSerialPort(port, this.o.path, (loss: SerialLoss) => {
      if (this.port === port) this.o.onLoss(loss);
    });
  }

  /** Frames `payload` and queues it; writes go out one at a time in the order sent. */
  send(payload: Uint8Array): void {
    this.sendFrame(encodeFrame(payload));
  }

  /** Queues a frame encoded already (delimiters included), in order with {@link send}. */
  sendFrame(frame: Uint8Array): void {
    this.queue.push(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength));
    // Written at the end of this turn, not now: the frames one turn makes (the chunks that the
    // acks of one read let out) go in one write instead of the first alone and the rest after it.
    if (this.writing > 0 || this.pumpDue) return;
    this.pumpDue = true;
    queueMicrotask(() => {
      this.pumpDue = false;
      this.pump();
    });
  }

  /** Drops the queue, stops a pending write, resets the deframer and closes the port (bounded by `writeTimeoutMs`). */
  close(): Promise<void> {
    this.closing.abort();
    this.queue.length = 0;
    this.writing = 0;
    this.deframer.reset();
    const port = this.port;
    this.port = undefined;
    if (!port) return Promise.resolve();
    return closeSerialPort(this.o.runtime, port, this.o.writeTimeoutMs, this.o.owner);
  }

  private onData(chunk: Buffer): void {
    if (!this.o.isRunning()) return;
    this.counts.bytesIn += chunk.length;
    try {
      this.deframer.push(chunk);
    } catch (error) {
      // Only a callback can throw, and ours catch everything; keep reading regardless.
      this.o.runtime.report(`serial link ${this.o.name}: frame handling threw`, error, this.o.owner);
    }
  }

  /** Hands the waiting frames (up to `batchBytes`) to the port once the previous write has completed. */
  private pump(): void {
    const port = this.port;
    if (this.writing > 0 || !port || !this.o.isRunning()) return;
    const batch = this.takeBatch();
    if (!batch) return;
    // What the driver takes at once goes now, on this thread; the rest (a full buffer, an error)
    // goes through serialport's write, which waits for room and reports failures.
    this.o.onWrite?.(batch.bytes.length);
    const now = writeSerialPortNow(port, batch.bytes);
    if (now === batch.bytes.length) {
      this.counts.framesOut += batch.frames;
      this.counts.bytesOut += now;
      if (this.queue.length > 0) this.pump();
      return;
    }
    this.counts.bytesOut += now;
    const rest = now === 0 ? batch.bytes : batch.bytes.subarray(now);
    this.writing = batch.frames;
    const lineMs = Math.ceil((rest.length * 10_000) / this.o.baudRate);
    void writeSerialPort(this.o.runtime, port, rest, {
      path: this.o.path,
      timeoutMs: this.o.writeTimeoutMs,
      lineMs,
      owner: this.o.owner,
      signal: this.closing.signal,
    }).then((r) => {
      this.writing = 0;
      if (this.port !== port || !this.o.isRunning()) return;
      if (!r.ok) {
        this.o.onWriteError(r.error);
        return;
      }
      this.counts.framesOut += batch.frames;
      this.counts.bytesOut += rest.length;
      this.pump();
    });
  }

  /** The first waiting frame, and those behind it while they fit in `batchBytes`, as one buffer. */
  private takeBatch(): { readonly bytes: Buffer; readonly frames: number } | undefined {
    const first = this.queue.shift();
    if (!first) return undefined;
    let total = first.length;
    let n = 0;
    while (n < this.queue.length && total + this.queue[n]!.length <= this.batchBytes)
      total += this.queue[n++]!.length;
    if (n === 0) return { bytes: first, frames: 1 };
    const bytes = Buffer.concat([first, ...this.queue.splice(0, n)], total);
    return { bytes, frames: n + 1 };
  }
}

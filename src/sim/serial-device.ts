/**
 * A simulated device on a serial line: a {@link SimDevice} behind the device end of a pty pair
 * (see pty.ts), speaking the framing of docs/protocol.md §7.
 *
 * - Every message goes out as one frame, `encodeFrame(encodeMessage(msg))`, which already
 *   starts with the recommended leading 0x00. Incoming bytes go through `createDeframer`; frames
 *   that decode to `cmd` or `fw.*` reach the device, anything else is counted and dropped.
 * - Binary chunk frames (docs/protocol.md §7.1): by default the device lists `fw.binary` in its
 *   hello and takes `fw.chunk` as a binary frame (serial-fw-frame.ts); it answers with the usual
 *   JSON `fw.ack`. With `binaryChunks: false` it is a device that predates them: no `fw.binary`,
 *   JSON only, and a binary frame is a bad message (counted, not answered).
 * - Chunks that arrive together (one read of the line) get one `fw.ack`, the offset held after the
 *   last (docs/protocol.md §5.1); `coalesceChunkAcks: false` acks each one.
 * - `hello` is sent whenever the port opens (after boot, after a reconnect) and whenever the host
 *   sends the `hello` command. Note that a serial port flushes its input when it is opened, so a
 *   hello sent before the host opened its end is lost: the host sends the `hello` command on open.
 * - The `garbage` fault writes 1–24 random non-zero bytes before every frame; the frame's leading
 *   0x00 closes them off, so the host drops exactly that junk and still decodes the frame.
 * - `dropLink()` closes the port and reopens it after a short pause.
 * - When the pty vanishes (unplugged: serialport reports 'close' with `disconnected`, or a write
 *   times out and the path is gone), it polls for the path to come back, lets it settle
 *   (`reopenSettleMs`, like USB enumeration), and opens a NEW SerialPort on it.
 * - Frames go out as a UART driver's transmit buffer sends them: those that queue up while a write
 *   is on its way (and those made in the same turn, such as the acks of a window of chunks read
 *   in one go) go together in the next write, one system call for all of them instead of one
 *   each. What the pty takes at once is written on this thread; only a rest goes through
 *   serialport's write (its thread pool). The port is read on this thread too (serial-port.ts
 *   `readSerialPortNow`), as the host's link reads it. Writes have a timeout (a write on a vanished port never calls
 *   back) and at most `maxPendingWrites` frames wait: beyond that frames are dropped, as a UART
 *   FIFO would.
 * - `paceBaud` (off by default) emulates a real UART line over the pty, which has no speed of its
 *   own: frames go out no faster than the line would carry them (10 bits a byte), and bytes read
 *   reach the deframer no faster either, so the host's writes back up behind a slow device.
 *
 * @example
 * const pty = await openPtyPair('/tmp/sim/s01-host', '/tmp/sim/s01-device');
 * const sim = await startSerialSimDevice(pty.devicePath, { id: 'sim-s01' });
 * // the host opens pty.hostPath, sends the `hello` command and gets the hello frame back
 * sim.dropLink();
 * await sim.stop();
 */
import { existsSync } from 'node:fs';
import { SerialPort } from 'serialport';
import type { Deframer } from '../transports/framing.js';
import { createDeframer, encodeFrame } from '../transports/framing.js';
import type { Message } from '../transports/protocol.js';
import { decodeMessage, directionOf, encodeMessage } from '../transports/protocol.js';
import { decodeDevicePayload, FW_BINARY_CAPABILITY, isBinaryPayload } from '../transports/serial-fw-frame.js';
import { readSerialPortNow, writeSerialPortNow } from '../transports/serial-port.js';
import { AckCoalescer } from './ack-coalescer.js';
import type { SimDeviceOptions } from './sim-device.js';
import { SimDevice } from './sim-device.js';

export interface SerialSimDeviceOptions extends Omit<SimDeviceOptions, 'hooks'> {
  /** Default 115 200 (a pty ignores it). */
  readonly baudRate?: number;
  /** How often to look for a vanished port's path; default 100 ms. */
  readonly reopenPollMs?: number;
  /** Wait this long after the path reappears before opening it; default 250 ms. */
  readonly reopenSettleMs?: number;
  /** Pause before reopening after `dropLink()`; default 300 ms. */
  readonly dropPauseMs?: number;
  /** A write that has not completed after this long counts as lost; default 2000 ms. */
  readonly writeTimeoutMs?: number;
  /** Frames waiting or on their way to the port before new ones are dropped; default 64. */
  readonly maxPendingWrites?: number;
  /** `startSerialSimDevice` rejects if the port cannot be opened within this time; default 5000 ms. */
  readonly openTimeoutMs?: number;
  /**
   * Emulate a line at this many baud (10 bits a byte: 115 200 → 11 520 bytes/s) in both
   * directions: writes wait for the line, bytes read are handed on at the line's rate. Default
   * off (a pty runs as fast as the machine).
   */
  readonly paceBaud?: number;
  /**
   * List `fw.binary` in hello and take `fw.chunk` as binary frames; default true. False: JSON
   * chunks only, as a device written before the binary frame.
   */
  readonly binaryChunks?: boolean;
  /**
   * Answer the chunks that arrive together (one read of the line) with one `fw.ack`, the held
   * offset after the last (docs/protocol.md §5.1); default true. False: one ack each.
   */
  readonly coalesceChunkAcks?: boolean;
}

/** Runs queued steps one after the other, each once its bytes would have crossed the line. */
class LinePacer {
  private readonly queue: { bytes: number; run: () => void }[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** performance.now() when the line is free again. */
  private freeAt = 0;

  constructor(private readonly bytesPerSecond: number) {}

  push(bytes: number, run: () => void): void {
    this.queue.push({ bytes, run });
    if (!this.timer) this.next(false);
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }

  private next(busy: boolean): void {
    const item = this.queue.shift();
    if (!item) {
      this.timer = undefined;
      return;
    }
    const now = performance.now();
    // Back to back, the line's own clock goes on (a late timer does not slow it down).
    this.freeAt =
      (busy ? this.freeAt : Math.max(now, this.freeAt)) + (item.bytes * 1000) / this.bytesPerSecond;
    this.timer = setTimeout(
      () => {
        item.run();
        this.next(true);
      },
      Math.max(0, this.freeAt - now),
    );
  }
}

export interface SerialSimDeviceStats {
  /** Successful opens of the port. */
  opens: number;
  framesSent: number;
  /** Writes to the port: frames made in one turn, or while a write was on its way, share one. */
  writes: number;
  /** Frames not written: port closed or too many writes pending. */
  framesDropped: number;
  writeTimeouts: number;
  writeErrors: number;
  garbageBytes: number;
  /** Frames the deframer dropped (bad CRC, bad COBS…). */
  frameErrors: number;
  /** Intact frames that held no valid host → device message. */
  badMessages: number;
  /** Binary `fw.chunk` frames taken in (valid ones; a refused one counts in `badMessages`). */
  binaryChunks: number;
}

export interface SerialSimDevice {
  readonly id: string;
  /** The device end of the pty. */
  readonly path: string;
  readonly device: SimDevice;
  /** The port is open (the device may still be rebooting). */
  readonly connected: boolean;
  readonly stats: Readonly<SerialSimDeviceStats>;
  readonly lastError: Error | undefined;
  /** Closes the port; reopens after `pauseMs`. */
  dropLink(pauseMs?: number): void;
  /** Closes the port and stops the device. Idempotent. */
  stop(): Promise<void>;
}

type CloseError = Error & { disconnected?: boolean };

class SerialSimDeviceImpl implements SerialSimDevice {
  readonly id: string;
  readonly device: SimDevice;
  readonly stats: SerialSimDeviceStats = {
    opens: 0,
    framesSent: 0,
    writes: 0,
    framesDropped: 0,
    writeTimeouts: 0,
    writeErrors: 0,
    garbageBytes: 0,
    frameErrors: 0,
    badMessages: 0,
    binaryChunks: 0,
  };
  lastError: Error | undefined;

  private port: SerialPort | undefined;
  private opening = false;
  /** Frames waiting in `outQueue` or in the write on its way. */
  private pending = 0;
  /** Frames waiting for the write on its way (or for this turn's flush) to end. */
  private outQueue: Buffer[] = [];
  /** A write is on its way: new frames wait in `outQueue`. */
  private writing = false;
  /** A flush is due at the end of this turn. */
  private flushDue = false;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pathSeenAt: number | undefined;
  private readonly deframer: Deframer;
  private readonly o: SerialSimDeviceOptions;
  private openWaiters: (() => void)[] = [];
  private readonly paceOut: LinePacer | undefined;
  private readonly paceIn: LinePacer | undefined;
  private readonly binary: boolean;
  /** Answers the chunks of one turn with one ack (protocol §5.1). */
  private readonly acks: AckCoalescer<SerialPort>;

  constructor(
    readonly path: string,
    options: SerialSimDeviceOptions,
  ) {
    this.o = options;
    this.binary = options.binaryChunks ?? true;
    this.acks = new AckCoalescer(options.coalesceChunkAcks ?? true, (port, msg) => this.write(port, msg));
    const extraCapabilities = [
      ...(options.extraCapabilities ?? []),
      ...(this.binary ? [FW_BINARY_CAPABILITY] : []),
    ];
    this.device = new SimDevice({ ...options, extraCapabilities, hooks: { onBoot: () => this.onBoot() } });
    this.id = this.device.id;
    const baud = options.paceBaud ?? 0;
    if (baud > 0) {
      this.paceOut = new LinePacer(baud / 10);
      this.paceIn = new LinePacer(baud / 10);
    }
    this.deframer = createDeframer({
      onFrame: (payload) => this.onFrame(payload),
      onError: () => {
        this.stats.frameErrors++;
      },
    });
  }

  get connected(): boolean {
    return this.port !== undefined;
  }

  start(): void {
    this.tryOpen();
  }

  waitOpen(timeoutMs: number): Promise<boolean> {
    if (this.port) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.openWaiters = this.openWaiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      const waiter = () => {
        clearTimeout(t);
        resolve(true);
      };
      this.openWaiters.push(waiter);
    });
  }

  dropLink(pauseMs = this.o.dropPauseMs ?? 300): void {
    if (this.stopped) return;
    const port = this.port;
    if (port) this.release(port);
    this.schedule(pauseMs, () => this.tryOpen());
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.device.stop();
    this.paceIn?.clear();
    this.paceOut?.clear();
    for (const w of this.openWaiters.splice(0)) w();
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        port.close(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  // -------------------------------------------------------------------------------------------

  private schedule(ms: number, fn: () => void): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped) fn();
    }, ms);
  }

  /** Opens the port if the path is there; otherwise polls for it (then lets it settle). */
  private tryOpen(settle = false): void {
    if (this.stopped || this.port || this.opening) return;
    const poll = this.o.reopenPollMs ?? 100;
    if (!existsSync(this.path)) {
      this.pathSeenAt = undefined;
      this.schedule(poll, () => this.tryOpen(true));
      return;
    }
    if (settle) {
      const settleMs = this.o.reopenSettleMs ?? 250;
      const now = performance.now();
      this.pathSeenAt ??= now;
      if (now - this.pathSeenAt < settleMs) {
        this.schedule(Math.min(poll, settleMs - (now - this.pathSeenAt)), () => this.tryOpen(true));
        return;
      }
    }
    this.pathSeenAt = undefined;
    this.opening = true;
    const port = new SerialPort({ path: this.path, baudRate: this.o.baudRate ?? 115_200, autoOpen: false });
    port.on('error', (error) => {
      this.lastError = error;
    });
    port.open((error) => {
      this.opening = false;
      if (error) {
        this.lastError = error;
        this.schedule(poll, () => this.tryOpen(true));
        return;
      }
      if (this.stopped || this.port) {
        port.close(() => {});
        return;
      }
      this.onOpen(port);
    });
  }

  private onOpen(port: SerialPort): void {
    this.port = port;
    this.pending = 0;
    this.outQueue = [];
    this.writing = false;
    this.deframer.reset();
    this.stats.opens++;
    // Reading the port is what notices a vanished pty at all ('close' with `disconnected`).
    const onData = (chunk: Buffer) => {
      if (this.port !== port) return;
      if (this.paceIn) this.paceIn.push(chunk.length, () => this.port === port && this.deframer.push(chunk));
      else this.deframer.push(chunk);
    };
    if (!readSerialPortNow(port, onData)) port.on('data', onData);
    port.on('close', (error: CloseError | null) => {
      if (this.port !== port) return;
      if (error) this.lastError = error;
      this.release(port);
      this.tryOpen(true);
    });
    for (const w of this.openWaiters.splice(0)) w();
    this.device.attach((msg) => this.acks.send(port, msg)); // hello first
  }

  /** Forgets the port (the device detaches) and closes it if it is still open. */
  private release(port: SerialPort): void {
    if (this.port === port) this.port = undefined;
    this.paceIn?.clear();
    this.paceOut?.clear();
    this.device.detach();
    if (port.isOpen) port.close(() => {});
  }

  private onBoot(): void {
    const port = this.port;
    if (port) this.device.attach((msg) => this.acks.send(port, msg));
  }

  private onFrame(payload: Uint8Array): void {
    const binary = this.binary && isBinaryPayload(payload);
    const r = this.binary ? decodeDevicePayload(payload) : decodeMessage(payload);
    if (!r.ok || directionOf(r.value.type) !== 'toDevice') {
      this.stats.badMessages++;
      return;
    }
    if (binary) this.stats.binaryChunks++;
    this.device.receive(r.value);
  }

  private write(port: SerialPort, msg: Message): void {
    const maxPending = this.o.maxPendingWrites ?? 64;
    if (this.port !== port || !port.isOpen || this.pending >= maxPending) {
      this.stats.framesDropped++;
      return;
    }
    const frame = encodeFrame(encodeMessage(msg));
    let bytes: Buffer;
    if (this.device.faults.garbage) {
      const junk = 1 + Math.floor(Math.random() * 24);
      bytes = Buffer.alloc(junk + frame.length);
      for (let i = 0; i < junk; i++) bytes[i] = 1 + Math.floor(Math.random() * 255);
      bytes.set(frame, junk);
      this.stats.garbageBytes += junk;
    } else {
      bytes = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    }
    this.pending++;
    this.stats.framesSent++;
    if (this.paceOut) this.paceOut.push(bytes.length, () => this.enqueue(port, bytes));
    else this.enqueue(port, bytes);
  }

  /** Queues a frame; the queue goes out at the end of this turn, or when the write on its way ends. */
  private enqueue(port: SerialPort, bytes: Buffer): void {
    if (this.port !== port) return;
    this.outQueue.push(bytes);
    if (this.writing || this.flushDue) return;
    this.flushDue = true;
    queueMicrotask(() => {
      this.flushDue = false;
      this.flush(port);
    });
  }

  /** Writes every queued frame in one write, once the previous write has ended. */
  private flush(port: SerialPort): void {
    if (this.writing || this.port !== port || this.outQueue.length === 0) return;
    const frames = this.outQueue.length;
    const bytes = frames === 1 ? this.outQueue[0]! : Buffer.concat(this.outQueue);
    this.outQueue = [];
    this.stats.writes++;
    // What the driver takes at once goes now, on this thread (as a UART driver copies into its TX buffer).
    const now = writeSerialPortNow(port, bytes);
    if (now === bytes.length) {
      this.pending -= frames;
      return;
    }
    const rest = now === 0 ? bytes : bytes.subarray(now);
    this.writing = true;
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      // Stays on its way: a port that never calls back fills up and then drops frames.
      this.stats.writeTimeouts++;
      if (this.port === port && !existsSync(this.path)) {
        this.release(port);
        this.tryOpen(true);
      }
    }, this.o.writeTimeoutMs ?? 2000);
    timer.unref();
    port.write(rest, (error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (this.port !== port) return;
      this.pending -= frames;
      this.writing = false;
      if (error) {
        this.stats.writeErrors++;
        this.lastError = error;
      }
      this.flush(port);
    });
  }
}

/**
 * Opens the device end of a pty and starts a simulated device on it. Resolves once the port is
 * open (the hello is written then); rejects, with everything stopped, if it cannot be opened
 * within `openTimeoutMs`.
 *
 * @example
 * const sim = await startSerialSimDevice('/tmp/fleetvisor-sim/sim-s01-device', { id: 'sim-s01' });
 */
export async function startSerialSimDevice(
  devicePath: string,
  options: SerialSimDeviceOptions,
): Promise<SerialSimDevice> {
  const sim = new SerialSimDeviceImpl(devicePath, options);
  sim.start();
  const timeoutMs = options.openTimeoutMs ?? 5000;
  if (!(await sim.waitOpen(timeoutMs))) {
    const cause = sim.lastError ? `: ${sim.lastError.message}` : '';
    await sim.stop();
    throw new Error(`serial sim device ${sim.id}: cannot open ${devicePath} within ${timeoutMs} ms${cause}`);
  }
  return sim;
}

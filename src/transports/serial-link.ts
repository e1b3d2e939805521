/**
 * The host's serial link: one open serial port (a UART, a USB CDC device, a pty) as a supervised
 * process, speaking protocol v1 in COBS/CRC-32 frames (docs/protocol.md §7).
 *
 * On open it sends a `hello` command so the device announces itself; the first valid `hello`
 * sets {@link SerialLink.deviceId}. A later `hello` with another device id means a different
 * device is on this port: that is reported as `deviceMismatch` and the link exits, so the new
 * device is identified afresh on a new link. Every intact frame counts as a sign of life; after
 * `heartbeatMs` of quiet the link probes the device (`ping`, or `hello` while the device has not
 * identified itself yet, since a device that missed the first `hello` command would otherwise
 * never be identified), and after `silenceMs` it exits with `silent`.
 *
 * A device whose latest `hello` lists the capability `fw.binary` gets every `fw.chunk` as a binary
 * frame (serial-fw-frame.ts, docs/protocol.md §7.1): the image bytes as they are, no base64 and no
 * JSON. Any other device gets the JSON `fw.chunk` as before. Callers send the same message either
 * way; the link picks the encoding.
 *
 * Bad input never costs the link: a bad frame or a bad message is counted, reported to
 * `onError`, and the next frame is read as usual. The deframer stores at most `maxFrameBytes`,
 * so megabytes of line noise without a delimiter keep memory flat.
 *
 * The link exits (an error exit whose `error` is a {@link SerialLinkExitError} with a `code`)
 * when the port vanishes (`vanished`: unplugged, serialport reports a `close` with
 * `disconnected`), on an I/O error (`ioError`), when a write fails or does not complete within
 * `writeTimeoutMs` plus its bytes' time on the line (`writeFailed`, `writeTimeout`: a write to a
 * dangling port never calls back), when the device goes quiet (`silent`), or on
 * `deviceMismatch`. `stop()` closes the port and exits with `shutdown`. Reopening is the caller's job (see serial-manager.ts): a re-enumerated
 * port is a new device node, so it always takes a new SerialPort object and a new link.
 *
 * serialport 13 on Linux reports a disconnect only while the port is being read, so the link
 * always keeps a `data` listener attached.
 *
 * @example
 * const r = await startSerialLink(rt, {
 *   path: '/dev/ttyUSB0',
 *   onMessage: (message, link) => fleet.deliver(link.deviceId, message),
 *   onError: (error, link) => rt.logger.warn(error.message, { path: link.path, code: error.code }),
 * });
 * if (!r.ok) return rt.logger.warn(r.error.message); // code: 'openFailed'
 * const link = r.value;
 * link.send({ v: 1, type: 'cmd', cmdId: 'c1', action: 'reboot' }); // { ok: true, value: undefined }
 * link.stats(); // { path, deviceId: 'pump-7', framesIn: 12, framesOut: 2, errors: { crcMismatch: 1 }, … }
 * await link.stop(); // closes the port
 */
import type { SerialPort } from 'serialport';
import type { ExitReason } from '../runtime/exit-reason.js';
import { ProcessBase } from '../runtime/process.js';
import type { Runtime } from '../runtime/runtime.js';
import type { TimerRef } from '../runtime/timers.js';
import type { FrameError } from './framing.js';
import type { CommandMessage, DeviceId, Message, Result } from './protocol.js';
import { CHANNELS, channelFor, encodeMessage, newCommandId, ProtocolError } from './protocol.js';
import { decodeDevicePayload, encodeFwChunkFrame, FW_BINARY_CAPABILITY } from './serial-fw-frame.js';
import type { SerialLinkError, SerialLinkExitCode, SerialSendError } from './serial-link-errors.js';
import { SerialLinkExitError } from './serial-link-errors.js';
import { SerialFrameIo } from './serial-link-io.js';
import type { SerialLinkOptions, SerialLinkSettings } from './serial-link-options.js';
import { resolveSerialLinkOptions } from './serial-link-options.js';
import type { SerialOpenError } from './serial-port.js';
import { isPortGone, openSerialPort } from './serial-port.js';

export type {
  SerialLinkError,
  SerialLinkErrorCode,
  SerialLinkExitCode,
  SerialSendError,
} from './serial-link-errors.js';
export { SerialLinkExitError } from './serial-link-errors.js';
export type { SerialLinkOptions } from './serial-link-options.js';
export {
  DEFAULT_SERIAL_BAUD_RATE,
  DEFAULT_SERIAL_HEARTBEAT_MS,
  DEFAULT_SERIAL_WRITE_TIMEOUT_MS,
  serialLinkOptionsSchema,
  serialLinkSettingsSchema,
} from './serial-link-options.js';
export type { SerialOpenError } from './serial-port.js';

export interface SerialLinkStats {
  readonly path: string;
  readonly deviceId: DeviceId | undefined;
  /** Intact frames received (CRC correct), whether or not they held a valid message. */
  readonly framesIn: number;
  /** Frames written to the port (write completed). */
  readonly framesOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Error code → count, for every {@link SerialLinkError} reported. */
  readonly errors: Record<string, number>;
  /** Wall-clock time (epoch ms) of the last intact frame, or null before the first. */
  readonly lastRxAt: number | null;
  /** Frames waiting to be written (one of them may be on its way). */
  readonly writeQueue: number;
  /** Whether `fw.chunk` goes as a binary frame: the device's latest hello listed `fw.binary`. */
  readonly binaryChunks: boolean;
}

/** The link process. Made by {@link startSerialLink}. */
export class SerialLink extends ProcessBase {
  /** cmdIds of the link's own hello/ping probes: their replies stop here. */
  private readonly ownCommands = new Set<string>();
  readonly path: string;
  private readonly options: SerialLinkOptions;
  private readonly settings: SerialLinkSettings;
  /** The port, its frames and its write queue. */
  private readonly io: SerialFrameIo;
  private identified: DeviceId | undefined;
  /** The device's latest hello listed `fw.binary`: `fw.chunk` goes as a binary frame. */
  private binaryChunks = false;
  private readonly errorCounts: Record<string, number> = {};
  private lastRxAt: number | null = null;
  /** Monotonic time of the last intact frame (or of the open). */
  private lastRxMono: number;
  /** Monotonic time of the last probe (the `hello` at open counts as one). */
  private lastProbeMono: number;
  private probes = 0;
  private watchdog: TimerRef | undefined;

  /** Internal: use {@link startSerialLink}, which opens the port first. */
  constructor(runtime: Runtime, options: SerialLinkOptions, port: SerialPort) {
    super(runtime, 'server', options.name ?? `serial-link:${options.path}`);
    this.path = options.path;
    this.options = options;
    this.settings = resolveSerialLinkOptions(options);
    this.lastRxMono = runtime.clock.now();
    this.lastProbeMono = this.lastRxMono;
    this.io = new SerialFrameIo({
      runtime,
      port,
      path: this.path,
      name: this.name,
      owner: this.pid,
      maxFrameBytes: this.settings.maxFrameBytes,
      writeTimeoutMs: this.settings.writeTimeoutMs,
      baudRate: this.settings.baudRate,
      isRunning: () => this.status === 'running',
      onFrame: (payload) => this.onFrame(payload),
      onFrameError: (error) => this.onFrameError(error),
      onLoss: (loss) => this.fail(loss.code, loss.message),
      onWriteError: (error) => this.failIo(error.code, error.message),
    });
  }

  /** The device on this port, from its first `hello`; undefined until then. */
  get deviceId(): DeviceId | undefined {
    return this.identified;
  }

  /** Internal: attaches the reader, announces the process, asks the device who it is. */
  begin(): void {
    // Listeners stay attached for the port's whole life: every handler checks that the port is
    // still this link's, and a late 'error' must never be an unhandled event.
    this.io.attach();
    this.started();
    this.runtime.logger.debug('serial link open', { link: this.name, path: this.path });
    this.sendCommand('hello');
    this.armWatchdog();
  }

  /**
   * Sends a host → device message (`cmd`, `fw.*`) as one frame. Writes go out one at a time in
   * the order sent (frames waiting behind a write go out together in the next one); a write must
   * complete within `writeTimeoutMs`, plus the time its bytes take at `baudRate`, or the link exits.
   *
   * @example
   * link.send({ v: 1, type: 'cmd', cmdId: 'c1', action: 'ping' }); // { ok: true, value: undefined }
   * link.send(telemetry); // { ok: false, error: { code: 'wrongDirection', … } }
   */
  send(message: Message): Result<void, SerialSendError> {
    if (this.status !== 'running' || !this.io.open) {
      return sendFailure('closed', `serial link ${this.name} is ${this.status}; message not sent`);
    }
    const type = (message as { type?: unknown } | null)?.type;
    const spec = typeof type === 'string' ? CHANNELS[channelFor(type as Message['type'])] : undefined;
    if (spec && spec.direction !== 'toDevice') {
      return sendFailure('wrongDirection', `'${type}' is a device → host message; the host cannot send it`);
    }
    try {
      const maxBytes = this.settings.maxPayloadBytes;
      if (message.type === 'fw.chunk' && this.binaryChunks)
        this.io.sendFrame(encodeFwChunkFrame(message, { maxBytes }));
      else this.io.send(encodeMessage(message, { maxBytes }));
    } catch (error) {
      if (error instanceof ProtocolError) return sendFailure('badMessage', error.message);
      throw error;
    }
    return { ok: true, value: undefined };
  }

  /**
   * Counters, for health checks and the UI.
   *
   * @example
   * const { deviceId, framesIn, errors, lastRxAt } = link.stats();
   */
  stats(): SerialLinkStats {
    return {
      path: this.path,
      deviceId: this.identified,
      ...this.io.counters(),
      errors: { ...this.errorCounts },
      lastRxAt: this.lastRxAt,
      writeQueue: this.io.queued,
      binaryChunks: this.binaryChunks,
    };
  }

  protected async terminate(_reason: ExitReason): Promise<void> {
    const unsent = this.io.unsent;
    if (unsent > 0)
      this.runtime.logger.warn('serial link stopping with unsent frames', { link: this.name, unsent });
    await this.teardown();
    this.runtime.logger.debug('serial link closed', { link: this.name, path: this.path });
  }

  protected override release(): void {
    void this.teardown();
  }

  /** An intact frame (the io counted it, and only calls while the link runs). */
  private onFrame(payload: Uint8Array): void {
    this.lastRxMono = this.runtime.clock.now();
    this.lastRxAt = this.runtime.clock.wallNow();
    // A binary frame from the device decodes too, so an echoed fw.chunk is named wrongDirection below.
    const r = decodeDevicePayload(payload, { maxBytes: this.settings.maxPayloadBytes });
    if (!r.ok) {
      const base = { code: r.error.code, message: `refused message on ${this.path}: ${r.error.message}` };
      this.reportError(r.error.field === undefined ? base : { ...base, field: r.error.field });
      return;
    }
    const message = r.value;
    if (CHANNELS[channelFor(message.type)].direction !== 'toHost') {
      this.reportError({
        code: 'wrongDirection',
        message: `refused message on ${this.path}: '${message.type}' is a host → device message (an echoing line?)`,
      });
      return;
    }
    // The answer to the link's own probe (hello, ping): it proved the line alive; nobody else asked.
    if (message.type === 'reply' && this.ownCommands.delete(message.cmdId)) return;
    if (message.type === 'hello') {
      if (this.identified === undefined) {
        this.identified = message.deviceId;
        this.runtime.logger.debug('serial device identified', {
          link: this.name,
          path: this.path,
          deviceId: message.deviceId,
          kind: message.kind,
        });
      } else if (this.identified !== message.deviceId) {
        const text = `device on ${this.path} said it is '${message.deviceId}', but it identified as '${this.identified}'; a different device must be identified on a new link`;
        this.reportError({ code: 'deviceMismatch', message: text });
        this.fail('deviceMismatch', text);
        return;
      }
      // Every hello says it afresh: a device rolled back to firmware without it gets JSON again.
      this.binaryChunks = message.capabilities.includes(FW_BINARY_CAPABILITY);
    }
    try {
      this.options.onMessage(message, this);
    } catch (error) {
      this.runtime.report(`serial link ${this.name}: onMessage threw`, error, this.pid);
    }
  }

  private onFrameError(error: FrameError): void {
    this.reportError({
      code: error.code,
      message: `dropped frame on ${this.path}: ${error.message}`,
      discardedBytes: error.discardedBytes,
    });
  }

  private reportError(error: SerialLinkError): void {
    this.errorCounts[error.code] = (this.errorCounts[error.code] ?? 0) + 1;
    this.runtime.logger.debug('serial link input refused', { link: this.name, code: error.code });
    try {
      this.options.onError(error, this);
    } catch (thrown) {
      this.runtime.report(`serial link ${this.name}: onError threw`, thrown, this.pid);
    }
  }

  private sendCommand(action: 'hello' | 'ping'): void {
    const cmd: CommandMessage = { v: 1, type: 'cmd', cmdId: newCommandId(action), action };
    this.ownCommands.add(cmd.cmdId);
    if (this.ownCommands.size > 32) this.ownCommands.delete(this.ownCommands.values().next().value as string);
    this.send(cmd);
  }

  /**
   * One timer for heartbeat and silence, re-armed when it fires rather than on every frame:
   * receiving stays cheap, and the timer computes from `lastRxMono` when it wakes.
   */
  private armWatchdog(): void {
    const now = this.runtime.clock.now();
    const { heartbeatMs, silenceMs } = this.settings;
    const nextProbe = Math.max(this.lastRxMono, this.lastProbeMono) + heartbeatMs;
    const nextSilence = this.lastRxMono + silenceMs;
    this.watchdog = this.runtime.timers.schedule(
      Math.max(1, Math.min(nextProbe, nextSilence) - now),
      () => this.onWatchdog(),
      { owner: this.pid, label: 'serial.heartbeat' },
    );
  }

  private onWatchdog(): void {
    this.watchdog = undefined;
    if (this.status !== 'running') return;
    const now = this.runtime.clock.now();
    const idle = now - this.lastRxMono;
    const { heartbeatMs, silenceMs } = this.settings;
    if (idle >= silenceMs) {
      this.fail(
        'silent',
        `nothing received on ${this.path} for ${Math.round(idle)} ms (silenceMs ${silenceMs}, ${this.probes} probe(s) unanswered)`,
      );
      return;
    }
    if (idle >= heartbeatMs && now - this.lastProbeMono >= heartbeatMs) {
      this.lastProbeMono = now;
      this.probes++;
      this.sendCommand(this.identified === undefined ? 'hello' : 'ping');
    }
    if (this.status === 'running') this.armWatchdog();
  }

  /** An I/O failure; if the device node is gone, the truth is that the port vanished. */
  private failIo(code: 'ioError' | 'writeFailed' | 'writeTimeout', message: string): void {
    if (isPortGone(this.path))
      this.fail('vanished', `serial port ${this.path} vanished (unplugged?); ${message}`);
    else this.fail(code, message);
  }

  /** Error exit: release the port, then exit (so a listener that reopens the path finds it unlocked sooner). */
  private fail(code: SerialLinkExitCode, message: string): void {
    if (this.status === 'exited') return;
    const error = new SerialLinkExitError(code, this.path, message);
    this.runtime.logger.warn('serial link failed', {
      link: this.name,
      path: this.path,
      code,
      error: message,
    });
    void this.teardown();
    this.exit({ type: 'error', error });
  }

  /** Cancels the watchdog, then drops the write queue and closes the port (bounded by `writeTimeoutMs`). */
  private teardown(): Promise<void> {
    if (this.watchdog) this.runtime.timers.cancel(this.watchdog);
    this.watchdog = undefined;
    return this.io.close();
  }
}

/**
 * Opens `options.path` and starts a link process (kind `server`) on it. Resolves with
 * `openFailed` (and no process) if the port cannot be opened within `writeTimeoutMs`: missing,
 * not a tty, locked by another process, no permission. Throws `RangeError` for bad options.
 *
 * @example
 * const r = await startSerialLink(rt, { path: '/dev/ttyACM0', heartbeatMs: 5000, onMessage, onError });
 * if (r.ok) r.value.onExit((reason) => rt.logger.warn(formatExitReason(reason)));
 */
export async function startSerialLink(
  runtime: Runtime,
  options: SerialLinkOptions,
): Promise<Result<SerialLink, SerialOpenError>> {
  const settings = resolveSerialLinkOptions(options);
  const opened = await openSerialPort(runtime, {
    path: options.path,
    baudRate: settings.baudRate,
    timeoutMs: settings.writeTimeoutMs,
  });
  if (!opened.ok) return opened;
  const link = new SerialLink(runtime, options, opened.value);
  link.begin();
  return { ok: true, value: link };
}

function sendFailure(code: SerialSendError['code'], message: string): { ok: false; error: SerialSendError } {
  return { ok: false, error: { code, message } };
}

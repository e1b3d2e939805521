/**
 * A serialport 13 `SerialPort` behind a small promise interface, shared by the serial link and
 * the Modbus bus: open and close with a timeout (either can hang on a dangling device node), a
 * write that settles within a timeout (a write to a disconnected port never calls back), and
 * vanish detection — the one place that decides whether a port that closed or failed is gone
 * (unplugged, its pty closed) or still there.
 *
 * serialport reports an unplug only as `close` with `disconnected: true`, and only while the port
 * is being read: the owner keeps a `data` listener attached for the port's whole life. A failure
 * is `vanished` when serialport says `disconnected`, when the error is EIO/ENXIO/ENODEV (the other
 * side hung up) or when the device node (or its symlink) no longer exists.
 *
 * @example
 * const r = await openSerialPort(runtime, { path: '/dev/ttyUSB0', baudRate: 9600, timeoutMs: 2000 });
 * if (!r.ok) return logger.warn(r.error.message); // code 'openFailed'
 * const unwatch = watchSerialPort(r.value, '/dev/ttyUSB0', (loss) => logger.warn(loss.message)); // code 'vanished' | 'closed' | 'ioError'
 * const w = await writeSerialPort(runtime, r.value, frame, { timeoutMs: 2000 }); // { ok: false, error: { code: 'writeTimeout' } }
 * unwatch();
 * await closeSerialPort(runtime, r.value, 2000, pid);
 */
import { existsSync, readSync, writeSync } from 'node:fs';
import { SerialPort } from 'serialport';
import type { Result } from '../lib/result.js';
import type { Runtime } from '../runtime/runtime.js';

export interface SerialOpenOptions {
  /** The device node, e.g. `/dev/ttyUSB0` or a `/dev/serial/by-id/…` symlink. */
  readonly path: string;
  readonly baudRate: number;
  /** Line settings; serialport's defaults (8N1) when left out. ptys ignore all of them. */
  readonly parity?: 'none' | 'even' | 'odd';
  readonly dataBits?: 7 | 8;
  readonly stopBits?: 1 | 2;
  /** An open not done within this fails (and the port, if it opens later, is closed). */
  readonly timeoutMs: number;
  /** The process that owns the open timer (0: none yet). */
  readonly owner?: number;
  /** The timer's label; default `serial.open`. */
  readonly label?: string;
}

/** Why {@link openSerialPort} failed: missing, not a tty, locked, no permission, or too slow. */
export interface SerialOpenError {
  readonly code: 'openFailed';
  readonly message: string;
}

/** How an open port was lost: gone (unplugged), closed under us, or an I/O error while present. */
export type SerialLossCode = 'vanished' | 'closed' | 'ioError';

export interface SerialLoss {
  readonly code: SerialLossCode;
  readonly message: string;
}

export interface SerialWriteError {
  readonly code: 'writeFailed' | 'writeTimeout';
  readonly message: string;
}

/**
 * Opens `path`. Resolves with the open port, or `openFailed` naming the path and the cause;
 * never rejects. Until the caller attaches its own, an `error` event is swallowed.
 */
export function openSerialPort(
  runtime: Runtime,
  options: SerialOpenOptions,
): Promise<Result<SerialPort, SerialOpenError>> {
  const { path, timeoutMs } = options;
  return new Promise((resolve) => {
    let port: SerialPort;
    try {
      port = new SerialPort({
        path,
        baudRate: options.baudRate,
        ...(options.parity === undefined ? {} : { parity: options.parity }),
        ...(options.dataBits === undefined ? {} : { dataBits: options.dataBits }),
        ...(options.stopBits === undefined ? {} : { stopBits: options.stopBits }),
        autoOpen: false,
      });
    } catch (error) {
      resolve(openFailure(path, error));
      return;
    }
    const swallow = () => {};
    port.on('error', swallow);
    let settled = false;
    const timer = runtime.timers.schedule(
      timeoutMs,
      () => {
        if (settled) return;
        settled = true;
        resolve(openFailure(path, new Error(`open did not complete within ${timeoutMs} ms`)));
      },
      { owner: options.owner ?? 0, label: options.label ?? 'serial.open' },
    );
    port.open((error) => {
      if (settled) {
        // Timed out meanwhile: nobody owns this port.
        if (!error) port.close(() => {});
        return;
      }
      settled = true;
      runtime.timers.cancel(timer);
      if (error) {
        resolve(openFailure(path, error));
        return;
      }
      port.off('error', swallow);
      resolve({ ok: true, value: port });
    });
  });
}

/**
 * Closes a serial port, giving up waiting after `timeoutMs`: a close on a dangling port (an
 * unplugged adapter, a killed pty) may never call back. Never rejects; a late `error` of the
 * port is swallowed from here on.
 */
export function closeSerialPort(
  runtime: Runtime,
  port: SerialPort,
  timeoutMs: number,
  owner: number,
  label = 'serial.close',
): Promise<void> {
  port.on('error', () => {});
  if (!port.isOpen) return Promise.resolve();
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      runtime.timers.cancel(timer);
      resolve();
    };
    const timer = runtime.timers.schedule(timeoutMs, finish, { owner, label });
    try {
      port.close(() => finish());
    } catch {
      finish();
    }
  });
}

/**
 * Writes `data` and resolves once the port took it, or with `writeFailed` (the port refused it)
 * or `writeTimeout` (no callback within `timeoutMs` plus `lineMs`: the port dangles or nobody
 * reads the far end). Never rejects.
 */
export function writeSerialPort(
  runtime: Runtime,
  port: SerialPort,
  data: Buffer,
  options: {
    readonly path: string;
    readonly timeoutMs: number;
    /** Added to `timeoutMs`: the time the line needs to carry `data` (a big write on a slow line is not dangling). */
    readonly lineMs?: number;
    readonly owner: number;
    readonly label?: string;
    /** Aborted: stop waiting (the owner is closing the port); resolves `writeFailed` at once. */
    readonly signal?: AbortSignal;
  },
): Promise<Result<void, SerialWriteError>> {
  return new Promise((resolve) => {
    let done = false;
    const onAbort = () => settle(new Error('abandoned: the port is being closed'));
    const lineMs = options.lineMs ?? 0;
    const timer = runtime.timers.schedule(
      options.timeoutMs + lineMs,
      () => {
        if (done) return;
        done = true;
        options.signal?.removeEventListener('abort', onAbort);
        resolve({
          ok: false,
          error: {
            code: 'writeTimeout',
            message: `a write of ${data.length} bytes to ${options.path} did not complete within ${options.timeoutMs} ms${lineMs > 0 ? ` (plus ${lineMs} ms the line needs for them)` : ''} (the port is dangling or the device stopped reading)`,
          },
        });
      },
      { owner: options.owner, label: options.label ?? 'serial.write' },
    );
    const settle = (error: Error | null | undefined) => {
      if (done) return;
      done = true;
      runtime.timers.cancel(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (error)
        resolve({
          ok: false,
          error: { code: 'writeFailed', message: `write to ${options.path} failed: ${error.message}` },
        });
      else resolve({ ok: true, value: undefined });
    };
    if (options.signal?.aborted) {
      onAbort();
      return;
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      port.write(data, (error) => settle(error));
    } catch (error) {
      settle(error instanceof Error ? error : new Error(String(error)));
    }
  });
}

/**
 * The open port's file descriptor, when serialport's Unix binding holds one (undefined on
 * Windows, before open, after close, or with another binding).
 */
export function serialPortFd(port: SerialPort): number | undefined {
  if (!port.isOpen) return undefined;
  const fd = (port.port as { readonly fd?: unknown } | undefined)?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * Writes what the port takes at once, on this thread: serialport opens its Unix fd non-blocking,
 * so a `write(2)` returns at once with the bytes the driver took. Returns how many bytes went
 * (0: none, the driver's buffer is full or the fd cannot be written here), never throws and never
 * waits; every error counts as 0, so the caller hands the rest to {@link writeSerialPort}, which
 * waits for room and reports a failure as it always did.
 *
 * This saves serialport's thread-pool round trip per write (two thread switches on the path of a
 * reply). Only call it while no write of the port is on its way, or bytes would overtake it.
 */
export function writeSerialPortNow(port: SerialPort, data: Uint8Array): number {
  const fd = serialPortFd(port);
  if (fd === undefined || data.length === 0) return 0;
  try {
    return writeSync(fd, data);
  } catch {
    return 0;
  }
}

/** serialport's Unix binding as {@link readSerialPortNow} uses it: its fd and its poller. */
interface UnixBinding {
  readonly fd: number | null;
  readonly poller: {
    once(event: 'readable', callback: (error: (Error & { canceled?: boolean }) | null) => void): unknown;
  };
}

function unixBinding(port: SerialPort): UnixBinding | undefined {
  const b = port.port as Partial<UnixBinding> | undefined;
  const once = (b?.poller as { once?: unknown } | undefined)?.once;
  return typeof b?.fd === 'number' && typeof once === 'function' ? (b as UnixBinding) : undefined;
}

/** Most bytes read in one turn of the event loop before the others get theirs. */
const READ_TURN_BYTES = 256 * 1024;
const READ_POOL_BYTES = 64 * 1024;
const AGAIN_CODES = new Set(['EAGAIN', 'EWOULDBLOCK', 'EINTR']);

/**
 * Reads the open port on this thread instead of serialport's: when its poller says the fd is
 * readable, `read(2)` into a pool and hand each piece to `onData`, again while a read fills what
 * it asked for (at most {@link READ_TURN_BYTES} a turn), then wait for the poller again.
 * serialport's own reader hands every read to the thread pool and back and reads once more to
 * learn the fd is empty (which on a pty waits for the kernel to flush its input buffer): two
 * round trips between threads, and that wait, per burst on the path of every reply. Returns
 * false, reading nothing, when the port has no Unix fd and poller (Windows, another binding): the
 * caller attaches a `data` listener instead.
 *
 * A read that fails for any reason but "try again", or reads the end of a hung-up tty, is what
 * serialport calls a disconnect: the port is closed with an error whose `disconnected` is true,
 * so `close` (and {@link watchSerialPort}) report it exactly as serialport's own reader would.
 * Reading stops when the port closes. Do not also attach a `data` listener: the two readers would
 * split the bytes between them.
 */
export function readSerialPortNow(port: SerialPort, onData: (chunk: Buffer) => void): boolean {
  const binding = unixBinding(port);
  const fd = binding?.fd;
  if (!binding || typeof fd !== 'number' || !port.isOpen) return false;
  let pool = Buffer.allocUnsafe(READ_POOL_BYTES);
  let used = 0;
  const live = () => port.isOpen && binding.fd === fd;
  const lose = (error: unknown) => {
    if (!live()) return;
    const cause = error instanceof Error ? error.message : String(error);
    port.close(undefined, Object.assign(new Error(`read failed: ${cause}`), { disconnected: true }));
  };
  const arm = () =>
    binding.poller.once('readable', (error) => {
      if (!live()) return;
      if (error) {
        if (error.canceled !== true) lose(error);
        return;
      }
      drain();
    });
  const drain = () => {
    for (let total = 0; total < READ_TURN_BYTES; ) {
      if (READ_POOL_BYTES - used < 1024) {
        pool = Buffer.allocUnsafe(READ_POOL_BYTES);
        used = 0;
      }
      let n: number;
      try {
        n = readSync(fd, pool, used, READ_POOL_BYTES - used, null);
      } catch (error) {
        if (AGAIN_CODES.has((error as NodeJS.ErrnoException).code ?? '')) arm();
        else lose(error);
        return;
      }
      if (n === 0) {
        // VMIN is 1, so an empty fd says EAGAIN: 0 bytes is the end of a hung-up tty.
        lose(new Error('end of file (the tty hung up)'));
        return;
      }
      const asked = READ_POOL_BYTES - used;
      const chunk = pool.subarray(used, used + n);
      used += n;
      total += n;
      onData(chunk);
      if (!live()) return;
      // A short read took all there was: asking again until EAGAIN costs a pty a wait for the
      // kernel's flush of its input buffer (n_tty_read), longer than letting the poller say when.
      if (n < asked) break;
    }
    // More may be waiting: the poller says so at once, after the other handlers had their turn.
    arm();
  };
  arm();
  return true;
}

const HANG_UP_CODES = new Set(['EIO', 'ENXIO', 'ENODEV']);

/**
 * Whether a port that failed with `error` is gone rather than merely failing: serialport said
 * `disconnected`, the error is a hang-up (EIO, ENXIO, ENODEV), or the device node is no longer there.
 */
export function isPortGone(path: string, error?: unknown): boolean {
  const e = error as (Partial<NodeJS.ErrnoException> & { disconnected?: unknown }) | null | undefined;
  if (e?.disconnected === true) return true;
  if (typeof e?.code === 'string' && HANG_UP_CODES.has(e.code)) return true;
  return !existsSync(path);
}

/**
 * The loss, named: `vanished` if {@link isPortGone}, else `closed` (for a close) or `ioError`.
 * `detail` is appended to the message (what the caller was doing).
 */
export function describeLoss(
  path: string,
  event: 'close' | 'error',
  error: unknown,
  detail?: string,
): SerialLoss {
  const cause = error instanceof Error ? error.message : error == null ? '' : String(error);
  const suffix = detail === undefined ? '' : `; ${detail}`;
  if (isPortGone(path, error))
    return {
      code: 'vanished',
      message: `serial port ${path} vanished (unplugged?)${cause ? `: ${cause}` : ''}${suffix}`,
    };
  if (event === 'close')
    return {
      code: 'closed',
      message: `serial port ${path} closed unexpectedly${cause ? `: ${cause}` : ''}${suffix}`,
    };
  return { code: 'ioError', message: `I/O error on ${path}${cause ? `: ${cause}` : ''}${suffix}` };
}

/**
 * Calls `onLost` once when the open port closes or fails, with the loss named by
 * {@link describeLoss}. Returns the unwatch: after it (or after the first loss) later events are
 * ignored, and an `error` never goes unhandled.
 */
export function watchSerialPort(
  port: SerialPort,
  path: string,
  onLost: (loss: SerialLoss) => void,
): () => void {
  let watching = true;
  const lost = (loss: SerialLoss) => {
    if (!watching) return;
    watching = false;
    onLost(loss);
  };
  port.on('close', (error: (Error & { disconnected?: boolean }) | null) =>
    lost(describeLoss(path, 'close', error)),
  );
  port.on('error', (error: Error) => lost(describeLoss(path, 'error', error)));
  return () => {
    watching = false;
  };
}

function openFailure(path: string, error: unknown): { ok: false; error: SerialOpenError } {
  const text = error instanceof Error ? error.message : String(error);
  return { ok: false, error: { code: 'openFailed', message: `cannot open serial port ${path}: ${text}` } };
}

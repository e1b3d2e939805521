/**
 * Test kit for the serial link and manager tests: a hand-written device on the far end of a real
 * socat pty pair (a plain SerialPort speaking protocol v1 frames), pty pairs in a fresh temp dir,
 * a runtime on the real clock with a log that tests can read, and a condition poller.
 *
 * @example
 * const pair = await ptyPair(kit, 'a');
 * const device = await FakeDevice.open(kit, pair.devicePath, { deviceId: 'pump-7' });
 * await device.send(telemetry(1));
 * await waitFor(() => device.commands('hello').length > 0, 5000, 'the hello command');
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { SerialPort } from 'serialport';
import { createRealClock } from '../../src/runtime/clock.js';
import type { Logger, Runtime } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { PtyPair } from '../../src/sim/pty.js';
import { openPtyPair, socatAvailable } from '../../src/sim/pty.js';
import type { FrameError } from '../../src/transports/framing.js';
import { createDeframer, encodeFrame } from '../../src/transports/framing.js';
import type {
  CommandMessage,
  DecodeError,
  DeviceId,
  HelloMessage,
  Message,
  TelemetryMessage,
} from '../../src/transports/protocol.js';
import { decodeMessage, encodeMessage } from '../../src/transports/protocol.js';

export const HAVE_SOCAT = socatAvailable();
/** Appended to describe names: says why the serial tests were skipped, or that they ran on real ptys. */
export const PTY_NOTE = HAVE_SOCAT
  ? 'on real socat pty pairs'
  : '(skipped: socat is not installed; Debian: apt-get install -y socat)';

export { waitFor } from './helpers.js';

/** Resolves with the promise's value, or rejects if it takes longer than `ms` (a hang is a failure). */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface LogEntry {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly fields: Record<string, unknown> | undefined;
}

/** Per-test resources, released in reverse order by {@link Kit.cleanup}. */
export interface Kit {
  readonly rt: Runtime;
  readonly log: LogEntry[];
  readonly dir: string;
  defer(cleanup: () => unknown): void;
  cleanup(): Promise<void>;
}

export function createKit(): Kit {
  const cleanups: (() => unknown)[] = [];
  const log: LogEntry[] = [];
  const record =
    (level: LogEntry['level']) =>
    (message: string, fields?: Record<string, unknown>): void => {
      log.push({ level, message, fields });
    };
  const logger: Logger = {
    debug: record('debug'),
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
  };
  const rt = createRuntime({ clock: createRealClock(), logger });
  const dir = mkdtempSync(`${os.tmpdir()}/fv-serial-`);
  cleanups.push(() => rt.dispose());
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return {
    rt,
    log,
    dir,
    defer: (cleanup) => cleanups.push(cleanup),
    async cleanup() {
      for (const cleanup of cleanups.splice(0).reverse()) {
        try {
          await cleanup();
        } catch {
          // best effort: later cleanups must still run
        }
      }
    },
  };
}

/** A pty pair at `<dir>/<name>-host` and `<dir>/<name>-dev`, closed by the kit. */
export async function ptyPair(kit: Kit, name: string): Promise<PtyPair> {
  const pair = await openPtyPair(`${kit.dir}/${name}-host`, `${kit.dir}/${name}-dev`);
  kit.defer(() => pair.close());
  return pair;
}

export interface FakeDeviceOptions {
  readonly deviceId?: string;
  readonly boot?: number;
  /** Commands answered as §4 says (`hello`: a fresh hello, then `ok`; `ping`: `ok`). Default both. */
  readonly answers?: readonly ('hello' | 'ping')[];
  /** Send a hello right after opening, as a device does after boot. Default true. */
  readonly helloOnOpen?: boolean;
}

/** The device end: decodes what the host sends, answers `hello`/`ping`, sends what the test says. */
export class FakeDevice {
  readonly received: Message[] = [];
  readonly frameErrors: FrameError[] = [];
  readonly decodeErrors: DecodeError[] = [];
  deviceId: string;
  private readonly options: FakeDeviceOptions;

  private constructor(
    readonly port: SerialPort,
    options: FakeDeviceOptions,
  ) {
    this.options = options;
    this.deviceId = options.deviceId ?? 'pump-7';
    const deframer = createDeframer({
      onFrame: (payload) => {
        const r = decodeMessage(payload);
        if (!r.ok) {
          this.decodeErrors.push(r.error);
          return;
        }
        this.received.push(r.value);
        if (r.value.type === 'cmd') void this.answer(r.value);
      },
      onError: (error) => this.frameErrors.push(error),
    });
    port.on('data', (chunk: Buffer) => deframer.push(chunk));
    port.on('error', () => {});
    port.on('close', () => {});
  }

  static async open(kit: Kit, path: string, options: FakeDeviceOptions = {}): Promise<FakeDevice> {
    const port = new SerialPort({ path, baudRate: 115_200, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
    const device = new FakeDevice(port, options);
    kit.defer(() => device.close());
    if (options.helloOnOpen ?? true) await device.send(device.hello());
    return device;
  }

  hello(deviceId = this.deviceId): HelloMessage {
    return {
      v: 1,
      type: 'hello',
      deviceId: deviceId as DeviceId,
      kind: 'pump',
      boot: this.options.boot ?? 1,
      firmware: { version: '1.0.0', slot: 'A', confirmed: true, slots: { A: '1.0.0', B: null } },
      capabilities: ['hello', 'ping'],
    };
  }

  /** Host → device commands received, optionally only those with `action`. */
  commands(action?: string): CommandMessage[] {
    return this.received.filter(
      (m): m is CommandMessage => m.type === 'cmd' && (action === undefined || m.action === action),
    );
  }

  send(message: Message): Promise<void> {
    return this.write(encodeFrame(encodeMessage(message)));
  }

  write(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.port.write(Buffer.from(bytes), (error) => (error ? reject(error) : resolve()));
    });
  }

  async close(): Promise<void> {
    if (!this.port.isOpen) return;
    await new Promise<void>((resolve) => this.port.close(() => resolve()));
  }

  private async answer(cmd: CommandMessage): Promise<void> {
    const answers = this.options.answers ?? ['hello', 'ping'];
    if (cmd.action !== 'hello' && cmd.action !== 'ping') return;
    if (!answers.includes(cmd.action)) return;
    try {
      if (cmd.action === 'hello') await this.send(this.hello());
      await this.send({ v: 1, type: 'reply', cmdId: cmd.cmdId, ok: true });
    } catch {
      // the port went away under us: a real device would not notice either
    }
  }
}

export function telemetry(seq: number, values: Record<string, number> = { temp: 21.5 }): TelemetryMessage {
  return { v: 1, type: 'telemetry', boot: 1, seq, ts: 1_700_000_000_000 + seq, values };
}

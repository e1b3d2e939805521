/**
 * One Modbus RTU bus: one serial port, the slaves on it, one request on the wire at a time.
 * A process (kind `server`, name `modbus-bus:<path>`) made by the Modbus bridge, one per port.
 *
 * Port: opened with modbus-serial's `ModbusRTU` client over an {@link RtuPort} (strict RTU
 * framing on a serialport 13 `SerialPort`). A port that is absent is looked for every
 * `presencePollMs` and opened as soon as it appears (a replugged adapter, a new pty); a failed
 * open is retried with the shared jittered exponential backoff (reconnect.ts,
 * {@link backoffDelayMs}); a port that closes or vanishes (serialport's `close`, a write
 * error, a timeout while the device node is gone) takes every slave on it down with the reason
 * and is reopened the same way. When no slave answers and not one byte has come in for
 * `reopenSilentMs`, the port is cycled too: a dangling port (writes that never complete, the
 * ones after them queued behind) looks just like that. The bus itself never exits for any of it.
 *
 * Scheduling, round-robin by request: each slave has a poll cycle (its batches, one request
 * each, see planBatches) that starts every `pollMs`; the bus serves the slaves whose next
 * request is due in turn, one request per turn, so several slaves interleave and none waits for
 * another's whole cycle. A slave that does not answer costs one `timeoutMs` per turn: its
 * request is retried on its next turn, and after `retries + 1` timeouts in a row it is declared
 * down (reason: the timeouts); a down slave is only probed, one request each time its jittered
 * backoff expires (starting at `pollMs`, growing to `probeMaxMs`), so a silent slave never
 * eats the bus. Its first reply brings it back up. Writes go first, between two requests; a
 * write that times out is retried (Modbus writes set values: idempotent) up to `retries` times.
 * Between two requests the line must be quiet for 3.5 characters (longer after an error, to let
 * the rest of a garbled reply drain).
 *
 * Faults: an exception reply (illegal address …) proves the slave alive; the batch is skipped
 * for this cycle — and a multi-register batch refused with "illegal data address/value" is
 * split into one request per register, so one bad register does not cost its neighbours. A CRC
 * error or a malformed reply is retried on the slave's next turn (the cycle is abandoned after
 * `retries + 1` in a row). Every fault is counted and reported to `onFault`; nothing crashes.
 *
 * The parts: the schedule and what each reply does to a slave (modbus-bus-plan.ts, pure), the
 * requests and the hooks they tell (modbus-bus-requests.ts), the writes and one-off reads waiting
 * for a gap (modbus-request-queue.ts), the wire (modbus-bus-line.ts), the public types
 * (modbus-bus-types.ts, re-exported here). This process owns the port's lifecycle and the loop.
 *
 * @example
 * const bus = startModbusBus(runtime, {
 *   path: '/dev/ttyUSB0',
 *   line: { baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1 },
 *   slaves: [{ deviceId: 'boiler-1', unitId: 3, registers, pollMs: 1000, timeoutMs: 500, retries: 1 }],
 *   hooks: { onSlaveUp, onSlaveDown, onValues: (id, values) => fleet.ingestTelemetry(id, values), onFault },
 * });
 * await bus.write('boiler-1', { fc: 6, address: 10, value: 215 }); // { ok: true, attempts: 1 }
 * bus.stats(); // { path, port: 'open', slaves: [{ deviceId: 'boiler-1', online: true, counters: {…} }] }
 * await bus.stop();
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { checkOptions, nonEmptyString, positiveInt } from '../../lib/options.js';
import type { ExitReason } from '../../runtime/exit-reason.js';
import { errorExit } from '../../runtime/exit-reason.js';
import { ProcessBase } from '../../runtime/process.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { TimerRef } from '../../runtime/timers.js';
import type { ReconnectOptions } from '../../transports/reconnect.js';
import { backoffDelayMs, reconnectSchema, resolveReconnect } from '../../transports/reconnect.js';
import { openSerialPort } from '../../transports/serial-port.js';
import { BusLine, closeModbusSerial } from './modbus-bus-line.js';
import { BusSchedule, frameGapMs, slaveStats } from './modbus-bus-plan.js';
import type { BusPort } from './modbus-bus-requests.js';
import { BusRequests } from './modbus-bus-requests.js';
import type {
  BusPortState,
  BusStats,
  LineSettings,
  ModbusBusOptions,
  ReadOnceOutcome,
  ReadOnceRequest,
  SlaveConfig,
  WriteOutcome,
} from './modbus-bus-types.js';
import type { WriteRequest } from './modbus-codec.js';
import { RequestQueue } from './modbus-request-queue.js';

export type {
  BusPortState,
  BusStats,
  FaultCode,
  LineSettings,
  ModbusBusHooks,
  ModbusBusOptions,
  ModbusFault,
  ReadOnceOutcome,
  ReadOnceRequest,
  SlaveConfig,
  SlaveCounters,
  SlaveStats,
  WriteOutcome,
} from './modbus-bus-types.js';

/** The bus process. Made by {@link startModbusBus}. */
export class ModbusBus extends ProcessBase {
  readonly path: string;
  readonly line: LineSettings;
  private readonly reconnect: ReconnectOptions;
  private readonly presencePollMs: number;
  private readonly openTimeoutMs: number;
  private readonly random: () => number;

  private portState: BusPortState = 'absent';
  private portAttempts = 0;
  private lastPortError: string | null = null;
  /** Monotonic time before which the port is not reopened. */
  private backoffUntil = 0;
  /** Monotonic time the port was last opened. */
  private openedMono = 0;
  private opens = 0;
  private readonly wire: BusLine;

  private readonly schedule = new BusSchedule();
  private readonly queue = new RequestQueue();
  private readonly requests: BusRequests;

  private sleepTimer: TimerRef | undefined;
  private wakeUp: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(runtime: Runtime, options: ModbusBusOptions) {
    super(runtime, 'server', `modbus-bus:${options.path}`);
    this.path = options.path;
    this.line = options.line;
    this.reconnect = resolveReconnect(options.reconnect);
    this.presencePollMs = options.presencePollMs ?? 500;
    this.openTimeoutMs = options.openTimeoutMs ?? 2000;
    this.random = options.random ?? Math.random;
    this.wire = new BusLine(runtime, {
      path: this.path,
      owner: this.pid,
      frameGapMs: frameGapMs(options.line),
      closeTimeoutMs: this.openTimeoutMs,
      isRunning: () => this.status === 'running',
    });
    const port: BusPort = {
      path: this.path,
      wire: this.wire,
      running: () => this.status === 'running',
      portOpen: () => this.portState === 'open',
      openedMono: () => this.openedMono,
      portLost: (reason) => this.portLost(reason),
      answered: () => {
        this.portAttempts = 0;
      },
    };
    this.requests = new BusRequests(runtime, this.pid, port, {
      schedule: this.schedule,
      queue: this.queue,
      hooks: options.hooks,
      probe: { reconnect: this.reconnect, probeMaxMs: options.probeMaxMs ?? 10_000, random: this.random },
      reopenSilentMs: options.reopenSilentMs ?? 60_000,
    });
    this.setSlaves(options.slaves);
  }

  /** Internal: starts the loop; called once by {@link startModbusBus}. */
  begin(): void {
    this.started();
    this.loop = this.run().catch((error: unknown) => this.crash(error));
  }

  /**
   * Replaces the slaves: new ones are polled at once, removed ones are dropped (their queued
   * writes end `removed`), changed ones restart their cycle and keep their state and counters.
   */
  setSlaves(configs: readonly SlaveConfig[]): void {
    const removed = this.schedule.setSlaves(configs, this.now());
    this.queue.dropRemoved(removed, this.path);
    this.wake();
  }

  /** Whether the device's slave answers (its last request did not end its `retries`). */
  isOnline(deviceId: string): boolean {
    return this.schedule.slaves.some((s) => s.config.deviceId === deviceId && s.online);
  }

  /**
   * Queues a write for the next gap between two requests. Resolves when the slave acknowledged
   * it, or with why not: `offline` at once when the slave is down.
   */
  write(deviceId: string, request: WriteRequest): Promise<WriteOutcome> {
    if (this.status !== 'running')
      return Promise.resolve({ ok: false, code: 'stopped', message: `bus ${this.path} is ${this.status}` });
    const s = this.schedule.find(deviceId);
    if (!s)
      return Promise.resolve({
        ok: false,
        code: 'removed',
        message: `device ${deviceId} is not on ${this.path}`,
      });
    if (!s.online)
      return Promise.resolve({
        ok: false,
        code: 'offline',
        message: `slave ${s.config.unitId} is not answering`,
      });
    return new Promise((resolve) => {
      this.queue.pushWrite({ deviceId, request, resolve });
      this.wake();
    });
  }

  /**
   * Reads the registers once from any unit id on this bus, between two requests (like a write),
   * without adding it to the polled slaves: one request per batch, no retries. Waits while the
   * port is not open; the caller bounds the wait.
   *
   * @example
   * await bus.readOnce({ unitId: 4, registers, timeoutMs: 500 }); // { ok: true, values: { voltage: 230.4 } }
   */
  readOnce(request: ReadOnceRequest): Promise<ReadOnceOutcome> {
    if (this.status !== 'running')
      return Promise.resolve({ ok: false, code: 'stopped', message: `bus ${this.path} is ${this.status}` });
    return new Promise((resolve) => {
      this.queue.pushRead({ request, resolve });
      this.wake();
    });
  }

  stats(): BusStats {
    return {
      path: this.path,
      port: this.portState,
      portAttempts: this.portAttempts,
      opens: this.opens,
      lastPortError: this.lastPortError,
      noiseBytes: this.wire.noiseBytes,
      queuedWrites: this.queue.queuedWrites,
      slaves: this.schedule.slaves.map(slaveStats),
    };
  }

  protected async terminate(_reason: ExitReason): Promise<void> {
    this.wire.settleInflight({ ok: false, code: 'portDown', message: 'bus stopping' });
    this.queue.failAll('stopped', `bus ${this.path} stopped`);
    this.wake();
    await this.loop;
    await this.wire.close();
  }

  protected override release(): void {
    this.wire.settleInflight({ ok: false, code: 'portDown', message: 'bus killed' });
    this.queue.failAll('stopped', `bus ${this.path} killed`);
    this.wake();
    void this.wire.close();
  }

  // ---- the loop ----

  private now(): number {
    return this.runtime.clock.now();
  }

  private async run(): Promise<void> {
    while (this.status === 'running') {
      // Every turn goes back to the event loop once: a request that fails at once (a port whose
      // other end vanished before its 'close' arrived) must not become a microtask loop that
      // starves the timers and the very I/O event that would tell us the port is gone.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.status !== 'running') break;
      if (this.portState !== 'open') {
        await this.connect();
        continue;
      }
      const write = this.queue.takeWrite((id) => this.schedule.find(id), this.path);
      if (write) {
        await this.wire.quietLine();
        if (this.status === 'running' && this.portState === 'open') await this.requests.write(write);
        else write.resolve({ ok: false, code: 'portDown', message: `port ${this.path} is down` });
        continue;
      }
      const read = this.queue.takeRead();
      if (read) {
        await this.wire.quietLine();
        if (this.status === 'running' && this.portState === 'open') await this.requests.readOnce(read);
        else read.resolve({ ok: false, code: 'portDown', message: `port ${this.path} is down` });
        continue;
      }
      const slave = this.schedule.pickDue(this.now());
      if (slave) {
        await this.wire.quietLine();
        if (this.status === 'running' && this.portState === 'open' && this.schedule.includes(slave))
          await this.requests.poll(slave);
        continue;
      }
      await this.sleep(this.schedule.untilNextDueMs(this.now()));
    }
  }

  private crash(error: unknown): void {
    if (this.status === 'exited') return;
    this.runtime.report(`modbus bus ${this.path} crashed`, error, this.pid);
    this.wire.settleInflight({ ok: false, code: 'portDown', message: 'bus crashed' });
    this.queue.failAll('portDown', `bus ${this.path} crashed`);
    void this.wire.close();
    this.exit(errorExit(error));
  }

  /** Sleeps up to `ms`; {@link wake} cuts it short. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        if (this.sleepTimer) this.runtime.timers.cancel(this.sleepTimer);
        this.sleepTimer = undefined;
        this.wakeUp = undefined;
        resolve();
      };
      this.wakeUp = done;
      this.sleepTimer = this.runtime.timers.schedule(ms, done, { owner: this.pid, label: 'modbus.idle' });
    });
  }

  private wake(): void {
    this.wakeUp?.();
  }

  // ---- the port ----

  private setPortState(state: BusPortState): void {
    this.portState = state;
  }

  /** One step towards an open port: wait for it to exist, open it, or back off after a failure. */
  private async connect(): Promise<void> {
    const wait = this.backoffUntil - this.now();
    if (wait > 0) {
      await this.sleep(wait);
      return;
    }
    if (!existsSync(this.path)) {
      if (this.portState !== 'absent') {
        this.runtime.logger.warn('modbus port absent', { path: this.path });
        this.setPortState('absent');
        this.portAttempts = 0; // reappearing is a fresh start
      }
      this.lastPortError ??= `serial port ${this.path} does not exist`;
      await this.sleep(this.presencePollMs);
      return;
    }
    this.setPortState('opening');
    const opened = await openSerialPort(this.runtime, {
      path: this.path,
      ...this.line,
      timeoutMs: this.openTimeoutMs,
      owner: this.pid,
      label: 'modbus.open',
    });
    if (this.status !== 'running') {
      if (opened.ok) await closeModbusSerial(this.runtime, opened.value, this.openTimeoutMs, this.pid);
      return;
    }
    if (!opened.ok) {
      this.lastPortError = opened.error.message;
      const delayMs = backoffDelayMs(this.portAttempts++, this.reconnect, this.random);
      this.setPortState('backoff');
      this.backoffUntil = this.now() + delayMs;
      this.runtime.logger.warn('modbus port failed to open; retrying', {
        path: this.path,
        error: opened.error.message,
        attempts: this.portAttempts,
        retryInMs: delayMs,
      });
      return;
    }
    if (!(await this.wire.attach(opened.value, (reason) => this.portLost(reason)))) return;
    this.opens++;
    this.setPortState('open');
    const now = this.now();
    this.openedMono = now;
    for (const s of this.schedule.slaves) if (!s.cycle) s.nextDueMono = Math.min(s.nextDueMono, now);
    this.runtime.logger.info('modbus port open', { path: this.path, slaves: this.schedule.slaves.length });
  }

  /** The port closed, failed or vanished: every slave on it is down; the loop reopens it. */
  private portLost(reason: string): void {
    if (!this.wire.attached) return;
    this.runtime.logger.warn('modbus port lost', { path: this.path, reason });
    this.lastPortError = reason;
    void this.wire.close();
    this.setPortState(existsSync(this.path) ? 'backoff' : 'absent');
    if (this.portState === 'absent') this.portAttempts = 0;
    this.wire.settleInflight({ ok: false, code: 'portDown', message: reason });
    for (const s of this.schedule.slaves) {
      s.cycle = undefined;
      s.consecutiveTimeouts = 0;
      this.requests.down(s, reason);
    }
    this.queue.failAll('portDown', reason);
    // Reopening at once could spin on a port that keeps failing: back off first (not when it is gone).
    this.backoffUntil =
      this.portState === 'backoff'
        ? this.now() + backoffDelayMs(this.portAttempts++, this.reconnect, this.random)
        : 0;
    this.wake();
  }
}

/**
 * Starts a bus process: it opens the port (when present) and polls its slaves until stopped.
 * Throws `RangeError` for options that no retry would fix.
 */
export function startModbusBus(runtime: Runtime, options: ModbusBusOptions): ModbusBus {
  checkOptions('startModbusBus', modbusBusOptionsSchema, options);
  const bus = new ModbusBus(runtime, options);
  bus.begin();
  return bus;
}

/** What {@link startModbusBus} accepts (slaves and line come checked from the device kind). */
export const modbusBusOptionsSchema = z.object({
  path: nonEmptyString,
  probeMaxMs: positiveInt.optional(),
  presencePollMs: positiveInt.optional(),
  openTimeoutMs: positiveInt.optional(),
  reopenSilentMs: positiveInt.optional(),
  reconnect: reconnectSchema.optional(),
});

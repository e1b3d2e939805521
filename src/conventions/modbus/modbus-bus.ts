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
import modbusSerial from 'modbus-serial';
import type { SerialPort } from 'serialport';
import { z } from 'zod';
import { checkOptions, nonEmptyString, positiveInt } from '../../lib/options.js';
import type { ExitReason } from '../../runtime/exit-reason.js';
import { errorExit } from '../../runtime/exit-reason.js';
import { ProcessBase } from '../../runtime/process.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { TimerRef } from '../../runtime/timers.js';
import type { ReconnectOptions } from '../../transports/reconnect.js';
import { backoffDelayMs, reconnectSchema, resolveReconnect } from '../../transports/reconnect.js';
import { closeSerialPort, describeLoss, openSerialPort } from '../../transports/serial-port.js';
import type { Batch, WriteRequest } from './modbus-codec.js';
import { decodeBatch, describeBatch, planBatches, readFunctionCode, splitBatch } from './modbus-codec.js';
import type { RegisterDef } from './modbus-kind.js';
import { RtuPort } from './modbus-rtu-port.js';

type Client = InstanceType<typeof modbusSerial.default>;
type Callback = (error: unknown, data?: unknown) => void;

export interface LineSettings {
  readonly baudRate: number;
  readonly parity: 'none' | 'even' | 'odd';
  readonly dataBits: 7 | 8;
  readonly stopBits: 1 | 2;
}

/** One slave on the bus, as the bridge configures it (from a `modbus.device`'s attributes). */
export interface SlaveConfig {
  readonly deviceId: string;
  readonly unitId: number;
  readonly registers: readonly RegisterDef[];
  readonly pollMs: number;
  readonly timeoutMs: number;
  readonly retries: number;
}

export type FaultCode = 'timeout' | 'exception' | 'crc' | 'badFrame';

/** A failed request, for the device's event log. */
export interface ModbusFault {
  readonly code: FaultCode;
  readonly message: string;
  readonly operation: 'read' | 'write';
  readonly functionCode: number;
  readonly address: number;
  readonly count: number;
  readonly registers: readonly string[];
  /** For `exception`: the Modbus exception code (2: illegal data address …). */
  readonly exceptionCode?: number;
}

export interface SlaveCounters {
  requests: number;
  replies: number;
  timeouts: number;
  exceptions: number;
  crcErrors: number;
  badFrames: number;
  writes: number;
  writeFailures: number;
  /** Completed poll cycles (values reported). */
  cycles: number;
}

export type WriteOutcome =
  | { readonly ok: true; readonly attempts: number }
  | {
      readonly ok: false;
      /** `offline`: the slave is down (not sent); `portDown`, `stopped`, `removed`: not (surely) done. */
      readonly code: FaultCode | 'offline' | 'portDown' | 'stopped' | 'removed';
      readonly message: string;
      readonly exceptionCode?: number;
    };

/** A read of registers of a slave that need not be on the bus (a test before adding a device). */
export interface ReadOnceRequest {
  readonly unitId: number;
  readonly registers: readonly RegisterDef[];
  readonly timeoutMs: number;
}

export type ReadOnceOutcome =
  | { readonly ok: true; readonly values: Record<string, number> }
  | {
      readonly ok: false;
      readonly code: FaultCode | 'portDown' | 'stopped';
      readonly message: string;
      readonly exceptionCode?: number;
    };

export interface ModbusBusHooks {
  /** The slave's first good reply (or its first since it went down). */
  onSlaveUp(deviceId: string, via: string): void;
  /** `retries + 1` timeouts in a row, or the port went away. */
  onSlaveDown(deviceId: string, reason: string): void;
  /** The values of one poll cycle (each register by name, converted and scaled). */
  onValues(deviceId: string, values: Record<string, number>): void;
  onFault(deviceId: string, fault: ModbusFault): void;
}

export interface ModbusBusOptions {
  readonly path: string;
  readonly line: LineSettings;
  readonly slaves: readonly SlaveConfig[];
  readonly hooks: ModbusBusHooks;
  /** Port reopen backoff; defaults as the MQTT link's. */
  readonly reconnect?: Partial<ReconnectOptions>;
  /** The longest wait between two probes of a slave that is down; default 10 000 ms. */
  readonly probeMaxMs?: number;
  /** How often an absent port is looked for; default 500 ms. */
  readonly presencePollMs?: number;
  /** An open (or close) not done within this: failed; default 2000 ms. */
  readonly openTimeoutMs?: number;
  /**
   * No slave answers and not one byte has come in for this long: the port is closed and reopened
   * (a dangling port whose writes never complete looks exactly like this); default 60 000 ms.
   */
  readonly reopenSilentMs?: number;
  /** [0, 1) for the jitter; default Math.random. */
  readonly random?: () => number;
}

export type BusPortState = 'absent' | 'opening' | 'open' | 'backoff';

export interface SlaveStats {
  readonly deviceId: string;
  readonly unitId: number;
  readonly online: boolean;
  readonly consecutiveTimeouts: number;
  readonly batches: number;
  readonly counters: Readonly<SlaveCounters>;
  readonly lastError: string | null;
  /** Wall-clock ms of the last reply; null before the first. */
  readonly lastReplyAt: number | null;
}

export interface BusStats {
  readonly path: string;
  readonly port: BusPortState;
  readonly portAttempts: number;
  /** Times the port was opened (a reopen after a failure counts). */
  readonly opens: number;
  /** Why the port last failed, was closed or could not be opened (kept after a reopen). */
  readonly lastPortError: string | null;
  /** Bytes dropped outside a transaction (noise, late replies) since the port was last opened. */
  readonly noiseBytes: number;
  readonly queuedWrites: number;
  readonly slaves: readonly SlaveStats[];
}

interface Cycle {
  index: number;
  values: Record<string, number>;
  startedMono: number;
  corrupt: number;
}

interface Slave {
  config: SlaveConfig;
  batches: Batch[];
  cycle: Cycle | undefined;
  nextDueMono: number;
  online: boolean;
  /** Its being down was reported (so a slave silent from the start is reported once too). */
  downReported: boolean;
  consecutiveTimeouts: number;
  probeAttempts: number;
  counters: SlaveCounters;
  lastError: string | null;
  lastReplyAt: number | null;
}

interface ReadJob {
  readonly request: ReadOnceRequest;
  readonly resolve: (outcome: ReadOnceOutcome) => void;
}

interface WriteJob {
  readonly deviceId: string;
  readonly request: WriteRequest;
  readonly resolve: (outcome: WriteOutcome) => void;
}

type TxResult =
  | { ok: true; data: unknown }
  | { ok: false; code: FaultCode | 'portDown'; message: string; exceptionCode?: number };

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
function classify(error: unknown): Extract<TxResult, { ok: false }> {
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

const newCounters = (): SlaveCounters => ({
  requests: 0,
  replies: 0,
  timeouts: 0,
  exceptions: 0,
  crcErrors: 0,
  badFrames: 0,
  writes: 0,
  writeFailures: 0,
  cycles: 0,
});

const sameConfig = (a: SlaveConfig, b: SlaveConfig) => JSON.stringify(a) === JSON.stringify(b);

/** The bus process. Made by {@link startModbusBus}. */
export class ModbusBus extends ProcessBase {
  readonly path: string;
  readonly line: LineSettings;
  private readonly hooks: ModbusBusHooks;
  private readonly reconnect: ReconnectOptions;
  private readonly probeMaxMs: number;
  private readonly presencePollMs: number;
  private readonly openTimeoutMs: number;
  private readonly reopenSilentMs: number;
  private readonly random: () => number;
  /** 3.5 character times at the line's speed (at least 2 ms). */
  private readonly frameGapMs: number;

  private portState: BusPortState = 'absent';
  private portAttempts = 0;
  private lastPortError: string | null = null;
  /** Monotonic time before which the port is not reopened. */
  private backoffUntil = 0;
  /** Monotonic time the port was last opened. */
  private openedMono = 0;
  private opens = 0;
  private serial: SerialPort | undefined;
  private rtu: RtuPort | undefined;
  private client: Client | undefined;
  private noiseBase = 0;

  private slaves: Slave[] = [];
  private rr = -1;
  private writes: WriteJob[] = [];
  private reads: ReadJob[] = [];
  private inflight: ((r: TxResult) => void) | undefined;
  private drain = false;

  private sleepTimer: TimerRef | undefined;
  private wakeUp: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(runtime: Runtime, options: ModbusBusOptions) {
    super(runtime, 'server', `modbus-bus:${options.path}`);
    this.path = options.path;
    this.line = options.line;
    this.hooks = options.hooks;
    this.reconnect = resolveReconnect(options.reconnect);
    this.probeMaxMs = options.probeMaxMs ?? 10_000;
    this.presencePollMs = options.presencePollMs ?? 500;
    this.openTimeoutMs = options.openTimeoutMs ?? 2000;
    this.reopenSilentMs = options.reopenSilentMs ?? 60_000;
    this.random = options.random ?? Math.random;
    const bitsPerChar =
      1 + options.line.dataBits + (options.line.parity === 'none' ? 0 : 1) + options.line.stopBits;
    this.frameGapMs = Math.max(2, Math.ceil((3.5 * bitsPerChar * 1000) / options.line.baudRate));
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
    const old = new Map(this.slaves.map((s) => [s.config.deviceId, s]));
    const now = this.now();
    const next: Slave[] = [];
    for (const config of configs) {
      const s = old.get(config.deviceId);
      old.delete(config.deviceId);
      if (s && sameConfig(s.config, config)) {
        next.push(s);
        continue;
      }
      const batches = planBatches(config.registers);
      if (s) {
        s.config = config;
        s.batches = batches;
        s.cycle = undefined;
        s.nextDueMono = now;
        next.push(s);
        continue;
      }
      next.push({
        config,
        batches,
        cycle: undefined,
        nextDueMono: now,
        online: false,
        downReported: false,
        consecutiveTimeouts: 0,
        probeAttempts: 0,
        counters: newCounters(),
        lastError: null,
        lastReplyAt: null,
      });
    }
    next.sort(
      (a, b) => a.config.unitId - b.config.unitId || (a.config.deviceId < b.config.deviceId ? -1 : 1),
    );
    this.slaves = next;
    if (old.size > 0)
      this.writes = this.writes.filter((j) => {
        if (!old.has(j.deviceId)) return true;
        j.resolve({
          ok: false,
          code: 'removed',
          message: `device ${j.deviceId} is no longer on ${this.path}`,
        });
        return false;
      });
    this.wake();
  }

  /** Whether the device's slave answers (its last request did not end its `retries`). */
  isOnline(deviceId: string): boolean {
    return this.slaves.some((s) => s.config.deviceId === deviceId && s.online);
  }

  /**
   * Queues a write for the next gap between two requests. Resolves when the slave acknowledged
   * it, or with why not: `offline` at once when the slave is down.
   */
  write(deviceId: string, request: WriteRequest): Promise<WriteOutcome> {
    if (this.status !== 'running')
      return Promise.resolve({ ok: false, code: 'stopped', message: `bus ${this.path} is ${this.status}` });
    const s = this.slave(deviceId);
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
      this.writes.push({ deviceId, request, resolve });
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
      this.reads.push({ request, resolve });
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
      noiseBytes: this.noiseBase + (this.rtu?.noiseBytes ?? 0),
      queuedWrites: this.writes.length,
      slaves: this.slaves.map((s) => ({
        deviceId: s.config.deviceId,
        unitId: s.config.unitId,
        online: s.online,
        consecutiveTimeouts: s.consecutiveTimeouts,
        batches: s.batches.length,
        counters: { ...s.counters },
        lastError: s.lastError,
        lastReplyAt: s.lastReplyAt,
      })),
    };
  }

  protected async terminate(_reason: ExitReason): Promise<void> {
    this.settleInflight({ ok: false, code: 'portDown', message: 'bus stopping' });
    this.failWrites('stopped', `bus ${this.path} stopped`);
    this.wake();
    await this.loop;
    await this.closePort();
  }

  protected override release(): void {
    this.settleInflight({ ok: false, code: 'portDown', message: 'bus killed' });
    this.failWrites('stopped', `bus ${this.path} killed`);
    this.wake();
    void this.closePort();
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
      const write = this.takeWrite();
      if (write) {
        await this.quietLine();
        if (this.status === 'running' && this.portState === 'open') await this.doWrite(write);
        else write.resolve({ ok: false, code: 'portDown', message: `port ${this.path} is down` });
        continue;
      }
      const read = this.reads.shift();
      if (read) {
        await this.quietLine();
        if (this.status === 'running' && this.portState === 'open') await this.doReadOnce(read);
        else read.resolve({ ok: false, code: 'portDown', message: `port ${this.path} is down` });
        continue;
      }
      const slave = this.pickDue(this.now());
      if (slave) {
        await this.quietLine();
        if (this.status === 'running' && this.portState === 'open' && this.slaves.includes(slave))
          await this.doPoll(slave);
        continue;
      }
      await this.sleep(this.untilNextDue());
    }
  }

  private crash(error: unknown): void {
    if (this.status === 'exited') return;
    this.runtime.report(`modbus bus ${this.path} crashed`, error, this.pid);
    this.settleInflight({ ok: false, code: 'portDown', message: 'bus crashed' });
    this.failWrites('portDown', `bus ${this.path} crashed`);
    void this.closePort();
    this.exit(errorExit(error));
  }

  /** The next slave in round-robin order whose request is due. */
  private pickDue(now: number): Slave | undefined {
    const n = this.slaves.length;
    for (let i = 1; i <= n; i++) {
      const at = (this.rr + i) % n;
      const s = this.slaves[at]!;
      if (s.batches.length > 0 && s.nextDueMono <= now) {
        this.rr = at;
        return s;
      }
    }
    return undefined;
  }

  private untilNextDue(): number {
    let next = Number.POSITIVE_INFINITY;
    for (const s of this.slaves) if (s.batches.length > 0) next = Math.min(next, s.nextDueMono);
    if (next === Number.POSITIVE_INFINITY) return 60_000;
    return Math.max(1, Math.ceil(next - this.now()));
  }

  private takeWrite(): WriteJob | undefined {
    while (this.writes.length > 0) {
      const job = this.writes.shift()!;
      const s = this.slave(job.deviceId);
      if (!s)
        job.resolve({ ok: false, code: 'removed', message: `device ${job.deviceId} is not on ${this.path}` });
      else if (!s.online)
        job.resolve({ ok: false, code: 'offline', message: `slave ${s.config.unitId} is not answering` });
      else return job;
    }
    return undefined;
  }

  private slave(deviceId: string): Slave | undefined {
    return this.slaves.find((s) => s.config.deviceId === deviceId);
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

  /** Waits until nothing has been received for 3.5 characters (longer after an error), bounded. */
  private async quietLine(): Promise<void> {
    const need = this.drain ? Math.max(20, 4 * this.frameGapMs) : this.frameGapMs;
    this.drain = false;
    for (let i = 0; i < 10 && this.status === 'running'; i++) {
      const last = this.rtu?.lastRxMono ?? Number.NEGATIVE_INFINITY;
      const quietFor = this.now() - last;
      if (quietFor >= need) return;
      await this.sleepFixed(need - quietFor);
    }
  }

  /** A sleep that a write or a config change does not cut short. */
  private sleepFixed(ms: number): Promise<void> {
    return new Promise((resolve) =>
      this.runtime.timers.schedule(Math.max(1, Math.ceil(ms)), resolve, {
        owner: this.pid,
        label: 'modbus.gap',
      }),
    );
  }

  // ---- requests ----

  private transact(timeoutMs: number, send: (client: Client, cb: Callback) => void): Promise<TxResult> {
    const client = this.client;
    if (!client || this.portState !== 'open')
      return Promise.resolve({ ok: false, code: 'portDown', message: 'port not open' });
    client.setTimeout(timeoutMs);
    return new Promise<TxResult>((resolve) => {
      let done = false;
      // modbus-serial times the request out itself; this only guards against a callback that never comes.
      const guard = this.runtime.timers.schedule(
        timeoutMs + 1000,
        () => settle({ ok: false, code: 'timeout', message: 'Timed out (no callback)' }),
        { owner: this.pid, label: 'modbus.request' },
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

  private settleInflight(r: TxResult): void {
    this.inflight?.(r);
  }

  private async doPoll(s: Slave): Promise<void> {
    s.cycle ??= { index: 0, values: {}, startedMono: this.now(), corrupt: 0 };
    const cycle = s.cycle;
    const batch = s.batches[cycle.index];
    if (!batch) {
      this.finishCycle(s);
      return;
    }
    const { unitId, timeoutMs } = s.config;
    const fc = readFunctionCode(batch.table);
    s.counters.requests++;
    const r = await this.transact(timeoutMs, (c, cb) => {
      if (fc === 1) c.writeFC1(unitId, batch.address, batch.count, cb);
      else if (fc === 2) c.writeFC2(unitId, batch.address, batch.count, cb);
      else if (fc === 3) c.writeFC3(unitId, batch.address, batch.count, cb);
      else c.writeFC4(unitId, batch.address, batch.count, cb);
    });
    if (!this.slaves.includes(s) || s.cycle !== cycle) return; // reconfigured meanwhile
    if (!r.ok && r.code === 'portDown') {
      // The library says the port is not open while we think it is (its 'close' never came):
      // treat it as lost, so the loop reconnects with backoff instead of retrying at once.
      if (this.portState === 'open')
        this.portLost(
          existsSync(this.path)
            ? `serial port ${this.path} is no longer open`
            : `serial port ${this.path} vanished (unplugged?)`,
        );
      return;
    }
    if (r.ok) {
      const data = (r.data as { data?: unknown[] } | undefined)?.data ?? [];
      const decoded =
        fc === 1 || fc === 2
          ? decodeBatch(batch, { bits: data as boolean[] })
          : decodeBatch(batch, { words: data as number[] });
      Object.assign(cycle.values, decoded.values);
      cycle.corrupt = 0;
      this.replied(s);
      cycle.index++;
      this.advance(s);
      return;
    }
    const fault = this.fault(s, r, 'read', fc, batch.address, batch.count, batch.registers);
    if (r.code === 'exception') {
      this.replied(s);
      if ((r.exceptionCode === 2 || r.exceptionCode === 3) && batch.registers.length > 1) {
        // One bad register must not cost its neighbours: read them one by one from now on.
        s.batches.splice(cycle.index, 1, ...splitBatch(batch));
        this.runtime.logger.warn('modbus: a batch was refused; reading its registers one by one', {
          path: this.path,
          deviceId: s.config.deviceId,
          batch: describeBatch(batch),
          error: fault.message,
        });
      } else cycle.index++;
      this.advance(s);
      return;
    }
    this.drain = true;
    if (r.code === 'timeout') {
      this.timedOut(s);
      return;
    }
    // A CRC error or a malformed reply: try again on the slave's next turn, within bounds.
    cycle.corrupt++;
    if (cycle.corrupt > s.config.retries) this.finishCycle(s);
    else s.nextDueMono = this.now();
  }

  /** After a good (or exception) reply: the next batch is due at once, or the cycle is done. */
  private advance(s: Slave): void {
    if (s.cycle && s.cycle.index >= s.batches.length) this.finishCycle(s);
    else s.nextDueMono = this.now();
  }

  /** Reports the cycle's values and schedules the next cycle `pollMs` after this one began. */
  private finishCycle(s: Slave): void {
    const cycle = s.cycle;
    s.cycle = undefined;
    if (!cycle) return;
    s.nextDueMono = Math.max(this.now(), cycle.startedMono + s.config.pollMs);
    if (Object.keys(cycle.values).length === 0) return;
    s.counters.cycles++;
    this.call('onValues', () => this.hooks.onValues(s.config.deviceId, cycle.values));
  }

  private replied(s: Slave): void {
    s.counters.replies++;
    s.consecutiveTimeouts = 0;
    s.probeAttempts = 0;
    s.lastReplyAt = this.runtime.clock.wallNow();
    this.portAttempts = 0;
    if (!s.online) {
      s.online = true;
      s.downReported = false;
      s.lastError = null;
      this.runtime.logger.info('modbus slave answering', {
        path: this.path,
        deviceId: s.config.deviceId,
        unitId: s.config.unitId,
      });
      this.call('onSlaveUp', () => this.hooks.onSlaveUp(s.config.deviceId, this.via(s)));
    }
  }

  private via(s: Slave): string {
    return `modbus:${this.path}#${s.config.unitId}`;
  }

  /** A timeout: the port may be gone; else retry next turn, or declare the slave down. */
  private timedOut(s: Slave): void {
    s.consecutiveTimeouts++;
    if (!existsSync(this.path)) {
      this.portLost(`serial port ${this.path} vanished (unplugged?)`);
      return;
    }
    const { retries, timeoutMs, unitId, pollMs } = s.config;
    const now = this.now();
    if ((s.online || !s.downReported) && s.consecutiveTimeouts >= retries + 1) {
      const reason = `no reply from slave ${unitId} on ${this.path}: ${s.consecutiveTimeouts} timeouts in a row (${timeoutMs} ms each)`;
      this.down(s, reason);
    }
    if (s.online) {
      s.nextDueMono = now; // a retry, on its next turn
      return;
    }
    if (this.reopenIfSilent()) return;
    // Down: give up this cycle (reporting what it read), then probe with a growing, jittered delay.
    if (s.cycle) {
      const cycle = s.cycle;
      s.cycle = undefined;
      if (Object.keys(cycle.values).length > 0)
        this.call('onValues', () => this.hooks.onValues(s.config.deviceId, cycle.values));
    }
    const delay = backoffDelayMs(
      s.probeAttempts++,
      { ...this.reconnect, initialMs: pollMs, maxMs: Math.max(pollMs, this.probeMaxMs) },
      this.random,
    );
    s.nextDueMono = now + delay;
  }

  /** Every slave is down and the line has been dead for `reopenSilentMs`: cycle the port. */
  private reopenIfSilent(): boolean {
    if (this.slaves.some((s) => s.online)) return false;
    const quietMs = this.now() - Math.max(this.openedMono, this.rtu?.lastRxMono ?? Number.NEGATIVE_INFINITY);
    if (quietMs < this.reopenSilentMs) return false;
    this.portLost(
      `nothing received on ${this.path} for ${Math.round(quietMs / 1000)} s and no slave answers; reopening the port`,
    );
    return true;
  }

  /** The slave is down: reported once (again only after it came back up). */
  private down(s: Slave, reason: string): void {
    if (!s.online && s.downReported) return;
    s.online = false;
    s.downReported = true;
    s.lastError = reason;
    this.runtime.logger.warn('modbus slave down', { path: this.path, deviceId: s.config.deviceId, reason });
    this.writes = this.writes.filter((j) => {
      if (j.deviceId !== s.config.deviceId) return true;
      j.resolve({ ok: false, code: 'offline', message: reason });
      return false;
    });
    this.call('onSlaveDown', () => this.hooks.onSlaveDown(s.config.deviceId, reason));
  }

  private fault(
    s: Slave,
    r: Extract<TxResult, { ok: false }>,
    operation: 'read' | 'write',
    functionCode: number,
    address: number,
    count: number,
    registers: readonly RegisterDef[],
  ): ModbusFault {
    const code = r.code as FaultCode;
    if (code === 'timeout') s.counters.timeouts++;
    else if (code === 'exception') s.counters.exceptions++;
    else if (code === 'crc') s.counters.crcErrors++;
    else s.counters.badFrames++;
    const names = registers.map((x) => x.name).join(', ') || 'unmapped registers';
    const what = `${operation === 'read' ? 'reading' : 'writing'} ${names} (FC${String(functionCode).padStart(2, '0')} at ${address}${count > 1 ? `, count ${count}` : ''})`;
    const unit = `slave ${s.config.unitId} on ${this.path}`;
    const message =
      code === 'timeout'
        ? `${unit}: no reply within ${s.config.timeoutMs} ms ${what}`
        : code === 'exception'
          ? `${unit} refused ${what}: ${r.message}`
          : `${unit}: ${r.message} ${what}`;
    const fault: ModbusFault = {
      code,
      message,
      operation,
      functionCode,
      address,
      count,
      registers: registers.map((x) => x.name),
      ...(r.exceptionCode === undefined ? {} : { exceptionCode: r.exceptionCode }),
    };
    if (code !== 'timeout') s.lastError = message;
    this.call('onFault', () => this.hooks.onFault(s.config.deviceId, fault));
    return fault;
  }

  private async doReadOnce(job: ReadJob): Promise<void> {
    const { unitId, registers, timeoutMs } = job.request;
    const values: Record<string, number> = {};
    for (const batch of planBatches(registers)) {
      if (this.status !== 'running' || this.portState !== 'open') {
        job.resolve({ ok: false, code: 'portDown', message: `port ${this.path} went down` });
        return;
      }
      const fc = readFunctionCode(batch.table);
      const r = await this.transact(timeoutMs, (c, cb) => {
        if (fc === 1) c.writeFC1(unitId, batch.address, batch.count, cb);
        else if (fc === 2) c.writeFC2(unitId, batch.address, batch.count, cb);
        else if (fc === 3) c.writeFC3(unitId, batch.address, batch.count, cb);
        else c.writeFC4(unitId, batch.address, batch.count, cb);
      });
      if (!r.ok) {
        if (r.code !== 'exception') this.drain = true;
        const what = `${describeBatch(batch)} of slave ${unitId} on ${this.path}`;
        job.resolve({
          ok: false,
          code: r.code,
          message:
            r.code === 'timeout'
              ? `no reply to reading ${what} within ${timeoutMs} ms (wrong slave id, port or line settings?)`
              : `reading ${what}: ${r.message}`,
          ...(r.exceptionCode === undefined ? {} : { exceptionCode: r.exceptionCode }),
        });
        await this.quietLine();
        return;
      }
      const data = (r.data as { data?: unknown[] } | undefined)?.data ?? [];
      const decoded =
        fc === 1 || fc === 2
          ? decodeBatch(batch, { bits: data as boolean[] })
          : decodeBatch(batch, { words: data as number[] });
      Object.assign(values, decoded.values);
      await this.quietLine();
    }
    job.resolve({ ok: true, values });
  }

  private async doWrite(job: WriteJob): Promise<void> {
    const s = this.slave(job.deviceId);
    if (!s) {
      job.resolve({ ok: false, code: 'removed', message: `device ${job.deviceId} is not on ${this.path}` });
      return;
    }
    const { unitId, timeoutMs, retries } = s.config;
    const req = job.request;
    const registers = s.config.registers.filter(
      (r) => (req.fc === 5 ? r.table === 'coil' : r.table === 'holding') && r.address === req.address,
    );
    let last: Extract<TxResult, { ok: false }> | undefined;
    for (let attempt = 1; attempt <= retries + 1; attempt++) {
      if (attempt > 1) await this.quietLine();
      if (this.status !== 'running' || this.portState !== 'open') break;
      s.counters.requests++;
      const r = await this.transact(timeoutMs, (c, cb) => {
        if (req.fc === 5) c.writeFC5(unitId, req.address, req.state, cb);
        else if (req.fc === 6) c.writeFC6(unitId, req.address, req.value, cb);
        else c.writeFC16(unitId, req.address, [...req.values], cb);
      });
      if (r.ok) {
        s.counters.writes++;
        this.replied(s);
        if (!s.cycle) s.nextDueMono = this.now(); // read it back soon
        job.resolve({ ok: true, attempts: attempt });
        return;
      }
      if (r.code === 'portDown') {
        last = r;
        break;
      }
      const count = req.fc === 16 ? req.values.length : 1;
      this.fault(s, r, 'write', req.fc, req.address, count, registers);
      last = r;
      if (r.code === 'exception') {
        this.replied(s);
        break;
      }
      this.drain = true;
      if (r.code === 'timeout') {
        s.consecutiveTimeouts++;
        if (!existsSync(this.path)) {
          this.portLost(`serial port ${this.path} vanished (unplugged?)`);
          break;
        }
        if (s.consecutiveTimeouts >= retries + 1) {
          this.down(
            s,
            `no reply from slave ${unitId} on ${this.path}: ${s.consecutiveTimeouts} timeouts in a row (${timeoutMs} ms each)`,
          );
          break;
        }
      }
    }
    s.counters.writeFailures++;
    const code = last?.code ?? 'portDown';
    job.resolve({
      ok: false,
      code,
      message:
        code === 'exception'
          ? `slave ${unitId} refused the write: ${last?.message}`
          : code === 'portDown'
            ? `port ${this.path} went down before the slave acknowledged`
            : `slave ${unitId} did not acknowledge the write: ${last?.message}`,
      ...(last?.exceptionCode === undefined ? {} : { exceptionCode: last.exceptionCode }),
    });
  }

  private failWrites(code: 'stopped' | 'portDown', message: string): void {
    const jobs = this.writes;
    this.writes = [];
    for (const j of jobs) j.resolve({ ok: false, code, message });
    const reads = this.reads;
    this.reads = [];
    for (const j of reads) j.resolve({ ok: false, code, message });
  }

  /** Runs a hook; a throw is reported, never fatal. */
  private call(name: string, fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.runtime.report(`modbus bus ${this.path}: ${name} threw`, error, this.pid);
    }
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
      if (opened.ok) await closeSerial(this.runtime, opened.value, this.openTimeoutMs, this.pid);
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
    const serial = opened.value;
    // EIO/ENXIO/ENODEV on a write: the other side hung up (an unplugged adapter, a closed pty),
    // usually a moment before the device node (or its symlink) disappears.
    const rtu = new RtuPort(
      serial,
      () => this.now(),
      (error) => {
        if (this.serial === serial)
          this.portLost(describeLoss(this.path, 'error', error, 'a request could not be written').message);
      },
    );
    const client = new modbusSerial.default(rtu);
    client.on('error', () => {}); // port errors are handled on the serial port itself
    // Not watchSerialPort: closeSerial removes the 'close' listeners of a port given up.
    serial.on('close', (error: (Error & { disconnected?: boolean }) | null) => {
      if (this.serial === serial) this.portLost(describeLoss(this.path, 'close', error).message);
    });
    serial.on('error', (error: Error) => {
      if (this.serial === serial) this.portLost(describeLoss(this.path, 'error', error).message);
    });
    await new Promise<void>((resolve) => client.open(() => resolve()));
    if (this.status !== 'running' || !serial.isOpen) {
      await closeSerial(this.runtime, serial, this.openTimeoutMs, this.pid);
      return;
    }
    this.serial = serial;
    this.rtu = rtu;
    this.client = client;
    this.opens++;
    this.setPortState('open');
    const now = this.now();
    this.openedMono = now;
    for (const s of this.slaves) if (!s.cycle) s.nextDueMono = Math.min(s.nextDueMono, now);
    this.runtime.logger.info('modbus port open', { path: this.path, slaves: this.slaves.length });
  }

  /** The port closed, failed or vanished: every slave on it is down; the loop reopens it. */
  private portLost(reason: string): void {
    if (!this.serial) return;
    this.runtime.logger.warn('modbus port lost', { path: this.path, reason });
    this.lastPortError = reason;
    void this.closePort();
    this.setPortState(existsSync(this.path) ? 'backoff' : 'absent');
    if (this.portState === 'absent') this.portAttempts = 0;
    this.settleInflight({ ok: false, code: 'portDown', message: reason });
    for (const s of this.slaves) {
      s.cycle = undefined;
      s.consecutiveTimeouts = 0;
      this.down(s, reason);
    }
    this.failWrites('portDown', reason);
    // Reopening at once could spin on a port that keeps failing: back off first (not when it is gone).
    this.backoffUntil =
      this.portState === 'backoff'
        ? this.now() + backoffDelayMs(this.portAttempts++, this.reconnect, this.random)
        : 0;
    this.wake();
  }

  private closePort(): Promise<void> {
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
    return closeSerial(this.runtime, serial, this.openTimeoutMs, this.pid);
  }
}

function closeSerial(runtime: Runtime, port: SerialPort, timeoutMs: number, owner: number): Promise<void> {
  port.removeAllListeners('close');
  port.removeAllListeners('data');
  return closeSerialPort(runtime, port, timeoutMs, owner, 'modbus.close');
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

/**
 * The requests a Modbus bus makes on its open line (modbus-bus.ts runs the loop and owns the
 * port): a slave's poll turn, a queued write with its retries, a one-off read. Each outcome is
 * applied to the slave through the pure plan (modbus-bus-plan.ts) and told to the bus's hooks:
 * values at the end of a cycle, up on a first reply, down after `retries + 1` timeouts, every
 * fault. A hook that throws is reported, never fatal.
 *
 * A timeout with the device node gone, or the line dead for `reopenSilentMs` with every slave
 * down, is the port's business: it goes back to the bus ({@link BusPort.portLost}).
 *
 * @example
 * const requests = new BusRequests(runtime, pid, port, { schedule, queue, hooks, probe, reopenSilentMs: 60_000 });
 * const s = schedule.pickDue(now);
 * if (s) await requests.poll(s); // one request: s's next batch
 * const job = queue.takeWrite((id) => schedule.find(id), path);
 * if (job) await requests.write(job); // job.resolve({ ok: true, attempts: 1 })
 */
import { existsSync } from 'node:fs';
import type { Pid } from '../../runtime/process.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { BusLine, Callback, Client, TxFailure, TxResult } from './modbus-bus-line.js';
import { sendRead, sendWrite } from './modbus-bus-line.js';
import type { BusSchedule, FaultRequest, ProbeBackoff, SlaveState } from './modbus-bus-plan.js';
import {
  abandonCycle,
  afterCorruptReply,
  afterRefusal,
  decodeReply,
  finishCycle,
  isDueDown,
  markDown,
  nextBatch,
  recordFault,
  recordReply,
  recordValues,
  scheduleProbe,
  startCycle,
  timeoutReason,
} from './modbus-bus-plan.js';
import type { ModbusBusHooks, ModbusFault } from './modbus-bus-types.js';
import { describeBatch, planBatches, readFunctionCode } from './modbus-codec.js';
import type { ReadJob, RequestQueue, WriteJob } from './modbus-request-queue.js';
import { readFailure, writeFailure, writeTargets } from './modbus-request-queue.js';

/** What the requests need of the bus process: its port's state and its wire. */
export interface BusPort {
  readonly path: string;
  readonly wire: BusLine;
  /** The bus runs (it is not stopping or stopped). */
  running(): boolean;
  /** The port is open, as far as the bus knows. */
  portOpen(): boolean;
  /** Monotonic time the port was last opened. */
  openedMono(): number;
  /** The port is gone or dead: every slave down, the port reopened with backoff. */
  portLost(reason: string): void;
  /** A slave answered: the port works (its reopen backoff starts over). */
  answered(): void;
}

/** What a failed request is, as far as the slave's event log goes (not `portDown`). */
type SlaveFailure = Exclude<TxFailure, { code: 'portDown' }>;

/** The requests of one bus, on its slaves' schedule and its queue. */
export class BusRequests {
  private readonly path: string;
  private readonly wire: BusLine;
  private readonly schedule: BusSchedule;
  private readonly queue: RequestQueue;
  private readonly hooks: ModbusBusHooks;
  private readonly probe: ProbeBackoff;
  private readonly reopenSilentMs: number;

  constructor(
    private readonly runtime: Runtime,
    private readonly owner: Pid,
    private readonly port: BusPort,
    parts: {
      readonly schedule: BusSchedule;
      readonly queue: RequestQueue;
      readonly hooks: ModbusBusHooks;
      readonly probe: ProbeBackoff;
      readonly reopenSilentMs: number;
    },
  ) {
    this.path = port.path;
    this.wire = port.wire;
    this.schedule = parts.schedule;
    this.queue = parts.queue;
    this.hooks = parts.hooks;
    this.probe = parts.probe;
    this.reopenSilentMs = parts.reopenSilentMs;
  }

  private now(): number {
    return this.runtime.clock.now();
  }

  private transact(timeoutMs: number, send: (client: Client, cb: Callback) => void): Promise<TxResult> {
    if (!this.port.portOpen())
      return Promise.resolve({ ok: false, code: 'portDown', message: 'port not open' });
    return this.wire.transact(timeoutMs, send);
  }

  /** One turn of a slave: the next batch of its cycle. */
  async poll(s: SlaveState): Promise<void> {
    const cycle = startCycle(s, this.now());
    const batch = s.batches[cycle.index];
    if (!batch) {
      this.reportValues(s, finishCycle(s, this.now()));
      return;
    }
    const { unitId, timeoutMs } = s.config;
    s.counters.requests++;
    const r = await this.transact(timeoutMs, (c, cb) => sendRead(c, unitId, batch, cb));
    if (!this.schedule.includes(s) || s.cycle !== cycle) return; // reconfigured meanwhile
    if (!r.ok && r.code === 'portDown') {
      // The library says the port is not open while we think it is (its 'close' never came):
      // treat it as lost, so the loop reconnects with backoff instead of retrying at once.
      if (this.port.portOpen())
        this.port.portLost(
          existsSync(this.path)
            ? `serial port ${this.path} is no longer open`
            : `serial port ${this.path} vanished (unplugged?)`,
        );
      return;
    }
    if (r.ok) {
      recordValues(cycle, batch, r.data);
      this.replied(s);
      this.reportValues(s, nextBatch(s, cycle, this.now()));
      return;
    }
    const fault = this.fault(s, r, {
      operation: 'read',
      functionCode: readFunctionCode(batch.table),
      address: batch.address,
      count: batch.count,
      registers: batch.registers,
    });
    if (r.code === 'exception') {
      this.replied(s);
      const { split, finished } = afterRefusal(s, cycle, batch, r.exceptionCode, this.now());
      if (split)
        this.runtime.logger.warn('modbus: a batch was refused; reading its registers one by one', {
          path: this.path,
          deviceId: s.config.deviceId,
          batch: describeBatch(batch),
          error: fault.message,
        });
      this.reportValues(s, finished);
      return;
    }
    this.wire.markDrain();
    if (r.code === 'timeout') {
      this.timedOut(s);
      return;
    }
    this.reportValues(s, afterCorruptReply(s, cycle, this.now()));
  }

  /** The values of a cycle the slave ended (none: nothing to report). */
  private reportValues(s: SlaveState, values: Record<string, number> | undefined): void {
    if (values) this.call('onValues', () => this.hooks.onValues(s.config.deviceId, values));
  }

  private replied(s: SlaveState): void {
    const cameUp = recordReply(s, this.runtime.clock.wallNow());
    this.port.answered();
    if (!cameUp) return;
    this.runtime.logger.info('modbus slave answering', {
      path: this.path,
      deviceId: s.config.deviceId,
      unitId: s.config.unitId,
    });
    const via = `modbus:${this.path}#${s.config.unitId}`;
    this.call('onSlaveUp', () => this.hooks.onSlaveUp(s.config.deviceId, via));
  }

  /** A timeout: the port may be gone; else retry next turn, or declare the slave down. */
  private timedOut(s: SlaveState): void {
    s.consecutiveTimeouts++;
    if (!existsSync(this.path)) {
      this.port.portLost(`serial port ${this.path} vanished (unplugged?)`);
      return;
    }
    const now = this.now();
    if (isDueDown(s)) this.down(s, timeoutReason(s.config, s.consecutiveTimeouts, this.path));
    if (s.online) {
      s.nextDueMono = now; // a retry, on its next turn
      return;
    }
    if (this.reopenIfSilent()) return;
    // Down: give up this cycle (reporting what it read), then probe with a growing, jittered delay.
    this.reportValues(s, abandonCycle(s));
    scheduleProbe(s, now, this.probe);
  }

  /** Every slave is down and the line has been dead for `reopenSilentMs`: cycle the port. */
  private reopenIfSilent(): boolean {
    if (this.schedule.slaves.some((s) => s.online)) return false;
    const quietMs = this.now() - Math.max(this.port.openedMono(), this.wire.lastRxMono);
    if (quietMs < this.reopenSilentMs) return false;
    this.port.portLost(
      `nothing received on ${this.path} for ${Math.round(quietMs / 1000)} s and no slave answers; reopening the port`,
    );
    return true;
  }

  /** The slave is down: reported once (again only after it came back up). */
  down(s: SlaveState, reason: string): void {
    if (!markDown(s, reason)) return;
    this.runtime.logger.warn('modbus slave down', { path: this.path, deviceId: s.config.deviceId, reason });
    this.queue.failDevice(s.config.deviceId, reason);
    this.call('onSlaveDown', () => this.hooks.onSlaveDown(s.config.deviceId, reason));
  }

  private fault(s: SlaveState, r: SlaveFailure, request: FaultRequest): ModbusFault {
    const fault = recordFault(s, this.path, r, request);
    this.call('onFault', () => this.hooks.onFault(s.config.deviceId, fault));
    return fault;
  }

  /** A one-off read: one request per batch, no retries; the job hears the values or the first failure. */
  async readOnce(job: ReadJob): Promise<void> {
    const { unitId, registers, timeoutMs } = job.request;
    const values: Record<string, number> = {};
    for (const batch of planBatches(registers)) {
      if (!this.port.running() || !this.port.portOpen()) {
        job.resolve({ ok: false, code: 'portDown', message: `port ${this.path} went down` });
        return;
      }
      const r = await this.transact(timeoutMs, (c, cb) => sendRead(c, unitId, batch, cb));
      if (!r.ok) {
        if (r.code !== 'exception') this.wire.markDrain();
        job.resolve(readFailure(r, batch, job.request, this.path));
        await this.wire.quietLine();
        return;
      }
      Object.assign(values, decodeReply(batch, r.data));
      await this.wire.quietLine();
    }
    job.resolve({ ok: true, values });
  }

  /** A write, retried on timeouts (Modbus writes set values: idempotent) up to `retries` times. */
  async write(job: WriteJob): Promise<void> {
    const s = this.schedule.find(job.deviceId);
    if (!s) {
      job.resolve({ ok: false, code: 'removed', message: `device ${job.deviceId} is not on ${this.path}` });
      return;
    }
    const config = s.config;
    const { unitId, timeoutMs, retries } = config;
    const req = job.request;
    const registers = writeTargets(config, req);
    let last: TxFailure | undefined;
    for (let attempt = 1; attempt <= retries + 1; attempt++) {
      if (attempt > 1) await this.wire.quietLine();
      if (!this.port.running() || !this.port.portOpen()) break;
      s.counters.requests++;
      const r = await this.transact(timeoutMs, (c, cb) => sendWrite(c, unitId, req, cb));
      if (r.ok) {
        s.counters.writes++;
        this.replied(s);
        if (!s.cycle) s.nextDueMono = this.now(); // read it back soon
        job.resolve({ ok: true, attempts: attempt });
        return;
      }
      last = r;
      if (r.code === 'portDown') break;
      const count = req.fc === 16 ? req.values.length : 1;
      this.fault(s, r, { operation: 'write', functionCode: req.fc, address: req.address, count, registers });
      if (r.code === 'exception') {
        this.replied(s);
        break;
      }
      this.wire.markDrain();
      if (r.code === 'timeout') {
        s.consecutiveTimeouts++;
        if (!existsSync(this.path)) {
          this.port.portLost(`serial port ${this.path} vanished (unplugged?)`);
          break;
        }
        if (s.consecutiveTimeouts >= retries + 1) {
          this.down(s, timeoutReason(config, s.consecutiveTimeouts, this.path));
          break;
        }
      }
    }
    s.counters.writeFailures++;
    job.resolve(writeFailure(last, unitId, this.path));
  }

  /** Runs a hook; a throw is reported, never fatal. */
  private call(name: string, fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.runtime.report(`modbus bus ${this.path}: ${name} threw`, error, this.owner);
    }
  }
}

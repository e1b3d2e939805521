/**
 * The Modbus bus's schedule as data (modbus-bus.ts does the I/O): each slave's state, whose
 * request goes next, and what a reply, a refusal, a corrupt reply or a timeout does to it. Pure:
 * no port, no timers; time comes in as monotonic ms, the jitter as a `random` function.
 *
 * - Batching: a slave's registers are read in the batches of {@link planBatches} (contiguous
 *   registers of a table, one request each); a multi-register batch refused with "illegal data
 *   address/value" is split into one request per register ({@link afterRefusal}).
 * - Round-robin by request ({@link BusSchedule.pickDue}): each slave has a poll cycle (its
 *   batches, one request each) that starts every `pollMs`; the slaves whose next request is due
 *   are served in turn, one request per turn, so none waits for another's whole cycle.
 * - A silent slave: each timeout is retried on its next turn; after `retries + 1` in a row it is
 *   down ({@link isDueDown}) and only probed, one request each time its jittered backoff expires,
 *   from `pollMs` growing to `probeMaxMs` ({@link scheduleProbe}); its first reply brings it back.
 * - Decoding: a reply's words or bits become values through the codec ({@link decodeReply}).
 *
 * @example
 * const schedule = new BusSchedule();
 * schedule.setSlaves([{ deviceId: 'meter-1', unitId: 1, registers, pollMs: 1000, timeoutMs: 500, retries: 1 }], now);
 * const s = schedule.pickDue(now); // meter-1: its first batch is due
 * const cycle = startCycle(s, now);
 * recordValues(cycle, s.batches[0], reply); // { voltage: 230.4 } so far
 * recordReply(s, wallNow); // true: it just came up
 * nextBatch(s, cycle, now); // the cycle's values once its last batch is read, else undefined
 */
import type { ReconnectOptions } from '../../transports/reconnect.js';
import { backoffDelayMs } from '../../transports/reconnect.js';
import type {
  FaultCode,
  LineSettings,
  ModbusFault,
  SlaveConfig,
  SlaveCounters,
  SlaveStats,
} from './modbus-bus-types.js';
import type { Batch } from './modbus-codec.js';
import { decodeBatch, planBatches, readFunctionCode, splitBatch } from './modbus-codec.js';
import type { RegisterDef } from './modbus-kind.js';

/** One poll cycle of a slave: its batches read so far and their values. */
export interface Cycle {
  index: number;
  values: Record<string, number>;
  startedMono: number;
  /** CRC errors and malformed replies in a row. */
  corrupt: number;
}

/** What the bus knows of one slave. */
export interface SlaveState {
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

export const newCounters = (): SlaveCounters => ({
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

/** 3.5 character times at the line's speed (at least 2 ms): the quiet gap between two frames. */
export function frameGapMs(line: LineSettings): number {
  const bitsPerChar = 1 + line.dataBits + (line.parity === 'none' ? 0 : 1) + line.stopBits;
  return Math.max(2, Math.ceil((3.5 * bitsPerChar * 1000) / line.baudRate));
}

/** The slaves of one bus, in unit id order, and the round-robin turn among them. */
export class BusSchedule {
  private list: SlaveState[] = [];
  private rr = -1;

  get slaves(): readonly SlaveState[] {
    return this.list;
  }

  /**
   * Replaces the slaves: new ones are due at once, changed ones restart their cycle and keep
   * their state and counters. Answers the device ids removed (their queued writes end).
   */
  setSlaves(configs: readonly SlaveConfig[], now: number): Set<string> {
    const old = new Map(this.list.map((s) => [s.config.deviceId, s]));
    const next: SlaveState[] = [];
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
    this.list = next;
    return new Set(old.keys());
  }

  find(deviceId: string): SlaveState | undefined {
    return this.list.find((s) => s.config.deviceId === deviceId);
  }

  includes(s: SlaveState): boolean {
    return this.list.includes(s);
  }

  /** The next slave in round-robin order whose request is due (it takes the turn). */
  pickDue(now: number): SlaveState | undefined {
    const n = this.list.length;
    for (let i = 1; i <= n; i++) {
      const at = (this.rr + i) % n;
      const s = this.list[at]!;
      if (s.batches.length > 0 && s.nextDueMono <= now) {
        this.rr = at;
        return s;
      }
    }
    return undefined;
  }

  /** How long until a request is due (at least 1 ms; 60 s when there is nothing to poll). */
  untilNextDueMs(now: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (const s of this.list) if (s.batches.length > 0) next = Math.min(next, s.nextDueMono);
    if (next === Number.POSITIVE_INFINITY) return 60_000;
    return Math.max(1, Math.ceil(next - now));
  }
}

export function slaveStats(s: SlaveState): SlaveStats {
  return {
    deviceId: s.config.deviceId,
    unitId: s.config.unitId,
    online: s.online,
    consecutiveTimeouts: s.consecutiveTimeouts,
    batches: s.batches.length,
    counters: { ...s.counters },
    lastError: s.lastError,
    lastReplyAt: s.lastReplyAt,
  };
}

// ---- a poll cycle ----

/** The slave's cycle, begun now if none is under way. */
export function startCycle(s: SlaveState, now: number): Cycle {
  s.cycle ??= { index: 0, values: {}, startedMono: now, corrupt: 0 };
  return s.cycle;
}

/**
 * The values in a read reply (modbus-serial's `{ data: [...] }`: bits for FC01/02, words for
 * FC03/04), by register name, converted and scaled.
 */
export function decodeReply(batch: Batch, reply: unknown): Record<string, number> {
  const data = (reply as { data?: unknown[] } | undefined)?.data ?? [];
  const fc = readFunctionCode(batch.table);
  return fc === 1 || fc === 2
    ? decodeBatch(batch, { bits: data as boolean[] }).values
    : decodeBatch(batch, { words: data as number[] }).values;
}

/** A good reply to the cycle's current batch: its values join the cycle's. */
export function recordValues(cycle: Cycle, batch: Batch, reply: unknown): void {
  Object.assign(cycle.values, decodeReply(batch, reply));
  cycle.corrupt = 0;
}

/** Ends the cycle: the next one is due `pollMs` after this one began; its values, if any. */
export function finishCycle(s: SlaveState, now: number): Record<string, number> | undefined {
  const cycle = s.cycle;
  s.cycle = undefined;
  if (!cycle) return undefined;
  s.nextDueMono = Math.max(now, cycle.startedMono + s.config.pollMs);
  if (Object.keys(cycle.values).length === 0) return undefined;
  s.counters.cycles++;
  return cycle.values;
}

/** After a good (or refused) batch: the next batch is due at once, or the cycle is done (its values). */
export function advance(s: SlaveState, now: number): Record<string, number> | undefined {
  if (s.cycle && s.cycle.index >= s.batches.length) return finishCycle(s, now);
  s.nextDueMono = now;
  return undefined;
}

/** The cycle's current batch was read: on to the next (the cycle's values when it was the last). */
export function nextBatch(s: SlaveState, cycle: Cycle, now: number): Record<string, number> | undefined {
  cycle.index++;
  return advance(s, now);
}

/**
 * The current batch was refused (an exception reply). "Illegal data address/value" for several
 * registers: they are read one by one from now on, so one bad register does not cost its
 * neighbours (`split`); else the batch is skipped for this cycle.
 */
export function afterRefusal(
  s: SlaveState,
  cycle: Cycle,
  batch: Batch,
  exceptionCode: number | undefined,
  now: number,
): { readonly split: boolean; readonly finished: Record<string, number> | undefined } {
  const split = (exceptionCode === 2 || exceptionCode === 3) && batch.registers.length > 1;
  if (split) s.batches.splice(cycle.index, 1, ...splitBatch(batch));
  else cycle.index++;
  return { split, finished: advance(s, now) };
}

/** A CRC error or a malformed reply: tried again on the slave's next turn, `retries` times. */
export function afterCorruptReply(
  s: SlaveState,
  cycle: Cycle,
  now: number,
): Record<string, number> | undefined {
  cycle.corrupt++;
  if (cycle.corrupt > s.config.retries) return finishCycle(s, now);
  s.nextDueMono = now;
  return undefined;
}

// ---- up and down ----

/** A reply (good or exception): the slave is alive. Answers whether it just came up. */
export function recordReply(s: SlaveState, wallNow: number): boolean {
  s.counters.replies++;
  s.consecutiveTimeouts = 0;
  s.probeAttempts = 0;
  s.lastReplyAt = wallNow;
  if (s.online) return false;
  s.online = true;
  s.downReported = false;
  s.lastError = null;
  return true;
}

/** After a timeout was counted: `retries + 1` in a row and not reported down yet. */
export function isDueDown(s: SlaveState): boolean {
  return (s.online || !s.downReported) && s.consecutiveTimeouts >= s.config.retries + 1;
}

/** Why a slave is down after `timeouts` in a row. */
export function timeoutReason(config: SlaveConfig, timeouts: number, path: string): string {
  return `no reply from slave ${config.unitId} on ${path}: ${timeouts} timeouts in a row (${config.timeoutMs} ms each)`;
}

/** The slave is down; false when that was already reported (again only after it came back up). */
export function markDown(s: SlaveState, reason: string): boolean {
  if (!s.online && s.downReported) return false;
  s.online = false;
  s.downReported = true;
  s.lastError = reason;
  return true;
}

/** A down slave gives up its cycle; what it read so far, if anything. */
export function abandonCycle(s: SlaveState): Record<string, number> | undefined {
  const cycle = s.cycle;
  s.cycle = undefined;
  if (!cycle || Object.keys(cycle.values).length === 0) return undefined;
  return cycle.values;
}

/** How a down slave is probed: the port's backoff, from its `pollMs` up to `probeMaxMs`. */
export interface ProbeBackoff {
  readonly reconnect: ReconnectOptions;
  readonly probeMaxMs: number;
  readonly random: () => number;
}

/** A down slave's next probe: a growing, jittered delay from now. */
export function scheduleProbe(s: SlaveState, now: number, backoff: ProbeBackoff): void {
  const { pollMs } = s.config;
  const delay = backoffDelayMs(
    s.probeAttempts++,
    { ...backoff.reconnect, initialMs: pollMs, maxMs: Math.max(pollMs, backoff.probeMaxMs) },
    backoff.random,
  );
  s.nextDueMono = now + delay;
}

// ---- faults ----

/** The request that failed. */
export interface FaultRequest {
  readonly operation: 'read' | 'write';
  readonly functionCode: number;
  readonly address: number;
  readonly count: number;
  readonly registers: readonly RegisterDef[];
}

/** A failed request of a slave, as a fault for its event log; counted on the slave. */
export function recordFault(
  s: SlaveState,
  path: string,
  failure: { readonly code: FaultCode; readonly message: string; readonly exceptionCode?: number },
  request: FaultRequest,
): ModbusFault {
  const { code } = failure;
  const { operation, functionCode, address, count, registers } = request;
  if (code === 'timeout') s.counters.timeouts++;
  else if (code === 'exception') s.counters.exceptions++;
  else if (code === 'crc') s.counters.crcErrors++;
  else s.counters.badFrames++;
  const names = registers.map((x) => x.name).join(', ') || 'unmapped registers';
  const what = `${operation === 'read' ? 'reading' : 'writing'} ${names} (FC${String(functionCode).padStart(2, '0')} at ${address}${count > 1 ? `, count ${count}` : ''})`;
  const unit = `slave ${s.config.unitId} on ${path}`;
  const message =
    code === 'timeout'
      ? `${unit}: no reply within ${s.config.timeoutMs} ms ${what}`
      : code === 'exception'
        ? `${unit} refused ${what}: ${failure.message}`
        : `${unit}: ${failure.message} ${what}`;
  if (code !== 'timeout') s.lastError = message;
  return {
    code,
    message,
    operation,
    functionCode,
    address,
    count,
    registers: registers.map((x) => x.name),
    ...(failure.exceptionCode === undefined ? {} : { exceptionCode: failure.exceptionCode }),
  };
}

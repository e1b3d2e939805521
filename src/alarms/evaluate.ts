/**
 * Rule evaluation, driven only by its inputs and the times they carry (the runtime clock's
 * monotonic ms): no I/O, no timers of its own, so a test replays it on a simulated clock.
 *
 * Each compiled rule keeps per-device state: whether its condition holds (`bad`), since when
 * (`pendingSince`, for `forMs`), and whether the alarm is up (`active`). A condition is three-way:
 * `true` raises (after `forMs`), `false` clears, `null` — the hysteresis band — changes nothing,
 * so a value hovering at the threshold does not flap. `tick` inputs raise what has waited its
 * `forMs` and what fell silent (`noData`).
 *
 * State is mutated in place (one Map per rule, rule-devices.ts): this runs for every telemetry
 * message of the fleet. Each rule type is one reader below: what it takes from telemetry, from a
 * device's facts and from a tick.
 *
 * @example
 * const rule = compileRule(parsed, () => true);
 * rule.handle({ type: 'telemetry', deviceId: 'd1', atMs: 0, values: { temp: 31 } }, changes.push.bind(changes));
 * rule.handle({ type: 'tick', atMs: 2000 }, changes.push.bind(changes)); // raise d1 after forMs 2000
 */
import { RuleDevices } from './rule-devices.js';
import type { AlarmRule } from './rules.js';
import { describeRule } from './rules.js';

/** What the lifecycle rules look at, per device. */
export interface DeviceFacts {
  readonly online: boolean;
  readonly crashLoop: boolean;
  readonly drift: boolean;
  readonly stuck: boolean;
  /** Its command circuit breaker is open (half-open counts: no command is sure to pass). */
  readonly circuitOpen: boolean;
}

export type AlarmInput =
  | {
      readonly type: 'telemetry';
      readonly deviceId: string;
      readonly atMs: number;
      readonly values: Readonly<Record<string, number>>;
    }
  /** The device's facts now (on a lifecycle event, and for every device at start). */
  | { readonly type: 'facts'; readonly deviceId: string; readonly atMs: number; readonly facts: DeviceFacts }
  /** The device left the fleet: its alarms clear. */
  | { readonly type: 'removed'; readonly deviceId: string; readonly atMs: number }
  | { readonly type: 'tick'; readonly atMs: number };

export interface AlarmChange {
  readonly type: 'raise' | 'clear';
  readonly ruleId: string;
  readonly deviceId: string;
  readonly atMs: number;
  /** The value that raised or cleared it (telemetry rules). */
  readonly value: number | null;
  readonly message: string;
}

export type Emit = (change: AlarmChange) => void;

export interface CompiledRule {
  readonly rule: AlarmRule;
  handle(input: AlarmInput, emit: Emit): void;
  /** Marks an alarm already up (loaded from the store at start), so it can clear. */
  restoreActive(deviceId: string, atMs: number): void;
  /** Devices whose alarm is up. */
  activeDevices(): string[];
}

type RuleOf<T extends AlarmRule['type']> = Extract<AlarmRule, { type: T }>;
type Values = Readonly<Record<string, number>>;

/** What one rule type reads from its inputs; the scope is checked before. */
interface RuleReader {
  /** Absent for lifecycle rules: they skip telemetry at once (it is most of the inputs). */
  readonly telemetry?: (id: string, values: Values, atMs: number, emit: Emit) => void;
  readonly facts?: (id: string, f: DeviceFacts, atMs: number, emit: Emit) => void;
  /** Beyond raising what waited out `forMs`. */
  readonly tick?: (atMs: number, emit: Emit) => void;
}

function thresholdReader(rule: RuleOf<'threshold'>, devices: RuleDevices): RuleReader {
  const condition = (v: number): boolean | null =>
    rule.op === 'above'
      ? v > rule.value
        ? true
        : v <= rule.value - rule.hysteresis
          ? false
          : null
      : v < rule.value
        ? true
        : v >= rule.value + rule.hysteresis
          ? false
          : null;
  return {
    telemetry(id, values, atMs, emit) {
      const v = values[rule.metric];
      if (v === undefined) return;
      const s = devices.stateOf(id);
      s.lastValue = v;
      devices.judge(id, s, condition(v), atMs, emit);
    },
  };
}

function rateOfChangeReader(rule: RuleOf<'rateOfChange'>, devices: RuleDevices): RuleReader {
  return {
    telemetry(id, values, atMs, emit) {
      const v = values[rule.metric];
      if (v === undefined) return;
      const s = devices.stateOf(id);
      const prev = s.lastValue;
      const prevAt = s.lastAt;
      s.lastValue = v;
      s.lastAt = atMs;
      if (prev === null || prevAt === null || atMs <= prevAt) return;
      const rate = Math.abs((v - prev) / ((atMs - prevAt) / 1000));
      const bad =
        rate > rule.maxPerSecond ? true : rate <= rule.maxPerSecond - rule.hysteresis ? false : null;
      devices.judge(id, s, bad, atMs, emit);
    },
  };
}

function noDataReader(rule: RuleOf<'noData'>, devices: RuleDevices): RuleReader {
  return {
    telemetry(id, values, atMs, emit) {
      if (rule.metric !== undefined && values[rule.metric] === undefined) return;
      const s = devices.stateOf(id);
      s.lastAt = atMs;
      if (rule.metric !== undefined) s.lastValue = values[rule.metric] ?? null;
      devices.judge(id, s, false, atMs, emit);
    },
    facts(id, _f, atMs) {
      // A device first heard of starts its silence now.
      const s = devices.stateOf(id);
      if (s.lastAt === null) s.lastAt = atMs;
    },
    tick(atMs, emit) {
      for (const [id, s] of devices.all())
        if (!s.active && s.lastAt !== null && atMs - s.lastAt >= rule.forMs) {
          s.bad = true;
          devices.raise(id, s, atMs, emit);
        }
    },
  };
}

/** A lifecycle rule: its condition is one of the device's facts. */
function factReader(devices: RuleDevices, isBad: (f: DeviceFacts) => boolean): RuleReader {
  return {
    facts(id, f, atMs, emit) {
      const bad = isBad(f);
      const s = devices.stateOf(id);
      // Facts repeat (every lifecycle event re-states them): only a change restarts `forMs`.
      if (bad && s.bad === true) return;
      devices.judge(id, s, bad, atMs, emit);
    },
  };
}

function readerFor(rule: AlarmRule, devices: RuleDevices): RuleReader {
  switch (rule.type) {
    case 'threshold':
      return thresholdReader(rule, devices);
    case 'rateOfChange':
      return rateOfChangeReader(rule, devices);
    case 'noData':
      return noDataReader(rule, devices);
    case 'offline':
      return factReader(devices, (f) => !f.online);
    case 'crashLoop':
      return factReader(devices, (f) => f.crashLoop);
    case 'drift':
      return factReader(devices, (f) => f.drift);
    case 'stuck':
      return factReader(devices, (f) => f.stuck);
    case 'circuitOpen':
      return factReader(devices, (f) => f.circuitOpen);
  }
}

/** Builds a rule's evaluator; `applies(deviceId)` is its scope. */
export function compileRule(rule: AlarmRule, applies: (deviceId: string) => boolean): CompiledRule {
  const devices = new RuleDevices(rule.id, describeRule(rule), 'forMs' in rule ? rule.forMs : 0);
  const reader = readerFor(rule, devices);
  return {
    rule,
    handle(input, emit) {
      if (input.type === 'tick') {
        devices.tickPending(input.atMs, emit);
        reader.tick?.(input.atMs, emit);
        return;
      }
      const id = input.deviceId;
      if (input.type === 'removed') return devices.remove(id, input.atMs, emit);
      if (input.type === 'telemetry' && !reader.telemetry) return;
      if (!applies(id)) return;
      if (input.type === 'telemetry') reader.telemetry?.(id, input.values, input.atMs, emit);
      else reader.facts?.(id, input.facts, input.atMs, emit);
    },
    restoreActive(deviceId, atMs) {
      const s = devices.stateOf(deviceId);
      s.active = true;
      s.bad = true;
      if (rule.type === 'noData') s.lastAt = atMs;
    },
    activeDevices: () => devices.activeDevices(),
  };
}

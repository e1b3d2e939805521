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
 * State is mutated in place (one Map per rule): this runs for every telemetry message of the fleet.
 *
 * @example
 * const rule = compileRule(parsed, () => true);
 * rule.handle({ type: 'telemetry', deviceId: 'd1', atMs: 0, values: { temp: 31 } }, changes.push.bind(changes));
 * rule.handle({ type: 'tick', atMs: 2000 }, changes.push.bind(changes)); // raise d1 after forMs 2000
 */
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

interface DeviceState {
  active: boolean;
  /** Whether the condition held at the last input; null in the hysteresis band or unknown. */
  bad: boolean | null;
  pendingSince: number | null;
  lastValue: number | null;
  /** Last telemetry (noData) or last point (rateOfChange), monotonic ms. */
  lastAt: number | null;
}

const newState = (): DeviceState => ({
  active: false,
  bad: null,
  pendingSince: null,
  lastValue: null,
  lastAt: null,
});

const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));

/** Builds a rule's evaluator; `applies(deviceId)` is its scope. */
export function compileRule(rule: AlarmRule, applies: (deviceId: string) => boolean): CompiledRule {
  const devices = new Map<string, DeviceState>();
  /** Devices waiting out `forMs` (ticks look only at these). */
  const pending = new Set<string>();
  const forMs = 'forMs' in rule ? rule.forMs : 0;
  /** Lifecycle rules skip telemetry at once (it is most of the inputs). */
  const readsTelemetry = rule.type === 'threshold' || rule.type === 'rateOfChange' || rule.type === 'noData';
  const text = describeRule(rule);

  const stateOf = (id: string) => {
    let s = devices.get(id);
    if (!s) {
      s = newState();
      devices.set(id, s);
    }
    return s;
  };

  const raise = (id: string, s: DeviceState, atMs: number, emit: Emit) => {
    s.active = true;
    s.pendingSince = null;
    pending.delete(id);
    const v = s.lastValue;
    emit({
      type: 'raise',
      ruleId: rule.id,
      deviceId: id,
      atMs,
      value: v,
      message: v === null ? text : `${text}: ${fmt(v)}`,
    });
  };

  /** The three-way condition step shared by every rule type. */
  const judge = (id: string, s: DeviceState, bad: boolean | null, atMs: number, emit: Emit) => {
    s.bad = bad;
    if (bad === true) {
      if (s.active) return;
      if (s.pendingSince === null) s.pendingSince = atMs;
      if (atMs - s.pendingSince >= forMs) raise(id, s, atMs, emit);
      else pending.add(id);
      return;
    }
    s.pendingSince = null;
    pending.delete(id);
    if (bad === false && s.active) {
      s.active = false;
      emit({
        type: 'clear',
        ruleId: rule.id,
        deviceId: id,
        atMs,
        value: s.lastValue,
        message: `back to normal: ${text}`,
      });
    }
  };

  const telemetry = (id: string, values: Readonly<Record<string, number>>, atMs: number, emit: Emit) => {
    switch (rule.type) {
      case 'threshold': {
        const v = values[rule.metric];
        if (v === undefined) return;
        const s = stateOf(id);
        s.lastValue = v;
        const bad =
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
        judge(id, s, bad, atMs, emit);
        return;
      }
      case 'rateOfChange': {
        const v = values[rule.metric];
        if (v === undefined) return;
        const s = stateOf(id);
        const prev = s.lastValue;
        const prevAt = s.lastAt;
        s.lastValue = v;
        s.lastAt = atMs;
        if (prev === null || prevAt === null || atMs <= prevAt) return;
        const rate = Math.abs((v - prev) / ((atMs - prevAt) / 1000));
        const bad =
          rate > rule.maxPerSecond ? true : rate <= rule.maxPerSecond - rule.hysteresis ? false : null;
        judge(id, s, bad, atMs, emit);
        return;
      }
      case 'noData': {
        if (rule.metric !== undefined && values[rule.metric] === undefined) return;
        const s = stateOf(id);
        s.lastAt = atMs;
        if (rule.metric !== undefined) s.lastValue = values[rule.metric] ?? null;
        judge(id, s, false, atMs, emit);
        return;
      }
      default:
        return;
    }
  };

  const facts = (id: string, f: DeviceFacts, atMs: number, emit: Emit) => {
    let bad: boolean;
    switch (rule.type) {
      case 'offline':
        bad = !f.online;
        break;
      case 'crashLoop':
        bad = f.crashLoop;
        break;
      case 'drift':
        bad = f.drift;
        break;
      case 'stuck':
        bad = f.stuck;
        break;
      case 'circuitOpen':
        bad = f.circuitOpen;
        break;
      case 'noData': {
        // A device first heard of starts its silence now.
        const s = stateOf(id);
        if (s.lastAt === null) s.lastAt = atMs;
        return;
      }
      default:
        return;
    }
    const s = stateOf(id);
    // Facts repeat (every lifecycle event re-states them): only a change restarts `forMs`.
    if (bad && s.bad === true) return;
    judge(id, s, bad, atMs, emit);
  };

  const tick = (atMs: number, emit: Emit) => {
    for (const id of pending) {
      const s = devices.get(id);
      if (!s || s.pendingSince === null || s.bad !== true) {
        pending.delete(id);
        continue;
      }
      if (atMs - s.pendingSince >= forMs) raise(id, s, atMs, emit);
    }
    if (rule.type === 'noData')
      for (const [id, s] of devices)
        if (!s.active && s.lastAt !== null && atMs - s.lastAt >= rule.forMs) {
          s.bad = true;
          raise(id, s, atMs, emit);
        }
  };

  return {
    rule,
    handle(input, emit) {
      if (input.type === 'tick') return tick(input.atMs, emit);
      const id = input.deviceId;
      if (input.type === 'removed') {
        const s = devices.get(id);
        if (s) judge(id, s, false, input.atMs, emit);
        devices.delete(id);
        pending.delete(id);
        return;
      }
      if (input.type === 'telemetry' && !readsTelemetry) return;
      if (!applies(id)) return;
      if (input.type === 'telemetry') telemetry(id, input.values, input.atMs, emit);
      else facts(id, input.facts, input.atMs, emit);
    },
    restoreActive(deviceId, atMs) {
      const s = stateOf(deviceId);
      s.active = true;
      s.bad = true;
      if (rule.type === 'noData') s.lastAt = atMs;
    },
    activeDevices() {
      return [...devices].filter(([, s]) => s.active).map(([id]) => id);
    },
  };
}

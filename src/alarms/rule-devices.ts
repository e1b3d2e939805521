/**
 * The per-device state of one compiled rule (evaluate.ts) and the three-way step every rule type
 * shares: a condition `true` raises once it has held for `forMs`, `false` clears, `null` (the
 * hysteresis band, or not known) changes nothing. No I/O, no timers: `tick` raises what has
 * waited long enough, at the time the input carries.
 *
 * State is mutated in place: this runs for every telemetry message of the fleet.
 *
 * @example
 * const devices = new RuleDevices('hot', 'temp above 30 for 2 s', 2000);
 * devices.judge('d1', devices.stateOf('d1'), true, 0, emit);  // pending
 * devices.tickPending(2000, emit);                            // emit({ type: 'raise', deviceId: 'd1', … })
 */
import type { Emit } from './evaluate.js';

export interface DeviceState {
  active: boolean;
  /** Whether the condition held at the last input; null in the hysteresis band or unknown. */
  bad: boolean | null;
  pendingSince: number | null;
  lastValue: number | null;
  /** Last telemetry (noData) or last point (rateOfChange), monotonic ms. */
  lastAt: number | null;
}

const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));

/** Every device one rule has heard of, and the ones waiting out its `forMs`. */
export class RuleDevices {
  private readonly devices = new Map<string, DeviceState>();
  /** Devices waiting out `forMs` (ticks look only at these). */
  private readonly pending = new Set<string>();

  constructor(
    private readonly ruleId: string,
    /** The rule described for people, the start of every alarm message. */
    private readonly text: string,
    private readonly forMs: number,
  ) {}

  stateOf(id: string): DeviceState {
    let s = this.devices.get(id);
    if (!s) {
      s = { active: false, bad: null, pendingSince: null, lastValue: null, lastAt: null };
      this.devices.set(id, s);
    }
    return s;
  }

  all(): IterableIterator<[string, DeviceState]> {
    return this.devices.entries();
  }

  raise(id: string, s: DeviceState, atMs: number, emit: Emit): void {
    s.active = true;
    s.pendingSince = null;
    this.pending.delete(id);
    const v = s.lastValue;
    emit({
      type: 'raise',
      ruleId: this.ruleId,
      deviceId: id,
      atMs,
      value: v,
      message: v === null ? this.text : `${this.text}: ${fmt(v)}`,
    });
  }

  /** The three-way condition step shared by every rule type. */
  judge(id: string, s: DeviceState, bad: boolean | null, atMs: number, emit: Emit): void {
    s.bad = bad;
    if (bad === true) {
      if (s.active) return;
      if (s.pendingSince === null) s.pendingSince = atMs;
      if (atMs - s.pendingSince >= this.forMs) this.raise(id, s, atMs, emit);
      else this.pending.add(id);
      return;
    }
    s.pendingSince = null;
    this.pending.delete(id);
    if (bad === false && s.active) {
      s.active = false;
      emit({
        type: 'clear',
        ruleId: this.ruleId,
        deviceId: id,
        atMs,
        value: s.lastValue,
        message: `back to normal: ${this.text}`,
      });
    }
  }

  /** Raises what has waited out `forMs` by `atMs`. */
  tickPending(atMs: number, emit: Emit): void {
    for (const id of this.pending) {
      const s = this.devices.get(id);
      if (!s || s.pendingSince === null || s.bad !== true) {
        this.pending.delete(id);
        continue;
      }
      if (atMs - s.pendingSince >= this.forMs) this.raise(id, s, atMs, emit);
    }
  }

  /** The device left the fleet: its alarm clears and it is forgotten. */
  remove(id: string, atMs: number, emit: Emit): void {
    const s = this.devices.get(id);
    if (s) this.judge(id, s, false, atMs, emit);
    this.devices.delete(id);
    this.pending.delete(id);
  }

  activeDevices(): string[] {
    return [...this.devices].filter(([, s]) => s.active).map(([id]) => id);
  }
}

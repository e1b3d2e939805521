/**
 * Faults a simulated device can be told to have (sim-device.ts), and the timers they need.
 *
 * `mute` and `garbage` are flags the device and its adapters read; `slowReplyMs` holds every
 * reply and fw.ack back ({@link FaultTimers.later}); `crashLoopOnBoot` reboots the device
 * {@link CRASH_AFTER_HELLO_MS} after each boot's hello ({@link FaultTimers.armCrash}). A dropped
 * link is not a device fault: the adapters' `dropLink()` does it.
 *
 * @example
 * let faults = mergeFaults({}, { slowReplyMs: 2000, mute: true }); // { slowReplyMs: 2000, mute: true }
 * faults = mergeFaults(faults, { mute: false });                  // { slowReplyMs: 2000 }
 */

/** Delay of a `crashLoopOnBoot` crash after the boot's hello. */
export const CRASH_AFTER_HELLO_MS = 200;

export interface SimFaults {
  /** A hung device: sends nothing at all and ignores everything it receives. */
  readonly mute?: boolean;
  /** Every reply and fw.ack goes out this many ms late. */
  readonly slowReplyMs?: number;
  /** Junk on the link: random bytes between serial frames; invalid JSON on the MQTT telemetry topic. */
  readonly garbage?: boolean;
  /** Reboot again ~200 ms after each boot's hello, until cleared. */
  readonly crashLoopOnBoot?: boolean;
}

/**
 * `current` with `patch` merged in; `undefined`, `false` and `0` clear a fault. Throws
 * `RangeError` for a negative or non-finite `slowReplyMs`.
 */
export function mergeFaults(current: SimFaults, patch: SimFaults): SimFaults {
  const next: { -readonly [K in keyof SimFaults]: SimFaults[K] } = { ...current, ...patch };
  for (const key of Object.keys(next) as (keyof SimFaults)[]) {
    if (next[key] === undefined || next[key] === false || next[key] === 0) delete next[key];
  }
  if (next.slowReplyMs !== undefined && !(Number.isFinite(next.slowReplyMs) && next.slowReplyMs >= 0)) {
    throw new RangeError(`setFaults: slowReplyMs must be ≥ 0, got ${next.slowReplyMs}`);
  }
  return next;
}

/** The timers of the `slowReplyMs` and `crashLoopOnBoot` faults (real, unref'ed). */
export class FaultTimers {
  private crashTimer: NodeJS.Timeout | undefined;
  private readonly delayed = new Set<NodeJS.Timeout>();

  /** Calls `crash` {@link CRASH_AFTER_HELLO_MS} from now, unless a crash is already due. */
  armCrash(crash: () => void): void {
    if (this.crashTimer !== undefined) return;
    this.crashTimer = setTimeout(() => {
      this.crashTimer = undefined;
      crash();
    }, CRASH_AFTER_HELLO_MS);
    this.crashTimer.unref();
  }

  disarmCrash(): void {
    clearTimeout(this.crashTimer);
    this.crashTimer = undefined;
  }

  /** Runs `go` in `delayMs` (a slow reply), unless {@link clearLater} comes first. */
  later(delayMs: number, go: () => void): void {
    const t = setTimeout(() => {
      this.delayed.delete(t);
      go();
    }, delayMs);
    t.unref();
    this.delayed.add(t);
  }

  /** Drops every slow reply still waiting (a reboot or power-off loses them). */
  clearLater(): void {
    for (const t of this.delayed) clearTimeout(t);
    this.delayed.clear();
  }
}

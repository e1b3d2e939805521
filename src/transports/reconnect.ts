/**
 * Backoff and the reconnect schedule, shared by every link that reconnects: the MQTT link and
 * the Homie and Sparkplug bridges (a broker connection), the serial manager (a port reopened),
 * the Modbus bus (its port, and the probing of a silent slave).
 *
 * The n-th retry waits `min(maxMs, initialMs·2ⁿ)` less up to `jitter` of it, at random, so a
 * fleet of hosts does not retry in step; a connection that stays up `stableMs` forgets its
 * failures, so one that succeeds and is then kicked (a duplicate client id) keeps backing off
 * instead of storming. Every wait goes through the runtime's timers (a simulated clock in tests).
 *
 * @example
 * const schedule = new ReconnectSchedule(runtime, pid, resolveReconnect({ initialMs: 100 }), undefined, 'mqtt');
 * schedule.retryIn(schedule.nextDelay(), () => openClient()); // on a drop
 * schedule.connected(); // on success: after stableMs the next drop starts from initialMs again
 */
import { z } from 'zod';
import { fraction, positiveInt } from '../lib/options.js';
import type { Runtime } from '../runtime/runtime.js';
import type { TimerRef } from '../runtime/timers.js';

/** Reconnect backoff: the n-th retry waits `min(maxMs, initialMs·2ⁿ)`, minus up to `jitter` of it. */
export interface ReconnectOptions {
  /** First retry delay; default 500. */
  readonly initialMs: number;
  /** Cap on any delay; default 30 000. */
  readonly maxMs: number;
  /** Fraction 0…1 of the delay taken off at random, so a fleet of hosts does not retry in step; default 0.5. */
  readonly jitter: number;
  /**
   * How long a connection must stay up before the backoff starts again from `initialMs`;
   * default 10 000. A connection that drops sooner (a duplicate client id kicking us, a broker
   * refusing us after CONNACK) keeps growing the delay instead of becoming a reconnect storm.
   */
  readonly stableMs: number;
}

export const DEFAULT_RECONNECT: ReconnectOptions = {
  initialMs: 500,
  maxMs: 30_000,
  jitter: 0.5,
  stableMs: 10_000,
};

/** The schema of a caller's `reconnect` option (every field optional), for the options schemas. */
export const reconnectSchema = z.object({
  initialMs: positiveInt.optional(),
  maxMs: positiveInt.optional(),
  jitter: fraction.optional(),
  stableMs: positiveInt.optional(),
});

/** A caller's partial `reconnect` option with the defaults filled in. */
export function resolveReconnect(partial: Partial<ReconnectOptions> | undefined): ReconnectOptions {
  return { ...DEFAULT_RECONNECT, ...partial };
}

/**
 * The delay before retry number `attempt` (0-based), in ms: exponential, capped, jittered.
 * `random` returns [0, 1) as Math.random does.
 *
 * @example
 * backoffDelayMs(0, DEFAULT_RECONNECT, () => 0);   // 500
 * backoffDelayMs(3, DEFAULT_RECONNECT, () => 0.5); // 3000 (4000 less 25 %)
 * backoffDelayMs(20, DEFAULT_RECONNECT, () => 0);  // 30000
 */
export function backoffDelayMs(
  attempt: number,
  options: Pick<ReconnectOptions, 'initialMs' | 'maxMs' | 'jitter'>,
  random: () => number = Math.random,
): number {
  const base = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.round(base * (1 - options.jitter * random()));
}

/**
 * The reconnect half of anything that reconnects: the n-th retry after a drop waits
 * {@link backoffDelayMs}; a connection that stays up `stableMs` forgets the failures. Its two
 * timers are owned by `owner` (the process), labelled `<label>.reconnect` and `<label>.stable`.
 */
export class ReconnectSchedule {
  private attempt = 0;
  private retryTimer: TimerRef | undefined;
  private stableTimer: TimerRef | undefined;

  constructor(
    private readonly runtime: Runtime,
    private readonly owner: number,
    private readonly options: ReconnectOptions,
    private readonly random: (() => number) | undefined,
    private readonly label: string,
  ) {}

  /** Failed attempts since the last stable connection. */
  get attempts(): number {
    return this.attempt;
  }

  /** Connected: once it has lasted `stableMs`, the next drop starts again from the first delay. */
  connected(): void {
    if (this.stableTimer) this.runtime.timers.cancel(this.stableTimer);
    this.stableTimer = this.runtime.timers.schedule(
      this.options.stableMs,
      () => {
        this.stableTimer = undefined;
        this.attempt = 0;
      },
      { owner: this.owner, label: `${this.label}.stable` },
    );
  }

  /** Dropped: the delay before the next attempt (each call counts as one attempt). */
  nextDelay(): number {
    if (this.stableTimer) this.runtime.timers.cancel(this.stableTimer);
    this.stableTimer = undefined;
    return backoffDelayMs(this.attempt++, this.options, this.random);
  }

  /** Forgets the failures now (the thing went away for good; its return is a fresh start). */
  reset(): void {
    if (this.stableTimer) this.runtime.timers.cancel(this.stableTimer);
    this.stableTimer = undefined;
    this.attempt = 0;
  }

  /** Runs `retry` after `delayMs` (the callee checks whether it still wants to). */
  retryIn(delayMs: number, retry: () => void): void {
    if (this.retryTimer) this.runtime.timers.cancel(this.retryTimer);
    this.retryTimer = this.runtime.timers.schedule(
      delayMs,
      () => {
        this.retryTimer = undefined;
        retry();
      },
      { owner: this.owner, label: `${this.label}.reconnect` },
    );
  }

  /** Whether a retry is waiting. */
  get retrying(): boolean {
    return this.retryTimer !== undefined;
  }

  cancel(): void {
    if (this.retryTimer) this.runtime.timers.cancel(this.retryTimer);
    if (this.stableTimer) this.runtime.timers.cancel(this.stableTimer);
    this.retryTimer = undefined;
    this.stableTimer = undefined;
  }
}

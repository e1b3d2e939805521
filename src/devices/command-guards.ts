/**
 * Guards on every device's commands (fleet control): a circuit breaker per device and token-bucket
 * rate limits, one per device and one for the whole fleet.
 *
 * They are part of the command lifecycle, not processes of their own: the tracker consults them
 * when a command is submitted, before it is audited ({@link CommandGuard.check}), and tells them
 * every final status ({@link CommandGuard.settled}). Why not a process per device under its
 * supervisor: the answer must be synchronous (refused at once, nothing queued, nothing audited),
 * the state is a few numbers derived only from the tracker's final statuses, and a process per
 * device would double the tree at 10,000 devices and put a message hop in front of every command.
 * The state lives in memory: after an app restart every breaker starts closed and every bucket
 * full (the first commands then find out again, at most `failures` of them).
 *
 * Circuit breaker (per device, settings per kind, {@link DEFAULT_BREAKER}):
 * - `closed`: commands go through. Failures that say the device or its wire is dead count —
 *   `timedOut`, and `failed` with `linkLost` or `noLink`; after `failures` of them in a row it opens.
 *   Any answer from the device (success, or its own error code such as `badArgs` or `busy`) proves
 *   it alive and resets the count. `cancelled` and `expired` (never answered, never sent) are
 *   neutral.
 * - `open`: commands are refused at once with `circuitOpen` (with `retryAt`: the next probe time)
 *   until `coolDownMs` after it opened.
 * - `halfOpen` (the cool-down is over): the next real command goes through as the probe; others
 *   are refused while it is open. The probe succeeding (any answer) closes the breaker; the probe
 *   failing opens it again for another cool-down; a neutral end lets the next command probe.
 *   Commands already open when it opened end as they will; an answer from any of them closes it.
 *
 * Rate limits: a token bucket per device (per kind, {@link DEFAULT_DEVICE_RATE}) and one for the
 * fleet ({@link DEFAULT_FLEET_RATE}); a command takes one token from each, or neither when either
 * is empty: it is refused with `rateLimited` and `retryAt`, when a token will be there. A command
 * the breaker refuses takes no token.
 *
 * @example
 * const guards = createCommandGuards({ clock: runtime.clock, settingsOf: (id) => kindOf(id).guards });
 * tracker.addGuard(guards);
 * guards.breaker('pump-7'); // { state: 'open', consecutiveFailures: 5, opens: 1, nextProbeAt: …, … }
 */
import type { Clock, ClockHandle } from '../runtime/clock.js';
import type { CommandFailure, CommandGuard, TrackedCommand } from './command-tracker.js';

export interface BreakerSettings {
  /** Consecutive failures (timeouts, lost links) that open it. */
  readonly failures: number;
  /** How long it stays open before a probe may go. */
  readonly coolDownMs: number;
}

export interface RateSettings {
  /** Tokens added per second. */
  readonly perSecond: number;
  /** Most tokens held (a burst after a quiet time). */
  readonly burst: number;
}

/** A kind's guard settings (`defineDevice({ guards })`); each field defaults. */
export interface GuardSettings {
  readonly breaker?: Partial<BreakerSettings>;
  readonly rate?: Partial<RateSettings>;
}

export const DEFAULT_BREAKER: BreakerSettings = { failures: 5, coolDownMs: 30_000 };
export const DEFAULT_DEVICE_RATE: RateSettings = { perSecond: 5, burst: 10 };
export const DEFAULT_FLEET_RATE: RateSettings = { perSecond: 200, burst: 400 };

export type BreakerState = 'closed' | 'open' | 'halfOpen';

/** A device's breaker as the views show it. */
export interface BreakerView {
  /** `halfOpen` once the cool-down is over: the next command is the probe. */
  readonly state: BreakerState;
  readonly consecutiveFailures: number;
  /** How many times it opened (since the app started). */
  readonly opens: number;
  /** Wall-clock ms when a probe may go; null while closed. */
  readonly nextProbeAt: number | null;
  /** Whether a probe is on its way now. */
  readonly probing: boolean;
  /** The last failure that counted, e.g. `timedOut: no reply from pump-7 within 30000 ms`. */
  readonly lastFailure: string | null;
  readonly settings: BreakerSettings;
}

export interface CommandGuards extends CommandGuard {
  /** The device's breaker (closed with no failures for a device never seen). */
  breaker(deviceId: string): BreakerView;
  /** Only the state, with no allocation: for the fleet table's rows. */
  breakerState(deviceId: string): BreakerState;
  /** The device's bucket settings and the tokens it holds now. */
  rate(deviceId: string): RateSettings & { readonly tokens: number };
  /** Drops a device's state (it was removed from the fleet). */
  forget(deviceId: string): void;
  /**
   * Called with the device id whenever a breaker changes state (opens, turns half-open at the end
   * of the cool-down, closes); the returned function stops it.
   */
  listen(listener: (deviceId: string) => void): () => void;
}

export interface CommandGuardsOptions {
  readonly clock: Clock;
  /** The device's kind settings; undefined: defaults. */
  settingsOf(deviceId: string): GuardSettings | undefined;
  /** The fleet-wide bucket; default {@link DEFAULT_FLEET_RATE}. */
  readonly fleetRate?: Partial<RateSettings>;
}

/** A token bucket on a monotonic clock. */
export interface TokenBucket {
  tokens: number;
  at: number;
}

/** Tokens now: what it held plus what came in since, at most `burst`. Mutates the bucket. */
export function refill(bucket: TokenBucket, rate: RateSettings, nowMs: number): number {
  const elapsed = Math.max(0, nowMs - bucket.at);
  bucket.tokens = Math.min(rate.burst, bucket.tokens + (elapsed * rate.perSecond) / 1000);
  bucket.at = nowMs;
  return bucket.tokens;
}

/** How long until the bucket holds a whole token (0 when it does). */
export const waitForTokenMs = (bucket: TokenBucket, rate: RateSettings): number =>
  // The epsilon keeps float noise (0.998 tokens → 1.0000000000000009 ms) from adding a millisecond.
  bucket.tokens >= 1 ? 0 : Math.ceil(((1 - bucket.tokens) * 1000) / rate.perSecond - 1e-9);

/** Settings with defaults filled in; throws naming the field for a bad one (misuse, at the boundary). */
export function resolveGuardSettings(
  where: string,
  settings: GuardSettings | undefined,
): { readonly breaker: BreakerSettings; readonly rate: RateSettings } {
  const breaker = { ...DEFAULT_BREAKER, ...settings?.breaker };
  const rate = resolveRate(`${where}.rate`, settings?.rate, DEFAULT_DEVICE_RATE);
  if (!(Number.isSafeInteger(breaker.failures) && breaker.failures >= 1))
    throw new Error(`${where}.breaker.failures must be an integer ≥ 1, got ${breaker.failures}`);
  if (!(Number.isFinite(breaker.coolDownMs) && breaker.coolDownMs > 0))
    throw new Error(`${where}.breaker.coolDownMs must be > 0 ms, got ${breaker.coolDownMs}`);
  return { breaker, rate };
}

export function resolveRate(
  where: string,
  rate: Partial<RateSettings> | undefined,
  defaults: RateSettings,
): RateSettings {
  const r = { ...defaults, ...rate };
  if (!(Number.isFinite(r.perSecond) && r.perSecond > 0))
    throw new Error(`${where}.perSecond must be > 0, got ${r.perSecond}`);
  if (!(Number.isFinite(r.burst) && r.burst >= 1))
    throw new Error(`${where}.burst must be ≥ 1, got ${r.burst}`);
  return r;
}

/** Whether a final status says the device or its wire is dead (counts towards opening). */
export function isBreakerFailure(command: TrackedCommand): boolean {
  if (command.status === 'timedOut') return true;
  if (command.status !== 'failed') return false;
  const code = command.error?.code;
  return code === 'linkLost' || code === 'noLink';
}

/** Whether a final status is an answer from the device (it is alive). */
const isAnswer = (command: TrackedCommand): boolean =>
  command.status === 'succeeded' || (command.status === 'failed' && !isBreakerFailure(command));

interface DeviceGuard {
  readonly breaker: BreakerSettings;
  readonly rate: RateSettings;
  readonly bucket: TokenBucket;
  open: boolean;
  failures: number;
  opens: number;
  /** Wall ms; meaningful while open. */
  nextProbeAt: number;
  /** `claimed` between the check and the admission; then the probe's command id. */
  probe: string | undefined;
  probeClaimedAt: number;
  lastFailure: string | null;
  /** Fires at the end of the cool-down, so views see the breaker turn half-open without a command. */
  coolDown: ClockHandle | undefined;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function createCommandGuards(options: CommandGuardsOptions): CommandGuards {
  const { clock } = options;
  const fleetRate = resolveRate('fleetRate', options.fleetRate, DEFAULT_FLEET_RATE);
  const fleetBucket: TokenBucket = { tokens: fleetRate.burst, at: clock.now() };
  const devices = new Map<string, DeviceGuard>();
  const listeners = new Set<(deviceId: string) => void>();

  function guardOf(deviceId: string): DeviceGuard {
    let g = devices.get(deviceId);
    if (!g) {
      const s = resolveGuardSettings('guards', options.settingsOf(deviceId));
      g = {
        ...s,
        bucket: { tokens: s.rate.burst, at: clock.now() },
        open: false,
        failures: 0,
        opens: 0,
        nextProbeAt: 0,
        probe: undefined,
        probeClaimedAt: 0,
        lastFailure: null,
        coolDown: undefined,
      };
      devices.set(deviceId, g);
    }
    return g;
  }

  function changed(deviceId: string): void {
    for (const l of listeners) l(deviceId);
  }

  function state(g: DeviceGuard | undefined): BreakerState {
    if (!g?.open) return 'closed';
    return g.probe !== undefined || clock.wallNow() >= g.nextProbeAt ? 'halfOpen' : 'open';
  }

  function openBreaker(deviceId: string, g: DeviceGuard): void {
    g.open = true;
    g.opens++;
    g.probe = undefined;
    g.nextProbeAt = clock.wallNow() + g.breaker.coolDownMs;
    cancelCoolDown(g);
    g.coolDown = clock.setTimeout(() => {
      g.coolDown = undefined;
      changed(deviceId);
    }, g.breaker.coolDownMs);
    changed(deviceId);
  }

  function cancelCoolDown(g: DeviceGuard): void {
    if (g.coolDown) clock.clearTimeout(g.coolDown);
    g.coolDown = undefined;
  }

  function close(deviceId: string, g: DeviceGuard): void {
    const was = g.open;
    g.open = false;
    g.failures = 0;
    g.probe = undefined;
    cancelCoolDown(g);
    if (was) changed(deviceId);
  }

  function refuseOpen(deviceId: string, g: DeviceGuard, why: string): CommandFailure {
    return {
      code: 'circuitOpen',
      message: `${deviceId}: the circuit breaker is open after ${g.failures} failures in a row (last: ${g.lastFailure ?? 'unknown'}); ${why}`,
      retryAt: g.nextProbeAt,
    };
  }

  return {
    check({ deviceId }) {
      const g = guardOf(deviceId);
      const wall = clock.wallNow();
      let probes = false;
      if (g.open) {
        if (wall < g.nextProbeAt)
          return refuseOpen(deviceId, g, `the next probe may go at ${iso(g.nextProbeAt)}`);
        // A claim never admitted (refused later in the submit) would block every probe: it lapses.
        const lapsed = g.probe === 'claimed' && wall - g.probeClaimedAt > g.breaker.coolDownMs;
        if (g.probe !== undefined && !lapsed)
          return refuseOpen(deviceId, g, 'a probe is on its way; wait for its answer');
        probes = true;
      }
      const now = clock.now();
      refill(g.bucket, g.rate, now);
      refill(fleetBucket, fleetRate, now);
      if (g.bucket.tokens < 1) {
        const retryAt = wall + waitForTokenMs(g.bucket, g.rate);
        return {
          code: 'rateLimited',
          message: `${deviceId}: at most ${g.rate.perSecond} commands a second (burst ${g.rate.burst}); retry at ${iso(retryAt)}`,
          retryAt,
        };
      }
      if (fleetBucket.tokens < 1) {
        const retryAt = wall + waitForTokenMs(fleetBucket, fleetRate);
        return {
          code: 'rateLimited',
          message: `the fleet takes at most ${fleetRate.perSecond} commands a second (burst ${fleetRate.burst}); retry at ${iso(retryAt)}`,
          retryAt,
        };
      }
      g.bucket.tokens -= 1;
      fleetBucket.tokens -= 1;
      if (probes) {
        g.probe = 'claimed';
        g.probeClaimedAt = wall;
      }
      return undefined;
    },

    admitted(command) {
      const g = devices.get(command.deviceId);
      if (g?.open && g.probe === 'claimed') g.probe = command.commandId;
    },

    settled(command) {
      const { deviceId } = command;
      const g = devices.get(deviceId);
      if (!g) return;
      if (isAnswer(command)) {
        close(deviceId, g);
        return;
      }
      const isProbe = g.open && g.probe === command.commandId;
      if (!isBreakerFailure(command)) {
        if (isProbe) g.probe = undefined; // neutral: the next command probes
        return;
      }
      g.failures++;
      g.lastFailure = `${command.error?.code ?? command.status}: ${command.error?.message ?? ''}`.slice(
        0,
        300,
      );
      if (isProbe || (!g.open && g.failures >= g.breaker.failures)) openBreaker(deviceId, g);
    },

    breaker(deviceId) {
      const g = devices.get(deviceId);
      const settings = g?.breaker ?? resolveGuardSettings('guards', options.settingsOf(deviceId)).breaker;
      return {
        state: state(g),
        consecutiveFailures: g?.failures ?? 0,
        opens: g?.opens ?? 0,
        nextProbeAt: g?.open ? g.nextProbeAt : null,
        probing: g?.open === true && g.probe !== undefined,
        lastFailure: g?.lastFailure ?? null,
        settings,
      };
    },

    breakerState: (deviceId) => state(devices.get(deviceId)),

    rate(deviceId) {
      const g = guardOf(deviceId);
      return { ...g.rate, tokens: refill(g.bucket, g.rate, clock.now()) };
    },

    forget(deviceId) {
      const g = devices.get(deviceId);
      if (g) cancelCoolDown(g);
      devices.delete(deviceId);
    },

    listen(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
  };
}

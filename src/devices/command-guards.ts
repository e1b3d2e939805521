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
 * Firmware update jobs are not commands, but the breaker guards them too ({@link
 * CommandGuards.beginWork}, {@link CommandGuards.endWork}; src/firmware/firmware-updates.ts): a job
 * for a device whose breaker is open does not start (refused `circuitOpen` with the probe time);
 * once it is half-open the job may go as the probe; and the job's end counts like a command's: an
 * answer from the device (success, or its own error code) closes the breaker, a transfer that
 * timed out (`stalled`, `rebootTimeout`) is a failure. Jobs take no rate-limit token: one job is
 * one piece of work, its chunks are not commands.
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
import type { Clock } from '../runtime/clock.js';
import type {
  BreakerEnv,
  BreakerOutcome,
  BreakerSettings,
  BreakerState,
  BreakerView,
  DeviceBreaker,
} from './command-guards-breaker.js';
import {
  admitProbe,
  breakerStateOf,
  breakerView,
  cancelCoolDown,
  checkBreaker,
  claimProbe,
  DEFAULT_BREAKER,
  settleBreaker,
} from './command-guards-breaker.js';
import type { RateSettings, TokenBucket } from './command-guards-rate.js';
import {
  DEFAULT_DEVICE_RATE,
  DEFAULT_FLEET_RATE,
  refill,
  resolveRate,
  takeTokens,
} from './command-guards-rate.js';
import type { CommandFailure, CommandGuard } from './command-tracker.js';

export type { BreakerOutcome, BreakerSettings, BreakerState, BreakerView } from './command-guards-breaker.js';
export { DEFAULT_BREAKER, isBreakerFailure } from './command-guards-breaker.js';
export type { RateSettings, TokenBucket } from './command-guards-rate.js';
export {
  DEFAULT_DEVICE_RATE,
  DEFAULT_FLEET_RATE,
  refill,
  resolveRate,
  waitForTokenMs,
} from './command-guards-rate.js';

/** A kind's guard settings (`defineDevice({ guards })`); each field defaults. */
export interface GuardSettings {
  readonly breaker?: Partial<BreakerSettings>;
  readonly rate?: Partial<RateSettings>;
}

export interface CommandGuards extends CommandGuard {
  /** The device's breaker (closed with no failures for a device never seen). */
  breaker(deviceId: string): BreakerView;
  /** Only the state, with no allocation: for the fleet table's rows. */
  breakerState(deviceId: string): BreakerState;
  /** The device's bucket settings and the tokens it holds now. */
  rate(deviceId: string): RateSettings & { readonly tokens: number };
  /**
   * Work on the device that is not a command (a firmware update job), before it starts: undefined
   * lets it start — while the breaker is half-open, as the probe, known by `workId` — and a
   * `circuitOpen` refusal (with `retryAt`, the probe time) while it is open. Takes no token.
   *
   * @example
   * const refused = guards.beginWork('pump-7', 'fw-1a2b:3'); // undefined, or { code: 'circuitOpen', retryAt }
   */
  beginWork(deviceId: string, workId: string): CommandFailure | undefined;
  /**
   * The end of work begun with {@link beginWork}, in a command's terms: `succeeded`, or `failed`
   * with the device's own code (it answered: the breaker closes); `timedOut`, or `failed` with
   * `linkLost`/`noLink` (a failure: counted, and it may open); `cancelled` (neutral).
   */
  endWork(deviceId: string, workId: string, end: Omit<BreakerOutcome, 'commandId'>): void;
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

/** A device's breaker and its bucket, made at its first command. */
interface DeviceGuard extends DeviceBreaker {
  readonly rate: RateSettings;
  readonly bucket: TokenBucket;
}

export function createCommandGuards(options: CommandGuardsOptions): CommandGuards {
  const { clock } = options;
  const fleetRate = resolveRate('fleetRate', options.fleetRate, DEFAULT_FLEET_RATE);
  const fleetBucket: TokenBucket = { tokens: fleetRate.burst, at: clock.now() };
  const devices = new Map<string, DeviceGuard>();
  const listeners = new Set<(deviceId: string) => void>();
  const env: BreakerEnv = {
    clock,
    changed(deviceId) {
      for (const l of listeners) l(deviceId);
    },
  };

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

  return {
    check({ deviceId }) {
      const g = guardOf(deviceId);
      const wall = clock.wallNow();
      // The breaker first: a command it refuses takes no token.
      const breaker = checkBreaker(deviceId, g, wall);
      if (breaker !== undefined && breaker !== 'probe') return breaker;
      const limited = takeTokens(deviceId, g, fleetBucket, fleetRate, clock.now(), wall);
      if (limited) return limited;
      if (breaker === 'probe') claimProbe(g, wall);
      return undefined;
    },

    admitted(command) {
      admitProbe(devices.get(command.deviceId), command.commandId);
    },

    settled(command) {
      const g = devices.get(command.deviceId);
      if (g) settleBreaker(env, command.deviceId, g, command);
    },

    beginWork(deviceId, workId) {
      const g = guardOf(deviceId);
      const wall = clock.wallNow();
      const breaker = checkBreaker(deviceId, g, wall);
      if (breaker === undefined) return undefined;
      if (breaker !== 'probe') return breaker;
      claimProbe(g, wall);
      admitProbe(g, workId);
      return undefined;
    },

    endWork(deviceId, workId, end) {
      const g = devices.get(deviceId);
      if (g) settleBreaker(env, deviceId, g, { ...end, commandId: workId });
    },

    breaker(deviceId) {
      const g = devices.get(deviceId);
      const settings = g?.breaker ?? resolveGuardSettings('guards', options.settingsOf(deviceId)).breaker;
      return breakerView(g, settings, clock);
    },

    breakerState: (deviceId) => breakerStateOf(devices.get(deviceId), clock),

    rate(deviceId) {
      const g = guardOf(deviceId);
      return { ...g.rate, tokens: refill(g.bucket, g.rate, clock.now()) };
    },

    forget(deviceId) {
      const g = devices.get(deviceId);
      if (g) cancelCoolDown(clock, g);
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

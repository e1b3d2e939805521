/**
 * The command guards' circuit breaker, one per device (command-guards.ts has the whole story):
 * `closed` → `open` after `failures` dead-wire failures in a row → `halfOpen` at the end of the
 * cool-down, where one real command goes through as the probe → `closed` on any answer, `open`
 * again when the probe fails. Transitions are told to the guards' listeners; the cool-down's end
 * too, by a timer, so views see `halfOpen` without a command.
 *
 * @example
 * const failure = checkBreaker('pump-7', g, clock.wallNow()); // undefined | 'probe' | a circuitOpen refusal
 */
import type { Clock, ClockHandle } from '../runtime/clock.js';
import type { CommandFailure, TrackedCommand } from './command-tracker.js';

export interface BreakerSettings {
  /** Consecutive failures (timeouts, lost links) that open it. */
  readonly failures: number;
  /** How long it stays open before a probe may go. */
  readonly coolDownMs: number;
}

export const DEFAULT_BREAKER: BreakerSettings = { failures: 5, coolDownMs: 30_000 };

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

/** One device's breaker: its settings and its state. */
export interface DeviceBreaker {
  readonly breaker: BreakerSettings;
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

/** What a breaker's transitions use: the clock (wall time, the cool-down timer) and whom to tell. */
export interface BreakerEnv {
  readonly clock: Clock;
  readonly changed: (deviceId: string) => void;
}

/**
 * What the breaker reads of a command's end: its id and final status. Work that is not a command
 * (a firmware update job, command-guards.ts `endWork`) ends in the same terms.
 */
export type BreakerOutcome = Pick<TrackedCommand, 'commandId' | 'status' | 'error'>;

/** Whether a final status says the device or its wire is dead (counts towards opening). */
export function isBreakerFailure(command: Pick<TrackedCommand, 'status' | 'error'>): boolean {
  if (command.status === 'timedOut') return true;
  if (command.status !== 'failed') return false;
  const code = command.error?.code;
  return code === 'linkLost' || code === 'noLink';
}

/** Whether a final status is an answer from the device (it is alive). */
const isAnswer = (command: BreakerOutcome): boolean =>
  command.status === 'succeeded' || (command.status === 'failed' && !isBreakerFailure(command));

/** The state as views show it; the clock is read only while open. No allocation. */
export function breakerStateOf(g: DeviceBreaker | undefined, clock: Clock): BreakerState {
  if (!g?.open) return 'closed';
  return g.probe !== undefined || clock.wallNow() >= g.nextProbeAt ? 'halfOpen' : 'open';
}

export function breakerView(
  g: DeviceBreaker | undefined,
  settings: BreakerSettings,
  clock: Clock,
): BreakerView {
  return {
    state: breakerStateOf(g, clock),
    consecutiveFailures: g?.failures ?? 0,
    opens: g?.opens ?? 0,
    nextProbeAt: g?.open ? g.nextProbeAt : null,
    probing: g?.open === true && g.probe !== undefined,
    lastFailure: g?.lastFailure ?? null,
    settings,
  };
}

function refuseOpen(deviceId: string, g: DeviceBreaker, why: string): CommandFailure {
  return {
    code: 'circuitOpen',
    message: `${deviceId}: the circuit breaker is open after ${g.failures} failures in a row (last: ${g.lastFailure ?? 'unknown'}); ${why}`,
    retryAt: g.nextProbeAt,
  };
}

/**
 * A command at wall time `wall`: undefined while closed (it goes), `probe` when open and a probe
 * may go (it would be the probe: {@link claimProbe} once it passes the other guards), else the
 * `circuitOpen` refusal.
 */
export function checkBreaker(
  deviceId: string,
  g: DeviceBreaker,
  wall: number,
): CommandFailure | 'probe' | undefined {
  if (!g.open) return undefined;
  if (wall < g.nextProbeAt)
    return refuseOpen(deviceId, g, `the next probe may go at ${new Date(g.nextProbeAt).toISOString()}`);
  // A claim never admitted (refused later in the submit) would block every probe: it lapses.
  const lapsed = g.probe === 'claimed' && wall - g.probeClaimedAt > g.breaker.coolDownMs;
  if (g.probe !== undefined && !lapsed)
    return refuseOpen(deviceId, g, 'a probe is on its way; wait for its answer');
  return 'probe';
}

export function claimProbe(g: DeviceBreaker, wall: number): void {
  g.probe = 'claimed';
  g.probeClaimedAt = wall;
}

/** The command admitted after a claim is the probe. */
export function admitProbe(g: DeviceBreaker | undefined, commandId: string): void {
  if (g?.open && g.probe === 'claimed') g.probe = commandId;
}

/** A command's final status: an answer closes it; a dead-wire failure counts, and may open it. */
export function settleBreaker(
  env: BreakerEnv,
  deviceId: string,
  g: DeviceBreaker,
  command: BreakerOutcome,
): void {
  if (isAnswer(command)) {
    closeBreaker(env, deviceId, g);
    return;
  }
  const isProbe = g.open && g.probe === command.commandId;
  if (!isBreakerFailure(command)) {
    if (isProbe) g.probe = undefined; // neutral: the next command probes
    return;
  }
  g.failures++;
  g.lastFailure = `${command.error?.code ?? command.status}: ${command.error?.message ?? ''}`.slice(0, 300);
  if (isProbe || (!g.open && g.failures >= g.breaker.failures)) openBreaker(env, deviceId, g);
}

function openBreaker(env: BreakerEnv, deviceId: string, g: DeviceBreaker): void {
  const { clock, changed } = env;
  g.open = true;
  g.opens++;
  g.probe = undefined;
  g.nextProbeAt = clock.wallNow() + g.breaker.coolDownMs;
  cancelCoolDown(clock, g);
  g.coolDown = clock.setTimeout(() => {
    g.coolDown = undefined;
    changed(deviceId);
  }, g.breaker.coolDownMs);
  changed(deviceId);
}

function closeBreaker(env: BreakerEnv, deviceId: string, g: DeviceBreaker): void {
  const was = g.open;
  g.open = false;
  g.failures = 0;
  g.probe = undefined;
  cancelCoolDown(env.clock, g);
  if (was) env.changed(deviceId);
}

export function cancelCoolDown(clock: Clock, g: DeviceBreaker): void {
  if (g.coolDown) clock.clearTimeout(g.coolDown);
  g.coolDown = undefined;
}

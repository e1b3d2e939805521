/**
 * A rollout: one image to many devices, in waves (docs/firmware.md §8). The devices are resolved
 * when it is created and frozen (the list is part of it); the waves are cumulative shares of that
 * list — the default is one canary device, then 5 %, 25 % and 100 % — each run with at most
 * `maxConcurrent` jobs at a time ({@link FirmwareUpdates}, one job per device).
 *
 * - The next wave starts when the share of the last wave's devices that succeeded reaches
 *   `successThreshold`, after `soakMs`; below it the rollout pauses with the reason.
 * - Failures past `maxFailures` (a count) or `maxFailureShare` (of the devices tried so far) pause
 *   the rollout or abort it, by `onFailure`; the reason is kept.
 * - A device whose update failed is tried again up to `retries` times, `retryDelayMs` × attempt
 *   later; a device refused `notSupported` or `wrongKind` is skipped, not retried.
 * - pause() lets running jobs finish and starts no new one; resume() goes on; cancel() cancels
 *   the jobs not yet applied and ends the rollout.
 *
 * Every device is started at most once per attempt and never after it succeeded, so no device is
 * flashed twice and none is skipped silently.
 *
 * @example
 * const r = createRollout({ runtime, updates, id: 'r1', image, version: '1.1.0', devices: ids });
 * r.start(); await r.done; r.snapshot().devices['pump-7'].state; // 'succeeded'
 */
import { err, type Failure, ok, type Result } from '../lib/result.js';
import type { Runtime } from '../runtime/runtime.js';
import type { FirmwareUpdates } from './firmware-updates.js';
import type { UpdateJob, UpdateJobSnapshot } from './update-job.js';

export type RolloutState = 'running' | 'paused' | 'completed' | 'aborted' | 'cancelled';
export type RolloutDeviceState = 'pending' | 'updating' | 'waitingRetry' | 'succeeded' | 'failed' | 'skipped';

export interface RolloutWave {
  /** Cumulative share of the device list this wave brings the rollout to (0 < share ≤ 1), or … */
  readonly share?: number;
  /** … a cumulative number of devices (the canary: `{ count: 1 }`). */
  readonly count?: number;
  /** Jobs at a time in this wave; default 10. */
  readonly maxConcurrent?: number;
}

export interface RolloutPolicy {
  readonly waves?: readonly RolloutWave[];
  /** Share of a wave's devices that must succeed before the next wave; default 1 (all). */
  readonly successThreshold?: number;
  /** Failures allowed in all (count) before `onFailure`; default none (only the share counts). */
  readonly maxFailures?: number;
  /** Share of the devices tried so far that may fail before `onFailure`; default 0.2. */
  readonly maxFailureShare?: number;
  /** What happens past the failure bounds; default `pause`. */
  readonly onFailure?: 'pause' | 'abort';
  /** Wait between a wave's end and the next wave's start; default 0. */
  readonly soakMs?: number;
  /** Attempts after a failure per device; default 1. */
  readonly retries?: number;
  /** Delay before a retry, times the attempt number; default 5000. */
  readonly retryDelayMs?: number;
  /** Jobs start only inside this window; running ones finish when it closes. Default: always. */
  readonly window?: MaintenanceWindow;
}

/**
 * A recurring maintenance window: it opens at `startMinute` of the day (in the host's time zone or
 * UTC) on `days`, and stays open `durationMinutes` (it may run past midnight).
 */
export interface MaintenanceWindow {
  /** Minute of the day it opens, 0 … 1439 (02:30 is 150). */
  readonly startMinute: number;
  /** How long it stays open, 1 … 1440 minutes. */
  readonly durationMinutes: number;
  /** Days it opens on, 0 = Sunday … 6 = Saturday; default every day. */
  readonly days?: readonly number[];
  /** Default `local` (the host's time zone). */
  readonly zone?: 'local' | 'utc';
}

const MINUTE = 60_000;

/** When the window opens on the calendar day of `at` (ms), and that day's weekday. */
function openingOn(w: MaintenanceWindow, at: number): { opens: number; day: number } {
  const d = new Date(at);
  if (w.zone === 'utc') {
    const midnight = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    return { opens: midnight + w.startMinute * MINUTE, day: d.getUTCDay() };
  }
  const opens = new Date(d.getFullYear(), d.getMonth(), d.getDate(), 0, w.startMinute).getTime();
  return { opens, day: d.getDay() };
}

const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/**
 * Reads a window as an operator writes it: `HH:MM-HH:MM`, optionally after days (`mon-fri`,
 * `sat,sun`) and before `utc`. `"02:00-04:00"`, `"mon-fri 22:00-02:00 utc"`.
 */
export function parseMaintenanceWindow(text: string): Result<MaintenanceWindow, Failure<'badWindow'>> {
  const bad = (why: string) =>
    err('badWindow', `maintenance window '${text.slice(0, 80)}': ${why} (e.g. "mon-fri 02:00-04:00 utc")`);
  const words = text.trim().toLowerCase().split(/\s+/);
  let zone: 'local' | 'utc' = 'local';
  if (words.at(-1) === 'utc' || words.at(-1) === 'local') zone = words.pop() as 'local' | 'utc';
  const times = words.pop();
  const m = times?.match(/^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$/);
  if (!m) return bad('the hours are HH:MM-HH:MM');
  const [h1, m1, h2, m2] = [m[1], m[2], m[3], m[4]].map(Number) as [number, number, number, number];
  if (h1 > 23 || h2 > 24 || m1 > 59 || m2 > 59 || (h2 === 24 && m2 > 0)) return bad('no such time of day');
  const startMinute = h1 * 60 + m1;
  const endMinute = h2 * 60 + m2;
  const durationMinutes = endMinute > startMinute ? endMinute - startMinute : endMinute + 1440 - startMinute;
  let days: number[] | undefined;
  if (words.length > 1) return bad('one list of days, then the hours');
  if (words.length === 1) {
    days = [];
    for (const part of words[0]!.split(',')) {
      const range = part.split('-');
      const ix = range.map((n) => DAY_NAMES.indexOf(n.slice(0, 3)));
      if (range.length > 2 || ix.some((i) => i < 0)) return bad(`'${part}' is not a day or a range of days`);
      const [a, b = a] = ix as [number, number?];
      for (let d = a; ; d = (d + 1) % 7) {
        if (!days.includes(d)) days.push(d);
        if (d === b) break;
      }
    }
    days.sort((x, y) => x - y);
  }
  return ok({ startMinute, durationMinutes, ...(days ? { days } : {}), zone });
}

/** The window as an operator reads it (`mon-fri 02:00-04:00 utc`). */
export function formatMaintenanceWindow(w: MaintenanceWindow): string {
  const hhmm = (min: number) =>
    `${String(Math.floor(min / 60) % 24).padStart(2, '0')}:${String(min % 60).padStart(2, '0')}`;
  const days = w.days && w.days.length < 7 ? `${w.days.map((d) => DAY_NAMES[d]).join(',')} ` : '';
  const end = w.startMinute + w.durationMinutes;
  // A window to midnight reads 24:00, as written ("00:00-24:00"), not 00:00.
  const endText = end === 1440 ? '24:00' : hhmm(end);
  return `${days}${hhmm(w.startMinute)}-${endText}${w.zone === 'utc' ? ' utc' : ''}`;
}

/**
 * Whether the window is open at `now`, and if not, when it opens next (ms). A window opened
 * yesterday may still be open after midnight.
 */
export function maintenanceWindowAt(
  w: MaintenanceWindow,
  now: number,
): { readonly open: boolean; readonly opensAt: number | undefined } {
  const onDay = (day: number) => w.days === undefined || w.days.includes(day);
  const DAY = 24 * 60 * MINUTE;
  for (const back of [0, 1]) {
    const o = openingOn(w, now - back * DAY);
    if (onDay(o.day) && o.opens <= now && now < o.opens + w.durationMinutes * MINUTE)
      return { open: true, opensAt: undefined };
  }
  for (let ahead = 0; ahead <= 8; ahead++) {
    // Noon of the day ahead: daylight-saving shifts never move it to another calendar day.
    const today = openingOn(w, now);
    const o = openingOn(w, today.opens - w.startMinute * MINUTE + 12 * 60 * MINUTE + ahead * DAY);
    if (onDay(o.day) && o.opens > now) return { open: false, opensAt: o.opens };
  }
  return { open: false, opensAt: undefined }; // no day in the list
}

export const DEFAULT_WAVES: readonly RolloutWave[] = [
  { count: 1, maxConcurrent: 1 },
  { share: 0.05 },
  { share: 0.25 },
  { share: 1 },
];

export interface RolloutDevice {
  readonly state: RolloutDeviceState;
  readonly wave: number;
  readonly attempts: number;
  /** The last job's step, and its error when it failed. */
  readonly step: string | undefined;
  readonly error: { readonly code: string; readonly message: string } | undefined;
}

export interface RolloutSnapshot {
  readonly id: string;
  readonly version: string;
  readonly sha256: string;
  readonly state: RolloutState;
  /** Why it paused or aborted. */
  readonly reason: string | undefined;
  /** Its maintenance window as written (`mon-fri 02:00-04:00 utc`); undefined when it has none. */
  readonly window?: string | undefined;
  /** Outside its maintenance window: when the window opens next (wall ms); undefined when open or none. */
  readonly windowOpensAt?: number | undefined;
  /** 0-based index of the wave running (or last run). */
  readonly wave: number;
  /** Each wave's last device index (exclusive) in `order`. */
  readonly waveEnds: readonly number[];
  /** The frozen device list, in the order the waves take it. */
  readonly order: readonly string[];
  readonly devices: Readonly<Record<string, RolloutDevice>>;
  readonly counts: Readonly<Record<RolloutDeviceState, number>>;
  readonly createdBy: string;
  readonly createdAt: number;
}

export interface RolloutOptions {
  readonly runtime: Pick<Runtime, 'clock' | 'logger'>;
  readonly updates: Pick<FirmwareUpdates, 'start' | 'cancel'>;
  readonly id: string;
  readonly image: Uint8Array;
  readonly version: string;
  readonly sha256: string;
  readonly devices: readonly string[];
  readonly policy?: RolloutPolicy;
  readonly actor?: string;
  readonly onChange?: (snapshot: RolloutSnapshot) => void;
  /** Continue a rollout saved before an app restart (its last snapshot). */
  readonly restore?: Pick<RolloutSnapshot, 'state' | 'reason' | 'wave' | 'devices' | 'createdAt'>;
  /** The device's update job, when one runs (a restored rollout follows the jobs restored with it). */
  readonly findJob?: (deviceId: string) => UpdateJob | undefined;
  /** The version a device runs now: one already on the rollout's version is not flashed again. */
  readonly runningVersion?: (deviceId: string) => string | undefined;
}

export interface Rollout {
  readonly id: string;
  start(): void;
  pause(reason?: string): void;
  resume(): void;
  cancel(): void;
  snapshot(): RolloutSnapshot;
  /** Settles when the rollout completes, aborts or is cancelled (not on pause). */
  readonly done: Promise<RolloutSnapshot>;
}

/** Each wave's end index in a list of `n` devices: cumulative, increasing, the last one `n`. */
export function waveEnds(n: number, waves: readonly RolloutWave[]): number[] {
  const ends: number[] = [];
  let last = 0;
  for (const w of waves) {
    const end = Math.min(n, w.count ?? Math.ceil((w.share ?? 1) * n));
    if (end > last) {
      ends.push(end);
      last = end;
    }
  }
  if (last < n) ends.push(n);
  return ends;
}

export function createRollout(options: RolloutOptions): Rollout {
  const { runtime, updates, id, image, version, sha256 } = options;
  const log = runtime.logger;
  const clock = runtime.clock;
  const policy = options.policy ?? {};
  const waves = policy.waves ?? DEFAULT_WAVES;
  const order = [...new Set(options.devices)];
  const ends = waveEnds(order.length, waves);
  const successThreshold = policy.successThreshold ?? 1;
  const maxFailureShare = policy.maxFailureShare ?? 0.2;
  const retries = policy.retries ?? 1;
  const retryDelayMs = policy.retryDelayMs ?? 5000;
  const createdAt = options.restore?.createdAt ?? clock.wallNow();
  const actor = options.actor ?? 'api';
  const devices = new Map<
    string,
    {
      state: RolloutDeviceState;
      wave: number;
      attempts: number;
      step?: string;
      error?: { code: string; message: string };
    }
  >();
  ends.forEach((end, w) => {
    for (let i = w === 0 ? 0 : ends[w - 1]!; i < end; i++)
      devices.set(order[i]!, { state: 'pending', wave: w, attempts: 0 });
  });
  let state: RolloutState = options.restore?.state ?? 'running';
  let reason: string | undefined = options.restore?.reason;
  let wave = options.restore?.wave ?? 0;
  for (const [deviceId, saved] of Object.entries(options.restore?.devices ?? {})) {
    const d = devices.get(deviceId);
    if (!d) continue;
    d.state = saved.state;
    d.attempts = saved.attempts;
    if (saved.step !== undefined) d.step = saved.step;
    if (saved.error !== undefined) d.error = { ...saved.error };
  }
  let started = false;
  let soaking = false;
  let windowOpensAt: number | undefined;
  let windowTimer = false;
  /** The wave whose success threshold the operator waived by resuming. */
  let waived = -1;
  let resolveDone: (s: RolloutSnapshot) => void = () => {};
  const done = new Promise<RolloutSnapshot>((r) => {
    resolveDone = r;
  });

  const concurrency = (w: number) => waves[Math.min(w, waves.length - 1)]?.maxConcurrent ?? 10;

  function counts(): Record<RolloutDeviceState, number> {
    const c: Record<RolloutDeviceState, number> = {
      pending: 0,
      updating: 0,
      waitingRetry: 0,
      succeeded: 0,
      failed: 0,
      skipped: 0,
    };
    for (const d of devices.values()) c[d.state]++;
    return c;
  }

  function snapshot(): RolloutSnapshot {
    const out: Record<string, RolloutDevice> = {};
    for (const [k, d] of devices)
      out[k] = { state: d.state, wave: d.wave, attempts: d.attempts, step: d.step, error: d.error };
    return {
      id,
      version,
      sha256,
      state,
      reason,
      window: policy.window ? formatMaintenanceWindow(policy.window) : undefined,
      windowOpensAt,
      wave,
      waveEnds: ends,
      order,
      devices: out,
      counts: counts(),
      createdBy: actor,
      createdAt,
    };
  }

  function changed(): void {
    options.onChange?.(snapshot());
  }

  function end(final: RolloutState, why?: string): void {
    state = final;
    reason = why;
    log.info('rollout ended', { rollout: id, state: final, ...(why ? { reason: why } : {}) });
    changed();
    resolveDone(snapshot());
  }

  function inWave(w: number) {
    return [...devices.entries()].filter(([, d]) => d.wave === w);
  }

  /** Failure bounds over the devices tried so far (finished ones). */
  function pastFailureBounds(): string | undefined {
    const c = counts();
    const tried = c.succeeded + c.failed;
    if (policy.maxFailures !== undefined && c.failed > policy.maxFailures)
      return `${c.failed} devices failed, more than the ${policy.maxFailures} allowed`;
    if (tried > 0 && c.failed / tried > maxFailureShare && c.failed > 0)
      return `${c.failed} of ${tried} devices failed (${Math.round((c.failed / tried) * 100)} %), more than the ${Math.round(maxFailureShare * 100)} % allowed`;
    return undefined;
  }

  let pumping = false;
  let pumpAgain = false;
  /** Starts what the wave allows; re-entered (a device done at once), it runs once more after. */
  function pump(): void {
    if (pumping) {
      pumpAgain = true;
      return;
    }
    pumping = true;
    try {
      do {
        pumpAgain = false;
        pumpOnce();
      } while (pumpAgain);
    } finally {
      pumping = false;
    }
  }

  /** Whether jobs may start now; outside the window, a pump is set for its next opening. */
  function windowAllows(): boolean {
    if (!policy.window) return true;
    const at = maintenanceWindowAt(policy.window, clock.wallNow());
    if (at.opensAt !== windowOpensAt) {
      windowOpensAt = at.opensAt;
      changed();
    }
    if (at.open) return true;
    if (!windowTimer && at.opensAt !== undefined) {
      windowTimer = true;
      clock.setTimeout(
        () => {
          windowTimer = false;
          pump();
        },
        Math.max(1000, at.opensAt - clock.wallNow()),
      );
    }
    return false;
  }

  function pumpOnce(): void {
    if (state !== 'running' || soaking) return;
    const here = inWave(wave);
    let running = here.filter(([, d]) => d.state === 'updating').length;
    const mayStart = here.some(([, d]) => d.state === 'pending') ? windowAllows() : true;
    for (const [deviceId, d] of here) {
      if (!mayStart || running >= concurrency(wave)) break;
      if (d.state !== 'pending') continue;
      launch(deviceId, d);
      running++;
    }
    const open = here.filter(
      ([, d]) => d.state === 'pending' || d.state === 'updating' || d.state === 'waitingRetry',
    );
    if (open.length > 0) return;
    // The wave is over.
    const ok = here.filter(([, d]) => d.state === 'succeeded').length;
    const share = here.length === 0 ? 1 : ok / here.length;
    if (share < successThreshold && waived !== wave) {
      pauseFor(
        `wave ${wave + 1}: ${ok} of ${here.length} succeeded, below the ${Math.round(successThreshold * 100)} % needed`,
      );
      return;
    }
    if (wave + 1 >= ends.length) {
      end('completed');
      return;
    }
    const soakMs = policy.soakMs ?? 0;
    const nextWave = () => {
      soaking = false;
      wave++;
      changed();
      pump();
    };
    if (soakMs > 0) {
      soaking = true;
      clock.setTimeout(nextWave, soakMs);
    } else nextWave();
  }

  function launch(
    deviceId: string,
    d: {
      state: RolloutDeviceState;
      attempts: number;
      step?: string;
      error?: { code: string; message: string };
    },
  ): void {
    if (options.runningVersion?.(deviceId) === version) {
      d.state = 'succeeded';
      d.step = 'alreadyRunning';
      changed();
      pump();
      return;
    }
    d.attempts++;
    const r = updates.start(deviceId, { image, version, actor: `rollout:${id}` });
    if (!r.ok && r.error.code === 'alreadyRunning') {
      d.state = 'succeeded';
      d.step = 'alreadyRunning';
      changed();
      pump();
      return;
    }
    if (!r.ok) {
      settle(deviceId, d, { code: r.error.code, message: r.error.message }, r.error.code === 'notSupported');
      return;
    }
    d.state = 'updating';
    d.step = r.value.snapshot().step;
    changed();
    watch(deviceId, d, r.value);
  }

  /** Follows a device's job to its end. */
  function watch(
    deviceId: string,
    d: {
      state: RolloutDeviceState;
      attempts: number;
      step?: string;
      error?: { code: string; message: string };
    },
    job: UpdateJob,
  ): void {
    void job.done.then((final: UpdateJobSnapshot) => {
      d.step = final.step;
      if (final.step === 'succeeded') {
        d.state = 'succeeded';
        d.error = undefined;
        changed();
        pump();
        return;
      }
      if (final.step === 'cancelled' && state === 'cancelled') return;
      settle(
        deviceId,
        d,
        final.error
          ? { code: final.error.code, message: final.error.message }
          : { code: final.step, message: final.step },
        false,
      );
    });
  }

  /** A failed attempt: retried later, or failed for good (then the failure bounds are checked). */
  function settle(
    deviceId: string,
    d: { state: RolloutDeviceState; attempts: number; error?: { code: string; message: string } },
    error: { code: string; message: string },
    skip: boolean,
  ): void {
    d.error = error;
    if (skip) {
      d.state = 'skipped';
      changed();
      pump();
      return;
    }
    if (d.attempts <= retries) {
      d.state = 'waitingRetry';
      changed();
      clock.setTimeout(() => {
        if (d.state !== 'waitingRetry') return;
        d.state = 'pending';
        pump();
      }, retryDelayMs * d.attempts);
      return;
    }
    d.state = 'failed';
    log.warn('rollout: device failed', { rollout: id, deviceId, code: error.code, message: error.message });
    changed();
    const past = pastFailureBounds();
    if (past !== undefined && state === 'running') {
      if (policy.onFailure === 'abort') {
        abortRunning();
        end('aborted', past);
        return;
      }
      pauseFor(past);
      return;
    }
    pump();
  }

  function pauseFor(why: string): void {
    state = 'paused';
    reason = why;
    log.warn('rollout paused', { rollout: id, reason: why });
    changed();
  }

  function abortRunning(): void {
    for (const [deviceId, d] of devices) {
      if (d.state === 'updating') updates.cancel(deviceId);
      if (d.state === 'pending' || d.state === 'waitingRetry') d.state = 'skipped';
    }
  }

  return {
    id,
    start() {
      if (started) return;
      started = true;
      if (options.restore) {
        // Jobs that ran when the app stopped continue (restored with it); the rest start again.
        for (const [deviceId, d] of devices) {
          if (d.state === 'waitingRetry') d.state = 'pending';
          if (d.state !== 'updating') continue;
          const job = options.findJob?.(deviceId);
          if (job) watch(deviceId, d, job);
          else {
            d.state = 'pending';
            d.attempts = Math.max(0, d.attempts - 1);
          }
        }
        log.info('rollout resumed', { rollout: id, state, wave: wave + 1 });
        changed();
        if (state === 'running') pump();
        else if (state !== 'paused') resolveDone(snapshot());
        return;
      }
      log.info('rollout started', { rollout: id, version, devices: order.length, waves: ends.length, actor });
      changed();
      pump();
    },
    pause(why = 'paused by the operator') {
      if (state === 'running') pauseFor(why);
    },
    resume() {
      if (state !== 'paused') return;
      state = 'running';
      reason = undefined;
      // The operator has seen why it paused: this wave's threshold no longer holds it back.
      waived = wave;
      changed();
      pump();
    },
    cancel() {
      if (state === 'completed' || state === 'aborted' || state === 'cancelled') return;
      state = 'cancelled';
      abortRunning();
      end('cancelled', 'cancelled by the operator');
    },
    snapshot,
    done,
  };
}

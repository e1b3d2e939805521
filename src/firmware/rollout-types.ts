/**
 * The types of a rollout (rollout.ts makes it): its policy (waves, thresholds, retries, window),
 * its snapshot (what the views show and the store saves, and what a restored one starts from),
 * its options and its interface.
 *
 * @example
 * const policy: RolloutPolicy = { waves: [{ count: 1 }, { share: 1, maxConcurrent: 5 }], onFailure: 'abort' };
 */
import type { Failure, Result } from '../lib/result.js';
import type { Runtime } from '../runtime/runtime.js';
import type { FirmwareUpdates } from './firmware-updates.js';
import type { MaintenanceWindow } from './maintenance-window.js';
import type { UpdateJobSnapshot } from './update-job-types.js';

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
  /**
   * How long each device runs the new image on trial before its job confirms it; default the
   * job's (10 s). The host freezes the image's declared trial (`trialSeconds`, image-trial.ts) in
   * here when the rollout names none.
   */
  readonly trialMs?: number;
  /**
   * Telemetry checks of each device's trial as written (`temp<=90`, `rssi`; trial-checks.ts),
   * handed to every job the rollout starts; default none. Checked when the rollout is created and
   * when a saved one is read back.
   */
  readonly trialChecks?: readonly string[];
  /** Attempts after a failure per device; default 1. */
  readonly retries?: number;
  /** Delay before a retry, times the attempt number; default 5000. */
  readonly retryDelayMs?: number;
  /** Jobs start only inside this window; running ones finish when it closes. Default: always. */
  readonly window?: MaintenanceWindow;
}

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
  /** Soaking between two waves: when the next wave starts (wall ms); undefined otherwise. */
  readonly soakEndsAt?: number | undefined;
  /** The telemetry checks of each device's trial (its policy's); undefined when it has none. */
  readonly trialChecks?: readonly string[] | undefined;
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

/** What a rollout follows of one device's job: its step now, and its end. */
export interface RolloutJob {
  snapshot(): Pick<UpdateJobSnapshot, 'step'>;
  readonly done: Promise<Pick<UpdateJobSnapshot, 'step' | 'error'>>;
  /**
   * Calls `listener` at each step the job moves to before its end, where the rollout cannot see
   * the job itself (one another instance runs): the rollout's device list shows it.
   */
  onStep?(listener: (step: UpdateJobSnapshot['step']) => void): void;
}

/**
 * Why a device's job did not start. `retryAt` (wall ms) with `notTried`: nothing was tried on the
 * device (its circuit breaker is open, or in a cluster its owner cannot be reached now): it waits
 * until then and spends no attempt.
 */
export interface RolloutJobRefusal extends Failure<string> {
  readonly retryAt?: number;
  readonly notTried?: boolean;
}

/**
 * Where a rollout starts and cancels its devices' jobs: this instance's update jobs
 * ({@link FirmwareUpdates} is one), or in a cluster the jobs of the instances that run the devices
 * (src/host/rollout-remote-jobs.ts), whose start answers later.
 */
export interface RolloutJobs {
  start(
    deviceId: string,
    what: Parameters<FirmwareUpdates['start']>[1],
  ): Result<RolloutJob, RolloutJobRefusal> | Promise<Result<RolloutJob, RolloutJobRefusal>>;
  cancel(deviceId: string): unknown;
}

export interface RolloutOptions {
  readonly runtime: Pick<Runtime, 'clock' | 'logger'>;
  readonly updates: RolloutJobs;
  readonly id: string;
  readonly image: Uint8Array;
  readonly version: string;
  readonly sha256: string;
  readonly devices: readonly string[];
  readonly policy?: RolloutPolicy;
  readonly actor?: string;
  readonly onChange?: (snapshot: RolloutSnapshot) => void;
  /** Continue a rollout saved before an app restart (its last snapshot). */
  readonly restore?: Pick<
    RolloutSnapshot,
    'state' | 'reason' | 'wave' | 'devices' | 'createdAt' | 'soakEndsAt'
  >;
  /** The device's update job, when one runs (a restored rollout follows the jobs restored with it). */
  readonly findJob?: (deviceId: string) => RolloutJob | undefined;
  /** The version a device runs now: one already on the rollout's version is not flashed again. */
  readonly runningVersion?: (deviceId: string) => string | undefined;
}

export interface Rollout {
  readonly id: string;
  start(): void;
  pause(reason?: string): void;
  resume(): void;
  cancel(): void;
  /**
   * Another instance of a cluster runs it now (it took it over): this one starts no job for it
   * and reports no change any more; the jobs under way go on, followed by the new instance.
   */
  release(): void;
  snapshot(): RolloutSnapshot;
  /** Settles when the rollout completes, aborts or is cancelled (not on pause). */
  readonly done: Promise<RolloutSnapshot>;
}

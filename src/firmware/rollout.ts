/**
 * A rollout: one image to many devices, in waves (docs/firmware.md §8). The devices are resolved
 * when it is created and frozen (the list is part of it); the waves are cumulative shares of that
 * list — the default is one canary device, then 5 %, 25 % and 100 % — each run with at most
 * `maxConcurrent` jobs at a time ({@link FirmwareUpdates}, one job per device).
 *
 * - The next wave starts when the share of the last wave's devices that succeeded reaches
 *   `successThreshold`, after `soakMs` (the API's default: the image's own soak, image-soak.ts);
 *   below it the rollout pauses with the reason. While it soaks, the snapshot says when the next
 *   wave starts (`soakEndsAt`), and a rollout restored meanwhile soaks only what was left.
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
 * This file is the rollout's entry: its types (rollout-types.ts), its pure plan (rollout-plan.ts)
 * and its maintenance window (maintenance-window.ts) are re-exported from here; the process with
 * its timers is rollout-process.ts.
 *
 * @example
 * const r = createRollout({ runtime, updates, id: 'r1', image, version: '1.1.0', devices: ids });
 * r.start(); await r.done; r.snapshot().devices['pump-7'].state; // 'succeeded'
 */
import { RolloutProcess } from './rollout-process.js';
import type { Rollout, RolloutOptions } from './rollout-types.js';

export type { MaintenanceWindow } from './maintenance-window.js';
export {
  formatMaintenanceWindow,
  maintenanceWindowAt,
  parseMaintenanceWindow,
} from './maintenance-window.js';
export { DEFAULT_WAVES, waveEnds } from './rollout-plan.js';
export type {
  Rollout,
  RolloutDevice,
  RolloutDeviceState,
  RolloutOptions,
  RolloutPolicy,
  RolloutSnapshot,
  RolloutState,
  RolloutWave,
} from './rollout-types.js';

/** Makes the rollout (it starts on `start()`). */
export function createRollout(options: RolloutOptions): Rollout {
  const rollout = new RolloutProcess(options);
  return {
    id: options.id,
    start: () => rollout.start(),
    pause: (reason) => rollout.pause(reason),
    resume: () => rollout.resume(),
    cancel: () => rollout.cancel(),
    release: () => rollout.release(),
    snapshot: () => rollout.snapshot(),
    done: rollout.done,
  };
}

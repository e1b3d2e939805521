/**
 * Each device's trial, per image: a firmware image may declare in its signed manifest how long a
 * device runs it unconfirmed before its update job confirms it (`trialSeconds`, manifest.ts). A
 * rollout that sets its own `trialMs` keeps it; one that does not takes the image's; without
 * either the job's default applies (10 s, update-job-types.ts `soakMs`). A job started for one
 * device (the API, the reconciler) takes the image's.
 *
 * @example
 * const trialMs = jobTrialMs(policy.trialMs, image); // 120_000 for an image declaring 120 s
 * updates.start(id, { image: bytes, version, ...(trialMs !== undefined ? { settings: { soakMs: trialMs } } : {}) });
 */
import type { FirmwareImageRecord } from '../store/firmware-store.js';
import { declaredSeconds, ownElseImageMs } from './image-declared.js';
import { isTrialSeconds } from './manifest.js';

/** The trial the image's signed manifest declares, in seconds; undefined when it declares none. */
export function imageTrialSeconds(image: Pick<FirmwareImageRecord, 'manifest'>): number | undefined {
  return declaredSeconds(image, 'trialSeconds', isTrialSeconds);
}

/** A job's trial: the rollout's own (`requestedMs`), else its image's, else undefined (the job's default). */
export function jobTrialMs(
  requestedMs: number | undefined,
  image: Pick<FirmwareImageRecord, 'manifest'>,
): number | undefined {
  return ownElseImageMs(requestedMs, imageTrialSeconds(image));
}

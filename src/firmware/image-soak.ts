/**
 * The soak of a rollout, per image: a firmware image may declare in its signed manifest how long
 * a rollout of it waits between the end of a wave and the start of the next (`soakSeconds`,
 * manifest.ts). A rollout that sets its own `soakMs` (0 included) keeps it; one that does not
 * takes the image's; without either there is no soak.
 *
 * @example
 * const soakMs = rolloutSoakMs(args.soakMs, image); // 600_000 for an image declaring 600 s
 * createRollout({ ..., policy: { ...(soakMs !== undefined ? { soakMs } : {}) } });
 */
import type { FirmwareImageRecord } from '../store/firmware-store.js';
import { declaredSeconds, ownElseImageMs } from './image-declared.js';
import { isSoakSeconds } from './manifest.js';

/** The soak the image's signed manifest declares, in seconds; undefined when it declares none. */
export function imageSoakSeconds(image: Pick<FirmwareImageRecord, 'manifest'>): number | undefined {
  return declaredSeconds(image, 'soakSeconds', isSoakSeconds);
}

/** A rollout's soak between waves: its own (`requestedMs`), else its image's, else undefined (none). */
export function rolloutSoakMs(
  requestedMs: number | undefined,
  image: Pick<FirmwareImageRecord, 'manifest'>,
): number | undefined {
  return ownElseImageMs(requestedMs, imageSoakSeconds(image));
}

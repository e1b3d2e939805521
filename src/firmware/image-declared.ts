/**
 * What an image's signed manifest declares about its rollouts' timing (`soakSeconds`,
 * `trialSeconds`; manifest.ts), and a setting's own value winning over it: the one reading behind
 * image-soak.ts and image-trial.ts.
 *
 * @example
 * declaredSeconds(image, 'trialSeconds', isTrialSeconds); // 120, or undefined when it declares none
 * ownElseImageMs(undefined, 120); // 120_000; ownElseImageMs(0, 120) === 0
 */
import { isJsonObject } from '../lib/json.js';
import type { FirmwareImageRecord } from '../store/firmware-store.js';

/** The seconds the image's signed manifest declares in `field`; undefined when it declares none. */
export function declaredSeconds(
  image: Pick<FirmwareImageRecord, 'manifest'>,
  field: 'soakSeconds' | 'trialSeconds',
  valid: (value: unknown) => value is number,
): number | undefined {
  const signed = image.manifest.signed;
  const value = isJsonObject(signed) ? signed[field] : undefined;
  // Checked at import; a stored row edited since is read as declaring none.
  return valid(value) ? value : undefined;
}

/** A setting's own milliseconds (`requestedMs`, 0 included), else the image's seconds, else undefined. */
export function ownElseImageMs(
  requestedMs: number | undefined,
  imageSeconds: number | undefined,
): number | undefined {
  if (requestedMs !== undefined) return requestedMs;
  return imageSeconds === undefined ? undefined : imageSeconds * 1000;
}

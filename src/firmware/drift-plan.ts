/**
 * What the drift reconciler does with one drifting device (its spec asks for a version it does
 * not run), pure: wait for a job or rollout that holds it, give up after that version's last job
 * ended without success, wait for an image, wait for room under the cap, or start the update with
 * the image found. drift-updater.ts acts on it.
 *
 * @example
 * planDriftDevice({ version: '1.2.0', kind: 'pump', busy: false, last: undefined, images, ours: 0, maxConcurrent: 10 });
 * // { kind: 'start', image: { image: { version: '1.2.0', … }, … } }
 */
import type { ImageListing } from './firmware-images.js';

/** How a job ends without success: the reconciler does not try that version again by itself. */
export const UNSUCCESSFUL: readonly string[] = ['failed', 'rolledBack', 'cancelled'];

export type DriftPlan =
  /** A job runs on it, or a rollout holds it: a later pass. */
  | { readonly kind: 'held' }
  /** Its last job for this version ended `step` (failed, rolled back, cancelled). */
  | { readonly kind: 'gaveUp'; readonly step: string }
  /** No stored image of this version for its kind. */
  | { readonly kind: 'noImage' }
  /** The reconciler's jobs are at their cap: a later pass. */
  | { readonly kind: 'full' }
  | { readonly kind: 'start'; readonly image: ImageListing };

export function planDriftDevice(d: {
  /** The version its spec asks for. */
  readonly version: string;
  readonly kind: string;
  /** A job of it runs, or a rollout holds it. */
  readonly busy: boolean;
  /** Its current or last job. */
  readonly last: { readonly version: string; readonly step: string } | undefined;
  readonly images: readonly ImageListing[];
  /** Jobs the reconciler has running. */
  readonly ours: number;
  readonly maxConcurrent: number;
}): DriftPlan {
  if (d.busy) return { kind: 'held' };
  if (d.last && d.last.version === d.version && UNSUCCESSFUL.includes(d.last.step))
    return { kind: 'gaveUp', step: d.last.step };
  const image = d.images.find((l) => l.image.version === d.version && l.image.kinds.includes(d.kind));
  if (!image) return { kind: 'noImage' };
  if (d.ours >= d.maxConcurrent) return { kind: 'full' };
  return { kind: 'start', image };
}

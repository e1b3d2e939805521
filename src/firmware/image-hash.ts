/**
 * An image's SHA-256 (hex), computed once per image buffer: a rollout starts a job per device
 * with the same bytes, and the job's transfer id and `fw.begin` both need the hash (hashing 256 KiB
 * twice per job was 4 % of the host's CPU when 1,000 devices were updated). Image buffers are
 * never changed once handed to a job.
 *
 * @example
 * imageSha256(image); // 'e3b0c442…'
 */
import { createHash } from 'node:crypto';

const hashes = new WeakMap<Uint8Array, string>();

export function imageSha256(image: Uint8Array): string {
  let hash = hashes.get(image);
  if (hash === undefined) {
    hash = createHash('sha256').update(image).digest('hex');
    hashes.set(image, hash);
  }
  return hash;
}

/**
 * The files of stored firmware images (firmware-images.ts keeps their rows): one file per image,
 * named by its SHA-256, mode 0600, written durably (temporary name, fsync, rename, folder fsync);
 * read back checked against its size and hash; and the sweep of files no row names.
 *
 * @example
 * writeImageFile(imagesDir, sha256, bytes);
 * const r = await readImageFile(imagesDir, sha256, record); // ok(bytes) or 'corrupt'
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  openSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { err, type Failure, ok, type Result } from '../lib/result.js';
import type { Logger } from '../runtime/runtime.js';
import type { FirmwareImageRecord } from '../store/firmware-store.js';
import { sha256Hex } from './manifest.js';

/** Files left by an interrupted import are removed once they are this old. */
export const ORPHAN_AGE_MS = 60 * 60_000;

/**
 * Removes the files of `imagesDir` that `known` does not name, once they are {@link ORPHAN_AGE_MS}
 * old: younger ones may belong to an import running in another process.
 */
export function sweepOrphanFiles(
  imagesDir: string,
  known: ReadonlySet<string>,
  log: Logger,
  now = Date.now(),
): void {
  for (const name of readdirSync(imagesDir)) {
    if (known.has(name)) continue;
    const path = join(imagesDir, name);
    try {
      if (now - statSync(path).mtimeMs < ORPHAN_AGE_MS) continue;
      unlinkSync(path);
      log.info('firmware: removed a file no image refers to', { path });
    } catch (error) {
      log.warn('firmware: could not remove an orphan file', { path, error: (error as Error).message });
    }
  }
}

/** Writes an image's bytes as `<imagesDir>/<sha256>`, durably; throws when it cannot. */
export function writeImageFile(imagesDir: string, sha256: string, image: Uint8Array): void {
  const path = join(imagesDir, sha256);
  const tmp = join(imagesDir, `.${sha256}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    for (let off = 0; off < image.byteLength; ) off += writeSync(fd, image, off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  // The rename is durable once the folder itself is synced.
  const dirFd = openSync(imagesDir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/** Removes an image's file; one already gone is fine, another failure is logged. */
export function removeImageFile(imagesDir: string, sha256: string, log: Logger): void {
  try {
    unlinkSync(join(imagesDir, sha256));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      log.warn('firmware: could not remove an image file', { sha256, error: (error as Error).message });
  }
}

/** The bytes of a stored image's file, `corrupt` when unreadable or not the size and hash of its row. */
export async function readImageFile(
  imagesDir: string,
  sha256: string,
  row: Pick<FirmwareImageRecord, 'version' | 'size'>,
): Promise<Result<Uint8Array, Failure<'corrupt'>>> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(join(imagesDir, sha256)));
  } catch (error) {
    return err('corrupt', `the file of image ${row.version} cannot be read: ${(error as Error).message}`);
  }
  if (bytes.byteLength !== row.size || sha256Hex(bytes) !== sha256)
    return err(
      'corrupt',
      `the file of image ${row.version} in ${imagesDir} was changed: its SHA-256 no longer matches`,
    );
  return ok(bytes);
}

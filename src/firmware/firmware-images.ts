/**
 * The firmware images of one database: import (every check of {@link checkImage}, then the bytes
 * as a file named by their SHA-256, mode 0600, then the row), list with the devices running and
 * wanting each version, read back verified, and delete when nothing uses an image.
 *
 * Order of writes: the file first (written to a temporary name, fsynced, renamed), then the row.
 * A crash between the two leaves a file no row names; {@link openFirmwareImages} sweeps such files
 * once they are an hour old (younger ones may belong to an import running in another process).
 * A delete removes the row first, then the file, for the same reason.
 *
 * @example
 * const images = await openFirmwareImages({ store: fwStore, imagesDir: firmwareDirFor(dbFile), trustedKeys, kinds });
 * const r = await images.importImage({ manifest, image, actor: 'cli' });
 * if (!r.ok) console.error(`${r.error.code}: ${r.error.message}`);
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { err, type Failure, ok, type Result } from '../lib/result.js';
import type { Logger } from '../runtime/runtime.js';
import { silentLogger } from '../runtime/runtime.js';
import type { FirmwareImageRecord, FirmwareStore } from '../store/firmware-store.js';
import type { JsonObject } from '../store/store.js';
import type { ImageRefusal, KindSlot } from './check-image.js';
import { checkImage } from './check-image.js';
import type { TrustedKeys } from './keys.js';
import { sha256Hex } from './manifest.js';

/** Files left by an interrupted import are removed once they are this old. */
const ORPHAN_AGE_MS = 60 * 60_000;

/**
 * The images folder of a database: `<data folder>/firmware/<database name>/`, so the demo's
 * images never mix with a real fleet's.
 */
export function firmwareDirFor(databaseFile: string): string {
  return join(dirname(databaseFile), 'firmware', basename(databaseFile).replace(/\.sqlite$/, ''));
}

export interface FirmwareImagesOptions {
  readonly store: FirmwareStore;
  readonly imagesDir: string;
  readonly trustedKeys: TrustedKeys;
  /** The kinds the app knows, with their firmware slot sizes. */
  readonly kinds: ReadonlyMap<string, KindSlot>;
  readonly logger?: Logger;
}

export interface ImportInput {
  /** The manifest file's text or bytes. */
  readonly manifest: string | Uint8Array;
  readonly image: Uint8Array;
  /** Who imports: `cli`, `ui`, `api`, an operator's name. */
  readonly actor: string;
  /** Accept a version older than a stored one for the same kind; audited. */
  readonly allowDowngrade?: boolean;
}

/** Why an import failed: a refusal of the image, or the image file could not be written. */
export type ImportErrorCode = ImageRefusal | 'writeFailed';

export interface ImageListing {
  readonly image: FirmwareImageRecord;
  /** Devices of its kinds that report running its version. */
  readonly runningOn: readonly string[];
  /** Devices of its kinds whose spec asks for its version. */
  readonly wantedBy: readonly string[];
}

export interface FirmwareImages {
  readonly imagesDir: string;
  importImage(
    input: ImportInput,
  ): Promise<
    Result<{ readonly image: FirmwareImageRecord; readonly created: boolean }, Failure<ImportErrorCode>>
  >;
  /** Every image, newest import first; rows that do not parse are listed apart. */
  list(): Promise<{ readonly images: readonly ImageListing[]; readonly unreadable: readonly Failure[] }>;
  /** The bytes of a stored image, checked against their SHA-256. */
  readImage(sha256: string): Promise<Result<Uint8Array, Failure<'notFound' | 'corrupt'>>>;
  /** Deletes an unused image (row, then file); `inUse` names what uses it. */
  remove(sha256: string, actor: string): Promise<Result<FirmwareImageRecord, Failure<'notFound' | 'inUse'>>>;
}

export async function openFirmwareImages(options: FirmwareImagesOptions): Promise<FirmwareImages> {
  const { store, imagesDir, trustedKeys, kinds } = options;
  const log = options.logger ?? silentLogger;
  mkdirSync(imagesDir, { recursive: true, mode: 0o700 });
  await sweepOrphans();

  async function sweepOrphans(): Promise<void> {
    const known = new Set((await store.listImages()).map((r) => (r.ok ? r.value.sha256 : r.id)));
    const now = Date.now();
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

  function writeImageFile(sha256: string, image: Uint8Array): void {
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

  function removeFile(sha256: string): void {
    try {
      unlinkSync(join(imagesDir, sha256));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
        log.warn('firmware: could not remove an image file', { sha256, error: (error as Error).message });
    }
  }

  async function readImage(sha256: string): Promise<Result<Uint8Array, Failure<'notFound' | 'corrupt'>>> {
    if (!/^[0-9a-f]{64}$/.test(sha256))
      return err('notFound', `'${sha256.slice(0, 80)}' is not an image's SHA-256`);
    const row = await store.getImage(sha256);
    if (!row.ok)
      return row.error.code === 'notFound'
        ? err('notFound', row.error.message)
        : err('corrupt', row.error.message);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(join(imagesDir, sha256)));
    } catch (error) {
      return err(
        'corrupt',
        `the file of image ${row.value.version} cannot be read: ${(error as Error).message}`,
      );
    }
    if (bytes.byteLength !== row.value.size || sha256Hex(bytes) !== sha256)
      return err(
        'corrupt',
        `the file of image ${row.value.version} in ${imagesDir} was changed: its SHA-256 no longer matches`,
      );
    return ok(bytes);
  }

  return {
    imagesDir,

    async importImage(input) {
      const rows = await store.listImages();
      const stored = rows.flatMap((r) => (r.ok ? [r.value] : []));
      const checked = checkImage({
        manifest: input.manifest,
        image: input.image,
        trustedKeys,
        kinds,
        stored,
        allowDowngrade: input.allowDowngrade ?? false,
      });
      if (!checked.ok) return checked;
      const { manifest, signer } = checked.value;
      const sha256 = manifest.signed.sha256;
      if (checked.value.alreadyStored) {
        const existing = stored.find((s) => s.sha256 === sha256)!;
        if (!(await readImage(sha256)).ok) writeImageFile(sha256, input.image); // repair a lost file
        return ok({ image: existing, created: false });
      }
      try {
        writeImageFile(sha256, input.image);
      } catch (error) {
        return err('writeFailed', `cannot write the image into ${imagesDir}: ${(error as Error).message}`);
      }
      const inserted = await store
        .insertImage({
          sha256,
          version: manifest.signed.version,
          kinds: manifest.signed.kinds,
          hardwareRevision: manifest.signed.hardwareRevision ?? null,
          size: manifest.signed.size,
          keyId: signer.keyId,
          manifest: manifest as unknown as JsonObject,
          importedBy: input.actor,
          downgradeFrom: checked.value.downgradeFrom ?? null,
        })
        .catch((error: unknown) => {
          removeFile(sha256);
          throw error;
        });
      if (!inserted.ok) {
        // Another import of the same version or bytes won the race.
        if (inserted.error.code === 'versionConflict') removeFile(sha256);
        return inserted.error.code === 'alreadyStored'
          ? err('duplicateImage', inserted.error.message)
          : err('versionConflict', inserted.error.message);
      }
      log.info('firmware image imported', {
        version: inserted.value.version,
        kinds: inserted.value.kinds.join(','),
        sha256,
        actor: input.actor,
        ...(inserted.value.downgradeFrom !== null ? { downgradeFrom: inserted.value.downgradeFrom } : {}),
      });
      return ok({ image: inserted.value, created: true });
    },

    async list() {
      const [rows, devices] = await Promise.all([store.listImages(), store.devicesByFirmware()]);
      const images: ImageListing[] = [];
      const unreadable: Failure[] = [];
      for (const r of rows) {
        if (!r.ok) {
          unreadable.push(r.error);
          continue;
        }
        const image = r.value;
        const mine = devices.filter((d) => image.kinds.includes(d.kind));
        images.push({
          image,
          runningOn: mine.filter((d) => d.running === image.version).map((d) => d.deviceId),
          wantedBy: mine.filter((d) => d.desired === image.version).map((d) => d.deviceId),
        });
      }
      return { images, unreadable };
    },

    readImage,

    async remove(sha256, actor) {
      const r = await store.deleteImage(sha256, actor);
      if (!r.ok) return r;
      removeFile(sha256);
      log.info('firmware image deleted', { version: r.value.version, sha256, actor });
      return r;
    },
  };
}

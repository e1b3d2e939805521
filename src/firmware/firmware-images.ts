/**
 * The firmware images of one database: import (every check of {@link checkImage}, then the bytes
 * as a file named by their SHA-256, mode 0600, then the row), list with the devices running and
 * wanting each version, read back verified, and delete when nothing uses an image.
 *
 * Order of writes: the file first (written to a temporary name, fsynced, renamed), then the row.
 * A crash between the two leaves a file no row names; {@link openFirmwareImages} sweeps such files
 * once they are an hour old (younger ones may belong to an import running in another process).
 * A delete removes the row first, then the file, for the same reason. A damaged rollout
 * (rollout-damage.ts) does not keep an image: its reference is let go before the delete is checked.
 *
 * The files themselves are firmware-image-files.ts's; an import's steps, import-image.ts's.
 *
 * @example
 * const images = await openFirmwareImages({ store: fwStore, imagesDir: firmwareDirFor(dbFile), trustedKeys, kinds });
 * const r = await images.importImage({ manifest, image, actor: 'cli' });
 * if (!r.ok) console.error(`${r.error.code}: ${r.error.message}`);
 */
import { mkdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { err, type Failure, type Result } from '../lib/result.js';
import type { Logger } from '../runtime/runtime.js';
import { silentLogger } from '../runtime/runtime.js';
import type { DeviceFirmware, FirmwareImageRecord, FirmwareStore } from '../store/firmware-store.js';
import type { RowResult } from '../store/store.js';
import type { ImageRefusal, KindSlot } from './check-image.js';
import { readImageFile, removeImageFile, sweepOrphanFiles } from './firmware-image-files.js';
import { importImage } from './import-image.js';
import type { TrustedKeys } from './keys.js';
import { readStoredRollouts } from './rollout-damage.js';

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
  /** The keys an image's manifest may be signed by; a function: asked again at each import. */
  readonly trustedKeys: TrustedKeys | (() => TrustedKeys);
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

/**
 * Each stored image with the devices of its kinds running it and wanting it; rows that do not
 * parse are listed apart.
 */
export function imageListings(
  rows: readonly RowResult<FirmwareImageRecord>[],
  devices: readonly DeviceFirmware[],
): { readonly images: readonly ImageListing[]; readonly unreadable: readonly Failure[] } {
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
}

export async function openFirmwareImages(options: FirmwareImagesOptions): Promise<FirmwareImages> {
  const { store, imagesDir } = options;
  const log = options.logger ?? silentLogger;
  mkdirSync(imagesDir, { recursive: true, mode: 0o700 });
  const known = new Set((await store.listImages()).map((r) => (r.ok ? r.value.sha256 : r.id)));
  sweepOrphanFiles(imagesDir, known, log);

  async function readImage(sha256: string): Promise<Result<Uint8Array, Failure<'notFound' | 'corrupt'>>> {
    if (!/^[0-9a-f]{64}$/.test(sha256))
      return err('notFound', `'${sha256.slice(0, 80)}' is not an image's SHA-256`);
    const row = await store.getImage(sha256);
    if (!row.ok)
      return row.error.code === 'notFound'
        ? err('notFound', row.error.message)
        : err('corrupt', row.error.message);
    return readImageFile(imagesDir, sha256, row.value);
  }

  return {
    imagesDir,
    importImage: (input) => {
      const { trustedKeys } = options;
      const keys = typeof trustedKeys === 'function' ? trustedKeys() : trustedKeys;
      return importImage({ ...options, trustedKeys: keys, log, readImage }, input);
    },
    async list() {
      const [rows, devices] = await Promise.all([store.listImages(), store.devicesByFirmware()]);
      return imageListings(rows, devices);
    },
    readImage,
    async remove(sha256, actor) {
      await readStoredRollouts(store);
      const r = await store.deleteImage(sha256, actor);
      if (!r.ok) return r;
      removeImageFile(imagesDir, sha256, log);
      log.info('firmware image deleted', { version: r.value.version, sha256, actor });
      return r;
    },
  };
}

/**
 * Importing a firmware image (firmware-images.ts's `importImage`): every check of
 * {@link checkImage}, then the bytes as a file (firmware-image-files.ts), then the row. A file
 * whose row cannot be written is removed again; an image stored already gets its lost file back.
 *
 * @example
 * const r = await importImage({ store, imagesDir, trustedKeys, kinds, log, readImage }, { manifest, image, actor: 'cli' });
 * if (r.ok) r.value.created; // false when the same bytes were stored already
 */
import { err, type Failure, ok, type Result } from '../lib/result.js';
import type { Logger } from '../runtime/runtime.js';
import type { FirmwareImageRecord, FirmwareStore } from '../store/firmware-store.js';
import type { JsonObject } from '../store/store.js';
import type { KindSlot } from './check-image.js';
import { checkImage } from './check-image.js';
import { removeImageFile, writeImageFile } from './firmware-image-files.js';
import type { ImportErrorCode, ImportInput } from './firmware-images.js';
import type { TrustedKeys } from './keys.js';

/** What an import needs: the store, the folder, the keys and kinds it checks against. */
export interface ImportContext {
  readonly store: FirmwareStore;
  readonly imagesDir: string;
  readonly trustedKeys: TrustedKeys;
  readonly kinds: ReadonlyMap<string, KindSlot>;
  readonly log: Logger;
  /** Reads a stored image back checked (to tell a lost or changed file). */
  readonly readImage: (sha256: string) => Promise<Result<Uint8Array, Failure>>;
}

export async function importImage(
  ctx: ImportContext,
  input: ImportInput,
): Promise<
  Result<{ readonly image: FirmwareImageRecord; readonly created: boolean }, Failure<ImportErrorCode>>
> {
  const { store, imagesDir, log } = ctx;
  const rows = await store.listImages();
  const stored = rows.flatMap((r) => (r.ok ? [r.value] : []));
  const checked = checkImage({
    manifest: input.manifest,
    image: input.image,
    trustedKeys: ctx.trustedKeys,
    kinds: ctx.kinds,
    stored,
    allowDowngrade: input.allowDowngrade ?? false,
  });
  if (!checked.ok) return checked;
  const { manifest, signer } = checked.value;
  const sha256 = manifest.signed.sha256;
  if (checked.value.alreadyStored) {
    const existing = stored.find((s) => s.sha256 === sha256)!;
    if (!(await ctx.readImage(sha256)).ok) writeImageFile(imagesDir, sha256, input.image); // repair a lost file
    return ok({ image: existing, created: false });
  }
  try {
    writeImageFile(imagesDir, sha256, input.image);
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
      removeImageFile(imagesDir, sha256, log);
      throw error;
    });
  if (!inserted.ok) {
    // Another import of the same version or bytes won the race.
    if (inserted.error.code === 'versionConflict') removeImageFile(imagesDir, sha256, log);
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
}

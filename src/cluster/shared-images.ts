/**
 * Firmware images shared between the instances of a cluster (PostgreSQL migration 9,
 * `fleetvisor_firmware_images`). Each instance keeps its images in its own data folder
 * (docs/firmware.md); an update asked on one instance of a device another instance runs is carried
 * out by that owner (src/host/api/routed.ts), which needs the image. So the asking instance shares
 * the image here first — its manifest as imported (signed part and signature) and its bytes — and
 * the owner, not having it, imports it from here through its own import: its own trust list, kinds
 * and slot sizes decide, exactly as if an operator had imported the file there. Nothing is trusted
 * because it came through the database.
 *
 * Content-addressed: a row is keyed by the image's SHA-256, written once (but for the downgrade
 * mark, set when an instance that imported it as a downgrade shares it); the bytes are checked
 * against the key when read back (a row altered behind the app's back is refused).
 *
 * An image imported on an instance of a cluster is shared at once (src/host/api/firmware.ts), so
 * the owner of a device whose spec asks for its version can find it by version and kind
 * ({@link findSharedImages}) and import it for its reconciler.
 *
 * @example
 * await shareImage(pool, { sha256, manifest, image, by: 'site-a-1' });
 * const shared = await readSharedImage(pool, sha256); // { manifest, image, by } | undefined
 * await findSharedImages(pool, '1.2.0', 'fleetvisor.generic'); // ['9f86d0…']
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';

export interface SharedImage {
  readonly sha256: string;
  /** The manifest as imported (JSON text: signed part and signature). */
  readonly manifest: string;
  readonly image: Uint8Array;
  /** The instance that shared it. */
  readonly by: string;
  /**
   * The sharing instance's operator imported it as a downgrade, explicitly (`--allow-downgrade`):
   * the owner's import allows it too, audited there (PostgreSQL migration 12).
   */
  readonly allowDowngrade?: boolean;
}

/** Puts the image in the shared table (already there: nothing happens, the row never changes). */
export async function shareImage(db: pg.Pool, image: SharedImage): Promise<void> {
  await db.query(
    `INSERT INTO fleetvisor_firmware_images (sha256, manifest, image, shared_by, allow_downgrade)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sha256)
     DO UPDATE SET allow_downgrade = true WHERE $5 AND NOT fleetvisor_firmware_images.allow_downgrade`,
    [
      image.sha256,
      image.manifest,
      Buffer.from(image.image.buffer, image.image.byteOffset, image.image.byteLength),
      image.by,
      image.allowDowngrade === true,
    ],
  );
}

/**
 * The shared image with this SHA-256; undefined when none was shared. Throws when the row's bytes
 * do not hash to its key (changed behind the app's back): never imported.
 */
export async function readSharedImage(db: pg.Pool, sha256: string): Promise<SharedImage | undefined> {
  const r = await db.query<{ manifest: string; image: Buffer; shared_by: string; allow_downgrade: boolean }>(
    'SELECT manifest, image, shared_by, allow_downgrade FROM fleetvisor_firmware_images WHERE sha256 = $1',
    [sha256],
  );
  const row = r.rows[0];
  if (row === undefined) return undefined;
  const actual = createHash('sha256').update(row.image).digest('hex');
  if (actual !== sha256)
    throw new Error(
      `the shared image ${sha256.slice(0, 12)}… does not hash to its key (${actual.slice(0, 12)}…)`,
    );
  return {
    sha256,
    manifest: row.manifest,
    image: new Uint8Array(row.image),
    by: row.shared_by,
    allowDowngrade: row.allow_downgrade,
  };
}

/**
 * The shared images whose manifest says this version for this kind (newest shared first), by
 * SHA-256: what a drifting device's owner can import (src/host/app/firmware.ts). Reads the
 * manifests only, never the bytes; a manifest that does not parse is no match.
 */
export async function findSharedImages(db: pg.Pool, version: string, kind: string): Promise<string[]> {
  const r = await db.query<{ sha256: string; manifest: string }>(
    'SELECT sha256, manifest FROM fleetvisor_firmware_images ORDER BY shared_at DESC',
  );
  return r.rows
    .filter((row) => {
      try {
        const signed = (JSON.parse(row.manifest) as { signed?: { version?: unknown; kinds?: unknown } })
          .signed;
        return signed?.version === version && Array.isArray(signed.kinds) && signed.kinds.includes(kind);
      } catch {
        return false;
      }
    })
    .map((row) => row.sha256);
}

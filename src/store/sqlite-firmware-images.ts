/**
 * Firmware images on SQLite: the description of each stored image (`firmware_images`, the bytes
 * live in files beside the database), its kinds (`firmware_image_kinds`, one version per kind),
 * and the audit of every import and delete.
 *
 * @example
 * const images = createSqliteFirmwareImages(context);
 * const r = await images.insertImage({ sha256, version: '1.4.0', kinds: ['pump'], … });
 * if (!r.ok && r.error.code === 'versionConflict') console.log(r.error.message);
 */
import type { FirmwareImageInput, FirmwareImageRecord, FirmwareStore } from './firmware-store.js';
import { parseJsonObject, requireName, toJsonText } from './records.js';
import { sqliteCode } from './sqlite-connection.js';
import type { FirmwareContext } from './sqlite-firmware-context.js';
import { badRecord, fail } from './sqlite-firmware-context.js';
import { holdersOf } from './sqlite-firmware-refs.js';
import type { RowResult, StoreResult } from './store.js';
import { StoreError } from './store.js';

export type SqliteFirmwareImages = Pick<
  FirmwareStore,
  'insertImage' | 'getImage' | 'listImages' | 'deleteImage'
>;

interface ImageRow {
  sha256: string;
  version: unknown;
  kinds: unknown;
  hardware_revision: unknown;
  size: unknown;
  key_id: unknown;
  manifest: unknown;
  imported_at: unknown;
  imported_by: unknown;
  downgrade_from: unknown;
}

const SELECT_IMAGES = `
  SELECT i.*, (SELECT group_concat(k.kind, char(10)) FROM firmware_image_kinds k WHERE k.sha256 = i.sha256) AS kinds
  FROM firmware_images i`;

export function createSqliteFirmwareImages(context: FirmwareContext): SqliteFirmwareImages {
  const { read } = context;
  return {
    insertImage: (image) => insertImage(context, image),

    async getImage(sha256) {
      const rows = await read<ImageRow>('read firmware image', `${SELECT_IMAGES} WHERE i.sha256 = ?`, [
        sha256,
      ]);
      const row = rows[0];
      if (row === undefined) return fail('notFound', `no firmware image with SHA-256 ${sha256}`);
      const r = imageFromRow(row);
      return r.ok ? r : { ok: false, error: r.error };
    },

    async listImages() {
      const rows = await read<ImageRow>(
        'list firmware images',
        `${SELECT_IMAGES} ORDER BY i.imported_at DESC, i.sha256`,
      );
      return rows.map(imageFromRow);
    },

    deleteImage: (sha256, actor) => deleteImage(context, sha256, actor),
  };
}

function insertImage(
  { conn, now, write, audit }: FirmwareContext,
  image: FirmwareImageInput,
): Promise<StoreResult<FirmwareImageRecord, 'alreadyStored' | 'versionConflict'>> {
  const input = checkInput(image);
  return write(
    'insert firmware image',
    async (): Promise<StoreResult<FirmwareImageRecord, 'alreadyStored' | 'versionConflict'>> => {
      const same = await conn.get<{ version: string }>(
        'SELECT version FROM firmware_images WHERE sha256 = ?',
        [input.sha256],
      );
      if (same !== undefined)
        return fail(
          'alreadyStored',
          `an image with SHA-256 ${input.sha256} is stored already (${same.version})`,
        );
      const placeholders = input.kinds.map(() => '?').join(', ');
      const clash = await conn.get<{ kind: string; sha256: string }>(
        `SELECT kind, sha256 FROM firmware_image_kinds WHERE version = ? AND kind IN (${placeholders}) LIMIT 1`,
        [input.version, ...input.kinds],
      );
      if (clash !== undefined)
        return fail(
          'versionConflict',
          `version ${input.version} of kind ${clash.kind} is stored already with other bytes (SHA-256 ${clash.sha256})`,
        );
      const at = now();
      await conn.run(
        `INSERT INTO firmware_images (sha256, version, hardware_revision, size, key_id, manifest, imported_at, imported_by, downgrade_from)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          input.sha256,
          input.version,
          input.hardwareRevision,
          input.size,
          input.keyId,
          toJsonText(input.manifest, 'manifest'),
          at,
          input.importedBy,
          input.downgradeFrom,
        ],
      );
      for (const kind of input.kinds)
        await conn.run('INSERT INTO firmware_image_kinds (kind, version, sha256) VALUES (?, ?, ?)', [
          kind,
          input.version,
          input.sha256,
        ]);
      await audit('firmware.imported', {
        sha256: input.sha256,
        version: input.version,
        kinds: [...input.kinds],
        size: input.size,
        keyId: input.keyId,
        actor: input.importedBy,
        downgrade: input.downgradeFrom !== null,
        ...(input.downgradeFrom !== null ? { downgradeFrom: input.downgradeFrom } : {}),
      });
      return { ok: true, value: { ...input, importedAt: at } };
    },
  ).catch((error: unknown) => {
    // Two imports racing past the checks: the (kind, version) key decides.
    if (sqliteCode(error instanceof StoreError ? error.cause : error) === 'SQLITE_CONSTRAINT')
      return fail('versionConflict', `version ${input.version} or these bytes were stored meanwhile`);
    throw error;
  });
}

function deleteImage(
  { conn, write, audit }: FirmwareContext,
  sha256: string,
  actor: string,
): Promise<StoreResult<FirmwareImageRecord, 'notFound' | 'inUse'>> {
  requireName(actor, 'actor');
  return write(
    'delete firmware image',
    async (): Promise<StoreResult<FirmwareImageRecord, 'notFound' | 'inUse'>> => {
      const row = (await conn.all<ImageRow>(`${SELECT_IMAGES} WHERE i.sha256 = ?`, [sha256]))[0];
      if (row === undefined) return fail('notFound', `no firmware image with SHA-256 ${sha256}`);
      const parsed = imageFromRow(row);
      // A row that does not parse can still be deleted: what is known of it is enough to check and audit.
      const image: FirmwareImageRecord = parsed.ok
        ? parsed.value
        : {
            sha256,
            version: String(row.version),
            kinds: String(row.kinds ?? '').split('\n'),
            hardwareRevision: null,
            size: 0,
            keyId: '',
            manifest: {},
            importedAt: 0,
            importedBy: '',
            downgradeFrom: null,
          };
      const holders = await holdersOf(conn, image);
      if (holders.length > 0)
        return fail(
          'inUse',
          `${image.version} (${sha256.slice(0, 12)}…) is still used by ${holders.join(', ')}`,
        );
      await conn.run('DELETE FROM firmware_image_kinds WHERE sha256 = ?', [sha256]);
      await conn.run('DELETE FROM firmware_images WHERE sha256 = ?', [sha256]);
      await audit('firmware.deleted', { sha256, version: image.version, kinds: [...image.kinds], actor });
      return { ok: true, value: image };
    },
  );
}

function checkInput(image: FirmwareImageInput): FirmwareImageInput {
  if (!/^[0-9a-f]{64}$/.test(image.sha256))
    throw new StoreError('invalidArgument', 'sha256 must be 64 lowercase hex digits', { field: 'sha256' });
  requireName(image.version, 'version');
  if (!Array.isArray(image.kinds) || image.kinds.length === 0)
    throw new StoreError('invalidArgument', 'kinds must name at least one kind', { field: 'kinds' });
  for (const [i, k] of image.kinds.entries()) requireName(k, `kinds[${i}]`);
  if (!Number.isSafeInteger(image.size) || image.size < 1)
    throw new StoreError('invalidArgument', 'size must be a positive integer', { field: 'size' });
  requireName(image.keyId, 'keyId');
  requireName(image.importedBy, 'importedBy');
  return image;
}

function imageFromRow(row: ImageRow): RowResult<FirmwareImageRecord> {
  const bad = (message: string) =>
    badRecord<FirmwareImageRecord>(row.sha256, `firmware image ${row.sha256}: ${message}`);
  const manifest = parseJsonObject(row.manifest);
  if (!manifest.ok) return bad(`manifest ${manifest.error}`);
  if (typeof row.version !== 'string') return bad('version is not text');
  if (typeof row.kinds !== 'string' || row.kinds.length === 0) return bad('has no kinds');
  if (typeof row.size !== 'number' || typeof row.imported_at !== 'number')
    return bad('size or time is not a number');
  if (typeof row.key_id !== 'string' || typeof row.imported_by !== 'string')
    return bad('key or importer is not text');
  return {
    ok: true,
    value: {
      sha256: row.sha256,
      version: row.version,
      kinds: row.kinds.split('\n').sort(),
      hardwareRevision: typeof row.hardware_revision === 'string' ? row.hardware_revision : null,
      size: row.size,
      keyId: row.key_id,
      manifest: manifest.value,
      importedAt: row.imported_at,
      importedBy: row.imported_by,
      downgradeFrom: typeof row.downgrade_from === 'string' ? row.downgrade_from : null,
    },
  };
}

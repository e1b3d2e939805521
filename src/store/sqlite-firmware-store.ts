/**
 * The {@link FirmwareStore} on the app's SQLite file, through a connection of its own.
 *
 * Why its own connection and not the store's writer queue: firmware writes are a handful per day
 * (an import, a delete), and the CLI must work on a data folder with no app running. Each write is
 * one `BEGIN IMMEDIATE` transaction with `synchronous=FULL`; SQLite's lock and the busy timeout
 * order it with the app's writer (WAL mode), in this process or another.
 *
 * @example
 * const fw = await openSqliteFirmwareStore({ file: join(dataDir, DATABASE_FILE_NAME) });
 * for (const r of await fw.listImages()) if (r.ok) console.log(r.value.version, r.value.kinds);
 * await fw.close();
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { JsonObject } from '../lib/json.js';
import type { Logger } from '../runtime/runtime.js';
import { silentLogger } from '../runtime/runtime.js';
import type {
  DeviceFirmware,
  FirmwareImageInput,
  FirmwareImageRecord,
  FirmwareJobRecord,
  FirmwareRolloutRecord,
  FirmwareStore,
} from './firmware-store.js';
import { migrate } from './migrations.js';
import { messageOf, parseJsonObject, requireName, toJsonText } from './records.js';
import type { SqliteConnection } from './sqlite-connection.js';
import { openSqliteConnection, sqliteCode } from './sqlite-connection.js';
import { makePrivate, PRIVATE_FOLDER_MODE } from './sqlite-store.js';
import type { RowResult, StoreResult } from './store.js';
import { StoreError } from './store.js';

export interface SqliteFirmwareStoreOptions {
  /** The app's database file (created, with the app's schema, if missing). */
  readonly file: string;
  readonly logger?: Logger;
  /** Wall clock for `importedAt` and the audit. Default `Date.now`. */
  readonly now?: () => number;
}

export interface SqliteFirmwareStore extends FirmwareStore {
  readonly file: string;
}

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

/** `json_extract` fails on bad JSON: read a field only from valid JSON text. */
const field = (column: string, path: string) =>
  `CASE WHEN json_valid(${column}) AND json_type(${column}, '${path}') = 'text' THEN json_extract(${column}, '${path}') END`;

/**
 * Opens the firmware store on `options.file`, bringing its schema up to the app's.
 * Throws {@link StoreError} as `openSqliteStore` does (`openFailed`, `databaseTooNew`, `migrationFailed`).
 */
export async function openSqliteFirmwareStore(
  options: SqliteFirmwareStoreOptions,
): Promise<SqliteFirmwareStore> {
  const file = resolve(requireName(options.file, 'file'));
  const now = options.now ?? Date.now;
  let conn: SqliteConnection | undefined;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: PRIVATE_FOLDER_MODE });
    makePrivate(file, options.logger ?? silentLogger);
    conn = await openSqliteConnection(file, { readOnly: false });
    const mode = await conn.get<{ journal_mode: string }>('PRAGMA journal_mode = WAL');
    if (mode?.journal_mode !== 'wal')
      throw new StoreError('openFailed', `${file} refused WAL mode (journal_mode is ${mode?.journal_mode})`);
    await conn.exec('PRAGMA synchronous = FULL');
    await migrate(conn, { logger: options.logger });
  } catch (error) {
    await conn?.close().catch(() => {});
    if (error instanceof StoreError) throw error;
    throw new StoreError('openFailed', `cannot open the database ${file}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  return createStore(file, conn, now);
}

function createStore(file: string, conn: SqliteConnection, now: () => number): SqliteFirmwareStore {
  let closed = false;
  // One connection carries one transaction at a time: writes take turns.
  let turn: Promise<unknown> = Promise.resolve();

  function write<T>(what: string, body: () => Promise<T>): Promise<T> {
    if (closed) return Promise.reject(new StoreError('closed', 'the firmware store is closed'));
    const run = turn.then(async () => {
      try {
        await conn.exec('BEGIN IMMEDIATE');
      } catch (cause) {
        throw new StoreError('writeFailed', `${what}: ${messageOf(cause)}`, { cause });
      }
      try {
        const out = await body();
        await conn.exec('COMMIT');
        return out;
      } catch (cause) {
        await conn.exec('ROLLBACK').catch(() => {});
        if (cause instanceof StoreError) throw cause;
        throw new StoreError('writeFailed', `${what}: ${messageOf(cause)}`, { cause });
      }
    });
    turn = run.catch(() => {});
    return run;
  }

  async function read<T>(what: string, sql: string, params: (string | number)[] = []): Promise<T[]> {
    if (closed) throw new StoreError('closed', 'the firmware store is closed');
    try {
      return await conn.all<T>(sql, params);
    } catch (cause) {
      throw new StoreError('readFailed', `${what}: ${messageOf(cause)}`, { cause });
    }
  }

  async function audit(kind: string, data: JsonObject): Promise<void> {
    await conn.run('INSERT INTO events (at, device_id, kind, data) VALUES (?, NULL, ?, ?)', [
      now(),
      kind,
      JSON.stringify(data),
    ]);
  }

  async function users(image: FirmwareImageRecord): Promise<string[]> {
    const devices = await conn.all<{ id: string; running: string | null; desired: string | null }>(
      `SELECT d.id, ${field('d.status', '$.firmware')} AS running, ${field('d.spec', '$.firmware')} AS desired
       FROM devices d JOIN firmware_image_kinds k ON k.kind = d.kind AND k.sha256 = ?1
       WHERE running = k.version OR desired = k.version ORDER BY d.id LIMIT 20`,
      [image.sha256],
    );
    const refs = await conn.all<{ holder: string }>(
      'SELECT holder FROM firmware_image_refs WHERE sha256 = ? ORDER BY holder LIMIT 20',
      [image.sha256],
    );
    return [
      ...devices.map((d) => `device ${d.id} (${d.running === image.version ? 'runs it' : 'wants it'})`),
      ...refs.map((r) => r.holder),
    ];
  }

  return {
    file,

    insertImage(image) {
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
    },

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

    async devicesByFirmware() {
      const rows = await read<{ id: string; kind: string; running: string | null; desired: string | null }>(
        'list device firmware',
        `SELECT id, kind, ${field('status', '$.firmware')} AS running, ${field('spec', '$.firmware')} AS desired
         FROM devices ORDER BY id`,
      );
      return rows.map(
        (r): DeviceFirmware => ({ deviceId: r.id, kind: r.kind, running: r.running, desired: r.desired }),
      );
    },

    addReference(sha256, holder) {
      requireName(holder, 'holder');
      return write('add firmware reference', async (): Promise<StoreResult<void, 'notFound'>> => {
        const found = await conn.get<{ n: number }>('SELECT 1 AS n FROM firmware_images WHERE sha256 = ?', [
          sha256,
        ]);
        if (found === undefined) return fail('notFound', `no firmware image with SHA-256 ${sha256}`);
        await conn.run(
          'INSERT INTO firmware_image_refs (sha256, holder, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
          [sha256, holder, now()],
        );
        return { ok: true, value: undefined };
      });
    },

    async removeReference(sha256, holder) {
      await write('remove firmware reference', () =>
        conn.run('DELETE FROM firmware_image_refs WHERE sha256 = ? AND holder = ?', [sha256, holder]),
      );
    },

    deleteImage(sha256, actor) {
      requireName(actor, 'actor');
      return write(
        'delete firmware image',
        async (): Promise<StoreResult<FirmwareImageRecord, 'notFound' | 'inUse'>> => {
          const row = (await conn.all<ImageRow>(`${SELECT_IMAGES} WHERE i.sha256 = ?`, [sha256]))[0];
          if (row === undefined) return fail('notFound', `no firmware image with SHA-256 ${sha256}`);
          const parsed = imageFromRow(row);
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
          const holders = await users(image);
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
    },

    async saveJob(job, final) {
      requireName(job.deviceId, 'deviceId');
      await write('save firmware job', async () => {
        await conn.run(
          `INSERT INTO firmware_jobs (device_id, sha256, transfer_id, version, step, offset, boot, deadline, error, actor, started_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (device_id) DO UPDATE SET sha256 = excluded.sha256, transfer_id = excluded.transfer_id,
             version = excluded.version, step = excluded.step, offset = excluded.offset, boot = excluded.boot,
             deadline = excluded.deadline, error = excluded.error, actor = excluded.actor,
             started_at = excluded.started_at, updated_at = excluded.updated_at`,
          [
            job.deviceId,
            job.sha256,
            job.transferId,
            job.version,
            job.step,
            job.offset,
            job.boot,
            job.deadline,
            job.error === null ? null : JSON.stringify(job.error),
            job.actor,
            job.startedAt,
            job.updatedAt,
          ],
        );
        const holder = `job:${job.deviceId}`;
        await conn.run('DELETE FROM firmware_image_refs WHERE holder = ?', [holder]);
        if (!final)
          await conn.run(
            `INSERT INTO firmware_image_refs (sha256, holder, created_at)
             SELECT sha256, ?, ? FROM firmware_images WHERE sha256 = ? ON CONFLICT DO NOTHING`,
            [holder, now(), job.sha256],
          );
      });
    },

    async saveRollout(r, ended) {
      requireName(r.id, 'id');
      const body = toJsonText(r.body, 'body');
      await write('save firmware rollout', async () => {
        await conn.run(
          `INSERT INTO firmware_rollouts (id, sha256, version, state, body, actor, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET state = excluded.state, body = excluded.body, updated_at = excluded.updated_at`,
          [r.id, r.sha256, r.version, r.state, body, r.actor, r.createdAt, r.updatedAt],
        );
        const holder = `rollout:${r.id}`;
        if (ended) await conn.run('DELETE FROM firmware_image_refs WHERE holder = ?', [holder]);
        else
          await conn.run(
            `INSERT INTO firmware_image_refs (sha256, holder, created_at)
             SELECT sha256, ?, ? FROM firmware_images WHERE sha256 = ? ON CONFLICT DO NOTHING`,
            [holder, now(), r.sha256],
          );
      });
    },

    async listRollouts() {
      const rows = await read<Record<string, unknown>>(
        'list firmware rollouts',
        'SELECT * FROM firmware_rollouts ORDER BY created_at, id',
      );
      return rows.map((row): RowResult<FirmwareRolloutRecord> => {
        const body = parseJsonObject(row.body);
        const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
        const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
        const id = str(row.id);
        const sha256 = str(row.sha256);
        const version = str(row.version);
        const state = str(row.state);
        const actor = str(row.actor);
        const createdAt = num(row.created_at);
        const updatedAt = num(row.updated_at);
        if (
          !body.ok ||
          id === undefined ||
          sha256 === undefined ||
          version === undefined ||
          state === undefined ||
          actor === undefined ||
          createdAt === undefined ||
          updatedAt === undefined
        )
          return {
            ok: false,
            id: String(row.id),
            error: { code: 'badRecord', message: `firmware rollout row '${String(row.id)}' does not parse` },
          };
        return {
          ok: true,
          value: { id, sha256, version, state, body: body.value, actor, createdAt, updatedAt },
        };
      });
    },

    async listJobs() {
      const rows = await read<JobRow>('list firmware jobs', 'SELECT * FROM firmware_jobs ORDER BY device_id');
      return rows.map(jobFromRow);
    },

    async close() {
      if (closed) return;
      closed = true;
      await turn;
      await conn.close();
    },
  };
}

interface JobRow {
  device_id: unknown;
  sha256: unknown;
  transfer_id: unknown;
  version: unknown;
  step: unknown;
  offset: unknown;
  boot: unknown;
  deadline: unknown;
  error: unknown;
  actor: unknown;
  started_at: unknown;
  updated_at: unknown;
}

function jobFromRow(r: JobRow): RowResult<FirmwareJobRecord> {
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
  const deviceId = str(r.device_id);
  const sha256 = str(r.sha256);
  const transferId = str(r.transfer_id);
  const version = str(r.version);
  const step = str(r.step);
  const actor = str(r.actor);
  const offset = num(r.offset);
  const startedAt = num(r.started_at);
  const updatedAt = num(r.updated_at);
  let error: FirmwareJobRecord['error'] = null;
  if (typeof r.error === 'string') {
    try {
      const e = JSON.parse(r.error) as { step?: unknown; code?: unknown; message?: unknown };
      if (typeof e.step === 'string' && typeof e.code === 'string' && typeof e.message === 'string')
        error = { step: e.step, code: e.code, message: e.message };
    } catch {
      error = null;
    }
  }
  if (
    deviceId === undefined ||
    sha256 === undefined ||
    transferId === undefined ||
    version === undefined ||
    step === undefined ||
    actor === undefined ||
    offset === undefined ||
    startedAt === undefined ||
    updatedAt === undefined
  )
    return {
      ok: false,
      id: String(r.device_id),
      error: { code: 'badRecord', message: `firmware job row of '${String(r.device_id)}' does not parse` },
    };
  return {
    ok: true,
    value: {
      deviceId,
      sha256,
      transferId,
      version,
      step,
      offset,
      boot: num(r.boot) ?? null,
      deadline: num(r.deadline) ?? null,
      error,
      actor,
      startedAt,
      updatedAt,
    },
  };
}

function fail<C extends string>(
  code: C,
  message: string,
): { ok: false; error: { code: C; message: string } } {
  return { ok: false, error: { code, message } };
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
  const bad = (message: string): RowResult<FirmwareImageRecord> => ({
    ok: false,
    id: row.sha256,
    error: { code: 'badRecord', message: `firmware image ${row.sha256}: ${message}` },
  });
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

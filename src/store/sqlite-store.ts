/**
 * The {@link Store} on one SQLite file (sqlite3, Node-API, so the same build runs in Node and
 * Electron), in WAL mode.
 *
 * Connections: one writer and one read-only reader. Every write goes through the writer's queue
 * ({@link createWriteQueue}: group commit, `BEGIN IMMEDIATE`, acknowledged after COMMIT), so there
 * is exactly one write connection (reliability D5). Queries run on the reader, which sees only
 * committed data (WAL snapshot isolation) and runs beside the writer instead of behind it.
 *
 * Durability, per transaction (the writer sets `PRAGMA synchronous` before each one):
 * - `synchronous=FULL` for devices, snapshots, commands and operator events: an acknowledged
 *   operator action or actor transition survives a power loss, not only an app crash.
 * - `synchronous=NORMAL` for telemetry, the runtime event log and reported device status: in WAL
 *   mode an app crash (`kill -9`) still loses no committed transaction; only a power loss may roll
 *   back the last commits, which are high-rate measurements the devices keep sending (reliability
 *   D1/D2: FULL was ~5× slower for this traffic).
 * A FULL commit fsyncs the whole WAL, so it also hardens every NORMAL commit before it.
 *
 * Telemetry: points wait in a buffer, flushed `telemetryFlushMs` after the first one or at once at
 * `telemetryBatchMax` points, and go into SQLite in one statement per `telemetryBatchMax` points
 * (`INSERT … SELECT … FROM json_each(?)`): one call per batch instead of one per row. A series (one
 * metric of one device) gets a small integer id, cached in memory, so a point is four numbers.
 *
 * Not handled here, on purpose: two app instances writing one file (the caller should hold a
 * single-instance lock), and `quick_check` / backup at boot (reliability D4).
 *
 * @example
 * const store = await openSqliteStore({ file: join(dataDir, DATABASE_FILE_NAME), logger });
 * await store.appendTelemetry([{ deviceId: 'pump-1', metric: 'temp', deviceTs: null, receivedAt: Date.now(), value: 21.5 }]);
 * const buckets = await store.queryTelemetry('pump-1', 'temp', Date.now() - 600_000, Date.now(), 60);
 * await store.close();
 */
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from '../runtime/runtime.js';
import { silentLogger } from '../runtime/runtime.js';
import { createBatchBuffer } from './batch-buffer.js';
import type { Migration } from './migrations.js';
import { migrate } from './migrations.js';
import {
  MAX_BUCKETS,
  MAX_PAGE_LIMIT,
  messageOf,
  requireCommandStatus,
  requireDeadlines,
  requireInt,
  requireName,
  requireObject,
  requireTags,
  requireTime,
  telemetryPointProblem,
  toJsonText,
} from './records.js';
import type { CommandRow, DeviceRow, EventRow, SnapshotRow } from './rows.js';
import { commandFromRow, deviceFromRow, eventFromRow, snapshotFromRow } from './rows.js';
import type { SqliteConnection, SqlValue } from './sqlite-connection.js';
import { openSqliteConnection } from './sqlite-connection.js';
import type { ExportReader } from './sqlite-export.js';
import { createExportReader } from './sqlite-export.js';
import type { WriteJob } from './sqlite-write-queue.js';
import { createWriteQueue } from './sqlite-write-queue.js';
import type {
  Bucket,
  CommandInput,
  CommandQuery,
  CommandUpdate,
  DeviceInput,
  DeviceRecord,
  Durability,
  EventInput,
  EventQuery,
  JsonObject,
  LoadSnapshotsOptions,
  Page,
  RowResult,
  SnapshotInput,
  SnapshotLoad,
  Store,
  StoreStats,
  TelemetryPoint,
} from './store.js';
import { StoreError } from './store.js';

export interface SqliteStoreOptions {
  /** The database file; its folder is created if missing. */
  readonly file: string;
  readonly logger?: Logger;
  /** How long the first waiting telemetry point waits for others before a flush. Default 50. */
  readonly telemetryFlushMs?: number;
  /** Flush at once at this many waiting points; also the most points per INSERT. Default 10 000. */
  readonly telemetryBatchMax?: number;
  /** Most points waiting for a commit before `appendTelemetry` answers `overloaded`. Default 20 × batch max. */
  readonly telemetryBufferMax?: number;
  /** Wall clock for `createdAt`/`updatedAt` and retention. Default `Date.now`. */
  readonly now?: () => number;
  /** Schema steps; defaults to the app's {@link MIGRATIONS}. For tests. */
  readonly migrations?: readonly Migration[];
}

/** A {@link Store} on SQLite; `file` is the absolute path it opened. */
export interface SqliteStore extends Store {
  readonly file: string;
  /** Streaming readers for export (src/store/sqlite-export.ts). */
  readonly exports: ExportReader;
}

/** Folders the store creates: the user's alone. */
export const PRIVATE_FOLDER_MODE = 0o700;
/** The database and its -wal/-shm files: the user's alone. */
const PRIVATE_FILE_MODE = 0o600;

/**
 * Makes the database file the user's alone before SQLite opens it: created 0600 if missing,
 * tightened to 0600 if readable by others, and the same for a -wal or -shm left from a previous
 * run. SQLite gives the -wal and -shm it creates the database file's mode, so they follow.
 * A file that cannot be changed (another owner) is logged, not fatal: opening decides.
 */
export function makePrivate(file: string, logger: Logger): void {
  if (process.platform === 'win32') return;
  try {
    closeSync(openSync(file, 'a', PRIVATE_FILE_MODE));
  } catch {
    // Opening the database reports why (no permission, a folder in the way, …).
    return;
  }
  for (const path of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, PRIVATE_FILE_MODE);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT')
        logger.warn('cannot make a database file private (mode 0600)', { path, error: messageOf(cause) });
    }
  }
}

/** Telemetry points to hand to one transaction at most; more wait for the next one. */
const MAX_POINTS_PER_TRANSACTION = 200_000;
/** Events per INSERT statement. */
const EVENT_BATCH_MAX = 5_000;
/** Most events waiting for a commit before `appendEvents` refuses more. */
const EVENT_BUFFER_MAX = 200_000;
/** Rows deleted per transaction when pruning, so writes interleave with a large prune. */
const PRUNE_CHUNK = 10_000;
/** Time between two warnings about refused telemetry points. */
const REFUSED_LOG_INTERVAL_MS = 10_000;

// Connection settings. The WAL checkpoints every ~16 MB and is truncated back to 64 MB at most
// (reliability D3: bounded WAL); the writer's 32 MB page cache holds the hot index pages of a
// large fleet's series, which is what keeps batched inserts fast.
const WRITER_PRAGMAS = `
  PRAGMA cache_size = -32768;
  PRAGMA wal_autocheckpoint = 4000;
  PRAGMA journal_size_limit = 67108864;
  PRAGMA temp_store = MEMORY;
`;
const READER_PRAGMAS = 'PRAGMA cache_size = -16384;';

/**
 * A WHERE clause built from optional filters: `add('kind = ?', v)` numbers the placeholder and
 * keeps the value beside it.
 */
function conditions(): { where: string[]; params: SqlValue[]; add: (sql: string, value: SqlValue) => void } {
  const where: string[] = [];
  const params: SqlValue[] = [];
  return {
    where,
    params,
    add(sql, value) {
      params.push(value);
      where.push(sql.replace('?', `?${params.length}`));
    },
  };
}

/**
 * Opens (creating if needed) the store at `options.file`: WAL mode, migrations to the app's schema.
 *
 * Throws {@link StoreError}: `databaseTooNew` (the file is from a newer Fleetvisor; the message
 * names both schema versions), `openFailed` (not a database, not Fleetvisor's, no permission, WAL
 * refused), `migrationFailed`, `invalidArgument` (an option out of range).
 *
 * @example
 * const store = await openSqliteStore({ file: '/home/me/.local/share/fleetvisor/fleetvisor.sqlite' });
 */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  const file = resolve(requireName(options.file, 'file'));
  const logger = options.logger ?? silentLogger;
  const now = options.now ?? Date.now;
  const flushMs = requireInt(options.telemetryFlushMs ?? 50, 'telemetryFlushMs', 0, 60_000);
  const batchMax = requireInt(options.telemetryBatchMax ?? 10_000, 'telemetryBatchMax', 1, 1_000_000);
  const bufferMax = requireInt(
    options.telemetryBufferMax ?? batchMax * 20,
    'telemetryBufferMax',
    batchMax,
    1e8,
  );

  try {
    mkdirSync(dirname(file), { recursive: true, mode: PRIVATE_FOLDER_MODE });
  } catch (cause) {
    throw new StoreError('openFailed', `cannot create the folder of ${file}: ${messageOf(cause)}`, { cause });
  }
  makePrivate(file, logger);
  let writer: SqliteConnection | undefined;
  let reader: SqliteConnection | undefined;
  let schema: { from: number; to: number };
  try {
    writer = await openSqliteConnection(file, { readOnly: false });
    const mode = await writer.get<{ journal_mode: string }>('PRAGMA journal_mode = WAL');
    if (mode?.journal_mode !== 'wal')
      throw new StoreError('openFailed', `${file} refused WAL mode (journal_mode is ${mode?.journal_mode})`);
    await writer.exec(`PRAGMA synchronous = FULL; ${WRITER_PRAGMAS}`);
    schema = await migrate(writer, { migrations: options.migrations, logger });
    reader = await openSqliteConnection(file, { readOnly: true });
    await reader.exec(READER_PRAGMAS);
  } catch (error) {
    await reader?.close().catch(() => {});
    await writer?.close().catch(() => {});
    if (error instanceof StoreError) throw error;
    throw new StoreError('openFailed', `cannot open the database ${file}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  logger.info('store opened', { file, schemaVersion: schema.to, migratedFrom: schema.from });
  return createSqliteStore({ file, writer, reader, logger, now, flushMs, batchMax, bufferMax });
}

interface Parts {
  readonly file: string;
  readonly writer: SqliteConnection;
  readonly reader: SqliteConnection;
  readonly logger: Logger;
  readonly now: () => number;
  readonly flushMs: number;
  readonly batchMax: number;
  readonly bufferMax: number;
}

/** What one caller's points came to, once committed. */
interface AppendCounts {
  readonly written: number;
  readonly duplicates: number;
}

interface PreparedEvent {
  readonly at: number;
  readonly deviceId: string | null;
  readonly kind: string;
  readonly data: string;
}

function createSqliteStore(parts: Parts): SqliteStore {
  const { file, writer, reader, logger, now, batchMax } = parts;
  const queue = createWriteQueue(writer);
  let closing: Promise<void> | undefined;

  // ---- telemetry -----------------------------------------------------------------------------

  // "deviceId\0metric" → series id. Filled inside write jobs; cleared when one fails, since the
  // ids it learnt may belong to a transaction that rolled back.
  const seriesIds = new Map<string, number>();
  const counts = { written: 0, duplicates: 0, rejected: 0, overloaded: 0, failed: 0 };
  let lastFailure: string | null = null;
  let refusedSinceLog = 0;
  let lastRefusedLogAt = Number.NEGATIVE_INFINITY;

  async function writePoints(
    conn: SqliteConnection,
    points: readonly TelemetryPoint[],
  ): Promise<Uint8Array | undefined> {
    const missing = new Map<string, [string, string]>();
    for (const p of points) {
      const key = `${p.deviceId}\u0000${p.metric}`;
      if (!seriesIds.has(key)) missing.set(key, [p.deviceId, p.metric]);
    }
    if (missing.size > 0) {
      const pairs = JSON.stringify([...missing.values()]);
      await conn.run(
        `INSERT INTO telemetry_series (device_id, metric)
         SELECT value ->> 0, value ->> 1 FROM json_each(?1) WHERE true ON CONFLICT DO NOTHING`,
        [pairs],
      );
      const rows = await conn.all<{ id: number; device_id: string; metric: string }>(
        `SELECT s.id, s.device_id, s.metric FROM json_each(?1) AS j
         JOIN telemetry_series AS s ON s.device_id = j.value ->> 0 AND s.metric = j.value ->> 1`,
        [pairs],
      );
      for (const r of rows) seriesIds.set(`${r.device_id}\u0000${r.metric}`, r.id);
    }
    let duplicates: Uint8Array | undefined;
    for (let start = 0; start < points.length; start += batchMax) {
      const end = Math.min(points.length, start + batchMax);
      // Built by hand: a JS number prints exactly as JSON, and this skips an array per point.
      const parts: string[] = new Array(end - start);
      for (let i = start; i < end; i++) {
        const p = points[i]!;
        const id = seriesIds.get(`${p.deviceId}\u0000${p.metric}`);
        const deviceTs = p.deviceTs === null ? 'null' : Math.round(p.deviceTs);
        const once = p.seq === undefined ? 'null,null' : `${p.boot},${p.seq}`;
        parts[i - start] = `[${id},${Math.round(p.receivedAt)},${deviceTs},${p.value},${once}]`;
      }
      // OR IGNORE: a point whose (series, boot, seq) is already stored is skipped (telemetry_once).
      // Ordered by series (then by position, so the first of two equal keys is the one kept):
      // both indexes then take the batch series by series instead of jumping between them,
      // which more than pays for the second index.
      const info = await conn.run(
        `INSERT OR IGNORE INTO telemetry (series_id, received_at, device_ts, value, boot, seq)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5
         FROM json_each(?1) ORDER BY value ->> 0, key`,
        [`[${parts.join(',')}]`],
      );
      if (info.changes < end - start) {
        duplicates ??= new Uint8Array(points.length);
        await markDuplicates(conn, points, start, end, info.changes, duplicates);
      }
    }
    return duplicates;
  }

  /**
   * Rare path: which points of `[start, end)` were skipped as already stored. The rows one INSERT
   * adds get the next rowids after the largest (one writer), so they are the newest `inserted`
   * rows; a point with a seq is new if its key is among them, counting repeats within the chunk.
   */
  async function markDuplicates(
    conn: SqliteConnection,
    points: readonly TelemetryPoint[],
    start: number,
    end: number,
    inserted: number,
    duplicates: Uint8Array,
  ): Promise<void> {
    const rows = await conn.all<{ series_id: number; boot: number | null; seq: number | null }>(
      'SELECT series_id, boot, seq FROM telemetry ORDER BY rowid DESC LIMIT ?1',
      [inserted],
    );
    const fresh = new Map<string, number>();
    for (const r of rows) {
      if (r.seq === null) continue;
      const key = `${r.series_id}:${r.boot}:${r.seq}`;
      fresh.set(key, (fresh.get(key) ?? 0) + 1);
    }
    for (let i = start; i < end; i++) {
      const p = points[i]!;
      if (p.seq === undefined) continue;
      const key = `${seriesIds.get(`${p.deviceId}\u0000${p.metric}`)}:${p.boot}:${p.seq}`;
      const left = fresh.get(key) ?? 0;
      if (left > 0) fresh.set(key, left - 1);
      else duplicates[i] = 1;
    }
  }

  const telemetry = createBatchBuffer<SqliteConnection, TelemetryPoint, Uint8Array | undefined, AppendCounts>(
    {
      queue,
      durability: 'normal',
      flushMs: parts.flushMs,
      flushAt: batchMax,
      maxWaiting: parts.bufferMax,
      maxPerJob: MAX_POINTS_PER_TRANSACTION,
      write: writePoints,
      slice: (duplicateMask, offset, count) => {
        let duplicates = 0;
        if (duplicateMask !== undefined)
          for (let i = offset; i < offset + count; i++) duplicates += duplicateMask[i]!;
        counts.written += count - duplicates;
        counts.duplicates += duplicates;
        return { written: count - duplicates, duplicates };
      },
      onFailure: (error, count) => {
        seriesIds.clear();
        counts.failed += count;
        lastFailure = messageOf(error);
        logger.error('telemetry points could not be committed', { points: count, error: lastFailure });
      },
    },
  );

  // ---- events --------------------------------------------------------------------------------

  // One INSERT … SELECT per chunk; the seqs of one statement are consecutive (one writer,
  // AUTOINCREMENT), so they follow from last_insert_rowid() and the row count.
  async function writeEvents(conn: SqliteConnection, events: readonly PreparedEvent[]): Promise<number[]> {
    const seqs: number[] = [];
    for (let start = 0; start < events.length; start += EVENT_BATCH_MAX) {
      const chunk = events.slice(start, start + EVENT_BATCH_MAX);
      const info = await conn.run(
        `INSERT INTO events (at, device_id, kind, data)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?1)`,
        [JSON.stringify(chunk.map((e) => [e.at, e.deviceId, e.kind, e.data]))],
      );
      if (info.changes !== chunk.length)
        throw new StoreError('writeFailed', `event insert wrote ${info.changes} rows of ${chunk.length}`);
      for (let seq = info.lastId - chunk.length + 1; seq <= info.lastId; seq++) seqs.push(seq);
    }
    return seqs;
  }

  const events = createBatchBuffer<SqliteConnection, PreparedEvent, number[], number[]>({
    queue,
    durability: 'normal',
    flushMs: 0,
    flushAt: 1,
    maxWaiting: EVENT_BUFFER_MAX,
    maxPerJob: 50_000,
    write: writeEvents,
    slice: (seqs, offset, count) => seqs.slice(offset, offset + count),
  });

  // ---- helpers -------------------------------------------------------------------------------

  function ensureOpen(): void {
    if (closing !== undefined) throw new StoreError('closed', `the store ${file} is closed`);
  }

  function write<T>(durability: Durability, statements: 'one' | 'many', run: WriteJob<T>['run']): Promise<T> {
    return queue.submit({ durability, statements, run });
  }

  async function read<T>(what: string, query: () => Promise<T>): Promise<T> {
    ensureOpen();
    try {
      return await query();
    } catch (cause) {
      if (cause instanceof StoreError) throw cause;
      throw new StoreError('readFailed', `${what} failed: ${messageOf(cause)}`, { cause });
    }
  }

  function optionalJson(value: unknown, field: string): string | null {
    return value === undefined ? null : toJsonText(value, field);
  }

  // ---- the store -----------------------------------------------------------------------------

  return {
    file,
    exports: createExportReader(reader, ensureOpen),

    async upsertDevice(device: DeviceInput): Promise<RowResult<DeviceRecord>> {
      ensureOpen();
      const id = requireName(device?.id, 'device.id');
      const kind = requireName(device.kind, 'device.kind');
      const name = requireName(device.name, 'device.name');
      const params: SqlValue[] = [
        id,
        kind,
        name,
        device.tags === undefined ? null : toJsonText(requireTags(device.tags, 'device.tags'), 'device.tags'),
        device.attributes === undefined
          ? null
          : toJsonText(requireObject(device.attributes, 'device.attributes'), 'device.attributes'),
        device.spec === undefined
          ? null
          : toJsonText(requireObject(device.spec, 'device.spec'), 'device.spec'),
        device.status === undefined
          ? null
          : toJsonText(requireObject(device.status, 'device.status'), 'device.status'),
        now(),
      ];
      const row = await write('full', 'one', (conn) =>
        conn.get<DeviceRow>(
          `INSERT INTO devices (id, kind, name, tags, attributes, spec, status, created_at, updated_at)
           VALUES (?1, ?2, ?3, coalesce(?4, '[]'), coalesce(?5, '{}'), coalesce(?6, '{}'), coalesce(?7, '{}'), ?8, ?8)
           ON CONFLICT (id) DO UPDATE SET kind = ?2, name = ?3, tags = coalesce(?4, tags),
             attributes = coalesce(?5, attributes), spec = coalesce(?6, spec), status = coalesce(?7, status),
             updated_at = ?8
           RETURNING *`,
          params,
        ),
      );
      if (row === undefined)
        throw new StoreError('writeFailed', `device '${id}' was not returned by its upsert`);
      const parsed = deviceFromRow(row);
      if (parsed.ok) return parsed;
      // Reachable only when a field kept from a corrupt stored row does not parse.
      return { ...parsed, error: { code: 'badRecord', message: `saved, but ${parsed.error.message}` } };
    },

    async setDeviceStatus(deviceId: string, status: JsonObject) {
      ensureOpen();
      const id = requireName(deviceId, 'deviceId');
      const text = toJsonText(requireObject(status, 'status'), 'status');
      const at = now();
      const info = await write('normal', 'one', (conn) =>
        conn.run('UPDATE devices SET status = ?1, updated_at = ?2 WHERE id = ?3', [text, at, id]),
      );
      return info.changes > 0
        ? { ok: true, value: undefined }
        : { ok: false, error: { code: 'notFound', message: `no device '${id}'` } };
    },

    getDevice(deviceId: string) {
      return read('getDevice', async () => {
        const id = requireName(deviceId, 'deviceId');
        const row = await reader.get<DeviceRow>('SELECT * FROM devices WHERE id = ?1', [id]);
        if (row === undefined)
          return { ok: false, error: { code: 'notFound', message: `no device '${id}'` } } as const;
        const parsed = deviceFromRow(row);
        return parsed.ok ? parsed : ({ ok: false, error: parsed.error } as const);
      });
    },

    listDevices() {
      return read('listDevices', async () =>
        (await reader.all<DeviceRow>('SELECT * FROM devices ORDER BY id')).map(deviceFromRow),
      );
    },

    async deleteDevice(deviceId: string) {
      ensureOpen();
      const id = requireName(deviceId, 'deviceId');
      const info = await write('full', 'many', async (conn) => {
        await conn.run('DELETE FROM snapshots WHERE device_id = ?1', [id]);
        return conn.run('DELETE FROM devices WHERE id = ?1', [id]);
      });
      return info.changes > 0
        ? { ok: true, value: undefined }
        : { ok: false, error: { code: 'notFound', message: `no device '${id}'` } };
    },

    async purgeDeviceHistory(deviceId: string) {
      ensureOpen();
      const id = requireName(deviceId, 'deviceId');
      const counts = await write('full', 'many', async (conn) => {
        const telemetry = await conn.run(
          'DELETE FROM telemetry WHERE series_id IN (SELECT id FROM telemetry_series WHERE device_id = ?1)',
          [id],
        );
        await conn.run('DELETE FROM telemetry_series WHERE device_id = ?1', [id]);
        const events = await conn.run('DELETE FROM events WHERE device_id = ?1', [id]);
        const commands = await conn.run('DELETE FROM commands WHERE device_id = ?1', [id]);
        // Its series are gone: a device added later under the same id gets new ones.
        for (const key of [...seriesIds.keys()]) if (key.startsWith(`${id}\u0000`)) seriesIds.delete(key);
        return { telemetry: telemetry.changes, events: events.changes, commands: commands.changes };
      });
      return counts;
    },

    async pruneHistory(before, options = {}) {
      ensureOpen();
      const batch = Math.max(1, Math.min(100_000, options.batchRows ?? 5000));
      const cutOff = (v: number | undefined, what: string) =>
        v === undefined ? undefined : requireTime(v, `before.${what}`);
      const t = cutOff(before.telemetry, 'telemetry');
      const e = cutOff(before.events, 'events');
      const c = cutOff(before.commands, 'commands');
      const counts = { telemetry: 0, events: 0, commands: 0 };
      /** Runs one batch delete until it deletes fewer rows than a batch. */
      const drain = async (sql: string, params: readonly SqlValue[]): Promise<number> => {
        let total = 0;
        for (;;) {
          ensureOpen();
          const info = await write('normal', 'one', (conn) => conn.run(sql, [...params, batch]));
          total += info.changes;
          if (info.changes < batch) return total;
        }
      };
      if (t !== undefined) {
        // Per series, on the (series_id, received_at) index.
        const series = await reader.all<{ id: number }>('SELECT id FROM telemetry_series');
        for (const { id } of series)
          counts.telemetry += await drain(
            'DELETE FROM telemetry WHERE rowid IN (SELECT rowid FROM telemetry WHERE series_id = ?1 AND received_at < ?2 LIMIT ?3)',
            [id, t],
          );
      }
      if (e !== undefined)
        counts.events = await drain(
          'DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE at < ?1 LIMIT ?2)',
          [e],
        );
      if (c !== undefined)
        counts.commands = await drain(
          `DELETE FROM commands WHERE seq IN (SELECT seq FROM commands WHERE requested_at < ?1
             AND status NOT IN ('pending', 'sent') LIMIT ?2)`,
          [c],
        );
      return counts;
    },

    async saveSnapshot(input: SnapshotInput): Promise<void> {
      ensureOpen();
      const deviceId = requireName(input?.deviceId, 'snapshot.deviceId');
      const kind = requireName(input.kind, 'snapshot.kind');
      const snapshot = toJsonText(input.snapshot, 'snapshot.snapshot');
      const deadlines = toJsonText(
        requireDeadlines(input.deadlines, 'snapshot.deadlines'),
        'snapshot.deadlines',
      );
      const version = requireInt(input.version, 'snapshot.version', 0, Number.MAX_SAFE_INTEGER);
      const at = now();
      await write('full', 'one', (conn) =>
        conn.run(
          `INSERT INTO snapshots (device_id, kind, snapshot, deadlines, version, updated_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6)
           ON CONFLICT (device_id) DO UPDATE SET kind = ?2, snapshot = ?3, deadlines = ?4, version = ?5,
             updated_at = ?6`,
          [deviceId, kind, snapshot, deadlines, version, at],
        ),
      );
    },

    loadSnapshots(options: LoadSnapshotsOptions = {}) {
      return read('loadSnapshots', async () => {
        const known = options.knownKinds === undefined ? undefined : new Set(options.knownKinds);
        const rows = await reader.all<SnapshotRow>('SELECT * FROM snapshots ORDER BY device_id');
        return rows.map((row) => snapshotFromRow(row, known, options.validate));
      });
    },

    loadSnapshot(deviceId: string, options: LoadSnapshotsOptions = {}): Promise<SnapshotLoad | undefined> {
      return read('loadSnapshot', async () => {
        const id = requireName(deviceId, 'deviceId');
        const known = options.knownKinds === undefined ? undefined : new Set(options.knownKinds);
        const row = await reader.get<SnapshotRow>('SELECT * FROM snapshots WHERE device_id = ?1', [id]);
        return row === undefined ? undefined : snapshotFromRow(row, known, options.validate);
      });
    },

    async appendTelemetry(points: readonly TelemetryPoint[]) {
      ensureOpen();
      if (!Array.isArray(points))
        throw new StoreError('invalidArgument', 'points must be an array', { field: 'points' });
      let valid = points;
      let firstProblem: string | undefined;
      for (let i = 0; i < points.length; i++) {
        const problem = telemetryPointProblem(points[i]!);
        if (problem === undefined) continue;
        // Rare path: copy the valid points only once a bad one shows up.
        firstProblem ??= `points[${i}]: ${problem}`;
        valid = points.filter((p) => telemetryPointProblem(p) === undefined);
        break;
      }
      const rejected = points.length - valid.length;
      counts.rejected += rejected;
      if (rejected > 0) noteRefused(rejected, firstProblem!);
      if (valid.length === 0) return { ok: true, value: { written: 0, rejected, duplicates: 0 } };
      const added = telemetry.add(valid);
      if (added === undefined) {
        counts.overloaded += valid.length;
        return {
          ok: false,
          error: {
            code: 'overloaded',
            message: `${telemetry.waiting} telemetry points are already waiting for a commit (limit ${parts.bufferMax})`,
          },
        };
      }
      const { written, duplicates } = await added;
      return { ok: true, value: { written, rejected, duplicates } };
    },

    queryTelemetry(deviceId: string, metric: string, fromMs: number, toMs: number, buckets: number) {
      return read('queryTelemetry', async () => {
        const id = requireName(deviceId, 'deviceId');
        const name = requireName(metric, 'metric');
        const from = requireTime(fromMs, 'fromMs');
        const to = requireTime(toMs, 'toMs');
        const n = requireInt(buckets, 'buckets', 1, MAX_BUCKETS);
        if (to <= from) return [];
        const span = to - from;
        // Integer arithmetic, bucket = floor((t - from) * n / span), exact for any span. The CASTs
        // matter: sqlite3 binds a JS number beyond 32 bits as a REAL.
        const rows = await reader.all<{
          bucket: number;
          min: number;
          max: number;
          avg: number;
          count: number;
        }>(
          `SELECT min((t.received_at - CAST(?3 AS INTEGER)) * ?5 / CAST(?6 AS INTEGER), ?5 - 1) AS bucket,
                  min(t.value) AS min, max(t.value) AS max, avg(t.value) AS avg, count(*) AS count
           FROM telemetry AS t
           WHERE t.series_id = (SELECT id FROM telemetry_series WHERE device_id = ?1 AND metric = ?2)
             AND t.received_at >= ?3 AND t.received_at < ?4
           GROUP BY bucket ORDER BY bucket`,
          [id, name, from, to, n, span],
        );
        return rows.map(
          (r): Bucket => ({
            start: from + Math.ceil((r.bucket * span) / n),
            min: r.min,
            max: r.max,
            avg: r.avg,
            count: r.count,
          }),
        );
      });
    },

    listMetrics(deviceId: string) {
      return read('listMetrics', async () => {
        const id = requireName(deviceId, 'deviceId');
        const rows = await reader.all<{ metric: string }>(
          'SELECT metric FROM telemetry_series WHERE device_id = ?1 ORDER BY metric',
          [id],
        );
        return rows.map((r) => r.metric);
      });
    },

    async pruneTelemetry(olderThanMs: number) {
      ensureOpen();
      const age = requireInt(olderThanMs, 'olderThanMs', 0, Number.MAX_SAFE_INTEGER);
      const cutoff = now() - age;
      let deleted = 0;
      for (;;) {
        // CROSS JOIN keeps the series table outside: one index range per series, no full scan.
        const info = await write('normal', 'one', (conn) =>
          conn.run(
            `DELETE FROM telemetry WHERE rowid IN (
               SELECT t.rowid FROM telemetry_series AS s CROSS JOIN telemetry AS t
               WHERE t.series_id = s.id AND t.received_at < ?1 LIMIT ?2)`,
            [cutoff, PRUNE_CHUNK],
          ),
        );
        deleted += info.changes;
        if (info.changes < PRUNE_CHUNK || closing !== undefined) break;
      }
      if (deleted > 0) logger.debug('telemetry pruned', { deleted, cutoff });
      return { deleted };
    },

    async appendEvents(input: readonly EventInput[], options: { readonly durability?: Durability } = {}) {
      ensureOpen();
      if (!Array.isArray(input))
        throw new StoreError('invalidArgument', 'events must be an array', { field: 'events' });
      const prepared = input.map((e, i): PreparedEvent => {
        const deviceId = e.deviceId === undefined ? null : requireName(e.deviceId, `events[${i}].deviceId`);
        return {
          at: requireTime(e.at, `events[${i}].at`),
          deviceId,
          kind: requireName(e.kind, `events[${i}].kind`),
          data: toJsonText(e.data, `events[${i}].data`),
        };
      });
      if (prepared.length === 0) return [];
      if (options.durability === 'full')
        return write('full', prepared.length > EVENT_BATCH_MAX ? 'many' : 'one', (conn) =>
          writeEvents(conn, prepared),
        );
      const added = events.add(prepared);
      if (added === undefined)
        throw new StoreError(
          'writeFailed',
          `the event log is not keeping up: ${events.waiting} events already wait for a commit (limit ${EVENT_BUFFER_MAX})`,
        );
      return added;
    },

    queryEvents(query: EventQuery) {
      return read('queryEvents', async () => {
        const limit = requireInt(query?.limit, 'query.limit', 1, MAX_PAGE_LIMIT);
        const order = query.order ?? 'asc';
        if (order !== 'asc' && order !== 'desc')
          throw new StoreError('invalidArgument', "query.order must be 'asc' or 'desc'", {
            field: 'query.order',
          });
        const { where, params, add } = conditions();
        if (query.deviceId !== undefined) add('device_id = ?', requireName(query.deviceId, 'query.deviceId'));
        if (query.kind !== undefined) add('kind = ?', requireName(query.kind, 'query.kind'));
        if (query.fromMs !== undefined) add('at >= ?', requireTime(query.fromMs, 'query.fromMs'));
        if (query.toMs !== undefined) add('at < ?', requireTime(query.toMs, 'query.toMs'));
        if (query.afterSeq !== undefined)
          add('seq > ?', requireInt(query.afterSeq, 'query.afterSeq', 0, Number.MAX_SAFE_INTEGER));
        if (query.beforeSeq !== undefined)
          add('seq < ?', requireInt(query.beforeSeq, 'query.beforeSeq', 0, Number.MAX_SAFE_INTEGER));
        params.push(limit);
        const rows = await reader.all<EventRow>(
          `SELECT seq, at, device_id, kind, data FROM events
           ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
           ORDER BY seq ${order === 'asc' ? 'ASC' : 'DESC'} LIMIT ?${params.length}`,
          params,
        );
        return page(rows.map(eventFromRow), rows, limit);
      });
    },

    async recordCommand(command: CommandInput) {
      ensureOpen();
      const commandId = requireName(command?.commandId, 'command.commandId');
      const params: SqlValue[] = [
        commandId,
        requireName(command.deviceId, 'command.deviceId'),
        requireName(command.action, 'command.action'),
        toJsonText(command.args, 'command.args'),
        requireName(command.actor, 'command.actor'),
        requireCommandStatus(command.status ?? 'pending', 'command.status'),
        requireTime(command.requestedAt, 'command.requestedAt'),
        command.expiresAt == null ? null : requireTime(command.expiresAt, 'command.expiresAt'),
      ];
      const info = await write('full', 'one', (conn) =>
        conn.run(
          `INSERT INTO commands (command_id, device_id, action, args, actor, status, requested_at, expires_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (command_id) DO NOTHING`,
          params,
        ),
      );
      return info.changes > 0
        ? { ok: true, value: undefined }
        : {
            ok: false,
            error: { code: 'alreadyRecorded', message: `command '${commandId}' is already recorded` },
          };
    },

    async updateCommand(commandId: string, update: CommandUpdate) {
      ensureOpen();
      const id = requireName(commandId, 'commandId');
      const status = requireCommandStatus(update?.status, 'update.status');
      let error: string | null = null;
      if (update.error !== undefined) {
        requireName(update.error?.code, 'update.error.code');
        if (typeof update.error.message !== 'string')
          throw new StoreError('invalidArgument', 'update.error.message must be a string', {
            field: 'update.error.message',
          });
        error = toJsonText({ code: update.error.code, message: update.error.message }, 'update.error');
      }
      const params: SqlValue[] = [
        status,
        optionalJson(update.result, 'update.result'),
        error,
        update.completedAt === undefined ? null : requireTime(update.completedAt, 'update.completedAt'),
        id,
      ];
      const info = await write('full', 'one', (conn) =>
        conn.run(
          `UPDATE commands SET status = ?1, result = coalesce(?2, result), error = coalesce(?3, error),
             completed_at = coalesce(?4, completed_at)
           WHERE command_id = ?5`,
          params,
        ),
      );
      return info.changes > 0
        ? { ok: true, value: undefined }
        : { ok: false, error: { code: 'notFound', message: `no command '${id}' was recorded` } };
    },

    queryCommands(query: CommandQuery) {
      return read('queryCommands', async () => {
        const limit = requireInt(query?.limit, 'query.limit', 1, MAX_PAGE_LIMIT);
        const { where, params, add } = conditions();
        if (query.deviceId !== undefined) add('device_id = ?', requireName(query.deviceId, 'query.deviceId'));
        if (query.status !== undefined) add('status = ?', requireCommandStatus(query.status, 'query.status'));
        if (query.fromMs !== undefined) add('requested_at >= ?', requireTime(query.fromMs, 'query.fromMs'));
        if (query.toMs !== undefined) add('requested_at < ?', requireTime(query.toMs, 'query.toMs'));
        if (query.beforeSeq !== undefined)
          add('seq < ?', requireInt(query.beforeSeq, 'query.beforeSeq', 0, Number.MAX_SAFE_INTEGER));
        params.push(limit);
        const rows = await reader.all<CommandRow>(
          `SELECT * FROM commands ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
           ORDER BY seq DESC LIMIT ?${params.length}`,
          params,
        );
        return page(rows.map(commandFromRow), rows, limit);
      });
    },

    stats(): StoreStats {
      return { telemetry: { ...counts, lastFailure, waiting: telemetry.waiting } };
    },

    drained() {
      ensureOpen();
      return telemetry.whenAtMost(Math.floor(parts.bufferMax / 2));
    },

    close() {
      closing ??= (async () => {
        // Buffered writes were accepted before close: commit them, then stop.
        for (;;) {
          telemetry.flush();
          events.flush();
          await queue.idle();
          if (telemetry.waiting === 0 && events.waiting === 0 && queue.depth === 0) break;
        }
        try {
          await reader.close();
        } finally {
          // The last connection to close checkpoints the WAL into the database and removes it.
          await writer.close();
        }
        logger.info('store closed', { file });
      })();
      return closing;
    },
  };

  function noteRefused(count: number, problem: string): void {
    refusedSinceLog += count;
    const at = now();
    if (at - lastRefusedLogAt < REFUSED_LOG_INTERVAL_MS) return;
    logger.warn('telemetry points refused', { refused: refusedSinceLog, example: problem });
    refusedSinceLog = 0;
    lastRefusedLogAt = at;
  }
}

function page<T>(items: Page<T>['items'], rows: readonly { seq: number }[], limit: number): Page<T> {
  const last = rows[rows.length - 1];
  return { items, nextCursor: rows.length === limit && last !== undefined ? last.seq : undefined };
}

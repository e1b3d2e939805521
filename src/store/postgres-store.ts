/**
 * The {@link Store} on PostgreSQL (`pg`), for instances that share one fleet (issue 17; DESIGN §9).
 * Same contract, error vocabularies and semantics as the SQLite store (src/store/sqlite-store.ts);
 * the contract suite (test/store/contract.ts) runs against both.
 *
 * Connections: one `pg.Pool`. Every write goes through one queue ({@link createPostgresWriteQueue}:
 * group commit, acknowledged after COMMIT, in call order), which borrows one pooled connection per
 * transaction; queries use the other pooled connections and see committed data only.
 *
 * Durability: `'full'` writes wait for the WAL flush; `'normal'` ones (telemetry, the runtime event
 * log, reported status) commit with `synchronous_commit = off`: an app crash loses none of them,
 * a crash of the database server may lose the last ones.
 *
 * Telemetry: points wait in a buffer ({@link createBatchBuffer}, the same as SQLite's), and go in
 * with one `INSERT … SELECT … FROM unnest($1::bigint[], …) ON CONFLICT DO NOTHING` per
 * `telemetryBatchMax` points: six array parameters, not one placeholder per value. The unique index
 * `telemetry_once` keeps a point at most once per (device, metric, boot, seq). The common path
 * costs nothing for it: when the inserted row count is short (a repeat inside the chunk, or a key
 * stored before), the chunk is rolled back to a savepoint, the repeats and stored keys are found
 * and marked, and the rest is inserted again; each caller is told its duplicates.
 *
 * Times are the same epoch milliseconds as in SQLite (`bigint` columns, read back as numbers).
 *
 * Not handled here yet (issue 17 §2): several instances *writing* one fleet's devices at once. Reads
 * and writes from several instances are safe for the database, but event seqs are assigned at insert
 * and not at commit, so a reader paging with `afterSeq` while two instances write may step over an
 * event committed late; and the series id cache assumes no other instance purges a device's history.
 *
 * @example
 * const store = await openPostgresStore({ url: 'postgres://fleet@db.lan/fleetvisor', logger });
 * await store.appendTelemetry([{ deviceId: 'pump-1', metric: 'temp', deviceTs: null, receivedAt: Date.now(), value: 21.5 }]);
 * await store.close();
 */
import pg from 'pg';
import type { Logger } from '../runtime/runtime.js';
import { silentLogger } from '../runtime/runtime.js';
import { createBatchBuffer } from './batch-buffer.js';
import type { Migration } from './migrations.js';
import { migratePostgres } from './postgres-migrations.js';
import type { PostgresWriteJob } from './postgres-write-queue.js';
import { createPostgresWriteQueue } from './postgres-write-queue.js';
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

export interface PostgresStoreOptions {
  /** `postgres://user[:password]@host[:port]/database[?…]` (or `postgresql://`). */
  readonly url: string;
  readonly logger?: Logger;
  /** How long the first waiting telemetry point waits for others before a flush. Default 50. */
  readonly telemetryFlushMs?: number;
  /** Flush at once at this many waiting points; also the most points per INSERT. Default 10 000. */
  readonly telemetryBatchMax?: number;
  /** Most points waiting for a commit before `appendTelemetry` answers `overloaded`. Default 20 × batch max. */
  readonly telemetryBufferMax?: number;
  /** Most connections the pool opens: one writes at a time, the others read. Default 4. */
  readonly poolMax?: number;
  /** Wall clock for `createdAt`/`updatedAt` and retention. Default `Date.now`. */
  readonly now?: () => number;
  /**
   * The server ends a session that sits inside a transaction, idle, for longer than this (its
   * transaction rolls back, its locks go). For a cluster instance (docs/scale-out.md): a process
   * paused in the middle of a write holds share locks on its lease rows, and without this the
   * others could not claim those shards until it woke up. Default: no limit.
   */
  readonly idleInTransactionTimeoutMs?: number;
  /** Schema steps; defaults to the app's {@link POSTGRES_MIGRATIONS}. For tests. */
  readonly migrations?: readonly Migration[];
}

/**
 * What a cluster instance holds (src/cluster/lease-keeper.ts): the fencing token of a device's
 * shard. With a fence set, every write of a device's snapshot, events and commands checks, in
 * the transaction that writes it, that the shard's lease row still names this owner with this
 * epoch and has not expired on the database's clock (the row is share-locked until the commit,
 * so a new owner's claim waits for it or is seen by it). Telemetry is not fenced: a point is a
 * measurement kept at most once by its `(boot, seq)`, whoever writes it.
 */
export interface StoreFence {
  /** This instance, as the lease rows name their owner. */
  readonly owner: string;
  /** The shard of the device and the epoch this instance holds it at; undefined when it holds none. */
  tokenOf(deviceId: string): { readonly shard: number; readonly epoch: number } | undefined;
}

/** A {@link Store} on PostgreSQL; `database` names it in logs and messages (the URL, password hidden). */
export interface PostgresStore extends Store {
  readonly database: string;
  /** Fences the writes of devices from now on (a cluster instance); undefined: no fence. */
  setFence(fence: StoreFence | undefined): void;
  /** The pool, for the cluster's lease queries on the same database. */
  readonly pool: pg.Pool;
}

/** True for a URL that {@link openPostgresStore} takes (the scheme only; the rest is pg's to judge). */
export function isPostgresUrl(text: string): boolean {
  return /^postgres(ql)?:\/\/\S+$/.test(text);
}

/** The URL with its password replaced by `***`, for logs and messages. */
export function redactPostgresUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
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
/** Redoing a chunk whose stored keys changed under it (only another writer does that). */
const MAX_DUPLICATE_PASSES = 3;

const INT8_OID = 20;
/**
 * `bigint` as a JS number (pg's default is a string): every bigint here is a time in ms, a seq or
 * a count, all within `Number.MAX_SAFE_INTEGER`.
 */
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (text: string) => Number(text)
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/** A WHERE clause built from optional filters: `add('kind = ?', v)` numbers the placeholder `$n`. */
function conditions(): { where: string[]; params: unknown[]; add: (sql: string, value: unknown) => void } {
  const where: string[] = [];
  const params: unknown[] = [];
  return {
    where,
    params,
    add(sql, value) {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    },
  };
}

/**
 * Connects to the database at `options.url` and migrates it to the app's PostgreSQL schema.
 *
 * Throws {@link StoreError}: `databaseTooNew` (the database is from a newer Fleetvisor; the message
 * names both schema versions), `openFailed` (unreachable, refused, no such database, bad URL),
 * `migrationFailed`, `invalidArgument` (an option out of range; `url` not `postgres://…`).
 *
 * @example
 * const store = await openPostgresStore({ url: 'postgres://postgres@127.0.0.1/fleetvisor' });
 */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const url = requireName(options.url, 'url');
  if (!isPostgresUrl(url))
    throw new StoreError('invalidArgument', 'url must start with postgres:// or postgresql://', {
      field: 'url',
    });
  const database = redactPostgresUrl(url);
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
  const poolMax = requireInt(options.poolMax ?? 4, 'poolMax', 2, 1000);

  const pool = new pg.Pool({
    connectionString: url,
    max: poolMax,
    types: TYPES,
    application_name: 'fleetvisor',
    connectionTimeoutMillis: 10_000,
    ...(options.idleInTransactionTimeoutMs !== undefined
      ? {
          idle_in_transaction_session_timeout: requireInt(
            options.idleInTransactionTimeoutMs,
            'idleInTransactionTimeoutMs',
            1,
            86_400_000,
          ),
        }
      : {}),
  });
  // An idle pooled connection that drops (server restart) emits here; without a listener the
  // process would die. The pool replaces it on the next checkout.
  pool.on('error', (error) =>
    logger.warn('a PostgreSQL connection failed', { database, error: error.message }),
  );
  let schema: { from: number; to: number };
  try {
    schema = await migratePostgres(pool, { migrations: options.migrations, logger, label: database });
  } catch (error) {
    await pool.end().catch(() => {});
    if (error instanceof StoreError) throw error;
    throw new StoreError('openFailed', `cannot open the database ${database}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  logger.info('store opened', { database, schemaVersion: schema.to, migratedFrom: schema.from });
  return createPostgresStore({ database, pool, logger, now, flushMs, batchMax, bufferMax });
}

interface Parts {
  readonly database: string;
  readonly pool: pg.Pool;
  readonly logger: Logger;
  readonly now: () => number;
  readonly flushMs: number;
  readonly batchMax: number;
  readonly bufferMax: number;
}

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

/**
 * One chunk of points as the six unnest columns (`'NULL'` for a missing value), and which position
 * of the job's points each row came from.
 */
interface PointColumns {
  readonly at: number[];
  readonly seriesId: number[];
  readonly receivedAt: number[];
  readonly deviceTs: (number | 'NULL')[];
  readonly value: number[];
  readonly boot: (number | 'NULL')[];
  readonly seq: (number | 'NULL')[];
}

/**
 * A column as a PostgreSQL array literal. Built here rather than by pg, which quotes and
 * regex-escapes every element: these are finite numbers and NULL, which need neither.
 */
function arrayLiteral(column: readonly (number | 'NULL')[]): string {
  return `{${column.join(',')}}`;
}

// Ordered by series: both indexes then take the chunk series by series instead of jumping between
// them (measured here: ~100k → ~130k rows/s without seq, ~50k → ~70k with).
const INSERT_POINTS = `
  INSERT INTO telemetry (series_id, received_at, device_ts, value, boot, seq)
  SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::float8[], $5::bigint[], $6::bigint[])
  ORDER BY 1
  ON CONFLICT DO NOTHING`;

function createPostgresStore(parts: Parts): PostgresStore {
  const { database, pool, logger, now, batchMax } = parts;
  const queue = createPostgresWriteQueue(pool);
  let closing: Promise<void> | undefined;

  // ---- telemetry -----------------------------------------------------------------------------

  // "deviceId\0metric" → series id. Filled inside write jobs; cleared when one fails, since the
  // ids it learnt may belong to a transaction that rolled back.
  const seriesIds = new Map<string, number>();
  const counts = { written: 0, duplicates: 0, rejected: 0, overloaded: 0, failed: 0 };
  let lastFailure: string | null = null;
  let refusedSinceLog = 0;
  let lastRefusedLogAt = Number.NEGATIVE_INFINITY;

  async function learnSeries(conn: pg.PoolClient, points: readonly TelemetryPoint[]): Promise<void> {
    const devices: string[] = [];
    const metrics: string[] = [];
    const seen = new Set<string>();
    for (const p of points) {
      const key = `${p.deviceId}\u0000${p.metric}`;
      if (seriesIds.has(key) || seen.has(key)) continue;
      seen.add(key);
      devices.push(p.deviceId);
      metrics.push(p.metric);
    }
    if (devices.length === 0) return;
    await conn.query(
      `INSERT INTO telemetry_series (device_id, metric)
       SELECT * FROM unnest($1::text[], $2::text[]) ORDER BY 1, 2 ON CONFLICT DO NOTHING`,
      [devices, metrics],
    );
    const rows = await conn.query<{ id: number; device_id: string; metric: string }>(
      `SELECT s.id, s.device_id, s.metric FROM unnest($1::text[], $2::text[]) AS j (device_id, metric)
       JOIN telemetry_series AS s ON s.device_id = j.device_id AND s.metric = j.metric`,
      [devices, metrics],
    );
    for (const r of rows.rows) seriesIds.set(`${r.device_id}\u0000${r.metric}`, r.id);
  }

  /** The points of `[start, end)` not marked in `duplicates`, as columns. */
  function columnsOf(
    points: readonly TelemetryPoint[],
    start: number,
    end: number,
    duplicates: Uint8Array,
  ): PointColumns {
    const c: PointColumns = {
      at: [],
      seriesId: [],
      receivedAt: [],
      deviceTs: [],
      value: [],
      boot: [],
      seq: [],
    };
    for (let i = start; i < end; i++) {
      if (duplicates[i] === 1) continue;
      const p = points[i]!;
      c.at.push(i);
      c.seriesId.push(seriesIds.get(`${p.deviceId}\u0000${p.metric}`)!);
      c.receivedAt.push(Math.round(p.receivedAt));
      c.deviceTs.push(p.deviceTs === null ? 'NULL' : Math.round(p.deviceTs));
      c.value.push(p.value);
      c.boot.push(p.boot ?? 'NULL');
      c.seq.push(p.seq ?? 'NULL');
    }
    return c;
  }

  function insertColumns(conn: pg.PoolClient, c: PointColumns): Promise<pg.QueryResult> {
    return conn.query(
      INSERT_POINTS,
      [c.seriesId, c.receivedAt, c.deviceTs, c.value, c.boot, c.seq].map(arrayLiteral),
    );
  }

  async function writePoints(conn: pg.PoolClient, points: readonly TelemetryPoint[]): Promise<Uint8Array> {
    await learnSeries(conn, points);
    const duplicates = new Uint8Array(points.length);
    for (let start = 0; start < points.length; start += batchMax) {
      const end = Math.min(points.length, start + batchMax);
      let columns = columnsOf(points, start, end, duplicates);
      // The savepoint lets the rare path below undo this insert and redo it without the points
      // that were not stored: repeats within the chunk and keys stored before it.
      await conn.query('SAVEPOINT points');
      let inserted = (await insertColumns(conn, columns)).rowCount ?? 0;
      for (let pass = 0; inserted < columns.at.length; pass++) {
        if (pass === MAX_DUPLICATE_PASSES)
          throw new StoreError(
            'writeFailed',
            'telemetry keys kept changing under the insert (another writer?)',
          );
        await conn.query('ROLLBACK TO SAVEPOINT points');
        markRepeats(columns, duplicates);
        await markStored(conn, columnsOf(points, start, end, duplicates), duplicates);
        columns = columnsOf(points, start, end, duplicates);
        inserted = columns.at.length === 0 ? 0 : ((await insertColumns(conn, columns)).rowCount ?? 0);
      }
      await conn.query('RELEASE SAVEPOINT points');
    }
    return duplicates;
  }

  /** Rare path: marks every repeat of a (series, boot, seq) after its first in `c`. */
  function markRepeats(c: PointColumns, duplicates: Uint8Array): void {
    const keys = new Set<string>();
    c.seq.forEach((seq, j) => {
      if (seq === 'NULL') return;
      const key = `${c.seriesId[j]}:${c.boot[j]}:${seq}`;
      if (keys.has(key)) duplicates[c.at[j]!] = 1;
      else keys.add(key);
    });
  }

  /** Rare path: marks the points of `c` whose (series, boot, seq) is already stored. */
  async function markStored(conn: pg.PoolClient, c: PointColumns, duplicates: Uint8Array): Promise<void> {
    const at: number[] = [];
    const seriesId: number[] = [];
    const boot: (number | 'NULL')[] = [];
    const seq: number[] = [];
    c.seq.forEach((s, j) => {
      if (s === 'NULL') return;
      at.push(c.at[j]!);
      seriesId.push(c.seriesId[j]!);
      boot.push(c.boot[j]!);
      seq.push(s);
    });
    if (at.length === 0) return;
    const stored = await conn.query<{ i: number }>(
      `SELECT k.i FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]) AS k (i, series_id, boot, seq)
       WHERE EXISTS (SELECT 1 FROM telemetry AS t
                     WHERE t.series_id = k.series_id AND t.boot = k.boot AND t.seq = k.seq AND t.seq IS NOT NULL)`,
      [at, seriesId, boot, seq].map(arrayLiteral),
    );
    for (const { i } of stored.rows) duplicates[i] = 1;
  }

  const telemetry = createBatchBuffer<pg.PoolClient, TelemetryPoint, Uint8Array, AppendCounts>({
    queue,
    durability: 'normal',
    flushMs: parts.flushMs,
    flushAt: batchMax,
    maxWaiting: parts.bufferMax,
    maxPerJob: MAX_POINTS_PER_TRANSACTION,
    write: writePoints,
    slice: (duplicateMask, offset, count) => {
      let duplicates = 0;
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
  });

  // ---- events --------------------------------------------------------------------------------

  // One INSERT … SELECT per chunk; the identity is drawn in the order of the rows (ORDER BY ord),
  // so the sorted seqs line up with the events.
  async function writeEvents(conn: pg.PoolClient, events: readonly PreparedEvent[]): Promise<number[]> {
    await checkFence(
      conn,
      events.map((e) => e.deviceId),
    );
    const seqs: number[] = [];
    for (let start = 0; start < events.length; start += EVENT_BATCH_MAX) {
      const chunk = events.slice(start, start + EVENT_BATCH_MAX);
      const result = await conn.query<{ seq: number }>(
        `INSERT INTO events (at, device_id, kind, data)
         SELECT at, device_id, kind, data
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS e (at, device_id, kind, data, ord)
         ORDER BY ord
         RETURNING seq`,
        [
          chunk.map((e) => e.at),
          chunk.map((e) => e.deviceId),
          chunk.map((e) => e.kind),
          chunk.map((e) => e.data),
        ],
      );
      if (result.rows.length !== chunk.length)
        throw new StoreError(
          'writeFailed',
          `event insert wrote ${result.rows.length} rows of ${chunk.length}`,
        );
      for (const seq of result.rows.map((r) => r.seq).sort((a, b) => a - b)) seqs.push(seq);
    }
    return seqs;
  }

  const events = createBatchBuffer<pg.PoolClient, PreparedEvent, number[], number[]>({
    queue,
    durability: 'normal',
    flushMs: 0,
    flushAt: 1,
    maxWaiting: EVENT_BUFFER_MAX,
    maxPerJob: 50_000,
    write: writeEvents,
    slice: (seqs, offset, count) => seqs.slice(offset, offset + count),
  });

  // ---- fencing (a cluster instance) ----------------------------------------------------------

  let fence: StoreFence | undefined;

  /** The tokens the fence holds for these devices; throws `fenced` for one it holds none for. */
  function tokensOf(deviceIds: Iterable<string | null>): Map<number, number> | undefined {
    if (!fence) return undefined;
    const want = new Map<number, number>();
    for (const id of deviceIds) {
      if (id === null) continue;
      const token = fence.tokenOf(id);
      if (!token)
        throw new StoreError(
          'fenced',
          `not written: this instance (${fence.owner}) does not lease the shard of device '${id.slice(0, 80)}'`,
        );
      want.set(token.shard, token.epoch);
    }
    return want;
  }

  /** In the write's transaction: the leases still ours at our epochs, share-locked until commit. */
  async function checkFence(conn: pg.PoolClient, deviceIds: Iterable<string | null>): Promise<void> {
    const want = tokensOf(deviceIds);
    if (!want || want.size === 0 || !fence) return;
    const held = await conn.query<{ shard: number; epoch: number }>(
      `SELECT shard, epoch FROM fleetvisor_leases
       WHERE shard = ANY($1::int[]) AND owner = $2 AND expires_at > clock_timestamp()
       FOR SHARE`,
      [[...want.keys()], fence.owner],
    );
    const epochs = new Map(held.rows.map((r) => [r.shard, Number(r.epoch)]));
    for (const [shard, epoch] of want)
      if (epochs.get(shard) !== epoch)
        throw new StoreError(
          'fenced',
          `not written: the lease of shard ${shard} at epoch ${epoch} is no longer held by ${fence.owner} ` +
            '(another instance owns it now, or it ran out)',
        );
  }

  /** A device's write in the queue, fenced: nothing is written unless its lease holds. */
  function fencedChange(deviceId: string, sql: string, params: readonly unknown[]): Promise<number> {
    tokensOf([deviceId]);
    return write('full', 'one', async (conn) => {
      await checkFence(conn, [deviceId]);
      return (await conn.query(sql, [...params])).rowCount ?? 0;
    });
  }

  // ---- helpers -------------------------------------------------------------------------------

  function ensureOpen(): void {
    if (closing !== undefined) throw new StoreError('closed', `the store ${database} is closed`);
  }

  function write<T>(
    durability: Durability,
    statements: 'one' | 'many',
    run: PostgresWriteJob<T>['run'],
  ): Promise<T> {
    return queue.submit({ durability, statements, run });
  }

  /** Runs one statement in the write queue; resolves with the number of rows it changed. */
  function change(durability: Durability, sql: string, params: readonly unknown[]): Promise<number> {
    return write(durability, 'one', async (conn) => (await conn.query(sql, [...params])).rowCount ?? 0);
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

  async function rows<R extends pg.QueryResultRow>(
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<R[]> {
    return (await pool.query<R>(sql, [...params])).rows;
  }

  function optionalJson(value: unknown, field: string): string | null {
    return value === undefined ? null : toJsonText(value, field);
  }

  /** Deletes in batches of `batch` rows (each its own write) until a batch deletes fewer. */
  async function drain(sql: string, params: readonly unknown[], batch: number): Promise<number> {
    let total = 0;
    for (;;) {
      ensureOpen();
      const changed = await change('normal', sql, [...params, batch]);
      total += changed;
      if (changed < batch) return total;
    }
  }

  // ---- the store -----------------------------------------------------------------------------

  return {
    database,
    pool,
    setFence(next: StoreFence | undefined) {
      fence = next;
    },

    async upsertDevice(device: DeviceInput): Promise<RowResult<DeviceRecord>> {
      ensureOpen();
      const id = requireName(device?.id, 'device.id');
      const kind = requireName(device.kind, 'device.kind');
      const name = requireName(device.name, 'device.name');
      const params = [
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
      const row = await write(
        'full',
        'one',
        async (conn) =>
          (
            await conn.query<DeviceRow>(
              `INSERT INTO devices AS d (id, kind, name, tags, attributes, spec, status, created_at, updated_at)
             VALUES ($1, $2, $3, coalesce($4, '[]'), coalesce($5, '{}'), coalesce($6, '{}'), coalesce($7, '{}'), $8, $8)
             ON CONFLICT (id) DO UPDATE SET kind = $2, name = $3, tags = coalesce($4, d.tags),
               attributes = coalesce($5, d.attributes), spec = coalesce($6, d.spec), status = coalesce($7, d.status),
               updated_at = $8
             RETURNING *`,
              params,
            )
          ).rows[0],
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
      const changed = await change(
        'normal',
        'UPDATE devices SET status = $1, updated_at = $2 WHERE id = $3',
        [text, now(), id],
      );
      return changed > 0
        ? { ok: true, value: undefined }
        : { ok: false, error: { code: 'notFound', message: `no device '${id}'` } };
    },

    getDevice(deviceId: string) {
      return read('getDevice', async () => {
        const id = requireName(deviceId, 'deviceId');
        const row = (await rows<DeviceRow>('SELECT * FROM devices WHERE id = $1', [id]))[0];
        if (row === undefined)
          return { ok: false, error: { code: 'notFound', message: `no device '${id}'` } } as const;
        const parsed = deviceFromRow(row);
        return parsed.ok ? parsed : ({ ok: false, error: parsed.error } as const);
      });
    },

    listDevices() {
      return read('listDevices', async () =>
        (await rows<DeviceRow>('SELECT * FROM devices ORDER BY id')).map(deviceFromRow),
      );
    },

    async deleteDevice(deviceId: string) {
      ensureOpen();
      const id = requireName(deviceId, 'deviceId');
      const changed = await write('full', 'many', async (conn) => {
        await conn.query('DELETE FROM snapshots WHERE device_id = $1', [id]);
        return (await conn.query('DELETE FROM devices WHERE id = $1', [id])).rowCount ?? 0;
      });
      return changed > 0
        ? { ok: true, value: undefined }
        : { ok: false, error: { code: 'notFound', message: `no device '${id}'` } };
    },

    async purgeDeviceHistory(deviceId: string) {
      ensureOpen();
      const id = requireName(deviceId, 'deviceId');
      return write('full', 'many', async (conn) => {
        const deleted = async (sql: string) => (await conn.query(sql, [id])).rowCount ?? 0;
        const telemetry = await deleted(
          'DELETE FROM telemetry WHERE series_id IN (SELECT id FROM telemetry_series WHERE device_id = $1)',
        );
        await deleted('DELETE FROM telemetry_series WHERE device_id = $1');
        const events = await deleted('DELETE FROM events WHERE device_id = $1');
        const commands = await deleted('DELETE FROM commands WHERE device_id = $1');
        // Its series are gone: a device added later under the same id gets new ones.
        for (const key of [...seriesIds.keys()]) if (key.startsWith(`${id}\u0000`)) seriesIds.delete(key);
        return { telemetry, events, commands };
      });
    },

    async pruneHistory(before, options = {}) {
      ensureOpen();
      const batch = Math.max(1, Math.min(100_000, options.batchRows ?? 5000));
      const cutOff = (v: number | undefined, what: string) =>
        v === undefined ? undefined : requireTime(v, `before.${what}`);
      const t = cutOff(before.telemetry, 'telemetry');
      const e = cutOff(before.events, 'events');
      const c = cutOff(before.commands, 'commands');
      const deleted = { telemetry: 0, events: 0, commands: 0 };
      if (t !== undefined) {
        // Per series, on the (series_id, received_at) index; rows addressed by ctid (no DELETE … LIMIT).
        const series = await read('pruneHistory', () =>
          rows<{ id: number }>('SELECT id FROM telemetry_series'),
        );
        for (const { id } of series)
          deleted.telemetry += await drain(
            `DELETE FROM telemetry WHERE ctid = ANY (ARRAY (
               SELECT ctid FROM telemetry WHERE series_id = $1 AND received_at < $2 LIMIT $3))`,
            [id, t],
            batch,
          );
      }
      if (e !== undefined)
        deleted.events = await drain(
          'DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE at < $1 LIMIT $2)',
          [e],
          batch,
        );
      if (c !== undefined)
        deleted.commands = await drain(
          `DELETE FROM commands WHERE seq IN (SELECT seq FROM commands WHERE requested_at < $1
             AND status NOT IN ('pending', 'sent') LIMIT $2)`,
          [c],
          batch,
        );
      return deleted;
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
      await fencedChange(
        deviceId,
        `INSERT INTO snapshots (device_id, kind, snapshot, deadlines, version, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (device_id) DO UPDATE SET kind = $2, snapshot = $3, deadlines = $4, version = $5,
           updated_at = $6`,
        [deviceId, kind, snapshot, deadlines, version, now()],
      );
    },

    loadSnapshots(options: LoadSnapshotsOptions = {}) {
      return read('loadSnapshots', async () => {
        const known = options.knownKinds === undefined ? undefined : new Set(options.knownKinds);
        const found = await rows<SnapshotRow>('SELECT * FROM snapshots ORDER BY device_id');
        return found.map((row) => snapshotFromRow(row, known, options.validate));
      });
    },

    loadSnapshot(deviceId: string, options: LoadSnapshotsOptions = {}): Promise<SnapshotLoad | undefined> {
      return read('loadSnapshot', async () => {
        const id = requireName(deviceId, 'deviceId');
        const known = options.knownKinds === undefined ? undefined : new Set(options.knownKinds);
        const row = (await rows<SnapshotRow>('SELECT * FROM snapshots WHERE device_id = $1', [id]))[0];
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
        // Integer arithmetic, bucket = floor((t - from) * n / span), exact for any span.
        const found = await rows<{ bucket: number; min: number; max: number; avg: number; count: number }>(
          `SELECT least((t.received_at - $3::bigint) * $5::bigint / $6::bigint, $5::bigint - 1) AS bucket,
                  min(t.value) AS min, max(t.value) AS max, avg(t.value) AS avg, count(*) AS count
           FROM telemetry AS t
           WHERE t.series_id = (SELECT id FROM telemetry_series WHERE device_id = $1 AND metric = $2)
             AND t.received_at >= $3 AND t.received_at < $4
           GROUP BY bucket ORDER BY bucket`,
          [id, name, from, to, n, span],
        );
        return found.map(
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
        const found = await rows<{ metric: string }>(
          'SELECT metric FROM telemetry_series WHERE device_id = $1 ORDER BY metric',
          [id],
        );
        return found.map((r) => r.metric);
      });
    },

    async pruneTelemetry(olderThanMs: number) {
      ensureOpen();
      const age = requireInt(olderThanMs, 'olderThanMs', 0, Number.MAX_SAFE_INTEGER);
      const cutoff = now() - age;
      let deleted = 0;
      for (;;) {
        // Series by series on the (series_id, received_at) index, no full scan.
        const changed = await change(
          'normal',
          `DELETE FROM telemetry WHERE ctid = ANY (ARRAY (
             SELECT t.ctid FROM telemetry_series AS s CROSS JOIN LATERAL (
               SELECT ctid FROM telemetry WHERE series_id = s.id AND received_at < $1 LIMIT $2) AS t
             LIMIT $2))`,
          [cutoff, PRUNE_CHUNK],
        );
        deleted += changed;
        if (changed < PRUNE_CHUNK || closing !== undefined) break;
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
      tokensOf(prepared.map((e) => e.deviceId));
      if (options.durability === 'full') return write('full', 'many', (conn) => writeEvents(conn, prepared));
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
        const found = await rows<EventRow>(
          `SELECT seq, at, device_id, kind, data FROM events
           ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
           ORDER BY seq ${order === 'asc' ? 'ASC' : 'DESC'} LIMIT $${params.length}`,
          params,
        );
        return page(found.map(eventFromRow), found, limit);
      });
    },

    async recordCommand(command: CommandInput) {
      ensureOpen();
      const commandId = requireName(command?.commandId, 'command.commandId');
      const params = [
        commandId,
        requireName(command.deviceId, 'command.deviceId'),
        requireName(command.action, 'command.action'),
        toJsonText(command.args, 'command.args'),
        requireName(command.actor, 'command.actor'),
        requireCommandStatus(command.status ?? 'pending', 'command.status'),
        requireTime(command.requestedAt, 'command.requestedAt'),
        command.expiresAt == null ? null : requireTime(command.expiresAt, 'command.expiresAt'),
      ];
      const changed = await fencedChange(
        params[1] as string,
        `INSERT INTO commands (command_id, device_id, action, args, actor, status, requested_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (command_id) DO NOTHING`,
        params,
      );
      return changed > 0
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
      const params = [
        status,
        optionalJson(update.result, 'update.result'),
        error,
        update.completedAt === undefined ? null : requireTime(update.completedAt, 'update.completedAt'),
        id,
      ];
      const sql = `UPDATE commands SET status = $1, result = coalesce($2, result), error = coalesce($3, error),
           completed_at = coalesce($4, completed_at)
         WHERE command_id = $5`;
      const changed = fence
        ? await write('full', 'one', async (conn) => {
            const of = await conn.query<{ device_id: string }>(
              'SELECT device_id FROM commands WHERE command_id = $1',
              [id],
            );
            const deviceId = of.rows[0]?.device_id;
            if (deviceId === undefined) return 0;
            await checkFence(conn, [deviceId]);
            return (await conn.query(sql, params)).rowCount ?? 0;
          })
        : await change('full', sql, params);
      return changed > 0
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
        const found = await rows<CommandRow>(
          `SELECT * FROM commands ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
           ORDER BY seq DESC LIMIT $${params.length}`,
          params,
        );
        return page(found.map(commandFromRow), found, limit);
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
        await pool.end();
        logger.info('store closed', { database });
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

function page<T>(items: Page<T>['items'], found: readonly { seq: number }[], limit: number): Page<T> {
  const last = found[found.length - 1];
  return { items, nextCursor: found.length === limit && last !== undefined ? last.seq : undefined };
}

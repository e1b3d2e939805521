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
import type { LatestRow } from './latest-telemetry.js';
import { latestFromRows, latestTelemetrySql } from './latest-telemetry.js';
import type { Migration } from './migrations.js';
import { createPostgresAdoptJobs } from './postgres-adopt-jobs.js';
import { createPostgresCommands } from './postgres-commands.js';
import { createPostgresContext } from './postgres-context.js';
import { createPostgresDevices } from './postgres-devices.js';
import { createPostgresEvents } from './postgres-events.js';
import type { StoreFence } from './postgres-fence.js';
import { migratePostgres } from './postgres-migrations.js';
import { createPostgresRetention } from './postgres-retention.js';
import { createPostgresSnapshots } from './postgres-snapshots.js';
import { createPostgresTelemetry } from './postgres-telemetry.js';
import { messageOf, requireInt, requireName } from './records.js';
import type { Store } from './store.js';
import { StoreError } from './store.js';
import { commitBuffered } from './store-life.js';
import type { TelemetrySizes } from './store-telemetry.js';
import { telemetryOptions } from './store-telemetry.js';

export type { StoreFence } from './postgres-fence.js';

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
  const sizes = telemetryOptions(options);
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
  return createPostgresStore({ database, pool, logger, now, sizes });
}

interface Parts {
  readonly database: string;
  readonly pool: pg.Pool;
  readonly logger: Logger;
  readonly now: () => number;
  readonly sizes: TelemetrySizes;
}

/** The store assembled from its concerns, each in its own file; only the close is here. */
function createPostgresStore(parts: Parts): PostgresStore {
  const { database, pool, logger } = parts;
  const context = createPostgresContext({ pool, logger, now: parts.now, label: database });
  const { life, queue } = context;
  const { buffer: telemetry, ...telemetryCalls } = createPostgresTelemetry(context, parts.sizes);
  const { buffer: events, eventStats, ...eventCalls } = createPostgresEvents(context);
  return {
    database,
    pool,
    setFence: context.fence.set,
    ...createPostgresDevices(context),
    ...createPostgresSnapshots(context),
    ...telemetryCalls,
    ...eventCalls,
    stats: () => ({ ...telemetryCalls.stats(), events: eventStats() }),
    ...createPostgresCommands(context),
    ...createPostgresRetention(context),
    ...createPostgresAdoptJobs(context),
    latestTelemetry: (options) =>
      life.read('latestTelemetry', async () => {
        const { sql, params } = latestTelemetrySql('postgres', options);
        return latestFromRows(await context.rows<LatestRow>(sql, params));
      }),

    close() {
      return life.close(async () => {
        await commitBuffered(telemetry, events, queue);
        await pool.end();
        logger.info('store closed', { database });
      });
    },
  };
}

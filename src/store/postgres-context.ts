/**
 * What the concerns of a PostgreSQL store (src/store/postgres-store.ts: devices, snapshots,
 * telemetry, events, commands, retention) share: the pool, the single writer's queue with its two
 * helpers, the fence, the open/closed state, the clock, the logger and the series id cache.
 *
 * @example
 * const context = createPostgresContext({ pool, logger, now, label: database });
 * const changed = await context.change('normal', 'UPDATE devices SET … WHERE id = $3', params);
 */
import type pg from 'pg';
import type { Logger } from '../runtime/runtime.js';
import type { PostgresFence } from './postgres-fence.js';
import { createPostgresFence } from './postgres-fence.js';
import type { PostgresWriteQueue } from './postgres-write-queue.js';
import { createPostgresWriteQueue } from './postgres-write-queue.js';
import type { Durability } from './store.js';
import type { StoreLife, Write } from './store-life.js';
import { createStoreLife, writerOf } from './store-life.js';
import type { SeriesIds } from './store-telemetry.js';

export interface PostgresContext {
  /** Queries use its connections beside the writer's; they see committed data only. */
  readonly pool: pg.Pool;
  readonly queue: PostgresWriteQueue;
  /** Submits one job to the write queue. */
  readonly write: Write<pg.PoolClient>;
  /** Runs one statement in the write queue; resolves with the number of rows it changed. */
  change(durability: Durability, sql: string, params: readonly unknown[]): Promise<number>;
  /** Runs one query on the pool; resolves with its rows. */
  rows<R extends pg.QueryResultRow>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  readonly fence: PostgresFence;
  readonly life: StoreLife;
  readonly logger: Logger;
  /** Wall clock for `createdAt`/`updatedAt` and retention. */
  readonly now: () => number;
  /**
   * Filled inside write jobs; cleared when one fails, since the ids it learnt may belong to a
   * transaction that rolled back.
   */
  readonly seriesIds: SeriesIds;
}

export function createPostgresContext(parts: {
  readonly pool: pg.Pool;
  readonly logger: Logger;
  readonly now: () => number;
  /** Names the store in the `closed` message. */
  readonly label: string;
}): PostgresContext {
  const { pool } = parts;
  const queue = createPostgresWriteQueue(pool);
  const write = writerOf(queue);
  return {
    pool,
    queue,
    write,
    change: (durability, sql, params) =>
      write(durability, 'one', async (conn) => (await conn.query(sql, [...params])).rowCount ?? 0),
    rows: async <R extends pg.QueryResultRow>(sql: string, params: readonly unknown[] = []) =>
      (await pool.query<R>(sql, [...params])).rows,
    fence: createPostgresFence(write),
    life: createStoreLife(parts.label),
    logger: parts.logger,
    now: parts.now,
    seriesIds: new Map(),
  };
}

/**
 * What the concerns of a SQLite store (src/store/sqlite-store.ts: devices, snapshots, telemetry,
 * events, commands, retention) share: the read-only connection, the single writer's queue, the
 * open/closed state, the clock, the logger and the series id cache.
 *
 * @example
 * const devices = createSqliteDevices(context);   // context: SqliteContext, built once at open
 */
import type { Logger } from '../runtime/runtime.js';
import type { SqliteConnection } from './sqlite-connection.js';
import type { WriteQueue } from './sqlite-write-queue.js';
import type { StoreLife, Write } from './store-life.js';
import type { SeriesIds } from './store-telemetry.js';

export interface SqliteContext {
  /** Queries run here: committed data only (WAL snapshot), beside the writer. */
  readonly reader: SqliteConnection;
  readonly queue: WriteQueue;
  /** Submits one job to the writer's queue. */
  readonly write: Write<SqliteConnection>;
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

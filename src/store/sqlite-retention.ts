/**
 * Retention on SQLite: the DELETE statements the shared loop (src/store/store-retention.ts) runs.
 * SQLite has no `DELETE … LIMIT` by default, so each deletes the rowids a limited SELECT finds.
 *
 * @example
 * const retention = createSqliteRetention(context);
 * await retention.pruneTelemetry(7 * 86_400_000);
 */
import type { SqliteContext } from './sqlite-context.js';
import type { Store } from './store.js';
import type { RetentionSql } from './store-retention.js';
import { createRetention } from './store-retention.js';

const SQL: RetentionSql = {
  // CROSS JOIN keeps the series table outside: one index range per series, no full scan.
  telemetryChunk: `DELETE FROM telemetry WHERE rowid IN (
               SELECT t.rowid FROM telemetry_series AS s CROSS JOIN telemetry AS t
               WHERE t.series_id = s.id AND t.received_at < ?1 LIMIT ?2)`,
  seriesTelemetry:
    'DELETE FROM telemetry WHERE rowid IN (SELECT rowid FROM telemetry WHERE series_id = ?1 AND received_at < ?2 LIMIT ?3)',
  events: 'DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE at < ?1 LIMIT ?2)',
  commands: `DELETE FROM commands WHERE seq IN (SELECT seq FROM commands WHERE requested_at < ?1
             AND status NOT IN ('pending', 'sent') LIMIT ?2)`,
};

export function createSqliteRetention(
  context: SqliteContext,
): Pick<Store, 'pruneHistory' | 'pruneTelemetry'> {
  const { reader, write } = context;
  return createRetention({
    ...context,
    sql: SQL,
    listSeries: () => reader.all<{ id: number }>('SELECT id FROM telemetry_series'),
    deleteBatch: async (sql, params) =>
      (await write('normal', 'one', (conn) => conn.run(sql, params))).changes,
  });
}

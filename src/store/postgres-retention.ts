/**
 * Retention on PostgreSQL: the DELETE statements the shared loop (src/store/store-retention.ts)
 * runs. PostgreSQL has no `DELETE … LIMIT`, so each deletes the rows a limited SELECT finds,
 * addressed by ctid.
 *
 * @example
 * const retention = createPostgresRetention(context);
 * await retention.pruneTelemetry(7 * 86_400_000);
 */
import type { PostgresContext } from './postgres-context.js';
import type { Store } from './store.js';
import type { RetentionSql } from './store-retention.js';
import { createRetention } from './store-retention.js';

const SQL: RetentionSql = {
  // Series by series on the (series_id, received_at) index, no full scan.
  telemetryChunk: `DELETE FROM telemetry WHERE ctid = ANY (ARRAY (
             SELECT t.ctid FROM telemetry_series AS s CROSS JOIN LATERAL (
               SELECT ctid FROM telemetry WHERE series_id = s.id AND received_at < $1 LIMIT $2) AS t
             LIMIT $2))`,
  seriesTelemetry: `DELETE FROM telemetry WHERE ctid = ANY (ARRAY (
               SELECT ctid FROM telemetry WHERE series_id = $1 AND received_at < $2 LIMIT $3))`,
  events: 'DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE at < $1 LIMIT $2)',
  commands: `DELETE FROM commands WHERE seq IN (SELECT seq FROM commands WHERE requested_at < $1
             AND status NOT IN ('pending', 'sent') LIMIT $2)`,
};

export function createPostgresRetention(
  context: PostgresContext,
): Pick<Store, 'pruneHistory' | 'pruneTelemetry'> {
  const { life, rows, change } = context;
  return createRetention({
    ...context,
    sql: SQL,
    listSeries: () =>
      life.read('pruneHistory', () => rows<{ id: number }>('SELECT id FROM telemetry_series')),
    deleteBatch: (sql, params) => change('normal', sql, params),
  });
}

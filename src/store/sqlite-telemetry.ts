/**
 * Telemetry on SQLite: appends through the shared intake (src/store/store-telemetry.ts) into the
 * point writer (src/store/sqlite-points.ts), and the SQL of the two queries, downsampled buckets
 * and the metrics of a device.
 *
 * @example
 * const telemetry = createSqliteTelemetry(context, { flushMs: 50, batchMax: 10_000, bufferMax: 200_000 });
 * await telemetry.appendTelemetry(points);
 */
import type { SqliteContext } from './sqlite-context.js';
import { createSqlitePointWriter } from './sqlite-points.js';
import type { Store } from './store.js';
import type { BucketRow, TelemetryIntake, TelemetrySizes } from './store-telemetry.js';
import { createTelemetryIntake, createTelemetryReads } from './store-telemetry.js';

export type SqliteTelemetry = TelemetryIntake & Pick<Store, 'queryTelemetry' | 'listMetrics'>;

export function createSqliteTelemetry(context: SqliteContext, sizes: TelemetrySizes): SqliteTelemetry {
  const { reader } = context;
  const write = createSqlitePointWriter(context.seriesIds, sizes.batchMax);
  return {
    ...createTelemetryIntake({ ...context, ...sizes, write }),
    ...createTelemetryReads(context.life, {
      // Integer arithmetic, bucket = floor((t - from) * n / span), exact for any span. The CASTs
      // matter: sqlite3 binds a JS number beyond 32 bits as a REAL.
      buckets: ({ id, name, from, to, n, span }) =>
        reader.all<BucketRow>(
          `SELECT min((t.received_at - CAST(?3 AS INTEGER)) * ?5 / CAST(?6 AS INTEGER), ?5 - 1) AS bucket,
                  min(t.value) AS min, max(t.value) AS max, avg(t.value) AS avg, count(*) AS count
           FROM telemetry AS t
           WHERE t.series_id = (SELECT id FROM telemetry_series WHERE device_id = ?1 AND metric = ?2)
             AND t.received_at >= ?3 AND t.received_at < ?4
           GROUP BY bucket ORDER BY bucket`,
          [id, name, from, to, n, span],
        ),
      metrics: (id) =>
        reader.all<{ metric: string }>(
          'SELECT metric FROM telemetry_series WHERE device_id = ?1 ORDER BY metric',
          [id],
        ),
    }),
  };
}

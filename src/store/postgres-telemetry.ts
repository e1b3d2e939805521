/**
 * Telemetry on PostgreSQL: appends through the shared intake (src/store/store-telemetry.ts) into
 * the point writer (src/store/postgres-points.ts), and the SQL of the two queries, downsampled
 * buckets and the metrics of a device. Not fenced: a point is a measurement kept at most once by
 * its `(boot, seq)`, whoever writes it.
 *
 * @example
 * const telemetry = createPostgresTelemetry(context, { flushMs: 50, batchMax: 10_000, bufferMax: 200_000 });
 * await telemetry.appendTelemetry(points);
 */
import type { PostgresContext } from './postgres-context.js';
import { createPostgresPointWriter } from './postgres-points.js';
import type { Store } from './store.js';
import type { BucketRow, TelemetryIntake, TelemetrySizes } from './store-telemetry.js';
import { createTelemetryIntake, createTelemetryReads } from './store-telemetry.js';

export type PostgresTelemetry = TelemetryIntake & Pick<Store, 'queryTelemetry' | 'listMetrics'>;

export function createPostgresTelemetry(context: PostgresContext, sizes: TelemetrySizes): PostgresTelemetry {
  const { rows } = context;
  const write = createPostgresPointWriter(context.seriesIds, sizes.batchMax);
  return {
    ...createTelemetryIntake({ ...context, ...sizes, write }),
    ...createTelemetryReads(context.life, {
      // Integer arithmetic, bucket = floor((t - from) * n / span), exact for any span.
      buckets: ({ id, name, from, to, n, span }) =>
        rows<BucketRow>(
          `SELECT least((t.received_at - $3::bigint) * $5::bigint / $6::bigint, $5::bigint - 1) AS bucket,
                  min(t.value) AS min, max(t.value) AS max, avg(t.value) AS avg, count(*) AS count
           FROM telemetry AS t
           WHERE t.series_id = (SELECT id FROM telemetry_series WHERE device_id = $1 AND metric = $2)
             AND t.received_at >= $3 AND t.received_at < $4
           GROUP BY bucket ORDER BY bucket`,
          [id, name, from, to, n, span],
        ),
      metrics: (id) =>
        rows<{ metric: string }>('SELECT metric FROM telemetry_series WHERE device_id = $1 ORDER BY metric', [
          id,
        ]),
    }),
  };
}

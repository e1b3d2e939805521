/**
 * The newest stored point of every series (one metric of one device), for a restarted host's
 * fleet table: its metric columns show each device's latest value at once instead of only what
 * arrives after the start (src/host/api/latest.ts).
 *
 * One query on each engine, one index probe per series: each series' newest point is the last
 * entry of `telemetry_by_series_time (series_id, received_at)`, read backwards; no scan of the
 * points. At 10,000 devices × 4 metrics that is 40,000 probes, not millions of rows read.
 *
 * @example
 * const latest = await store.latestTelemetry();              // every series
 * const temps = await store.latestTelemetry({ metric: 'temp' });
 * // [{ deviceId: 'pump-1', metric: 'temp', receivedAt: 1718000000000, value: 21.4 }, …]
 */
import { requireName } from './records.js';

/** The newest point of one series (by receive time). */
export interface LatestPoint {
  readonly deviceId: string;
  readonly metric: string;
  readonly receivedAt: number;
  readonly value: number;
}

/** The part of the {@link Store} that reads the newest point of each series. */
export interface LatestTelemetryStore {
  /**
   * The newest point (by receive time) of every series, or of every series of `metric`; in no
   * particular order. Pruned points are gone: a series whose points were all pruned is left out.
   */
  latestTelemetry(options?: { readonly metric?: string }): Promise<LatestPoint[]>;
}

export interface LatestRow {
  device_id: string;
  metric: string;
  received_at: number;
  value: number;
}

// The series' newest point through the index, by its rowid: one probe per series.
const SQLITE_LATEST = `SELECT s.device_id AS device_id, s.metric AS metric, t.received_at AS received_at, t.value AS value
  FROM telemetry_series AS s
  JOIN telemetry AS t ON t.rowid = (
    SELECT rowid FROM telemetry WHERE series_id = s.id ORDER BY received_at DESC LIMIT 1)`;

const POSTGRES_LATEST = `SELECT s.device_id, s.metric, t.received_at, t.value
  FROM telemetry_series AS s
  CROSS JOIN LATERAL (
    SELECT received_at, value FROM telemetry WHERE series_id = s.id ORDER BY received_at DESC LIMIT 1) AS t`;

/** The engine's SQL and its parameters for `options`. */
export function latestTelemetrySql(
  engine: 'sqlite' | 'postgres',
  options: { readonly metric?: string } = {},
): { readonly sql: string; readonly params: string[] } {
  const base = engine === 'sqlite' ? SQLITE_LATEST : POSTGRES_LATEST;
  if (options.metric === undefined) return { sql: base, params: [] };
  const metric = requireName(options.metric, 'metric');
  return { sql: `${base} WHERE s.metric = ${engine === 'sqlite' ? '?1' : '$1'}`, params: [metric] };
}

export function latestFromRows(rows: readonly LatestRow[]): LatestPoint[] {
  return rows.map((r) => ({
    deviceId: r.device_id,
    metric: r.metric,
    receivedAt: r.received_at,
    value: r.value,
  }));
}

/**
 * The export's page queries (sqlite-export.ts tells the whole story): the keyset pager and one
 * reader per kind — events and commands by seq, telemetry series by series, raw or in buckets.
 * Each page is one query through `page`, which checks the store is open and names a failure.
 */
import { requireInt, requireName, requireTime } from './records.js';
import type { SqlValue } from './sqlite-connection.js';
import type {
  CommandExportRow,
  EventExportFilter,
  EventExportRow,
  ExportFilter,
  TelemetryBucketRow,
  TelemetryExportFilter,
  TelemetryExportRow,
  TelemetryPointRow,
} from './sqlite-export.js';
import { StoreError } from './store.js';

/** Rows per query: large enough to amortise the round trip, small enough to keep memory flat. */
export const PAGE_ROWS = 5_000;
/** The longest bucket: a year. */
export const MAX_BUCKET_SECONDS = 366 * 86_400;

/** One page's query: `what` names the export in its `readFailed` error. */
export type ExportPage = <T>(what: string, sql: string, params: SqlValue[]) => Promise<T[]>;

/** A telemetry series: one device's metric. */
interface Series {
  readonly id: number;
  readonly deviceId: string;
  readonly metric: string;
}

interface Checked {
  readonly fromMs: number;
  readonly toMs: number;
  /** JSON array text of device ids, or null for all. */
  readonly devices: string | null;
}

function checkFilter(filter: ExportFilter | undefined): Checked {
  const fromMs =
    filter?.fromMs === undefined ? Number.MIN_SAFE_INTEGER : requireTime(filter.fromMs, 'fromMs');
  const toMs = filter?.toMs === undefined ? Number.MAX_SAFE_INTEGER : requireTime(filter.toMs, 'toMs');
  return { fromMs, toMs, devices: nameList(filter?.deviceIds, 'deviceIds') };
}

function nameList(names: readonly string[] | undefined, field: string): string | null {
  if (names === undefined || names.length === 0) return null;
  if (!Array.isArray(names)) throw new StoreError('invalidArgument', `${field} must be an array`, { field });
  return JSON.stringify(names.map((n, i) => requireName(n, `${field}[${i}]`)));
}

/**
 * Pages by key: the next page's query is sent before the current page is handed over, so SQLite
 * (on libuv's pool) reads it while the consumer formats this one; two pages at most are held.
 * A prefetched page nobody asks for (the consumer stopped) is dropped, its failure included.
 */
async function* keyset<Row, Key>(
  first: Key,
  fetch: (key: Key) => Promise<Row[]>,
  nextKey: (last: Row) => Key,
): AsyncGenerator<Row[], void, undefined> {
  let pending: Promise<Row[]> | undefined = fetch(first);
  try {
    while (pending !== undefined) {
      const rows: Row[] = await pending;
      pending = rows.length === PAGE_ROWS ? fetch(nextKey(rows[rows.length - 1]!)) : undefined;
      if (rows.length > 0) yield rows;
    }
  } finally {
    pending?.catch(() => {});
  }
}

/** The event log by seq. */
export async function* exportEvents(
  page: ExportPage,
  filter: EventExportFilter | undefined,
): AsyncGenerator<EventExportRow[], void, undefined> {
  const f = checkFilter(filter);
  const kind = filter?.kind === undefined ? null : requireName(filter.kind, 'kind');
  // CASTs: sqlite3 binds a JS number beyond 32 bits as a REAL.
  yield* keyset(
    0,
    (after) =>
      page<EventExportRow>(
        'events',
        `SELECT seq, at, device_id AS deviceId, kind, data FROM events
           WHERE seq > ?1 AND at >= CAST(?2 AS INTEGER) AND at < CAST(?3 AS INTEGER)
             AND (?4 IS NULL OR device_id IN (SELECT value FROM json_each(?4)))
             AND (?5 IS NULL OR kind = ?5)
           ORDER BY seq LIMIT ?6`,
        [after, f.fromMs, f.toMs, f.devices, kind, PAGE_ROWS],
      ),
    (last) => last.seq,
  );
}

/** The command log by seq, filtered on the time requested. */
export async function* exportCommands(
  page: ExportPage,
  filter: ExportFilter | undefined,
): AsyncGenerator<CommandExportRow[], void, undefined> {
  const f = checkFilter(filter);
  yield* keyset(
    0,
    (after) =>
      page<CommandExportRow>(
        'commands',
        `SELECT seq, command_id AS commandId, device_id AS deviceId, action, args, actor, status,
                  result, error, requested_at AS requestedAt, completed_at AS completedAt,
                  expires_at AS expiresAt
           FROM commands
           WHERE seq > ?1 AND requested_at >= CAST(?2 AS INTEGER) AND requested_at < CAST(?3 AS INTEGER)
             AND (?4 IS NULL OR device_id IN (SELECT value FROM json_each(?4)))
           ORDER BY seq LIMIT ?5`,
        [after, f.fromMs, f.toMs, f.devices, PAGE_ROWS],
      ),
    (last) => last.seq,
  );
}

/** Telemetry series by series (device, then metric), raw or in buckets. */
export async function* exportTelemetry(
  page: ExportPage,
  filter: TelemetryExportFilter | undefined,
): AsyncGenerator<TelemetryExportRow[], void, undefined> {
  const f = checkFilter(filter);
  const metrics = nameList(filter?.metrics, 'metrics');
  const bucketSeconds =
    filter?.bucketSeconds === undefined
      ? undefined
      : requireInt(filter.bucketSeconds, 'bucketSeconds', 1, MAX_BUCKET_SECONDS);
  // The series are few (devices × metrics): read them once, then walk each one's index range.
  const series = await page<Series>(
    'telemetry',
    `SELECT id, device_id AS deviceId, metric FROM telemetry_series
       WHERE (?1 IS NULL OR device_id IN (SELECT value FROM json_each(?1)))
         AND (?2 IS NULL OR metric IN (SELECT value FROM json_each(?2)))
       ORDER BY device_id, metric`,
    [f.devices, metrics],
  );
  for (const s of series) {
    if (bucketSeconds === undefined) yield* rawSeries(page, s, f);
    else yield* bucketedSeries(page, s, f, bucketSeconds);
  }
}

async function* rawSeries(
  page: ExportPage,
  s: Series,
  f: Checked,
): AsyncGenerator<TelemetryPointRow[], void, undefined> {
  // Keyset on (received_at, rowid): the index holds the rowid after received_at, so equal
  // receive times neither repeat nor get skipped between pages.
  type Point = { rowid: number; receivedAt: number; deviceTs: number | null; value: number };
  const pages = keyset(
    { at: f.fromMs, rowid: -1 },
    (key) =>
      page<Point>(
        'telemetry',
        `SELECT rowid, received_at AS receivedAt, device_ts AS deviceTs, value FROM telemetry
         WHERE series_id = ?1 AND (received_at, rowid) > (CAST(?2 AS INTEGER), ?3)
           AND received_at < CAST(?4 AS INTEGER)
         ORDER BY received_at, rowid LIMIT ?5`,
        [s.id, key.at, key.rowid, f.toMs, PAGE_ROWS],
      ),
    (last) => ({ at: last.receivedAt, rowid: last.rowid }),
  );
  for await (const rows of pages)
    yield rows.map((r) => ({
      deviceId: s.deviceId,
      metric: s.metric,
      receivedAt: r.receivedAt,
      deviceTs: r.deviceTs,
      value: r.value,
    }));
}

async function* bucketedSeries(
  page: ExportPage,
  s: Series,
  f: Checked,
  bucketSeconds: number,
): AsyncGenerator<TelemetryBucketRow[], void, undefined> {
  const bucketMs = bucketSeconds * 1000;
  type Bucket = { start: number; count: number; avg: number; min: number; max: number };
  const pages = keyset(
    f.fromMs,
    (from) =>
      // Floor division for times before 1970 too (SQLite's % truncates toward zero).
      page<Bucket>(
        'telemetry',
        `SELECT (received_at - ((received_at % CAST(?2 AS INTEGER)) + CAST(?2 AS INTEGER)) % CAST(?2 AS INTEGER)) AS start,
                count(*) AS count, avg(value) AS avg, min(value) AS min, max(value) AS max
         FROM telemetry
         WHERE series_id = ?1 AND received_at >= CAST(?3 AS INTEGER) AND received_at < CAST(?4 AS INTEGER)
         GROUP BY start ORDER BY start LIMIT ?5`,
        [s.id, bucketMs, from, f.toMs, PAGE_ROWS],
      ),
    (last) => last.start + bucketMs,
  );
  for await (const rows of pages)
    yield rows.map((r) => ({
      deviceId: s.deviceId,
      metric: s.metric,
      start: r.start,
      bucketSeconds,
      count: r.count,
      avg: r.avg,
      min: r.min,
      max: r.max,
    }));
}

/**
 * Streaming readers for export: events, commands and telemetry over a time range, devices and
 * metrics, raw or downsampled, as an async iterator of pages. Each page is one keyset-paged query
 * on the read-only connection (`PAGE_ROWS` rows, continuing after the last row's key), so memory
 * stays flat whatever the size of the export, and a long export never holds a read transaction
 * open (each page is its own WAL snapshot; rows committed meanwhile may or may not appear).
 *
 * Orders: events and commands by seq; telemetry series by series (device, then metric), each in
 * receive-time order, so every page walks the `(series_id, received_at)` index.
 * Downsampled telemetry: buckets of `bucketSeconds` aligned to the Unix epoch (UTC), avg/min/max/
 * count per device + metric, computed in SQL.
 *
 * Throws {@link StoreError} `invalidArgument` for a bad filter (before the first page) and
 * `readFailed` when a page's query fails; stopping the iteration early (`break`, `return()`)
 * runs no further query.
 *
 * The queries, one reader per kind, live in sqlite-export-pages.ts; this file holds the types and
 * the reader over a connection.
 *
 * @example
 * for await (const page of store.exports.telemetry({ fromMs, toMs, deviceIds: ['pump-1'], bucketSeconds: 60 }))
 *   for (const row of page) sink.write(`${row.deviceId},${row.start},${row.avg}\n`);
 */
import { messageOf } from './records.js';
import type { SqliteConnection, SqlValue } from './sqlite-connection.js';
import { exportCommands, exportEvents, exportTelemetry } from './sqlite-export-pages.js';
import { StoreError } from './store.js';

export { MAX_BUCKET_SECONDS, PAGE_ROWS } from './sqlite-export-pages.js';

export interface ExportFilter {
  /** Inclusive, ms since epoch (receive time for telemetry, `at` for events, `requestedAt` for commands). */
  readonly fromMs?: number;
  /** Exclusive. */
  readonly toMs?: number;
  /** Only these devices; empty or missing: all. */
  readonly deviceIds?: readonly string[];
}

export interface EventExportFilter extends ExportFilter {
  /** Only this event kind (exact). */
  readonly kind?: string;
}

export interface TelemetryExportFilter extends ExportFilter {
  /** Only these metrics; empty or missing: all. */
  readonly metrics?: readonly string[];
  /** Downsample into buckets of this many seconds (1…{@link MAX_BUCKET_SECONDS}); missing: raw points. */
  readonly bucketSeconds?: number;
}

export interface EventExportRow {
  readonly seq: number;
  readonly at: number;
  readonly deviceId: string | null;
  readonly kind: string;
  /** The stored JSON text, as stored. */
  readonly data: string;
}

export interface CommandExportRow {
  readonly seq: number;
  readonly commandId: string;
  readonly deviceId: string;
  readonly action: string;
  /** JSON text. */
  readonly args: string;
  readonly actor: string;
  readonly status: string;
  /** JSON text or null. */
  readonly result: string | null;
  /** JSON text `{ code, message }` or null. */
  readonly error: string | null;
  readonly requestedAt: number;
  readonly completedAt: number | null;
  readonly expiresAt: number | null;
}

export interface TelemetryPointRow {
  readonly deviceId: string;
  readonly metric: string;
  readonly receivedAt: number;
  readonly deviceTs: number | null;
  readonly value: number;
}

export interface TelemetryBucketRow {
  readonly deviceId: string;
  readonly metric: string;
  /** The bucket's start, ms since epoch (a multiple of the bucket). */
  readonly start: number;
  readonly bucketSeconds: number;
  readonly count: number;
  readonly avg: number;
  readonly min: number;
  readonly max: number;
}

export type TelemetryExportRow = TelemetryPointRow | TelemetryBucketRow;

export interface ExportReader {
  events(filter?: EventExportFilter): AsyncGenerator<readonly EventExportRow[], void, undefined>;
  commands(filter?: ExportFilter): AsyncGenerator<readonly CommandExportRow[], void, undefined>;
  telemetry(filter?: TelemetryExportFilter): AsyncGenerator<readonly TelemetryExportRow[], void, undefined>;
}

/**
 * The readers over `reader`, a read-only connection; `ensureOpen` throws once the store closes
 * (checked before every page, so an export stops at a closing store).
 */
export function createExportReader(reader: SqliteConnection, ensureOpen: () => void): ExportReader {
  async function page<T>(what: string, sql: string, params: SqlValue[]): Promise<T[]> {
    ensureOpen();
    try {
      return await reader.all<T>(sql, params);
    } catch (cause) {
      throw new StoreError('readFailed', `export of ${what} failed: ${messageOf(cause)}`, { cause });
    }
  }

  return {
    events: (filter) => exportEvents(page, filter),
    commands: (filter) => exportCommands(page, filter),
    telemetry: (filter) => exportTelemetry(page, filter),
  };
}

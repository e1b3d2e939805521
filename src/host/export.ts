/**
 * Export of events, commands and telemetry as CSV or JSON Lines, streamed: the query parameters
 * of `GET /api/export/<events|commands|telemetry>` checked once into an {@link ExportRequest}
 * (a bad one is a named error, before anything is sent), the store's pages formatted into text
 * chunks, and {@link streamExport} writing them with backpressure (it waits for `drain` when
 * `write()` returns false, and stops reading the store when the client goes away).
 *
 * CSV: RFC 4180 (CRLF line ends, a header row, fields with `,` `"` CR or LF quoted, `"` doubled);
 * every time twice, ISO 8601 UTC and epoch ms (`at`, `atMs`). JSON Lines: one object per line
 * with the same fields; JSON columns (event data, command args…) as JSON values, not text.
 *
 * @example
 * const request = parseExportRequest('telemetry', new URLSearchParams('format=csv&device=pump-1&bucket=60'));
 * if (request.ok) await streamExport(store.exports, request.value, res);
 */
import type { ServerResponse } from 'node:http';
import type {
  CommandExportRow,
  EventExportRow,
  ExportReader,
  TelemetryExportRow,
} from '../store/sqlite-export.js';
import { MAX_BUCKET_SECONDS } from '../store/sqlite-export.js';

export const EXPORT_KINDS = ['events', 'commands', 'telemetry'] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];
export const EXPORT_FORMATS = ['csv', 'jsonl'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportRequest {
  readonly kind: ExportKind;
  readonly format: ExportFormat;
  readonly fromMs?: number;
  readonly toMs?: number;
  readonly deviceIds: readonly string[];
  /** Telemetry only. */
  readonly metrics: readonly string[];
  /** Telemetry only; missing: raw points. */
  readonly bucketSeconds?: number;
  /** Events only: one kind, exact. */
  readonly eventKind?: string;
}

/** A refused request: the parameter and why, for a 400. */
export interface ExportRequestError {
  readonly code: 'badRequest';
  readonly message: string;
}

const MAX_NAMES = 1_000;
const MAX_NAME_LENGTH = 256;
const ALLOWED: Record<ExportKind, readonly string[]> = {
  events: ['format', 'from', 'to', 'device', 'kind'],
  commands: ['format', 'from', 'to', 'device'],
  telemetry: ['format', 'from', 'to', 'device', 'metric', 'bucket'],
};

/** A time parameter: epoch ms (digits) or an ISO 8601 date-time (`2026-12-06T03:00:00Z`). */
export function parseTime(text: string): number | undefined {
  if (/^-?\d{1,16}$/.test(text)) {
    const ms = Number(text);
    return Number.isSafeInteger(ms) ? ms : undefined;
  }
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text))
    return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Checks an export's query parameters: `format` (csv, the default, or jsonl), `from`/`to`
 * (epoch ms or ISO; from inclusive, to exclusive), `device` (repeatable), and per kind `kind`
 * (events) or `metric` (repeatable) and `bucket` (seconds, telemetry). Unknown parameters are
 * refused, so a misspelt filter never exports everything silently.
 */
export function parseExportRequest(
  kind: string,
  params: URLSearchParams,
): { ok: true; value: ExportRequest } | { ok: false; error: ExportRequestError } {
  const bad = (message: string) => ({ ok: false as const, error: { code: 'badRequest' as const, message } });
  if (!(EXPORT_KINDS as readonly string[]).includes(kind))
    return bad(`no export '${kind}': use ${EXPORT_KINDS.join(', ')}`);
  const k = kind as ExportKind;
  for (const name of new Set(params.keys()))
    if (!ALLOWED[k].includes(name))
      return bad(`unknown parameter '${name}' for ${k} (allowed: ${ALLOWED[k].join(', ')})`);
  const single = (name: string): string | undefined | null => {
    const all = params.getAll(name);
    if (all.length > 1) return null;
    return all[0];
  };
  for (const name of ['format', 'from', 'to', 'kind', 'bucket'])
    if (single(name) === null) return bad(`'${name}' given more than once`);

  const format = single('format') ?? 'csv';
  if (!(EXPORT_FORMATS as readonly string[]).includes(format))
    return bad(`format must be csv or jsonl, not '${format}'`);
  const times: { fromMs?: number; toMs?: number } = {};
  for (const [name, key] of [
    ['from', 'fromMs'],
    ['to', 'toMs'],
  ] as const) {
    const text = single(name);
    if (text === undefined || text === null) continue;
    const ms = parseTime(text);
    if (ms === undefined)
      return bad(
        `${name} must be an ISO 8601 time (2026-12-06T03:00:00Z) or epoch milliseconds, not '${text}'`,
      );
    times[key] = ms;
  }
  if (times.fromMs !== undefined && times.toMs !== undefined && times.toMs <= times.fromMs)
    return bad('to must be after from');
  const names = (name: string): readonly string[] | string => {
    const all = params.getAll(name);
    if (all.length > MAX_NAMES) return `at most ${MAX_NAMES} '${name}' values`;
    for (const n of all)
      if (n.length === 0 || n.length > MAX_NAME_LENGTH)
        return `'${name}' must be 1 to ${MAX_NAME_LENGTH} characters`;
    return all;
  };
  const deviceIds = names('device');
  if (typeof deviceIds === 'string') return bad(deviceIds);
  const metrics = names('metric');
  if (typeof metrics === 'string') return bad(metrics);
  let bucketSeconds: number | undefined;
  const bucket = single('bucket');
  if (bucket !== undefined && bucket !== null) {
    bucketSeconds = /^\d{1,9}$/.test(bucket) ? Number(bucket) : Number.NaN;
    if (!(bucketSeconds >= 1 && bucketSeconds <= MAX_BUCKET_SECONDS))
      return bad(`bucket must be whole seconds from 1 to ${MAX_BUCKET_SECONDS}, not '${bucket}'`);
  }
  const eventKind = single('kind') ?? undefined;
  if (eventKind !== undefined && (eventKind.length === 0 || eventKind.length > MAX_NAME_LENGTH))
    return bad(`'kind' must be 1 to ${MAX_NAME_LENGTH} characters`);
  return {
    ok: true,
    value: {
      kind: k,
      format: format as ExportFormat,
      ...times,
      deviceIds,
      metrics,
      ...(bucketSeconds !== undefined ? { bucketSeconds } : {}),
      ...(eventKind !== undefined ? { eventKind } : {}),
    },
  };
}

/** `fleetvisor-telemetry-20261206T031000Z.csv`: the kind, the time of the export, the extension. */
export function exportFileName(request: ExportRequest, nowMs: number): string {
  const stamp = new Date(nowMs)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const what =
    request.kind === 'telemetry' && request.bucketSeconds !== undefined ? 'telemetry-buckets' : request.kind;
  return `fleetvisor-${what}-${stamp}.${request.format}`;
}

// ---- formatting ------------------------------------------------------------------------------

type Cell = string | number | null;
interface Column<Row> {
  readonly name: string;
  /** The CSV cell. */
  readonly csv: (row: Row) => Cell;
  /** The JSON value; default the CSV cell. */
  readonly json?: (row: Row) => unknown;
}

const iso = (ms: number | null): string | null => (ms === null ? null : isoOf(ms));
const DAY_MS = 86_400_000;
/** Year 10000: past it (and before 1970) `toISOString` itself, which writes extended years. */
const FAST_ISO_END = 253_402_300_800_000;
let isoDay = Number.NaN;
let isoDayPrefix = '';
const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));
/**
 * `toISOString()` without a Date per call (it was a quarter of an export's time): the date part
 * is kept per day, the time of day computed.
 */
export function isoOf(ms: number): string {
  if (!(ms >= 0 && ms < FAST_ISO_END) || !Number.isInteger(ms)) {
    const d = new Date(ms);
    return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
  }
  const day = Math.floor(ms / DAY_MS);
  if (day !== isoDay) {
    isoDay = day;
    isoDayPrefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
  }
  let rest = ms - day * DAY_MS;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const sec = Math.floor(rest / 1000);
  const milli = rest - sec * 1000;
  return `${isoDayPrefix}${pad2(h)}:${pad2(m)}:${pad2(sec)}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

/** Stored JSON text as a value; text that does not parse stays text (one bad row spoils nothing). */
function jsonOf(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function timeColumns<Row>(name: string, get: (row: Row) => number | null): Column<Row>[] {
  return [
    { name, csv: (r) => iso(get(r)) },
    { name: `${name}Ms`, csv: (r) => get(r) },
  ];
}

const EVENT_COLUMNS: readonly Column<EventExportRow>[] = [
  { name: 'seq', csv: (r) => r.seq },
  ...timeColumns<EventExportRow>('at', (r) => r.at),
  { name: 'deviceId', csv: (r) => r.deviceId },
  { name: 'kind', csv: (r) => r.kind },
  { name: 'data', csv: (r) => r.data, json: (r) => jsonOf(r.data) },
];

const COMMAND_COLUMNS: readonly Column<CommandExportRow>[] = [
  { name: 'seq', csv: (r) => r.seq },
  { name: 'commandId', csv: (r) => r.commandId },
  { name: 'deviceId', csv: (r) => r.deviceId },
  { name: 'action', csv: (r) => r.action },
  { name: 'args', csv: (r) => r.args, json: (r) => jsonOf(r.args) },
  { name: 'actor', csv: (r) => r.actor },
  { name: 'status', csv: (r) => r.status },
  { name: 'result', csv: (r) => r.result, json: (r) => jsonOf(r.result) },
  { name: 'error', csv: (r) => r.error, json: (r) => jsonOf(r.error) },
  ...timeColumns<CommandExportRow>('requestedAt', (r) => r.requestedAt),
  ...timeColumns<CommandExportRow>('completedAt', (r) => r.completedAt),
  ...timeColumns<CommandExportRow>('expiresAt', (r) => r.expiresAt),
];

type PointRow = Extract<TelemetryExportRow, { receivedAt: number }>;
type BucketRow = Extract<TelemetryExportRow, { start: number }>;

const POINT_COLUMNS: readonly Column<PointRow>[] = [
  { name: 'deviceId', csv: (r) => r.deviceId },
  { name: 'metric', csv: (r) => r.metric },
  ...timeColumns<PointRow>('receivedAt', (r) => r.receivedAt),
  ...timeColumns<PointRow>('deviceTs', (r) => r.deviceTs),
  { name: 'value', csv: (r) => r.value },
];

const BUCKET_COLUMNS: readonly Column<BucketRow>[] = [
  { name: 'deviceId', csv: (r) => r.deviceId },
  { name: 'metric', csv: (r) => r.metric },
  ...timeColumns<BucketRow>('start', (r) => r.start),
  { name: 'bucketSeconds', csv: (r) => r.bucketSeconds },
  { name: 'count', csv: (r) => r.count },
  { name: 'avg', csv: (r) => r.avg },
  { name: 'min', csv: (r) => r.min },
  { name: 'max', csv: (r) => r.max },
];

/** One CSV field (RFC 4180): quoted when it holds a comma, a quote, CR or LF; null is empty. */
export function csvField(value: Cell): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  const text = value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csvHeader(columns: readonly Column<never>[]): string {
  return `${columns.map((c) => csvField(c.name)).join(',')}\r\n`;
}

function formatPage<Row>(
  columns: readonly Column<Row>[],
  format: ExportFormat,
  rows: readonly Row[],
): string {
  const lines: string[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    if (format === 'csv') {
      let line = '';
      for (let c = 0; c < columns.length; c++) {
        if (c > 0) line += ',';
        line += csvField(columns[c]!.csv(row));
      }
      lines[i] = `${line}\r\n`;
    } else {
      const object: Record<string, unknown> = {};
      for (const column of columns) object[column.name] = (column.json ?? column.csv)(row);
      lines[i] = `${JSON.stringify(object)}\n`;
    }
  }
  return lines.join('');
}

/**
 * The export as text chunks (a header first for CSV, then one chunk per page of rows). Stopping
 * the iteration stops the store's reader.
 */
export async function* exportChunks(reader: ExportReader, request: ExportRequest): AsyncGenerator<string> {
  const base = {
    ...(request.fromMs !== undefined ? { fromMs: request.fromMs } : {}),
    ...(request.toMs !== undefined ? { toMs: request.toMs } : {}),
    deviceIds: request.deviceIds,
  };
  const { format } = request;
  if (request.kind === 'events') {
    if (format === 'csv') yield csvHeader(EVENT_COLUMNS);
    const filter = { ...base, ...(request.eventKind !== undefined ? { kind: request.eventKind } : {}) };
    for await (const rows of reader.events(filter)) yield formatPage(EVENT_COLUMNS, format, rows);
  } else if (request.kind === 'commands') {
    if (format === 'csv') yield csvHeader(COMMAND_COLUMNS);
    for await (const rows of reader.commands(base)) yield formatPage(COMMAND_COLUMNS, format, rows);
  } else if (request.bucketSeconds === undefined) {
    if (format === 'csv') yield csvHeader(POINT_COLUMNS);
    for await (const rows of reader.telemetry({ ...base, metrics: request.metrics }))
      yield formatPage(POINT_COLUMNS, format, rows as readonly PointRow[]);
  } else {
    if (format === 'csv') yield csvHeader(BUCKET_COLUMNS);
    const filter = { ...base, metrics: request.metrics, bucketSeconds: request.bucketSeconds };
    for await (const rows of reader.telemetry(filter))
      yield formatPage(BUCKET_COLUMNS, format, rows as readonly BucketRow[]);
  }
}

/**
 * Streams the export into `res` (headers included): waits for `drain` whenever `write()` says
 * the socket's buffer is full, and stops reading when the client disconnects. Resolves with the
 * outcome; a store failure mid-stream destroys the response (the client sees a cut-off
 * transfer, never a silently short file) and resolves `failed`.
 */
export async function streamExport(
  reader: ExportReader,
  request: ExportRequest,
  res: ServerResponse,
  nowMs: number = Date.now(),
): Promise<{ outcome: 'done' | 'aborted' | 'failed'; bytes: number; error?: unknown }> {
  let gone = false;
  const onClose = () => {
    gone = true;
  };
  res.on('close', onClose);
  const waitDrain = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  const chunks = exportChunks(reader, request);
  let bytes = 0;
  try {
    // The first chunk (the header, or the first page) is read before the status goes out, so a
    // filter the store refuses is still a 400.
    const first = await chunks.next();
    res.writeHead(200, {
      'Content-Type':
        request.format === 'csv'
          ? 'text/csv; charset=utf-8; header=present'
          : 'application/x-ndjson; charset=utf-8',
      'Content-Disposition': `attachment; filename="${exportFileName(request, nowMs)}"`,
      'Cache-Control': 'no-store',
    });
    if (!first.done) {
      bytes += Buffer.byteLength(first.value);
      if (!res.write(first.value)) await waitDrain();
    }
    if (!first.done)
      for await (const chunk of chunks) {
        if (gone) break;
        bytes += Buffer.byteLength(chunk);
        if (!res.write(chunk)) await waitDrain();
        if (gone) break;
      }
    if (gone) return { outcome: 'aborted', bytes };
    await new Promise<void>((resolve) => res.end(resolve));
    return { outcome: 'done', bytes };
  } catch (error) {
    if (!res.headersSent) throw error;
    res.destroy();
    return { outcome: 'failed', bytes, error };
  } finally {
    res.off('close', onClose);
    await chunks.return(undefined);
  }
}

/**
 * Store benchmark (`npm run bench -- store`): telemetry ingest through the store against a plain
 * prepared insert of the same rows in the same run, and the "last 10 minutes of one metric of one
 * device" query over 1M rows.
 *
 * Data: 100 devices × 5 metrics = 500 series, one point per series per second, so 1M points are
 * 2 000 s (33 min) of fleet telemetry. Producers call `appendTelemetry` with 100 points per call
 * (20 devices' messages) and keep at most 2 000 calls in flight, as an ingest pipeline with
 * back-pressure would; the store batches them itself.
 *
 * The plain insert is the naive way, for the ratio: one prepared `INSERT … VALUES (?,?,?,?)`, one
 * `run()` per row with the same four bound values, all in one transaction, on a file with the same
 * schema and pragmas.
 *
 * The fastest SQLite binding, for the second ratio (issue 16): better-sqlite3 (synchronous, one
 * prepared `INSERT OR IGNORE` run per row, in transactions of the store's batch size, 10,000 rows),
 * the same rows made the same way inside the timed loop, the same schema and pragmas. It is not a
 * dependency of the app (see README, "Why sqlite3"): bench-deps.ts installs it on first use.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sqlite3 from 'sqlite3';
import type { TelemetryPoint } from '../../src/store/index.js';
import { openSqliteStore } from '../../src/store/index.js';
import { benchDependency } from './bench-deps.js';
import { appendAll, gc, nowUs, percentile, report } from './bench-kit.js';

const SUITE = 'store';
const DEVICES = 100;
const METRICS = 5;
const SERIES = DEVICES * METRICS;
const TOTAL_POINTS = 1_000_000;
const PLAIN_POINTS = 100_000;
const POINTS_PER_CALL = 100;
const MAX_CALLS_IN_FLIGHT = 2_000;
const QUERIES = 1_000;
const T0 = Date.UTC(2025, 0, 1);

const dir = mkdtempSync(join(tmpdir(), 'fleetvisor-bench-store-'));

/** Point `i` of the data set: series `i % SERIES`, second `floor(i / SERIES)`. */
function point(i: number): TelemetryPoint {
  const s = i % SERIES;
  const second = Math.floor(i / SERIES);
  return {
    deviceId: `device-${String(s % DEVICES).padStart(3, '0')}`,
    metric: `metric-${Math.floor(s / DEVICES)}`,
    deviceTs: T0 + second * 1000 - 7,
    receivedAt: T0 + second * 1000,
    value: Math.sin(i) * 100,
  };
}

function promisify(db: sqlite3.Database, sql: string): Promise<void> {
  return new Promise((resolve, reject) => db.exec(sql, (e) => (e ? reject(e) : resolve())));
}

async function plainInsertRowsPerS(): Promise<number> {
  const file = join(dir, 'plain.sqlite');
  // Same schema (the store's own migrations) and the same pragmas the store's writer uses.
  const schema = await openSqliteStore({ file });
  await schema.appendTelemetry(Array.from({ length: SERIES }, (_, i) => point(i)));
  await schema.close();
  const db = await new Promise<sqlite3.Database>((resolve, reject) => {
    const d = new sqlite3.Database(file, (e) => (e ? reject(e) : resolve(d)));
  });
  await promisify(db, 'PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768;');
  await promisify(db, 'PRAGMA wal_autocheckpoint = 4000; PRAGMA temp_store = MEMORY;');
  const ids = new Map<string, number>();
  await new Promise<void>((resolve, reject) =>
    db.all<{ id: number; device_id: string; metric: string }>(
      'SELECT id, device_id, metric FROM telemetry_series',
      (e, rows) => {
        if (e) return reject(e);
        for (const r of rows) ids.set(`${r.device_id}\u0000${r.metric}`, r.id);
        resolve();
      },
    ),
  );
  const points = Array.from({ length: PLAIN_POINTS }, (_, i) => point(i));
  gc();
  const stmt = db.prepare(
    'INSERT INTO telemetry (series_id, received_at, device_ts, value) VALUES (?, ?, ?, ?)',
  );
  const start = nowUs();
  await promisify(db, 'BEGIN');
  await Promise.all(
    points.map(
      (p) =>
        new Promise<void>((resolve, reject) =>
          stmt.run(
            ids.get(`${p.deviceId}\u0000${p.metric}`),
            p.receivedAt,
            p.deviceTs,
            p.value,
            (e: Error | null) => (e ? reject(e) : resolve()),
          ),
        ),
    ),
  );
  await promisify(db, 'COMMIT');
  const seconds = (nowUs() - start) / 1e6;
  await new Promise<void>((resolve) => stmt.finalize(() => resolve()));
  await new Promise<void>((resolve) => db.close(() => resolve()));
  return PLAIN_POINTS / seconds;
}

/** The part of better-sqlite3's API used here (the package has no types of its own). */
interface BetterDatabase {
  pragma(source: string): unknown;
  prepare(sql: string): { run(...params: unknown[]): unknown; all(): unknown[] };
  transaction<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
  close(): void;
}
type BetterSqlite = new (file: string) => BetterDatabase;

/** The store's telemetry batch (`telemetryBatchMax`): one transaction per this many rows. */
const BETTER_BATCH = 10_000;

async function betterSqliteRowsPerS(): Promise<number | undefined> {
  const Database = benchDependency<BetterSqlite>('better-sqlite3', '12');
  if (!Database) return undefined;
  const file = join(dir, 'better.sqlite');
  const schema = await openSqliteStore({ file });
  await schema.appendTelemetry(Array.from({ length: SERIES }, (_, i) => point(i)));
  await schema.close();
  const db = new Database(file);
  for (const pragma of [
    'journal_mode = WAL',
    'synchronous = NORMAL',
    'cache_size = -32768',
    'wal_autocheckpoint = 4000',
    'temp_store = MEMORY',
  ])
    db.pragma(pragma);
  const ids = new Map<string, number>();
  for (const r of db.prepare('SELECT id, device_id, metric FROM telemetry_series').all() as {
    id: number;
    device_id: string;
    metric: string;
  }[])
    ids.set(`${r.device_id}\u0000${r.metric}`, r.id);
  const insert = db.prepare(
    'INSERT OR IGNORE INTO telemetry (series_id, received_at, device_ts, value, boot, seq) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const batch = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const p = point(i);
      insert.run(ids.get(`${p.deviceId}\u0000${p.metric}`), p.receivedAt, p.deviceTs, p.value, null, null);
    }
  });
  gc();
  const start = nowUs();
  for (let i = 0; i < TOTAL_POINTS; i += BETTER_BATCH) batch(i, Math.min(TOTAL_POINTS, i + BETTER_BATCH));
  const seconds = (nowUs() - start) / 1e6;
  db.close();
  return TOTAL_POINTS / seconds;
}

async function storeRowsPerS(file: string): Promise<number> {
  const store = await openSqliteStore({ file });
  gc();
  const rowsPerS = await appendAll(store, TOTAL_POINTS, point, POINTS_PER_CALL, MAX_CALLS_IN_FLIGHT);
  await store.close();
  return rowsPerS;
}

async function last10MinP99Ms(file: string): Promise<{ p50: number; p99: number; points: number }> {
  const store = await openSqliteStore({ file });
  const end = T0 + (TOTAL_POINTS / SERIES) * 1000;
  const times: number[] = [];
  let points = 0;
  let seed = 42;
  for (let q = 0; q < QUERIES; q++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const s = seed % SERIES;
    const start = nowUs();
    const buckets = await store.queryTelemetry(
      `device-${String(s % DEVICES).padStart(3, '0')}`,
      `metric-${Math.floor(s / DEVICES)}`,
      end - 600_000,
      end,
      60,
    );
    times.push((nowUs() - start) / 1000);
    points += buckets.reduce((n, b) => n + b.count, 0);
  }
  await store.close();
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99), points: points / QUERIES };
}

try {
  const plain = await plainInsertRowsPerS();
  const better = await betterSqliteRowsPerS();
  const file = join(dir, 'store.sqlite');
  const rate = await storeRowsPerS(file);
  report(
    SUITE,
    'telemetry_rows_per_s',
    Math.round(rate),
    'rows/s',
    '>=',
    Math.round(plain * 6),
    `${TOTAL_POINTS} points, ${POINTS_PER_CALL} per call, ≤${MAX_CALLS_IN_FLIGHT} calls in flight; goal = 6 × plain`,
  );
  report(
    SUITE,
    'telemetry_plain_insert_rows_per_s',
    Math.round(plain),
    'rows/s',
    '>=',
    0,
    `baseline, not a goal: one prepared run() per row, ${PLAIN_POINTS} rows in one transaction, same schema and binding`,
  );
  report(
    SUITE,
    'telemetry_speedup_vs_plain',
    rate / plain,
    'x',
    '>=',
    6,
    'store rows/s ÷ plain insert rows/s',
  );
  if (better === undefined)
    console.log('# store: better-sqlite3 could not be installed; its figures are left out');
  else {
    report(
      SUITE,
      'telemetry_better_sqlite3_rows_per_s',
      Math.round(better),
      'rows/s',
      '>=',
      0,
      `baseline, not a goal: better-sqlite3 12, prepared INSERT OR IGNORE per row, ${BETTER_BATCH} rows per transaction, same schema, pragmas and rows`,
    );
    report(
      SUITE,
      'telemetry_vs_better_sqlite3',
      rate / better,
      'x',
      '>=',
      1,
      'store rows/s (sqlite3, through the Store port) ÷ better-sqlite3 rows/s, same run',
    );
  }
  const q = await last10MinP99Ms(file);
  report(
    SUITE,
    'last_10min_query_p99',
    q.p99,
    'ms',
    '<=',
    20,
    `${QUERIES} queries of one series, 600 s into 60 buckets (~${Math.round(q.points)} points each) over ` +
      `${TOTAL_POINTS} rows; p50 ${q.p50.toFixed(2)} ms; goal 20 ms: a detail view redraws several charts well inside 100 ms`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

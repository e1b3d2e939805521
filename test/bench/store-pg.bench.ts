/**
 * Store on PostgreSQL against the store on SQLite (`npm run bench -- store-pg`), in the same run,
 * through the same Store port: telemetry ingest in rows/s, without and with the protocol's
 * (boot, seq) (the second goes through the `telemetry_once` unique index on both engines), and the
 * "last 10 minutes of one metric of one device" query.
 *
 * Data and load as in store.bench.ts: 100 devices × 5 metrics, one point per series per second;
 * `appendTelemetry` with 100 points per call, at most 2 000 calls in flight, the store batching
 * them itself (10 000 points per INSERT on both). BENCH_POINTS sets the points per run (default
 * 1,000,000; BENCH_QUICK 200,000).
 *
 * PostgreSQL: a database `fv_bench_<random>` on FLEETVISOR_TEST_PG_URL (default
 * postgres://postgres@127.0.0.1:5432/postgres), dropped after; the same server the tests use, on
 * the same machine as the bench, so both engines share its two cores.
 *
 * Goals: 100,000 rows/s on PostgreSQL (a 100k-device fleet at one point a second, on one instance)
 * and at least half of SQLite's rate in the same run. First figures (1M points, 2 cores): no seq
 * 143k rows/s (0.70 × SQLite's 205k), boot+seq 81k (0.85 × SQLite's 95k); query p99 3.5 ms.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPostgresStore } from '../../src/store/postgres-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { Store, TelemetryPoint } from '../../src/store/store.js';
import type { TestDatabase } from '../store/postgres-helpers.js';
import { createTestDatabase } from '../store/postgres-helpers.js';
import { appendAll, gc, nowUs, percentile, report } from './bench-kit.js';

const SUITE = 'store-pg';
const DEVICES = 100;
const METRICS = 5;
const SERIES = DEVICES * METRICS;
const TOTAL_POINTS = Number(process.env.BENCH_POINTS ?? (process.env.BENCH_QUICK ? 200_000 : 1_000_000));
const POINTS_PER_CALL = 100;
const MAX_CALLS_IN_FLIGHT = 2_000;
const QUERIES = 1_000;
const T0 = Date.UTC(2025, 0, 1);

/** Point `i`: series `i % SERIES`, second `floor(i / SERIES)`; with `seq`, the second is the seq. */
function point(i: number, withSeq: boolean): TelemetryPoint {
  const s = i % SERIES;
  const second = Math.floor(i / SERIES);
  const p = {
    deviceId: `device-${String(s % DEVICES).padStart(3, '0')}`,
    metric: `metric-${Math.floor(s / DEVICES)}`,
    deviceTs: T0 + second * 1000 - 7,
    receivedAt: T0 + second * 1000,
    value: Math.sin(i) * 100,
  };
  return withSeq ? { ...p, boot: 1, seq: second } : p;
}

async function ingestRowsPerS(store: Store, withSeq: boolean): Promise<number> {
  gc();
  return appendAll(store, TOTAL_POINTS, (i) => point(i, withSeq), POINTS_PER_CALL, MAX_CALLS_IN_FLIGHT);
}

async function last10Min(store: Store): Promise<{ p50: number; p99: number }> {
  const end = T0 + (TOTAL_POINTS / SERIES) * 1000;
  const times: number[] = [];
  let seed = 42;
  for (let q = 0; q < QUERIES; q++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const s = seed % SERIES;
    const start = nowUs();
    await store.queryTelemetry(
      `device-${String(s % DEVICES).padStart(3, '0')}`,
      `metric-${Math.floor(s / DEVICES)}`,
      end - 600_000,
      end,
      60,
    );
    times.push((nowUs() - start) / 1000);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

interface Figures {
  readonly plain: number;
  readonly withSeq: number;
  readonly query: { p50: number; p99: number };
}

/** Two fresh stores from `open` (one per ingest run, so the second starts empty too). */
async function measure(open: (run: number) => Promise<Store>): Promise<Figures> {
  const a = await open(0);
  const plain = await ingestRowsPerS(a, false);
  const query = await last10Min(a);
  await a.close();
  const b = await open(1);
  const withSeq = await ingestRowsPerS(b, true);
  await b.close();
  return { plain, withSeq, query };
}

const dir = mkdtempSync(join(tmpdir(), 'fleetvisor-bench-store-pg-'));
const databases: TestDatabase[] = [];
try {
  const sqlite = await measure((run) => openSqliteStore({ file: join(dir, `store-${run}.sqlite`) }));
  const postgres = await measure(async () => {
    const db = await createTestDatabase();
    databases.push(db);
    return openPostgresStore({ url: db.url });
  });
  const load = `${TOTAL_POINTS} points, ${POINTS_PER_CALL} per call, ≤${MAX_CALLS_IN_FLIGHT} calls in flight`;
  report(
    SUITE,
    'sqlite_rows_per_s',
    Math.round(sqlite.plain),
    'rows/s',
    '>=',
    0,
    `baseline: ${load}, no seq`,
  );
  report(
    SUITE,
    'postgres_rows_per_s',
    Math.round(postgres.plain),
    'rows/s',
    '>=',
    100_000,
    `${load}, no seq`,
  );
  report(
    SUITE,
    'postgres_vs_sqlite',
    postgres.plain / sqlite.plain,
    'x',
    '>=',
    0.5,
    'rows/s ÷ rows/s, same run',
  );
  report(
    SUITE,
    'sqlite_seq_rows_per_s',
    Math.round(sqlite.withSeq),
    'rows/s',
    '>=',
    0,
    `baseline: ${load}, boot+seq`,
  );
  report(
    SUITE,
    'postgres_seq_rows_per_s',
    Math.round(postgres.withSeq),
    'rows/s',
    '>=',
    100_000,
    `${load}, boot+seq (the telemetry_once index)`,
  );
  report(
    SUITE,
    'postgres_seq_vs_sqlite',
    postgres.withSeq / sqlite.withSeq,
    'x',
    '>=',
    0.5,
    'with boot+seq, rows/s ÷ rows/s, same run',
  );
  report(
    SUITE,
    'postgres_last_10min_query_p99',
    postgres.query.p99,
    'ms',
    '<=',
    20,
    `p50 ${postgres.query.p50.toFixed(2)} ms; SQLite p50 ${sqlite.query.p50.toFixed(2)} / p99 ${sqlite.query.p99.toFixed(2)} ms`,
  );
} finally {
  for (const db of databases) await db.drop().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
}

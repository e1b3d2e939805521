/**
 * The SQLite point writer (src/store/sqlite-points.ts) reads its batch through `jsonb_each`
 * (issue 16). On generated points — fractions, negatives, integers beyond 32 bits, times past
 * 2^31, a null device time, points with and without boot and seq, in batches across many series —
 * every row holds exactly the point, with the column types json_each gave (INTEGER times, REAL
 * values, NULL where absent), and the same rows as the same batch inserted through json_each.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { TelemetryPoint } from '../../src/store/store.js';
import { rawAll, rawExec, rawRun, tempDir } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** mulberry32: a failure replays. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function generate(n: number): TelemetryPoint[] {
  const next = random(7);
  const values = [
    () => Math.round(next() * 1e6) / 1e3 - 500, // fractions, negative too
    () => Math.floor(next() * 2 ** 52) * (next() < 0.5 ? -1 : 1), // integers beyond 32 bits
    () => next() * 1e-9, // tiny
    () => 0,
  ];
  return Array.from({ length: n }, (_, i) => {
    const p: TelemetryPoint = {
      deviceId: `dev-${i % 37}`,
      metric: `m${i % 3}`,
      deviceTs: next() < 0.3 ? null : 1_700_000_000_000 + i,
      receivedAt: 1_750_000_000_000 + i,
      value: values[i % values.length]!(),
    };
    return next() < 0.7 ? { ...p, boot: Math.floor(next() * 2 ** 32), seq: i } : p;
  });
}

interface Row {
  device: string;
  metric: string;
  received_at: number;
  device_ts: number | null;
  value: number;
  boot: number | null;
  seq: number | null;
  types: string;
}

const SELECT_ROWS = `
  SELECT s.device_id AS device, s.metric, t.received_at, t.device_ts, t.value, t.boot, t.seq,
         typeof(t.received_at) || ',' || typeof(t.device_ts) || ',' || typeof(t.value) || ',' ||
         typeof(t.boot) || ',' || typeof(t.seq) AS types
  FROM telemetry t JOIN telemetry_series s ON s.id = t.series_id
  ORDER BY t.received_at`;

describe('SQLite point writer', () => {
  it('stores each generated point exactly, as json_each did', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 1, telemetryBatchMax: 500 });
    cleanups.push(() => store.close());
    const points = generate(3_000);
    const r = await store.appendTelemetry(points);
    expect(r).toEqual({ ok: true, value: { written: 3_000, rejected: 0, duplicates: 0 } });
    await store.close();

    const rows = await rawAll<Row>(tmp.file, SELECT_ROWS);
    expect(rows).toEqual(
      points.map((p) => ({
        device: p.deviceId,
        metric: p.metric,
        received_at: p.receivedAt,
        device_ts: p.deviceTs,
        value: p.value,
        boot: p.boot ?? null,
        seq: p.seq ?? null,
        types: `integer,${p.deviceTs === null ? 'null' : 'integer'},real,${p.seq === undefined ? 'null,null' : 'integer,integer'}`,
      })),
    );

    // The same batch through the json_each form of the insert, into an empty copy of the table:
    // the rows as the writer prints them, [series, value, receivedAt, deviceTs, boot, seq].
    const series = new Map(
      (
        await rawAll<{ id: number; key: string }>(
          tmp.file,
          "SELECT id, device_id || '/' || metric AS key FROM telemetry_series",
        )
      ).map((r) => [r.key, r.id]),
    );
    const batch = points.map(
      (p) =>
        `[${series.get(`${p.deviceId}/${p.metric}`)},${p.value},${p.receivedAt},${p.deviceTs ?? 'null'},` +
        `${p.boot ?? 'null'},${p.seq ?? 'null'}]`,
    );
    await rawExec(
      tmp.file,
      `CREATE TABLE old_way (series_id INTEGER NOT NULL, received_at INTEGER NOT NULL, device_ts INTEGER,
         value REAL NOT NULL, boot INTEGER, seq INTEGER) STRICT`,
    );
    await rawRun(
      tmp.file,
      `INSERT INTO old_way (series_id, received_at, device_ts, value, boot, seq)
         SELECT value ->> 0, value ->> 2, value ->> 3, value ->> 1, value ->> 4, value ->> 5
         FROM json_each(?1) ORDER BY value ->> 0, key`,
      [`[${batch.join(',')}]`],
    );
    const viaJsonEach = await rawAll<Row>(
      tmp.file,
      SELECT_ROWS.replace('FROM telemetry t', 'FROM old_way t'),
    );
    expect(viaJsonEach).toEqual(rows);
  });
});

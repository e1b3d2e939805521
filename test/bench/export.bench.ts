/**
 * Export benchmark (`npm run bench -- export`): a million telemetry points streamed as CSV and as
 * JSON Lines through the store's export reader and the formatter (src/host/export.ts) into a
 * file, with the writer's backpressure respected; the rate, and how far the heap grows over the
 * heap before the export (sampled after every page, peak minus baseline, after a full GC first).
 * Then the same million as one-minute buckets, and the CSV again through `GET /api/export` to an
 * HTTP client. The CSV run's figures are `export.rows_per_s` and
 * `export.heap_growth_mb`.
 *
 * Data: 100 devices × 10 metrics = 1000 series, one point per series per second (1000 s).
 */
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ExportRequest } from '../../src/host/export.js';
import { exportChunks } from '../../src/host/export.js';
import { startServer } from '../../src/host/server.js';
import type { TelemetryPoint } from '../../src/store/index.js';
import { openSqliteStore } from '../../src/store/index.js';
import { createTestApi } from '../host/helpers.js';
import { heapUsed, report } from './bench-kit.js';

const SUITE = 'export';
const TOTAL = 1_000_000;
const SERIES = 1_000;
const T0 = Date.UTC(2026, 0, 1);
const MiB = 1024 * 1024;

const dir = mkdtempSync(join(tmpdir(), 'fleetvisor-bench-export-'));
try {
  const store = await openSqliteStore({ file: join(dir, 'fleetvisor.sqlite') });
  const batch: TelemetryPoint[] = [];
  for (let i = 0; i < TOTAL; i++) {
    const s = i % SERIES;
    batch.push({
      deviceId: `dev-${String(Math.floor(s / 10)).padStart(3, '0')}`,
      metric: `m${s % 10}`,
      deviceTs: T0 + Math.floor(i / SERIES) * 1000 - 7,
      receivedAt: T0 + Math.floor(i / SERIES) * 1000,
      value: (i % 997) / 8,
    });
    if (batch.length === 100_000) {
      const r = await store.appendTelemetry(batch.splice(0));
      if (!r.ok) throw new Error(r.error.message);
    }
  }

  const run = async (name: string, request: ExportRequest) => {
    const file = join(dir, `${name}.${request.format}`);
    const out = createWriteStream(file);
    const before = heapUsed();
    let peak = before;
    let lines = 0;
    const started = performance.now();
    for await (const chunk of exportChunks(store.exports, request)) {
      for (let i = chunk.indexOf('\n'); i >= 0; i = chunk.indexOf('\n', i + 1)) lines++;
      if (!out.write(chunk)) await once(out, 'drain');
      const now = process.memoryUsage().heapUsed;
      if (now > peak) peak = now;
    }
    out.end();
    await once(out, 'finish');
    const seconds = (performance.now() - started) / 1000;
    const retained = heapUsed() - before;
    const rows = lines - (request.format === 'csv' ? 1 : 0);
    const prefix = name === '' ? '' : `${name}.`;
    const size = `${(statSync(file).size / MiB).toFixed(0)} MiB`;
    if (request.bucketSeconds === undefined)
      report(SUITE, `${prefix}rows_per_s`, rows / seconds, 'rows/s', '>=', 50_000, `${rows} rows, ${size}`);
    else
      report(
        SUITE,
        `${prefix}points_per_s`,
        TOTAL / seconds,
        'points/s',
        '>=',
        200_000,
        `${TOTAL} points into ${rows} buckets`,
      );
    report(
      SUITE,
      `${prefix}heap_growth_mb`,
      (peak - before) / MiB,
      'MiB',
      '<=',
      50,
      `peak while streaming over the heap before (no GC in between: an upper bound); ${(retained / MiB).toFixed(1)} MiB left after a GC at the end`,
    );
    return rows;
  };

  const base = { deviceIds: [], metrics: [] };
  const csvRows = await run('', { kind: 'telemetry', format: 'csv', ...base });
  await run('jsonl', { kind: 'telemetry', format: 'jsonl', ...base });
  await run('buckets', { kind: 'telemetry', format: 'csv', bucketSeconds: 60, ...base });
  if (csvRows !== TOTAL) throw new Error(`exported ${csvRows} rows of ${TOTAL}`);

  // The same CSV through the headless server's route to an HTTP client writing a file (server
  // and client in this process: the heap figure covers both).
  const server = await startServer({ api: createTestApi(), exports: store.exports });
  try {
    const file = join(dir, 'http.csv');
    const before = heapUsed();
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().heapUsed);
    }, 20);
    const started = performance.now();
    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      get(
        `${server.origin}/api/export/telemetry?format=csv`,
        { headers: { authorization: `Bearer ${server.token}` } },
        resolve,
      ).on('error', reject),
    );
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
    await pipeline(res, createWriteStream(file));
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    const text = readFileSync(file, 'latin1');
    let lines = 0;
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lines++;
    report(
      SUITE,
      'http.rows_per_s',
      (lines - 1) / seconds,
      'rows/s',
      '>=',
      50_000,
      `${lines - 1} rows over HTTP`,
    );
    report(
      SUITE,
      'http.heap_growth_mb',
      (peak - before) / MiB,
      'MiB',
      '<=',
      50,
      'peak (sampled every 20 ms) over the heap before; server and client in one process',
    );
  } finally {
    await server.close();
  }
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * `GET /api/export/…` on the real server (src/host/server.ts) over a real SQLite store: the same
 * token, Origin and Sec-Fetch-Site checks as calls; a bad parameter is a 400 with the reason and
 * nothing streamed; a CSV whose rows parse back to the stored points; buckets computed right; a
 * client that stops reading holds the store's reader back (backpressure), and one that goes away
 * stops it.
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/host/server.js';
import { startServer } from '../../src/host/server.js';
import type { ExportReader } from '../../src/store/sqlite-export.js';
import { PAGE_ROWS } from '../../src/store/sqlite-export.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { TelemetryPoint } from '../../src/store/store.js';
import { parseCsvText } from '../store/csv-lines.js';
import { tempDir } from '../store/helpers.js';
import { waitFor } from '../transports/helpers.js';
import { createTestApi } from './helpers.js';

const T = Date.UTC(2026, 11, 1);
const POINTS = 20 * PAGE_ROWS;

let tmp: ReturnType<typeof tempDir>;
let store: SqliteStore;
let server: RunningServer;
/** Pages the server has pulled from the store, per export. */
const pulled: number[] = [];

/** The store's readers, counting the pages each export pulls. */
function counting(reader: ExportReader): ExportReader {
  const wrap = <A extends unknown[], R>(
    fn: (...args: A) => AsyncGenerator<readonly R[], void, undefined>,
  ): ((...args: A) => AsyncGenerator<readonly R[], void, undefined>) =>
    async function* (...args: A) {
      const index = pulled.push(0) - 1;
      for await (const page of fn(...args)) {
        pulled[index]! += 1;
        yield page;
      }
    };
  return { events: wrap(reader.events), commands: wrap(reader.commands), telemetry: wrap(reader.telemetry) };
}

beforeAll(async () => {
  tmp = tempDir();
  store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 0 });
  const points: TelemetryPoint[] = [];
  for (let i = 0; i < POINTS; i++)
    points.push({
      deviceId: i % 2 === 0 ? 'pump-1' : 'valve "north", 2',
      metric: 'temp',
      deviceTs: i % 5 === 0 ? null : T + i * 1000 - 1,
      receivedAt: T + i * 1000,
      value: i / 10,
    });
  expect((await store.appendTelemetry(points)).ok).toBe(true);
  await store.appendEvents([{ at: T, deviceId: 'pump-1', kind: 'state', data: { to: 'up' } }]);
  server = await startServer({ api: createTestApi(), exports: counting(store.exports) });
});

afterAll(async () => {
  await server?.close();
  await store?.close();
  tmp?.cleanup();
});

const url = (path: string) => `${server.origin}${path}`;
const bearer = () => ({ authorization: `Bearer ${server.token}` });

describe('GET /api/export', () => {
  it('refuses a caller without the token, with a wrong one, from a foreign origin or cross-site', async () => {
    const path = '/api/export/telemetry';
    const none = await fetch(url(path));
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    const wrong = await fetch(url(path), { headers: { authorization: 'Bearer not-the-token-at-all' } });
    expect(wrong.status).toBe(401);
    const foreign = await fetch(url(path), { headers: { ...bearer(), origin: 'http://evil.example' } });
    expect(foreign.status).toBe(403);
    const crossSite = await fetch(url(path), { headers: { ...bearer(), 'sec-fetch-site': 'cross-site' } });
    expect(crossSite.status).toBe(403);
    const post = await fetch(url(path), { method: 'POST', headers: bearer() });
    expect(post.status).toBe(405);
  });

  it('answers a bad parameter with 400 and the reason, streaming nothing', async () => {
    for (const [path, reason] of [
      ['/api/export/telemetry?bucket=0', 'bucket must be whole seconds'],
      ['/api/export/telemetry?from=tomorrow', 'from must be an ISO 8601 time'],
      ['/api/export/events?metric=temp', "unknown parameter 'metric'"],
      ['/api/export/everything', "no export 'everything'"],
    ] as const) {
      const before = pulled.length;
      const res = await fetch(url(path), { headers: bearer() });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-disposition')).toBeNull();
      const body = (await res.json()) as { ok: boolean; error: { code: string; message: string } };
      expect(body.error.code).toBe('badRequest');
      expect(body.error.message).toContain(reason);
      expect(pulled.length).toBe(before);
    }
  });

  it('streams a CSV attachment whose rows parse back to the stored points', async () => {
    const from = new Date(T + 1000).toISOString();
    const res = await fetch(
      url(
        `/api/export/telemetry?format=csv&from=${from}&to=${T + 301_000}&device=${encodeURIComponent('valve "north", 2')}`,
      ),
      { headers: bearer() },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv; charset=utf-8/);
    expect(res.headers.get('content-disposition')).toMatch(
      /^attachment; filename="fleetvisor-telemetry-\d{8}T\d{6}Z\.csv"$/,
    );
    const [header, ...rows] = parseCsvText(await res.text());
    expect(header).toEqual([
      'deviceId',
      'metric',
      'receivedAt',
      'receivedAtMs',
      'deviceTs',
      'deviceTsMs',
      'value',
    ]);
    const expected: string[][] = [];
    for (let i = 1; i < 301; i += 2) {
      const at = T + i * 1000;
      const deviceTs = i % 5 === 0 ? null : at - 1;
      expected.push([
        'valve "north", 2',
        'temp',
        new Date(at).toISOString(),
        String(at),
        deviceTs === null ? '' : new Date(deviceTs).toISOString(),
        deviceTs === null ? '' : String(deviceTs),
        String(i / 10),
      ]);
    }
    expect(rows).toEqual(expected);
  });

  it('downsamples into epoch-aligned buckets with avg, min, max and count (JSON Lines)', async () => {
    const res = await fetch(
      url(`/api/export/telemetry?format=jsonl&bucket=60&device=pump-1&to=${T + 180_000}`),
      {
        headers: bearer(),
      },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    expect(res.headers.get('content-disposition')).toContain('fleetvisor-telemetry-buckets-');
    const lines = (await res.text())
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    // pump-1 has the even seconds: 30 points per minute, values i/10 for i = 0, 2, …, 58 in the first.
    expect(lines).toEqual(
      [0, 1, 2].map((minute) => {
        const values = Array.from({ length: 30 }, (_, k) => (minute * 60 + 2 * k) / 10);
        return {
          deviceId: 'pump-1',
          metric: 'temp',
          start: new Date(T + minute * 60_000).toISOString(),
          startMs: T + minute * 60_000,
          bucketSeconds: 60,
          count: 30,
          avg: expect.closeTo(values.reduce((a, b) => a + b, 0) / 30, 9),
          min: values[0],
          max: values[29],
        };
      }),
    );
  });

  it('stops pulling pages while the client does not read, and stops for good when it goes away', async () => {
    const before = pulled.length;
    const req = httpRequest(url('/api/export/telemetry?format=jsonl'), { headers: bearer() });
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      req.on('response', resolve);
      req.on('error', reject);
      req.end();
    });
    expect(res.statusCode).toBe(200);
    res.pause();
    await waitFor(() => pulled.length > before, 2000, 'the export to start');
    // The socket buffers fill up; the server must then wait for 'drain' instead of reading on.
    await new Promise((r) => setTimeout(r, 500));
    const whilePaused = pulled[before]!;
    expect(whilePaused).toBeLessThan(POINTS / PAGE_ROWS);
    await new Promise((r) => setTimeout(r, 300));
    expect(pulled[before]).toBe(whilePaused);
    req.destroy();
    await new Promise((r) => setTimeout(r, 300));
    expect(pulled[before]).toBeLessThanOrEqual(whilePaused + 1);

    // The full export, read to the end, pulls every page.
    const full = await fetch(url('/api/export/telemetry?format=jsonl'), { headers: bearer() });
    const text = await full.text();
    expect(text.split('\n').length - 1).toBe(POINTS);
    expect(pulled[pulled.length - 1]).toBe(POINTS / PAGE_ROWS);
  });

  it('exports events with the kind filter', async () => {
    const res = await fetch(url('/api/export/events?kind=state&device=pump-1'), { headers: bearer() });
    const [header, ...rows] = parseCsvText(await res.text());
    expect(header).toEqual(['seq', 'at', 'atMs', 'deviceId', 'kind', 'data']);
    expect(rows).toEqual([['1', new Date(T).toISOString(), String(T), 'pump-1', 'state', '{"to":"up"}']]);
  });
});

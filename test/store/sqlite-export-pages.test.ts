/**
 * The export's keyset paging (src/store/sqlite-export-pages.ts) seen through the one seam it has,
 * the `page` function: which queries go out, with which keys, and when none does. The SQL itself
 * runs on a real SQLite file in sqlite-export.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { SqlValue } from '../../src/store/sqlite-connection.js';
import type { ExportPage } from '../../src/store/sqlite-export-pages.js';
import { exportEvents, exportTelemetry, PAGE_ROWS } from '../../src/store/sqlite-export-pages.js';

/** Answers each query from `answer` and records its name and parameters. */
function recorder(answer: (what: string, params: SqlValue[], n: number) => unknown[]) {
  const calls: { what: string; params: SqlValue[] }[] = [];
  const page: ExportPage = async <T>(what: string, _sql: string, params: SqlValue[]) => {
    calls.push({ what, params });
    return answer(what, params, calls.length) as T[];
  };
  return { page, calls };
}

const events = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({ seq: from + i, at: 0, deviceId: null, kind: 'k', data: '{}' }));

describe('keyset paging', () => {
  it('asks for the next page, after the last key, while the consumer holds a full one; a short page ends', async () => {
    const { page, calls } = recorder((_w, params) =>
      params[0] === 0 ? events(1, PAGE_ROWS) : events(PAGE_ROWS + 1, 3),
    );
    const sizes: number[] = [];
    for await (const rows of exportEvents(page, { kind: 'device.online' })) sizes.push(rows.length);
    expect(sizes).toEqual([PAGE_ROWS, 3]);
    expect(calls.map((c) => c.params[0])).toEqual([0, PAGE_ROWS]);
    expect(calls[0]!.params.slice(1)).toEqual([
      Number.MIN_SAFE_INTEGER,
      Number.MAX_SAFE_INTEGER,
      null,
      'device.online',
      PAGE_ROWS,
    ]);
  });

  it('a consumer that stops leaves the prefetched page unread and sends no further query, even when it fails', async () => {
    const { page, calls } = recorder((_w, _p, n) => {
      if (n === 2) throw new Error('disk gone');
      return events(1, PAGE_ROWS);
    });
    for await (const rows of exportEvents(page, undefined)) {
      expect(rows).toHaveLength(PAGE_ROWS);
      break;
    }
    expect(calls).toHaveLength(2);
  });

  it('a bad filter is refused at the first read, before any query', async () => {
    const { page, calls } = recorder(() => []);
    const pages = exportEvents(page, { fromMs: Number.NaN });
    expect(calls).toHaveLength(0);
    await expect(pages.next()).rejects.toMatchObject({ code: 'invalidArgument' });
    expect(calls).toHaveLength(0);
  });

  it('buckets continue one bucket after the last start, series by series', async () => {
    const { page, calls } = recorder((what, params) => {
      if (calls.length === 1) return [{ id: 7, deviceId: 'pump-1', metric: 'temp' }];
      expect(what).toBe('telemetry');
      const from = params[2] as number;
      return from === 0
        ? Array.from({ length: PAGE_ROWS }, (_, i) => ({
            start: i * 60_000,
            count: 1,
            avg: 1,
            min: 1,
            max: 1,
          }))
        : [];
    });
    let rows = 0;
    for await (const p of exportTelemetry(page, { fromMs: 0, bucketSeconds: 60 })) rows += p.length;
    expect(rows).toBe(PAGE_ROWS);
    expect(calls.map((c) => c.params)).toEqual([
      [null, null],
      [7, 60_000, 0, Number.MAX_SAFE_INTEGER, PAGE_ROWS],
      [7, 60_000, PAGE_ROWS * 60_000, Number.MAX_SAFE_INTEGER, PAGE_ROWS],
    ]);
  });
});

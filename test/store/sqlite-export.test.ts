/**
 * The export readers (src/store/sqlite-export.ts) and their formatting (src/host/export.ts) on a
 * real SQLite file: 100,000 telemetry points read page by page into a counting sink as CSV and
 * JSON Lines (every line well-formed, the row count exact), buckets computed in SQL against the
 * same figures computed here, filters by time, device, metric and kind, and an early stop.
 * The million-row memory figure is in test/bench/export.bench.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ExportRequest } from '../../src/host/export.js';
import { csvField, exportChunks, isoOf, parseExportRequest, parseTime } from '../../src/host/export.js';
import { PAGE_ROWS } from '../../src/store/sqlite-export.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { TelemetryPoint } from '../../src/store/store.js';
import { parseCsvLine } from './csv-lines.js';
import { tempDir } from './helpers.js';

const T = Date.UTC(2026, 11, 1, 0, 0, 0);

function request(kind: ExportRequest['kind'], extra: Partial<ExportRequest> = {}): ExportRequest {
  return { kind, format: 'csv', deviceIds: [], metrics: [], ...extra };
}

/** Feeds the chunks to `line` one line at a time, holding only the current partial line. */
async function eachLine(chunks: AsyncIterable<string>, eol: string, line: (text: string) => void) {
  let rest = '';
  for await (const chunk of chunks) {
    const parts = (rest + chunk).split(eol);
    rest = parts.pop()!;
    for (const p of parts) line(p);
  }
  expect(rest).toBe('');
}

describe('export readers', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: SqliteStore;

  beforeEach(async () => {
    tmp = tempDir();
    store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 0 });
  });
  afterEach(async () => {
    await store.close();
    tmp.cleanup();
  });

  async function fill(count: number, devices: number, metrics: string[]): Promise<void> {
    const batch: TelemetryPoint[] = [];
    for (let i = 0; i < count; i++) {
      batch.push({
        deviceId: `pump-${i % devices}`,
        metric: metrics[i % metrics.length]!,
        deviceTs: i % 7 === 0 ? null : T + i * 100 - 3,
        receivedAt: T + i * 100,
        value: (i % 1000) / 4,
      });
      if (batch.length === 50_000) {
        const r = await store.appendTelemetry(batch.splice(0));
        expect(r.ok).toBe(true);
      }
    }
    if (batch.length > 0) expect((await store.appendTelemetry(batch)).ok).toBe(true);
  }

  it('streams 100,000 telemetry points as CSV and as JSON Lines, every row well-formed', {
    timeout: 60_000,
  }, async () => {
    await fill(100_000, 10, ['temp', 'flow']);
    let rows = 0;
    let header: string[] = [];
    let previous = '';
    const problems: string[] = [];
    // Plain checks per row (an expect() per field would dominate the run); the first few reported.
    const check = (ok: boolean, what: string) => {
      if (!ok && problems.length < 5) problems.push(what);
    };
    await eachLine(exportChunks(store.exports, request('telemetry')), '\r\n', (line) => {
      const fields = parseCsvLine(line);
      if (header.length === 0) {
        header = fields;
        return;
      }
      rows++;
      const [deviceId, metric, iso, ms, deviceIso, deviceMs, value] = fields;
      const i = (Number(ms) - T) / 100;
      check(fields.length === header.length, `field count: ${line}`);
      check(new Date(iso!).getTime() === Number(ms), `receivedAt: ${line}`);
      check(
        deviceIso === '' ? deviceMs === '' : new Date(deviceIso!).getTime() === Number(deviceMs),
        `deviceTs: ${line}`,
      );
      check(deviceId === `pump-${i % 10}` && metric === (i % 2 === 0 ? 'temp' : 'flow'), `series: ${line}`);
      check(Number(value) === (i % 1000) / 4, `value: ${line}`);
      // Series by series (device, then metric), each in time order.
      const key = `${deviceId}\u0000${metric}\u0000${ms!.padStart(16, '0')}`;
      check(key > previous, `order: ${line}`);
      previous = key;
    });
    expect(problems).toEqual([]);
    expect(header).toEqual([
      'deviceId',
      'metric',
      'receivedAt',
      'receivedAtMs',
      'deviceTs',
      'deviceTsMs',
      'value',
    ]);
    expect(rows).toBe(100_000);

    let jsonRows = 0;
    await eachLine(exportChunks(store.exports, request('telemetry', { format: 'jsonl' })), '\n', (line) => {
      const o = JSON.parse(line) as Record<string, unknown>;
      jsonRows++;
      check(Object.keys(o).join() === header.join(), `keys: ${line}`);
      check(new Date(o.receivedAt as string).getTime() === o.receivedAtMs, `receivedAt: ${line}`);
    });
    expect(problems).toEqual([]);
    expect(jsonRows).toBe(100_000);
  });

  it('pages across equal receive times without repeating or skipping a point', async () => {
    const points: TelemetryPoint[] = [];
    for (let i = 0; i < PAGE_ROWS * 2 + 17; i++)
      points.push({
        deviceId: 'd',
        metric: 'm',
        deviceTs: null,
        receivedAt: T + Math.floor(i / 3),
        value: i,
      });
    await store.appendTelemetry(points);
    const seen: number[] = [];
    for await (const page of store.exports.telemetry())
      for (const r of page) if ('value' in r) seen.push(r.value);
    expect(seen).toEqual(points.map((p) => p.value));
  });

  it('downsamples in SQL: epoch-aligned buckets of avg, min, max and count per device and metric', async () => {
    await fill(20_000, 3, ['temp', 'flow']);
    const bucketSeconds = 60;
    const from = T + 30_000; // mid-bucket: the first bucket counts only points from `from` on
    const to = T + 1_500_000;
    const expected = new Map<string, { count: number; sum: number; min: number; max: number }>();
    for (let i = 0; i < 20_000; i++) {
      const at = T + i * 100;
      const deviceId = `pump-${i % 3}`;
      const metric = i % 2 === 0 ? 'temp' : 'flow';
      if (at < from || at >= to || deviceId === 'pump-2' || metric !== 'temp') continue;
      const start = at - (at % 60_000);
      const key = `${deviceId}|${start}`;
      const v = (i % 1000) / 4;
      const b = expected.get(key) ?? { count: 0, sum: 0, min: Infinity, max: -Infinity };
      b.count++;
      b.sum += v;
      b.min = Math.min(b.min, v);
      b.max = Math.max(b.max, v);
      expected.set(key, b);
    }
    const got = new Map<string, { count: number; avg: number; min: number; max: number }>();
    for await (const page of store.exports.telemetry({
      fromMs: from,
      toMs: to,
      deviceIds: ['pump-0', 'pump-1'],
      metrics: ['temp'],
      bucketSeconds,
    }))
      for (const r of page) {
        if (!('start' in r)) throw new Error('a raw row in a bucketed export');
        expect(r.metric).toBe('temp');
        expect(r.bucketSeconds).toBe(60);
        expect(r.start % 60_000).toBe(0);
        got.set(`${r.deviceId}|${r.start}`, { count: r.count, avg: r.avg, min: r.min, max: r.max });
      }
    expect([...got.keys()]).toEqual([...expected.keys()].sort());
    for (const [key, b] of expected) {
      const g = got.get(key)!;
      expect(g.count).toBe(b.count);
      expect(g.avg).toBeCloseTo(b.sum / b.count, 9);
      expect(g.min).toBe(b.min);
      expect(g.max).toBe(b.max);
    }
  });

  it('exports events and commands by seq, filtered by time, device and kind, JSON columns as values', async () => {
    await store.appendEvents([
      { at: T, deviceId: 'a', kind: 'state', data: { to: 'up', note: 'say "hi", then\nleave' } },
      { at: T + 1, kind: 'host.start', data: null },
      { at: T + 2, deviceId: 'b', kind: 'state', data: { to: 'down' } },
      { at: T + 3, deviceId: 'a', kind: 'command', data: [1, 2] },
    ]);
    const lines: string[] = [];
    await eachLine(
      exportChunks(store.exports, request('events', { fromMs: T, toMs: T + 3, deviceIds: ['a', 'b'] })),
      '\r\n',
      (l) => lines.push(l),
    );
    // A quoted field may hold a line break: join back what the naive split cut.
    const csv = lines.join('\r\n');
    expect(csv.split('\r\n')[0]).toBe('seq,at,atMs,deviceId,kind,data');
    expect(csv).toContain(
      `1,${new Date(T).toISOString()},${T},a,state,"{""to"":""up"",""note"":""say \\""hi\\"", then\\nleave""}"`,
    );
    expect(csv).toContain(`3,${new Date(T + 2).toISOString()},${T + 2},b,state,`);
    expect(csv).not.toContain('host.start');

    const json: Record<string, unknown>[] = [];
    await eachLine(
      exportChunks(store.exports, request('events', { format: 'jsonl', eventKind: 'state' })),
      '\n',
      (l) => json.push(JSON.parse(l) as Record<string, unknown>),
    );
    expect(json.map((e) => [e.seq, e.deviceId, e.data])).toEqual([
      [1, 'a', { to: 'up', note: 'say "hi", then\nleave' }],
      [3, 'b', { to: 'down' }],
    ]);

    await store.recordCommand({
      commandId: 'c1',
      deviceId: 'a',
      action: 'reboot',
      args: { delayMs: 5 },
      actor: 'operator',
      requestedAt: T,
    });
    await store.updateCommand('c1', { status: 'succeeded', result: { ok: 1 }, completedAt: T + 50 });
    await store.recordCommand({
      commandId: 'c2',
      deviceId: 'b',
      action: 'x',
      args: null,
      actor: 'cli',
      requestedAt: T + 9,
    });
    const commands: Record<string, unknown>[] = [];
    await eachLine(
      exportChunks(store.exports, request('commands', { format: 'jsonl', deviceIds: ['a'] })),
      '\n',
      (l) => commands.push(JSON.parse(l) as Record<string, unknown>),
    );
    expect(commands).toEqual([
      {
        seq: 1,
        commandId: 'c1',
        deviceId: 'a',
        action: 'reboot',
        args: { delayMs: 5 },
        actor: 'operator',
        status: 'succeeded',
        result: { ok: 1 },
        error: null,
        requestedAt: new Date(T).toISOString(),
        requestedAtMs: T,
        completedAt: new Date(T + 50).toISOString(),
        completedAtMs: T + 50,
        expiresAt: null,
        expiresAtMs: null,
      },
    ]);
  });

  it('stops reading when the consumer stops, and refuses a bad filter', async () => {
    await fill(3 * PAGE_ROWS, 1, ['m']);
    let pages = 0;
    for await (const _ of store.exports.telemetry()) {
      pages++;
      break;
    }
    expect(pages).toBe(1);
    await expect(store.exports.telemetry({ bucketSeconds: 0 }).next()).rejects.toMatchObject({
      code: 'invalidArgument',
    });
    await expect(store.exports.events({ deviceIds: [''] }).next()).rejects.toMatchObject({
      code: 'invalidArgument',
    });
  });
});

describe('export request parameters', () => {
  it('reads times as ISO or epoch ms, repeated devices and metrics, and a bucket', () => {
    expect(parseTime('2026-12-01T00:00:00Z')).toBe(T);
    expect(parseTime(String(T))).toBe(T);
    expect(parseTime('yesterday')).toBeUndefined();
    const r = parseExportRequest(
      'telemetry',
      new URLSearchParams(
        `format=jsonl&from=2026-12-01T00:00:00Z&to=${T + 1}&device=a&device=b&metric=t&bucket=60`,
      ),
    );
    expect(r).toEqual({
      ok: true,
      value: {
        kind: 'telemetry',
        format: 'jsonl',
        fromMs: T,
        toMs: T + 1,
        deviceIds: ['a', 'b'],
        metrics: ['t'],
        bucketSeconds: 60,
      },
    });
  });

  it.each([
    ['telemetry', 'format=xml', 'format must be csv or jsonl'],
    ['telemetry', 'bucket=0', 'bucket must be whole seconds'],
    ['telemetry', 'bucket=1.5', 'bucket must be whole seconds'],
    ['telemetry', 'from=soon', 'from must be an ISO 8601 time'],
    ['telemetry', 'from=10&to=5', 'to must be after from'],
    ['events', 'metric=t', "unknown parameter 'metric'"],
    ['events', 'devcie=a', "unknown parameter 'devcie'"],
    ['events', 'format=csv&format=jsonl', "'format' given more than once"],
    ['alarms', '', "no export 'alarms'"],
  ])('refuses %s?%s', (kind, query, message) => {
    const r = parseExportRequest(kind, new URLSearchParams(query));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toContain(message);
  });

  it('quotes CSV fields as RFC 4180 does', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "x"')).toBe('"say ""x"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField(null)).toBe('');
    expect(csvField(1.5)).toBe('1.5');
  });
});

describe('isoOf', () => {
  it('writes what toISOString writes', () => {
    const samples = [
      0,
      1,
      999,
      1000,
      59_999,
      86_399_999,
      86_400_000,
      T,
      T + 12_345,
      951_782_400_000,
      253_402_300_799_999,
      -1,
      253_402_300_800_000,
    ];
    for (let i = 0; i < 2000; i++) samples.push(Math.floor(Math.random() * 4_102_444_800_000));
    for (const ms of samples) expect(isoOf(ms)).toBe(new Date(ms).toISOString());
  });
});

/**
 * The desktop shell's export (src/host/export-file.ts through the `fleetvisor:export` IPC
 * handler) over a real SQLite store: the file the operator picks holds the same CSV the headless
 * server's download gives, readable by the user alone; a misspelt filter is refused before the
 * dialog opens; a cancelled dialog saves nothing; a store failure mid-way leaves no file that
 * looks whole (and an existing file untouched); a sender that is not the app's page is refused.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIpcHandlers } from '../../electron/ipc-handlers.js';
import type { HostApi } from '../../src/host/contract.js';
import { exportToFile } from '../../src/host/export-file.js';
import type { ExportReader } from '../../src/store/sqlite-export.js';
import { PAGE_ROWS } from '../../src/store/sqlite-export.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { TelemetryPoint } from '../../src/store/store.js';
import { parseCsvText } from '../store/csv-lines.js';
import { tempDir } from '../store/helpers.js';

const T = Date.UTC(2026, 11, 1);
const POINTS = 3 * PAGE_ROWS + 7;
const APP_ORIGIN = 'app://fleetvisor';
const page = { id: 1, url: `${APP_ORIGIN}/index.html`, isMainFrame: true };

let tmp: ReturnType<typeof tempDir>;
let store: SqliteStore;

beforeAll(async () => {
  tmp = tempDir();
  store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 0 });
  const points: TelemetryPoint[] = [];
  for (let i = 0; i < POINTS; i++)
    points.push({
      deviceId: i % 2 === 0 ? 'pump-1' : 'valve "north", 2',
      metric: 'temp',
      deviceTs: null,
      receivedAt: T + i * 1000,
      value: i / 10,
    });
  expect((await store.appendTelemetry(points)).ok).toBe(true);
});

afterAll(async () => {
  await store?.close();
  tmp?.cleanup();
});

/** A save dialog that answers `path` and records the name it suggested. */
function dialog(path: string | undefined) {
  const suggested: string[] = [];
  return {
    suggested,
    choosePath: async (name: string) => {
      suggested.push(name);
      return path;
    },
  };
}

describe('export to a file in the desktop shell', () => {
  it('saves the CSV of the chosen device to the chosen file, readable by the user alone', async () => {
    const file = join(tmp.dir, 'pump.csv');
    const d = dialog(file);
    const handlers = createIpcHandlers({
      api: new Promise<HostApi>(() => {}),
      appOrigin: APP_ORIGIN,
      actor: 'ann',
      saveExport: (payload, choosePath) => exportToFile({ exports: store.exports, choosePath }, payload),
    });
    const r = await handlers.export(
      page,
      { kind: 'telemetry', query: 'format=csv&device=pump-1' },
      d.choosePath,
    );
    expect(r).toMatchObject({ ok: true, path: file, fileName: 'pump.csv' });
    expect(d.suggested).toHaveLength(1);
    expect(d.suggested[0]).toMatch(/^fleetvisor-telemetry-.*\.csv$/);
    const text = readFileSync(file, 'utf8');
    expect(r.ok && r.bytes).toBe(Buffer.byteLength(text));
    const rows = parseCsvText(text);
    expect(rows[0]).toEqual(expect.arrayContaining(['deviceId', 'metric', 'value']));
    const device = rows[0]!.indexOf('deviceId');
    const body = rows.slice(1).filter((row) => row.length > 1);
    expect(body).toHaveLength(Math.ceil(POINTS / 2));
    expect(new Set(body.map((row) => row[device]))).toEqual(new Set(['pump-1']));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(tmp.dir).filter((n) => n.endsWith('.part'))).toEqual([]);
  });

  it('refuses a misspelt filter before asking where to save, and a cancelled dialog saves nothing', async () => {
    const d = dialog(join(tmp.dir, 'never.csv'));
    const bad = await exportToFile(
      { exports: store.exports, choosePath: d.choosePath },
      { kind: 'events', query: 'devcie=pump-1' },
    );
    expect(bad).toMatchObject({
      ok: false,
      code: 'badRequest',
      message: expect.stringMatching(/unknown parameter 'devcie'/),
    });
    const kind = await exportToFile(
      { exports: store.exports, choosePath: d.choosePath },
      { kind: 'secrets', query: '' },
    );
    expect(kind).toMatchObject({ ok: false, code: 'badRequest' });
    expect(d.suggested).toEqual([]);
    const cancelled = await exportToFile(
      { exports: store.exports, choosePath: dialog(undefined).choosePath },
      { kind: 'events', query: '' },
    );
    expect(cancelled).toMatchObject({ ok: false, code: 'cancelled' });
    expect(existsSync(join(tmp.dir, 'never.csv'))).toBe(false);
  });

  it('a store failure mid-way leaves no file that looks whole, and the file chosen untouched', async () => {
    const file = join(tmp.dir, 'kept.csv');
    writeFileSync(file, 'the operator’s earlier export\n');
    const failing: ExportReader = {
      ...store.exports,
      async *telemetry(filter) {
        let pages = 0;
        for await (const rows of store.exports.telemetry(filter)) {
          if (++pages === 2) throw new Error('disk I/O error');
          yield rows;
        }
      },
    };
    const r = await exportToFile(
      { exports: failing, choosePath: dialog(file).choosePath },
      { kind: 'telemetry', query: '' },
    );
    expect(r).toMatchObject({
      ok: false,
      code: 'failed',
      message: expect.stringMatching(/nothing was saved: disk I\/O error/),
    });
    expect(readFileSync(file, 'utf8')).toBe('the operator’s earlier export\n');
    expect(existsSync(`${file}.part`)).toBe(false);
  });

  it('refuses a sender that is not the app page, and says when the store is not open', async () => {
    const d = dialog(join(tmp.dir, 'x.csv'));
    const handlers = createIpcHandlers({
      api: new Promise<HostApi>(() => {}),
      appOrigin: APP_ORIGIN,
      actor: 'ann',
      saveExport: (payload, choosePath) => exportToFile({ exports: store.exports, choosePath }, payload),
    });
    const foreign = { id: 2, url: 'https://evil.example/', isMainFrame: true };
    expect(await handlers.export(foreign, { kind: 'events', query: '' }, d.choosePath)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/^refused/),
    });
    const noStore = createIpcHandlers({
      api: new Promise<HostApi>(() => {}),
      appOrigin: APP_ORIGIN,
      actor: 'ann',
    });
    expect(await noStore.export(page, { kind: 'events', query: '' }, d.choosePath)).toMatchObject({
      ok: false,
      code: 'unavailable',
    });
    expect(d.suggested).toEqual([]);
  });
});

/**
 * Export from the UI on a real host (embedded broker, two simulated MQTT devices reporting
 * telemetry, SQLite, the production renderer, Debian's Chromium): the Events view's Export
 * buttons download the stored log with the view's filter as CSV and JSON Lines, and a chart's
 * "Download data" on the device view downloads that chart's points. The files are read back and
 * compared with the store. Screenshots: .test-results/screenshots/export-*.png.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/host/app.js';
import { parseCsvText } from '../store/csv-lines.js';
import { CHROMIUM, type RealHost, SHOTS, startRealHost } from './real-host.js';

describe.skipIf(!existsSync(CHROMIUM))('export from the UI (real host, Chromium)', () => {
  let host: RealHost | undefined;
  let app: App;
  let page: Page;
  let target: string;
  let downloads: string;

  beforeAll(async () => {
    downloads = await mkdtemp(join(tmpdir(), 'fv-export-downloads-'));
    host = await startRealHost({
      name: 'export',
      app: { broker: { port: 0 }, demo: { mqtt: 2, serial: 0, telemetryIntervalMs: 300 }, conventions: [] },
    });
    ({ app, page } = host);
    target = app.sim!.mqtt[0]!.id;
    // Wait until the device has a few stored points and events.
    const deadline = Date.now() + 30_000;
    for (;;) {
      let points = 0;
      for await (const p of app.exports!.telemetry({ deviceIds: [target] })) points += p.length;
      if (points >= 10) break;
      if (Date.now() > deadline) throw new Error('no telemetry stored within 30 s');
      await new Promise((r) => setTimeout(r, 250));
    }
  }, 90_000);

  afterAll(async () => {
    await host?.close();
    if (downloads) await rm(downloads, { recursive: true, force: true });
  }, 30_000);

  async function save(click: () => Promise<void>): Promise<{ name: string; text: string }> {
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }), click()]);
    const path = join(downloads, download.suggestedFilename());
    await download.saveAs(path);
    return { name: download.suggestedFilename(), text: readFileSync(path, 'utf8') };
  }

  it('Events: Export downloads the stored log with the filter, as CSV and as JSON Lines', async () => {
    await page.getByTestId('nav-events').click();
    await page.getByRole('radio', { name: 'History' }).click();
    await page.getByTestId('events-device').fill(target);
    await page.getByTestId('event-row').first().waitFor({ timeout: 15_000 });
    await page.screenshot({ path: join(SHOTS, 'export-events.png') });

    const csv = await save(() => page.getByTestId('export-csv').click());
    expect(csv.name).toMatch(/^fleetvisor-events-\d{8}T\d{6}Z\.csv$/);
    const [header, ...rows] = parseCsvText(csv.text);
    expect(header).toEqual(['seq', 'at', 'atMs', 'deviceId', 'kind', 'data']);
    expect(rows.length).toBeGreaterThan(0);
    expect(new Set(rows.map((r) => r[3]))).toEqual(new Set([target]));
    // The same rows as the store holds up to the last exported seq.
    const last = Number(rows[rows.length - 1]![0]);
    const stored: number[] = [];
    for await (const p of app.exports!.events({ deviceIds: [target] }))
      for (const e of p) if (e.seq <= last) stored.push(e.seq);
    expect(rows.map((r) => Number(r[0]))).toEqual(stored);

    const jsonl = await save(() => page.getByTestId('export-jsonl').click());
    expect(jsonl.name).toMatch(/\.jsonl$/);
    const events = jsonl.text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; deviceId: string; data: unknown });
    expect(events.length).toBeGreaterThanOrEqual(rows.length);
    expect(events.every((e) => e.deviceId === target)).toBe(true);
    expect(host!.pageErrors).toEqual([]);
  }, 60_000);

  it("a chart's Download data saves that device's metric over the chart's window, one click", async () => {
    await page.goto(`${host!.server.origin}/?device=${encodeURIComponent(target)}`);
    const chart = page.locator('[data-testid="telemetry-chart"][data-status="ok"]').first();
    await chart.waitFor({ timeout: 20_000 });
    const metric = (await chart.getAttribute('data-metric'))!;
    await page.screenshot({ path: join(SHOTS, 'export-device-chart.png') });

    const clickedAt = Date.now();
    const file = await save(() => chart.getByTestId('chart-download-csv').click());
    expect(file.name).toMatch(/^fleetvisor-telemetry-\d{8}T\d{6}Z\.csv$/);
    const [header, ...rows] = parseCsvText(file.text);
    expect(header).toEqual([
      'deviceId',
      'metric',
      'receivedAt',
      'receivedAtMs',
      'deviceTs',
      'deviceTsMs',
      'value',
    ]);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect([r[0], r[1]]).toEqual([target, metric]);
      // The device view's default window (5 min) back from the click.
      expect(Number(r[3])).toBeGreaterThanOrEqual(clickedAt - 5 * 60_000 - 5_000);
      expect(Number.isFinite(Number(r[6]))).toBe(true);
    }
    expect(host!.pageErrors).toEqual([]);
  }, 60_000);

  it("the device's Download CSV row: telemetry in buckets over the window, its events and commands", async () => {
    const row = page.getByTestId('device-exports');
    await row.waitFor();
    await row.screenshot({ path: join(SHOTS, 'export-device-row.png') });

    const buckets = await save(() => page.getByTestId('device-export-buckets').click());
    expect(buckets.name).toMatch(/^fleetvisor-telemetry-buckets-\d{8}T\d{6}Z\.csv$/);
    const [header, ...rows] = parseCsvText(buckets.text);
    expect(header).toEqual([
      'deviceId',
      'metric',
      'start',
      'startMs',
      'bucketSeconds',
      'count',
      'avg',
      'min',
      'max',
    ]);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r[0]).toBe(target);
      expect(r[4]).toBe('5'); // the 5 min window's buckets
      expect(Number(r[3]) % 5000).toBe(0);
      expect(Number(r[7])).toBeLessThanOrEqual(Number(r[6]));
      expect(Number(r[6])).toBeLessThanOrEqual(Number(r[8]));
    }
    // Each bucket's count is what the store holds for that device, metric and 5 s.
    const first = rows[0]!;
    let count = 0;
    for await (const p of app.exports!.telemetry({
      deviceIds: [target],
      metrics: [first[1]!],
      fromMs: Number(first[3]),
      toMs: Number(first[3]) + 5000,
    }))
      count += p.length;
    expect(Number(first[5])).toBeLessThanOrEqual(count);

    const commands = await save(() => page.getByTestId('device-export-commands').click());
    const [commandHeader, ...commandRows] = parseCsvText(commands.text);
    expect(commandHeader?.slice(0, 3)).toEqual(['seq', 'commandId', 'deviceId']);
    expect(commandRows.every((r) => r[2] === target)).toBe(true);
    expect(host!.pageErrors).toEqual([]);
  }, 60_000);
});

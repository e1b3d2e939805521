/**
 * The fleet table's metric columns, saved filters and one-metric chart on a real host in demo mode
 * (embedded broker, SQLite, simulated MQTT devices reporting temp every second), its own server
 * and Debian's Chromium: add a `temp` column (latest value with its unit, from `latestValues` then
 * the push stream) and sort by it both ways, hide a column, save a filter and recall it after a
 * reload (both kept in localStorage), and chart temp for 3 selected devices: 3 series, a legend
 * with the unit; the column shows one number of decimals in every cell. Screenshots go to
 * .test-results/screenshots/fleet-columns-*.png.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, type RealHost, SHOTS, startRealHost } from './real-host.js';

const DEVICES = 5;

async function until(test: () => boolean | undefined | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await test())) {
    if (Date.now() > deadline)
      throw new Error(`not true within ${timeoutMs} ms: ${test.toString().slice(0, 120)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The temp column's values in the table's order, read in one go (null: no value yet). */
const tempsInOrder = (page: Page) =>
  page.evaluate(() =>
    Array.from(document.querySelectorAll('[data-testid="fleet-row"]'), (row) => {
      const v = row
        .querySelector('[data-testid="metric-cell"][data-metric="temp"]')
        ?.getAttribute('data-value');
      return v === null || v === undefined ? null : Number(v);
    }),
  );

const isSorted = (values: readonly (number | null)[], descending: boolean) =>
  values.every(
    (v, i) =>
      i === 0 ||
      v === null ||
      (values[i - 1] !== null && (descending ? values[i - 1]! >= v : values[i - 1]! <= v)),
  );

describe.skipIf(!existsSync(CHROMIUM))('fleet metric columns, saved filters and the metric chart', () => {
  let page: Page;
  let pageErrors: string[] = [];
  let host: RealHost | undefined;
  let ids: string[] = [];

  beforeAll(async () => {
    host = await startRealHost({
      name: 'fleet-columns',
      app: {
        broker: { port: 0 },
        demo: { mqtt: DEVICES, serial: 0, telemetryIntervalMs: 1000 },
        conventions: [],
      },
    });
    ({ page, pageErrors } = host);
    const app = host.app;
    ids = app.sim!.mqtt.map((d) => d.id);
    await until(() => ids.every((id) => app.fleet.device(id) && app.links.hub?.device(id)?.online), 20_000);
    // Every device has told the host its temp since the API started.
    await until(async () => {
      const r = await host!.api.call('latestValues', { metric: 'temp' });
      return r.ok && (r.value as { values: unknown[] }).values.length === DEVICES;
    }, 15_000);
  }, 90_000);

  afterAll(() => host?.close(), 30_000);

  it('adds a temp column with its unit, fills it for every device, and sorts by it both ways', async () => {
    await page.getByTestId('fleet-row').first().waitFor({ timeout: 15_000 });
    await page.getByTestId('columns-button').click();
    const chooser = page.getByTestId('column-chooser');
    await chooser.waitFor();
    // The host lists the names it heard.
    await page.getByTestId('metric-suggest-temp').waitFor({ timeout: 5_000 });
    await page.getByTestId('metric-input').fill('temp');
    await page.getByTestId('metric-add').click();
    const header = page.locator('[data-testid="metric-header"][data-metric="temp"]');
    await header.waitFor();
    expect(await header.textContent()).toContain('°C');

    // Hide the drift column from the same chooser.
    const before = await page.locator('.thead [role="columnheader"]').count();
    await page.getByTestId('column-toggle-drift').uncheck();
    await expect.poll(() => page.locator('.thead [role="columnheader"]').count()).toBe(before - 1);
    await page.screenshot({ path: join(SHOTS, 'fleet-columns-chooser.png') });
    await page.keyboard.press('Escape');
    await chooser.waitFor({ state: 'detached' });

    await expect.poll(async () => (await tempsInOrder(page)).filter((v) => v !== null).length).toBe(DEVICES);
    const cell = page.locator('[data-testid="metric-cell"][data-metric="temp"]').first();
    expect(await cell.textContent()).toMatch(/^\d+(\.\d+)? °C$/);

    await header.getByRole('button').click();
    expect(await header.getAttribute('aria-sort')).toBe('ascending');
    await expect.poll(async () => isSorted(await tempsInOrder(page), false)).toBe(true);
    await header.getByRole('button').click();
    expect(await header.getAttribute('aria-sort')).toBe('descending');
    await expect.poll(async () => isSorted(await tempsInOrder(page), true)).toBe(true);
    const temps = await tempsInOrder(page);
    expect(new Set(temps).size).toBeGreaterThan(1); // a real order, not one value everywhere
    // One number of decimals down the column (21.50 above 21.53 above 21.00), so the digits line up.
    const shown = await page.locator('[data-testid="metric-cell"][data-metric="temp"]').allTextContents();
    const decimals = new Set(shown.map((t) => /^[\d,]+(?:\.(\d+))? °C$/.exec(t)?.[1]?.length ?? 0));
    expect(decimals.size, shown.join(' | ')).toBe(1);
    await page.screenshot({ path: join(SHOTS, 'fleet-columns-sorted.png') });
  }, 60_000);

  it('saves a filter, recalls it after a reload, and deletes it; the columns stay too', async () => {
    const target = ids[2]!;
    await page.getByLabel('Filter devices').fill(target);
    await expect.poll(() => page.getByTestId('fleet-row').count()).toBe(1);
    await page.getByTestId('saved-filters-button').click();
    await page.getByTestId('saved-filter-name').fill('just one');
    await page.getByTestId('saved-filter-save').click();
    await page.locator('[data-testid="saved-filter"][data-name="just one"]').waitFor();
    await page.screenshot({ path: join(SHOTS, 'fleet-columns-saved-filter.png') });
    await page.keyboard.press('Escape');

    await page.reload();
    await page.getByTestId('fleet-row').first().waitFor({ timeout: 15_000 });
    await expect.poll(() => page.getByTestId('fleet-row').count()).toBe(DEVICES);
    expect(await page.getByLabel('Filter devices').inputValue()).toBe('');
    // The columns chosen before the reload.
    await page.locator('[data-testid="metric-header"][data-metric="temp"]').waitFor();
    expect(
      await page
        .locator('.thead [role="columnheader"]')
        .filter({ hasText: /^Drift/ })
        .count(),
    ).toBe(0);

    await page.getByTestId('saved-filters-button').click();
    await page.locator('[data-testid="saved-filter"][data-name="just one"]').click();
    expect(await page.getByLabel('Filter devices').inputValue()).toBe(target);
    await expect.poll(() => page.getByTestId('fleet-row').count()).toBe(1);
    expect(await page.getByTestId('saved-filters-button').textContent()).toContain('just one');

    await page.getByTestId('saved-filters-button').click();
    await page.getByTestId('saved-filter-delete').click();
    await expect.poll(() => page.getByTestId('saved-filter').count()).toBe(0);
    await page.keyboard.press('Escape');
    await page.getByRole('button', { name: 'Clear filters' }).first().click();
    await expect.poll(() => page.getByTestId('fleet-row').count()).toBe(DEVICES);
  }, 60_000);

  it('charts temp for 3 selected devices over the last hour: 3 series with a legend and the unit', async () => {
    const chosen = ids.slice(0, 3);
    for (const id of chosen)
      await page
        .locator(`[data-testid="fleet-row"][data-device-id="${id}"] [data-testid="row-check"]`)
        .click();
    await page.getByTestId('fleet-chart-button').click();
    const chart = page.getByTestId('fleet-chart');
    await chart.waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('fleet-chart-metric').inputValue()).toBe('temp');
    expect(await page.getByTestId('fleet-chart-note').textContent()).toContain('3 selected devices');
    await expect.poll(() => chart.getAttribute('data-status'), { timeout: 15_000 }).toBe('ok');
    expect(await chart.getAttribute('data-series')).toBe('3');
    expect(await chart.getAttribute('data-unit')).toBe('°C');
    const series = page.getByTestId('fleet-chart-series');
    expect(await series.count()).toBe(3);
    expect(
      new Set(await series.evaluateAll((els) => els.map((e) => e.getAttribute('data-device-id')))),
    ).toEqual(new Set(chosen));
    // Each legend entry ends up with a reading in °C.
    await expect
      .poll(async () => (await series.allTextContents()).every((t) => /°C/.test(t)), { timeout: 10_000 })
      .toBe(true);
    // uPlot drew one path per device (plus none for x).
    expect(await chart.locator('canvas').count()).toBeGreaterThan(0);
    await page.waitForTimeout(1_500);
    await page.screenshot({ path: join(SHOTS, 'fleet-columns-chart.png') });

    await page.getByTestId('fleet-chart-close').click();
    await chart.waitFor({ state: 'detached' });
    expect(pageErrors).toEqual([]);
  }, 60_000);
});

/**
 * The operator's views in a real browser: builds the renderer once into a temp folder, serves it
 * with a tiny static server, and drives Debian's Chromium (playwright-core, no browser download)
 * against the simulated fleet (`?fake=5000`). Checks the behaviours an operator relies on — a
 * 5,000-row table that keeps only a window of rows in the DOM, device strings shown as text, a
 * bulk action with a confirmation and one result per device, a live timer countdown, the
 * supervision tree with a kill that comes back — and saves a screenshot of every view to
 * .test-results/screenshots/ for a human to look at.
 *
 * Skipped when /usr/bin/chromium is missing (`apt-get install -y chromium`).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRenderer, serveBundle } from './serve-bundle.js';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = resolve(import.meta.dirname, '../..');
const SHOTS = join(ROOT, '.test-results', 'screenshots');
const FLEET = 5_000;

describe.skipIf(!existsSync(CHROMIUM))('operator views (Chromium, simulated fleet)', () => {
  let outDir: string;
  let server: Server;
  let url: string;
  let browser: Browser;
  let page: Page;
  let bare: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'fleetvisor-renderer-'));
    await buildRenderer(outDir, { mode: 'fake' });
    ({ server, url } = await serveBundle(outDir));
    await mkdir(SHOTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    await page.goto(`${url}/?fake=${FLEET}`);
    // Without ?fake and without a token: the real client, which must say why nothing shows.
    bare = await browser.newPage({ viewport: { width: 1280, height: 400 } });
    await bare.goto(`${url}/`);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((done) => server?.close(done));
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it('shows the fleet and keeps only a window of 5,000 rows in the DOM while scrolling', async () => {
    await page.getByTestId('fleet-row').first().waitFor();
    await expect.poll(() => page.getByTestId('connection-status').getAttribute('data-state')).toBe('live');
    const scroller = page.getByTestId('fleet-scroll');
    const counts: number[] = [];
    const firstIds = new Set<string>();
    for (let step = 0; step <= 10; step++) {
      await scroller.evaluate((el, s) => {
        el.scrollTop = (el.scrollHeight - el.clientHeight) * (s / 10);
      }, step);
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      counts.push(await page.getByTestId('fleet-row').count());
      firstIds.add((await page.getByTestId('fleet-row').first().getAttribute('data-device-id')) ?? '');
    }
    expect(Math.min(...counts)).toBeGreaterThan(10);
    expect(Math.max(...counts)).toBeLessThan(100);
    expect(firstIds.size).toBeGreaterThan(8); // the window moved through the list
    const height = await scroller.evaluate((el) => el.scrollHeight);
    expect(height).toBeGreaterThanOrEqual(FLEET * 28);

    // Device strings are text: the simulated name with markup shows its angle brackets.
    await page.getByLabel('Filter devices').fill('node-0007');
    const row = page.locator('[data-testid="fleet-row"][data-device-id="node-0007"]');
    await expect.poll(() => row.textContent()).toContain('<b>7</b>');
    expect(await row.locator('b, img').count()).toBe(0);
    await page.getByLabel('Filter devices').fill('');
  }, 60_000);

  it('sends an action to 3 selected devices after confirmation and shows 3 results', async () => {
    await page.getByTestId('fleet-scroll').evaluate((el) => {
      el.scrollTop = 0;
    });
    const checks = page.getByTestId('row-check');
    await checks.nth(0).click();
    await checks.nth(1).click();
    await checks.nth(3).click();
    await page.getByTestId('action-select').selectOption('reboot');
    await page.getByTestId('action-submit').click();
    await page.getByTestId('confirm-ok').click();
    await expect.poll(() => page.getByTestId('act-result').count(), { timeout: 5_000 }).toBe(3);
    await page.screenshot({ path: join(SHOTS, 'fleet.png') });

    // Shift-click selects the range from the last checked row.
    await checks.nth(6).click({ modifiers: ['Shift'] });
    await expect.poll(() => page.locator('[data-testid="fleet-row"][aria-selected="true"]').count()).toBe(6);

    // A generated form: identify has an integer with a default.
    await page.getByTestId('action-select').selectOption('identify');
    await expect(page.getByLabel('seconds').inputValue()).resolves.toBe('5');
    // What the operator types survives the live updates that keep arriving.
    await page.getByLabel('seconds').fill('42');
    await page.waitForTimeout(600);
    await expect(page.getByLabel('seconds').inputValue()).resolves.toBe('42');
    await page.getByRole('button', { name: 'Clear', exact: true }).click();
  });

  it('opens a device whose timer counts down, with its diagram and telemetry', async () => {
    await page.getByLabel('State').selectOption('connecting');
    let decreased = false;
    for (let attempt = 0; attempt < 4 && !decreased; attempt++) {
      await page.getByTestId('fleet-row').first().click();
      const timer = page.locator('[data-testid="timer-countdown"][data-timer-name="connectTimeout"]');
      await timer.waitFor({ timeout: 5_000 }).catch(() => undefined);
      if ((await timer.count()) === 0) {
        await page.getByRole('button', { name: /Back/ }).click();
        continue;
      }
      const before = Number(await timer.getAttribute('data-remaining-ms'));
      await page.waitForTimeout(400);
      const after = Number(await timer.getAttribute('data-remaining-ms'));
      decreased = after < before && after > 0 && before - after < 2_000;
      if (!decreased) await page.getByRole('button', { name: /Back/ }).click();
    }
    expect(decreased).toBe(true);
    await page.getByTestId('machine-diagram').waitFor();
    await expect(page.getByTestId('device-state').first().getAttribute('data-state')).resolves.toMatch(
      /^connecting/,
    );
    await page
      .locator('[data-testid="telemetry-chart"][data-status="ok"]')
      .first()
      .waitFor({ timeout: 5_000 });
    expect(await page.locator('[data-testid="telemetry-chart"] canvas').count()).toBeGreaterThan(0);
    // The detail scrolls inside the shell: a tall window shows all of it.
    await page.setViewportSize({ width: 1440, height: 1900 });
    await page.waitForTimeout(400);
    await page.screenshot({ path: join(SHOTS, 'device-detail.png') });
    await page.setViewportSize({ width: 1440, height: 900 });
    await page.getByRole('button', { name: /Back/ }).click();
    await page.getByLabel('State').selectOption('');
  });

  it('shows the supervision tree and a killed worker comes back with one more restart', async () => {
    await page.getByTestId('nav-tree').click();
    await page.getByTestId('tree-node').first().waitFor();
    expect(await page.getByTestId('tree-node').count()).toBeGreaterThan(10);
    expect(await page.getByTestId('tree-node').count()).toBeLessThan(150);
    await page.getByTestId('tree-search').fill('pump-0005');
    await page.getByTestId('tree-search').press('Enter');
    const device = page.locator('[data-testid="tree-node"][data-key="fleetvisor/devices/pump-0005"]');
    await device.waitFor();
    await device.locator('button.caret').click();
    const worker = page.locator('[data-testid="tree-node"][data-key="fleetvisor/devices/pump-0005/machine"]');
    await worker.click();
    const restarts = Number(await worker.getAttribute('data-restarts'));
    await page.getByTestId('kill-button').click();
    await page.getByTestId('confirm-ok').click();
    await expect.poll(() => worker.getAttribute('data-status'), { timeout: 5_000 }).toBe('restarting');
    await expect
      .poll(
        async () => [
          await worker.getAttribute('data-status'),
          Number(await worker.getAttribute('data-restarts')),
        ],
        {
          timeout: 5_000,
        },
      )
      .toEqual(['running', restarts + 1]);
    await page.screenshot({ path: join(SHOTS, 'tree.png') });
  }, 60_000);

  it('shows the system figures and the event log', async () => {
    await page.getByTestId('nav-system').click();
    await page.getByTestId('health-list').waitFor();
    await page.waitForTimeout(1_200); // a few stats samples for the sparklines
    await page.screenshot({ path: join(SHOTS, 'system.png') });

    await page.getByTestId('nav-events').click();
    await page.getByTestId('event-row').first().waitFor();
    await page.screenshot({ path: join(SHOTS, 'events.png') });
    await page.getByRole('radio', { name: 'History' }).click();
    await page.getByTestId('event-row').first().waitFor();

    await page.emulateMedia({ colorScheme: 'dark' });
    await page.getByTestId('nav-fleet').click();
    await page.getByTestId('fleet-row').first().waitFor();
    await page.screenshot({ path: join(SHOTS, 'fleet-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
    expect(pageErrors).toEqual([]);

    await expect
      .poll(() => bare.getByTestId('connection-status').getAttribute('data-state'), { timeout: 10_000 })
      .toBe('unauthorized');
    await bare.screenshot({ path: join(SHOTS, 'not-signed-in.png') });
  });

  it('puts the view and the selected device in the URL: deep links open them, Back returns', async () => {
    const tab = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    try {
      await tab.goto(`${url}/?fake=50`);
      await tab.getByTestId('fleet-row').first().waitFor();
      const id = (await tab.getByTestId('fleet-row').nth(2).getAttribute('data-device-id'))!;
      await tab.getByTestId('fleet-row').nth(2).click();
      await tab.getByTestId('machine-diagram').waitFor();
      expect(new URL(tab.url()).searchParams.get('device')).toBe(id);
      expect(new URL(tab.url()).searchParams.get('fake')).toBe('50');
      await tab.goBack();
      await tab.getByTestId('fleet-row').first().waitFor();
      expect(new URL(tab.url()).searchParams.get('device')).toBeNull();
      await tab.getByTestId('nav-tree').click();
      await tab.getByTestId('tree-node').first().waitFor();
      expect(new URL(tab.url()).searchParams.get('view')).toBe('tree');
      await tab.goBack();
      await tab.getByTestId('fleet-row').first().waitFor();
      await tab.goForward();
      await tab.getByTestId('tree-node').first().waitFor();

      // Deep links: a view, and a device inside a view.
      await tab.goto(`${url}/?fake=50&view=system`);
      await tab.getByTestId('health-list').waitFor();
      await tab.goto(`${url}/?fake=50&view=events&device=${encodeURIComponent(id)}`);
      await tab.getByTestId('machine-diagram').waitFor();
      expect(await tab.locator('.view-title').textContent()).toContain('Events');
      // A bad view name falls back to the fleet rather than a blank page.
      await tab.goto(`${url}/?fake=50&view=nonsense`);
      await tab.getByTestId('fleet-row').first().waitFor();
    } finally {
      await tab.close();
    }
  }, 60_000);

  it('rough edges: no cut cells, counts follow the filter, timers by name, ids as written, units', async () => {
    const tab = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    try {
      await tab.goto(`${url}/?fake=2000`);
      await tab.getByTestId('fleet-row').first().waitFor();
      await tab.getByRole('button', { name: 'Last seen' }).click();
      await tab.getByRole('button', { name: /Last seen/ }).click(); // descending: ▾
      // Nothing is cut without an ellipsis: the convention badge is whole, header labels (with
      // the sort arrow) fit, and any text that does not fit ends in an ellipsis.
      const cut = await tab.evaluate(() => {
        const problems: string[] = [];
        for (const badge of Array.from(
          document.querySelectorAll<HTMLElement>('[data-testid="fleet-row"] .convention'),
        ))
          if (badge.scrollWidth > badge.clientWidth + 1) problems.push(`badge ${badge.textContent}`);
        for (const button of Array.from(document.querySelectorAll<HTMLElement>('.thead.fleet-cols .sort'))) {
          const cell = button.parentElement!.getBoundingClientRect();
          const r = button.getBoundingClientRect();
          if (r.right > cell.right - 4 || button.scrollWidth > button.clientWidth + 1)
            problems.push(`header ${button.textContent}`);
        }
        for (const el of Array.from(
          document.querySelectorAll<HTMLElement>(
            '[data-testid="fleet-row"] .cell *, [data-testid="fleet-row"] .cell',
          ),
        ))
          if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflow !== 'visible') {
            // A flex box does not put an ellipsis on its own text: such text is cut bare.
            const bareText = Array.from(el.childNodes).some(
              (n) => n.nodeType === 3 && (n.textContent ?? '').trim(),
            );
            if (bareText && getComputedStyle(el).display.includes('flex'))
              problems.push(`bare text in ${el.className}: ${el.textContent}`);
            if (getComputedStyle(el).textOverflow !== 'ellipsis')
              problems.push(`cell ${el.className}: ${el.textContent}`);
          }
        return problems;
      });
      expect(cut).toEqual([]);
      await tab.screenshot({ path: join(SHOTS, 'fleet-columns.png') });

      // The online count is of the devices shown.
      await tab.getByLabel('Filter devices').fill('node-00');
      await expect.poll(() => tab.getByTestId('fleet-row').count()).toBeGreaterThan(0);
      const shown = Number(((await tab.locator('.counts strong').textContent()) ?? '').replace(/,/g, ''));
      const online = Number(((await tab.getByTestId('online-count').textContent()) ?? '').replace(/\D/g, ''));
      expect(shown).toBeLessThan(2000);
      expect(online).toBeLessThanOrEqual(shown);
      await tab.getByLabel('Filter devices').fill('');

      // A timer by the name its kind declares, and the state it runs in; never xstate's id.
      await tab.getByLabel('State').selectOption('connecting');
      let timerText = '';
      for (let attempt = 0; attempt < 4 && !timerText; attempt++) {
        await tab.getByTestId('fleet-row').nth(attempt).click();
        const timer = tab.locator(
          '[data-testid="timer-countdown"][data-timer-name="connectTimeout"] .timer-head',
        );
        timerText = await timer
          .first()
          .innerText({ timeout: 5_000 })
          .catch(() => '');
        if (!timerText) await tab.goBack();
      }
      expect(timerText).toContain('connectTimeout');
      expect(timerText).toMatch(/in connecting/);
      expect(timerText).not.toContain('xstate');
      // Charts say their unit.
      const chart = tab.locator('[data-testid="telemetry-chart"][data-metric="temperature"]');
      if ((await chart.count()) > 0) expect(await chart.getAttribute('data-unit')).toBe('°C');
      expect(
        await tab
          .locator(
            '[data-testid="telemetry-chart"][data-unit="°C"], [data-testid="telemetry-chart"][data-unit="dBm"]',
          )
          .count(),
      ).toBeGreaterThan(0);
      await tab.screenshot({ path: join(SHOTS, 'device-timers-units.png') });

      // The confirm dialog shows an id as written (ids are case-sensitive).
      await tab.goto(`${url}/?fake=2000&view=tree`);
      await tab.getByTestId('tree-search').fill('pump-0005');
      await tab.getByTestId('tree-search').press('Enter');
      const device = tab.locator('[data-testid="tree-node"][data-key="fleetvisor/devices/pump-0005"]');
      await device.waitFor();
      await device.locator('button.caret').click();
      await tab.locator('[data-testid="tree-node"][data-key="fleetvisor/devices/pump-0005/machine"]').click();
      await tab.getByTestId('kill-button').click();
      const title = tab.locator('dialog h2');
      // What is shown is what was written: no text-transform on names and ids.
      expect(await title.innerText()).toBe(await title.textContent());
      expect(await title.innerText()).toMatch(/^Kill machine <\d+>\?$/);
      await tab.screenshot({ path: join(SHOTS, 'confirm-dialog.png') });
      await tab.getByTestId('confirm-cancel').click();

      // The tree reveals the match while typing, without Enter.
      await tab.getByTestId('tree-search').fill('pump-1990');
      await tab
        .locator('[data-testid="tree-node"][data-key="fleetvisor/devices/pump-1990"]')
        .waitFor({ timeout: 5_000 });
    } finally {
      await tab.close();
    }
  }, 90_000);
});

/**
 * What a newcomer does, end to end: `npm start` (here it falls back to the headless server, as
 * Electron's binary is missing), open the printed URL in a browser (Debian's Chromium), and use
 * the live demo fleet — real embedded broker, simulated devices over MQTT and a socat pty, SQLite.
 * Screenshots of each view go to .test-results/screenshots/e2e-*.png.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { socatAvailable } from '../../src/sim/pty.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(ROOT, '.test-results', 'screenshots');
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const NOTE = HAVE_CHROMIUM ? '' : ' (skipped: /usr/bin/chromium is missing; apt-get install -y chromium)';

let app: ChildProcess | undefined;
let dataDir: string;
let url = '';
let output = '';
let browser: Browser | undefined;
let page: Page;

const MQTT_DEMO = ['demo-m001', 'demo-m002', 'demo-m003', 'demo-m004', 'demo-m005', 'demo-m006'];
const DEMO = socatAvailable() ? [...MQTT_DEMO, 'demo-s01'] : MQTT_DEMO;

async function call(method: string, args: unknown): Promise<{ ok: boolean; value?: unknown }> {
  const u = new URL(url);
  const token = new URLSearchParams(u.hash.slice(1)).get('token') ?? '';
  const r = await fetch(`${u.origin}/api/call`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ method, args }),
  });
  return (await r.json()) as { ok: boolean; value?: unknown };
}

const row = (id: string) => page.locator(`[data-testid="fleet-row"][data-device-id="${id}"]`);

describe.skipIf(!HAVE_CHROMIUM)(`a newcomer runs npm start and opens the URL${NOTE}`, () => {
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'fv-e2e-'));
    mkdirSync(SHOTS, { recursive: true });
    // `npm start` is `node scripts/start.mjs`; spawning node directly keeps the process tree small.
    app = spawn(process.execPath, ['scripts/start.mjs', '--data-dir', dataDir], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FLEETVISOR_MQTT_URL: '', FLEETVISOR_PORT: '' },
    });
    app.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    app.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const deadline = Date.now() + 110_000;
    while (!/Open the Fleetvisor UI at: (\S+)/.test(output)) {
      if (app.exitCode !== null) throw new Error(`npm start exited early:\n${output}`);
      if (Date.now() > deadline) throw new Error(`no URL printed within 110 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    url = /Open the Fleetvisor UI at: (\S+)/.exec(output)![1]!;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await page.goto(url);
  }, 150_000);

  afterAll(async () => {
    await browser?.close();
    if (app && app.exitCode === null) {
      const gone = new Promise((r) => app!.once('exit', r));
      app.kill('SIGINT');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
      if (app.exitCode === null) app.kill('SIGKILL');
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }, 30_000);

  it('says why the desktop window does not open, and prints a URL with a token', () => {
    expect(output).toContain("Electron's binary is not installed");
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#token=[A-Za-z0-9_-]{20,}$/);
    // The token is in the URL printed for the operator, never in a log line.
    const token = url.split('#token=')[1]!;
    const logLines = output.split('\n').filter((l) => !l.startsWith('Open the Fleetvisor UI at:'));
    expect(logLines.some((l) => l.includes(token))).toBe(false);
  });

  it('lists the live demo fleet, connected, and the token has left the address bar', async () => {
    for (const id of DEMO) await row(id).waitFor({ timeout: 20_000 });
    await expect
      .poll(async () => row('demo-m001').locator('[data-testid="device-state"]').getAttribute('data-state'), {
        timeout: 20_000,
      })
      .toBe('connected');
    expect(page.url()).not.toContain('token=');
    await page.screenshot({ path: join(SHOTS, 'e2e-fleet.png') });
  });

  it('sends an action to 3 selected devices and shows 3 results', async () => {
    for (const id of ['demo-m001', 'demo-m002', 'demo-m003']) await row(id).getByTestId('row-check').click();
    await page.getByTestId('action-select').selectOption('identify');
    await page.getByTestId('action-submit').click();
    await expect.poll(() => page.getByTestId('act-result').count(), { timeout: 10_000 }).toBe(3);
    await page.getByRole('button', { name: 'Clear', exact: true }).click();
  });

  it('a telemetry chart receives new points', async () => {
    await row('demo-m002').click();
    const chart = page.locator('[data-testid="telemetry-chart"][data-status="ok"]').first();
    await chart.waitFor({ timeout: 15_000 });
    const points = async () => Number((await chart.getAttribute('data-points')) ?? '0');
    const before = await points();
    await expect.poll(points, { timeout: 15_000 }).toBeGreaterThan(before);
    await page.setViewportSize({ width: 1440, height: 1900 });
    await page.screenshot({ path: join(SHOTS, 'e2e-device.png') });
    await page.setViewportSize({ width: 1440, height: 900 });
    await page.getByRole('button', { name: /Back/ }).click();
  });

  it('shows the tree; a device process killed from the UI comes back, one restart more, in its state', async () => {
    await page.getByTestId('nav-tree').click();
    await page
      .locator('[data-testid="tree-node"][data-key="fleetvisor/links/mqtt"]')
      .waitFor({ timeout: 10_000 });
    await page.getByTestId('tree-search').fill('demo-m004');
    await page.getByTestId('tree-search').press('Enter');
    const device = page.locator('[data-testid="tree-node"][data-key="fleetvisor/devices/demo-m004"]');
    await device.waitFor();
    await device.locator('button.caret').click();
    const worker = page.locator('[data-testid="tree-node"][data-key="fleetvisor/devices/demo-m004/machine"]');
    await worker.click();
    const restarts = Number(await worker.getAttribute('data-restarts'));
    await page.getByTestId('kill-button').click();
    await page.getByTestId('confirm-ok').click();
    await expect
      .poll(
        async () => [
          await worker.getAttribute('data-status'),
          Number(await worker.getAttribute('data-restarts')),
        ],
        {
          timeout: 10_000,
        },
      )
      .toEqual(['running', restarts + 1]);
    await page.screenshot({ path: join(SHOTS, 'e2e-tree.png') });
    const detail = (await call('device', { id: 'demo-m004' })) as { ok: boolean; value?: { state: string } };
    expect(detail.value?.state).toBe('connected');
  });

  it('a device in connecting shows a countdown that decreases', async () => {
    // Take the simulated devices away, then ask one to connect: it waits in `connecting`.
    expect(await call('setDemo', { on: false })).toMatchObject({ ok: true });
    await page.getByTestId('nav-fleet').click();
    await expect
      .poll(async () => row('demo-m005').locator('[data-testid="device-state"]').getAttribute('data-state'), {
        timeout: 20_000,
      })
      .toBe('disconnected');
    expect(await call('act', { ids: ['demo-m005'], action: 'connect', args: {} })).toMatchObject({
      ok: true,
    });
    await row('demo-m005').click();
    const timer = page.getByTestId('timer-countdown').first();
    await timer.waitFor({ timeout: 10_000 });
    const remaining = async () => Number(await timer.getAttribute('data-remaining-ms'));
    const before = await remaining();
    await page.waitForTimeout(500);
    const after = await remaining();
    expect(after).toBeLessThan(before);
    expect(after).toBeGreaterThan(0);
    await page.screenshot({ path: join(SHOTS, 'e2e-connecting.png') });
    expect(await call('setDemo', { on: true })).toMatchObject({ ok: true });
  });

  it('shows the system figures and the event log', async () => {
    await page.getByRole('button', { name: /Back/ }).click();
    await page.getByTestId('nav-system').click();
    await page.getByTestId('health-list').waitFor();
    await page.waitForTimeout(1500);
    await page.screenshot({ path: join(SHOTS, 'e2e-system.png') });
    await page.getByTestId('nav-events').click();
    await page.getByTestId('event-row').first().waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(SHOTS, 'e2e-events.png') });
  });
});

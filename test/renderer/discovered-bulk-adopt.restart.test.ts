/**
 * The Discovered view shows a bulk adoption across a host restart (issue 13), in Debian's Chromium
 * on a real host (embedded broker on a fixed port, SQLite file, manual adoption, the built
 * renderer served by the host's own server). The operator's tab stays open while the host stops
 * mid-job and starts again on the same data folder, port and token: the page reconnects, and the
 * job's line comes back with the same id, says it resumed after a restart and how many devices it
 * waits to hear from again, then ends with every device adopted but those never heard again
 * (skipped). 40 devices are simulated over MQTT, each with its broker account, so they reconnect
 * to the new broker by themselves; 1,000 more hellos are handed to the link hub as the MQTT link
 * hands them, before the restart only: those not adopted before it are the devices that never
 * come back. Screenshots: .test-results/screenshots/bulk-adopt-restart-*.png.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostApiHandle } from '../../src/host/api.js';
import { createHostApi } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { AdoptBulkView } from '../../src/host/contract.js';
import type { RunningServer } from '../../src/host/server.js';
import { startServer } from '../../src/host/server.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import type { SimFleet } from '../../src/sim/sim-fleet.js';
import { startSimFleet } from '../../src/sim/sim-fleet.js';
import { DATABASE_FILE_NAME, openSqliteStore } from '../../src/store/index.js';
import type { DeviceId, HelloMessage } from '../../src/transports/protocol.js';
import { freePort } from '../transports/helpers.js';
import { CHROMIUM, CHROMIUM_ARGS, SHOTS } from './real-host.js';
import { buildRenderer } from './serve-bundle.js';

const SIMULATED = 40;
const HANDED = 1_000;
const TOKEN = 'restart-test-token-0123456789';

const hello = (id: DeviceId): HelloMessage => ({
  v: 1,
  type: 'hello',
  deviceId: id,
  kind: 'fleetvisor.generic',
  boot: 1,
  firmware: { version: '1.2.0', slot: 'A', confirmed: true, slots: { A: '1.2.0', B: null } },
  capabilities: [],
});

describe.skipIf(!existsSync(CHROMIUM))('the Discovered view across a host restart', () => {
  let outDir: string;
  let dataDir: string;
  let brokerPort: number;
  let uiPort: number;
  let host: { app: App; api: HostApiHandle; server: RunningServer } | undefined;
  let browser: Browser | undefined;
  let page: Page;
  const pageErrors: string[] = [];
  let sim: SimFleet | undefined;

  const start = async () => {
    const app = await startApp({
      dataDir,
      logger: silentLogger,
      broker: { port: brokerPort },
      adopt: 'manual',
      demo: false,
      conventions: [],
    });
    const api = createHostApi(app);
    const server = await startServer({
      api,
      staticDir: outDir,
      exports: app.exports!,
      port: uiPort,
      token: TOKEN,
    });
    host = { app, api, server };
  };
  const stop = async () => {
    await host?.server.close();
    host?.api.close();
    await host?.app.stop();
    host = undefined;
  };
  const status = async (): Promise<AdoptBulkView | null> => {
    const r = await host!.api.call('adoptBulkStatus', {});
    if (!r.ok) throw new Error(r.error.message);
    return r.value as AdoptBulkView | null;
  };
  const job = () => page.getByTestId('adopt-job');

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'fleetvisor-renderer-'));
    dataDir = await mkdtemp(join(tmpdir(), 'fleetvisor-bulk-restart-'));
    await buildRenderer(outDir);
    await mkdir(SHOTS, { recursive: true });
    brokerPort = await freePort();
    uiPort = await freePort();
    await start();
    const accounts = host!.app.brokerAccounts!;
    sim = await startSimFleet({
      mqttUrl: host!.app.brokerUrl!,
      mqtt: SIMULATED,
      idPrefix: 'site',
      telemetryIntervalMs: 60_000,
      concurrency: 10,
      startTimeoutMs: 60_000,
      credentials: (id) => ({ username: id, password: accounts.issueDevice(id) }),
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    const link = { via: 'mqtt', presence: 'status' as const, send: () => true };
    for (let i = 1; i <= HANDED; i++) {
      const id = `plant-${String(i).padStart(4, '0')}` as DeviceId;
      host!.app.links.hub!.deliver(id, hello(id), link);
    }
    const url = new URL(host!.server.url);
    url.search = '?view=discovered';
    await page.goto(url.toString());
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await sim?.stop();
    await stop();
    await rm(outDir, { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('shows the job resumed with the same id after the restart, waiting, then its result', async () => {
    const total = SIMULATED + HANDED;
    await expect
      .poll(() => page.getByTestId('nav-discovered-count').textContent(), { timeout: 60_000 })
      .toBe(String(total));
    const all = page.getByTestId('adopt-all-matching');
    await expect.poll(() => all.textContent(), { timeout: 15_000 }).toBe('Adopt all 1,040');
    await all.click();
    await page.getByTestId('confirm-ok').click();
    await job().waitFor({ timeout: 10_000 });
    const jobId = await job().getAttribute('data-job-id');
    expect(jobId).toMatch(/^adopt-\d+$/);

    // The host stops under the job (the tab stays open).
    await stop();
    const saved = await openSqliteStore({ file: join(dataDir, DATABASE_FILE_NAME) });
    const loaded = await saved.loadAdoptJob('local');
    await saved.close();
    const stored = loaded?.ok ? loaded.value : undefined;
    expect(stored).toMatchObject({ id: jobId, progress: { state: 'running' } });
    expect(stored!.progress.done).toBeLessThan(total);
    await start();

    // The page reconnects by itself; the job's line is back, resumed, waiting for the devices.
    await expect.poll(() => job().getAttribute('data-job-id'), { timeout: 30_000 }).toBe(jobId);
    await page.getByTestId('adopt-job-resumed').waitFor({ timeout: 15_000 });
    expect(await job().textContent()).toContain('resumed after a host restart');
    await page.getByTestId('adopt-job-waiting').waitFor({ timeout: 15_000 });
    expect(await page.getByTestId('adopt-job-waiting').textContent()).toMatch(
      /waiting for \d[\d,]* to be heard again after the restart/,
    );
    expect(await job().getAttribute('data-state')).toBe('running');
    await page.screenshot({ path: join(SHOTS, 'bulk-adopt-restart-resumed.png') });

    await expect.poll(() => job().getAttribute('data-state'), { timeout: 90_000 }).toBe('finished');
    const v = (await status())!;
    expect(v).toMatchObject({ id: jobId, state: 'finished', done: total, failed: 0 });
    expect(v.skipped).toBeGreaterThan(0);
    expect(await page.getByTestId('adopt-job-result').textContent()).toBe(
      `${v.adopted.toLocaleString('en-US')} adopted, 0 failed, ${v.skipped} skipped (no longer waiting)`,
    );
    expect(await page.getByTestId('adopt-job-progress').textContent()).toContain('1,040 / 1,040');
    expect(await page.getByTestId('adopt-job-waiting').count()).toBe(0);
    // Every simulated device is adopted: those that came back were waited for.
    for (const d of sim!.mqtt) expect(host!.app.fleet.has(d.device.id), d.device.id).toBe(true);
    await page.screenshot({ path: join(SHOTS, 'bulk-adopt-restart-finished.png') });
    expect(pageErrors).toEqual([]);
  }, 240_000);
});

/**
 * The fleet table of a cluster instance lists the whole fleet (renderer/src/store/remote-rows.ts,
 * lib/fleet-wide.ts, src/host/api/fleet-wide.ts), in Debian's Chromium on the production renderer
 * build served by alpha's own host server. Two app instances in this process (`alpha`, `beta`) on a
 * PostgreSQL test database of this file's own and an embedded broker; devices provisioned in the
 * database before they start, and simulated MQTT devices adopted on their owner. On alpha's page:
 * - every device of the fleet is a row; beta's carry a chip naming beta and the age of their row,
 *   alpha's none; the note above the table says the others are read from the database;
 * - a simulated device of beta's shows `connected`, and `disconnected` within a few seconds once
 *   it stops — pushed (src/host/api/remote-push.ts): the page reads no remote rows meanwhile;
 * - an action on beta's devices selected in alpha's table is carried out by beta, and the row
 *   opens the device's detail (beta's answer).
 * Screenshots: /tmp/fleet-wide-view.png and .test-results/screenshots/fleet-wide-*.png.
 */
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
import type { RunningServer } from '../../src/host/server.js';
import { startServer } from '../../src/host/server.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import type { MqttSimDevice } from '../../src/sim/mqtt-device.js';
import { startMqttSimDevice } from '../../src/sim/mqtt-device.js';
import { openPostgresStore } from '../../src/store/postgres-store.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import type { TestDatabase } from '../store/postgres-helpers.js';
import { createTestDatabase } from '../store/postgres-helpers.js';
import { uniqueId, waitFor } from '../transports/helpers.js';
import { CHROMIUM, CHROMIUM_ARGS, SHOTS } from './real-host.js';
import { buildRenderer } from './serve-bundle.js';

const SCREENSHOT = '/tmp/fleet-wide-view.png';
const SHARDS = 16;
/** Devices in the database before the instances start (no simulator: disconnected). */
const PROVISIONED = 12;

describe("a cluster instance's fleet table lists the other instances' devices with their owner", () => {
  /** Undone in reverse order in afterAll, each step whatever the others did. */
  const undo: (() => Promise<unknown> | unknown)[] = [];
  const apis = new Map<App, HostApiHandle>();
  const sims = new Map<string, MqttSimDevice>();
  let db: TestDatabase;
  let broker: EmbeddedBroker;
  let alpha: App;
  let beta: App;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  /** When the page read the remote rows (`devices` with scope remote) from alpha. */
  const remoteReads: number[] = [];
  /** Simulated devices in beta's shards, adopted there; one in alpha's. */
  const onBeta: string[] = [];
  let onAlpha = '';

  const tempDir = async (name: string): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), `fleetvisor-${name}-`));
    undo.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  };

  const instance = async (name: string): Promise<App> => {
    const app = await startApp({
      dataDir: await tempDir(`fleet-wide-view-${name}`),
      logger: silentLogger,
      demo: false,
      adopt: 'manual',
      conventions: [],
      mqtt: { url: broker.url },
      storeUrl: db.url,
      cluster: { instanceId: name, shardCount: SHARDS, leaseMs: 3000 },
    });
    undo.push(() => app.stop());
    const api = createHostApi(app);
    undo.push(() => api.close());
    apis.set(app, api);
    return app;
  };

  /** A simulated device in `app`'s shards, adopted there and connected. */
  const simulate = async (app: App, prefix: string): Promise<string> => {
    let id = uniqueId(prefix);
    while (!app.cluster?.keeper.owns(id)) id = uniqueId(prefix);
    const sim = await startMqttSimDevice(broker.url, {
      id,
      telemetryIntervalMs: 1000,
      reconnectMinMs: 100,
      reconnectMaxMs: 500,
    });
    sims.set(id, sim);
    await waitFor(
      () => app.links.hub?.discovered().some((d) => d.id === id) === true,
      20_000,
      'discovered',
      50,
    );
    const r = await apis.get(app)!.call('adopt', { id });
    if (!r.ok) throw new Error(`adopt ${id}: ${r.error.message}`);
    await waitFor(() => app.fleet.device(id)?.state === 'connected', 20_000, `${id} connected`, 50);
    return id;
  };

  const row = (id: string) => page.locator(`[data-testid="fleet-row"][data-device-id="${id}"]`);
  const stateOf = (id: string) => row(id).getByTestId('device-state').getAttribute('data-state');

  beforeAll(async () => {
    const outDir = await tempDir('fleet-wide-view-renderer');
    const built = buildRenderer(outDir);
    db = await createTestDatabase();
    undo.push(() => db.drop());
    broker = await startEmbeddedBroker({ port: 0 });
    undo.push(() => broker.close());
    undo.push(async () => {
      for (const s of sims.values()) await s.stop().catch(() => {});
    });
    const provisioning = await openPostgresStore({ url: db.url });
    for (let i = 1; i <= PROVISIONED; i++)
      await provisioning.upsertDevice({
        id: `fwv-${String(i).padStart(2, '0')}`,
        kind: 'fleetvisor.generic',
        name: `Provisioned ${i}`,
      });
    await provisioning.close();
    alpha = await instance('alpha');
    beta = await instance('beta');
    const held = (app: App) => app.cluster?.keeper.held.size ?? 0;
    await waitFor(() => held(alpha) === SHARDS / 2 && held(beta) === SHARDS / 2, 30_000, 'an 8/8 split', 50);
    onBeta.push(await simulate(beta, 'fwvb'), await simulate(beta, 'fwvb'));
    onAlpha = await simulate(alpha, 'fwva');
    await waitFor(
      () => alpha.fleet.list().length + beta.fleet.list().length === PROVISIONED + 3,
      30_000,
      'the fleet split between the two',
      50,
    );
    await built;
    const api = apis.get(alpha)!;
    const counted: typeof api = {
      ...api,
      call: (method, args, context) => {
        if (method === 'devices' && (args as { scope?: string }).scope === 'remote')
          remoteReads.push(Date.now());
        return api.call(method, args, context);
      },
    };
    server = await startServer({ api: counted, staticDir: outDir });
    undo.push(() => server.close());
    await mkdir(SHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    undo.push(() => browser.close());
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(server.url);
    await page.getByTestId('nav-fleet').click();
  }, 180_000);

  afterAll(async () => {
    const failures: unknown[] = [];
    while (undo.length > 0)
      try {
        await undo.pop()!();
      } catch (error) {
        failures.push(error);
      }
    if (failures.length > 0)
      throw new AggregateError(failures, 'cleaning up the fleet-wide view test failed');
  }, 90_000);

  it("shows every device of the fleet, beta's with a chip naming beta and their row's age", async () => {
    const total = PROVISIONED + 3;
    const rows = page.getByTestId('fleet-row');
    await expect.poll(() => rows.count(), { timeout: 20_000 }).toBe(total);
    const chips = async () =>
      Object.fromEntries(
        await rows.evaluateAll((els) =>
          els.map((e) => [
            e.getAttribute('data-device-id'),
            e.querySelector('[data-testid="owner-chip"]')?.getAttribute('data-owner') ?? 'own',
          ]),
        ),
      );
    const expected = Object.fromEntries(
      [
        ...alpha.fleet.list().map((d) => [d.id, 'own']),
        ...beta.fleet.list().map((d) => [d.id, 'beta']),
      ].sort(),
    );
    await expect.poll(chips, { timeout: 15_000 }).toEqual(expected);
    expect(Object.values(expected).filter((o) => o === 'beta').length).toBeGreaterThan(0);
    for (const id of onBeta) {
      await expect.poll(() => stateOf(id), { timeout: 15_000 }).toBe('connected');
      expect(await row(id).getByTestId('owner-chip').textContent()).toBe('beta');
      expect(await row(id).getByTestId('remote-age').textContent()).toMatch(/^read (now|\d+ s ago)$/);
      expect(await row(id).getByTestId('owner-chip').getAttribute('title')).toMatch(
        /runs on instance beta\. Read from the shared database .*saves its state at every change/,
      );
    }
    expect(await stateOf(onAlpha)).toBe('connected');
    expect(await row(onAlpha).getByTestId('owner-chip').count()).toBe(0);
    expect(await row(onAlpha).getByTestId('remote-age').count()).toBe(0);
    const note = page.getByTestId('cluster-share');
    await expect
      .poll(() => note.getByTestId('cluster-share-here').textContent())
      .toBe(String(alpha.fleet.list().length));
    expect(await note.getByTestId('cluster-share-fleet').textContent()).toBe(String(total));
    expect(await note.getByTestId('cluster-share-remote').textContent()).toContain(
      `(${beta.fleet.list().length}, marked with their instance)`,
    );
    // The toolbar counts the whole fleet: the three simulated devices are online, two on beta.
    expect(await page.getByTestId('online-count').textContent()).toBe('3 online');
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await page.screenshot({ path: join(SHOTS, 'fleet-wide-rows.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it("an action on beta's devices selected here is carried out by beta", async () => {
    for (const id of onBeta) await row(id).getByTestId('row-check').click();
    await page.getByTestId('action-select').selectOption('ping');
    await page.getByTestId('action-submit').click();
    const results = page.getByTestId('act-result');
    await expect.poll(() => results.count(), { timeout: 20_000 }).toBe(2);
    await expect
      .poll(() => results.evaluateAll((els) => els.map((e) => e.getAttribute('data-status'))), {
        timeout: 20_000,
      })
      .toEqual(['succeeded', 'succeeded']);
    // Beta's command log, written under beta's lease, says so.
    await beta.fleet.flush();
    for (const id of onBeta) {
      const commands = await beta.store.queryCommands({ deviceId: id, limit: 5 });
      expect(
        commands.items.some((c) => c.ok && c.value.action === 'ping' && c.value.status === 'succeeded'),
      ).toBe(true);
    }
    await page.screenshot({ path: join(SHOTS, 'fleet-wide-act.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('a device that stops on beta reads disconnected in the table within seconds, pushed, not polled', async () => {
    const id = onBeta[0]!;
    const before = Number(await row(id).getByTestId('remote-age').getAttribute('data-read-at'));
    // The page read the remote rows when its stream started, and reads them again once a minute.
    expect(remoteReads.length).toBeGreaterThan(0);
    await sims.get(id)!.stop();
    sims.delete(id);
    await waitFor(() => beta.fleet.device(id)?.state === 'disconnected', 10_000, 'disconnected on beta', 20);
    const stopped = Date.now();
    // Beta's write, its signal, alpha's read and push: about a second (goal), a few on a loaded machine.
    await expect.poll(() => stateOf(id), { timeout: 10_000, interval: 50 }).toBe('disconnected');
    const took = Date.now() - stopped;
    expect(took).toBeLessThan(4000);
    expect(remoteReads.filter((t) => t >= stopped)).toEqual([]);
    expect(Number(await row(id).getByTestId('remote-age').getAttribute('data-read-at'))).toBeGreaterThan(
      before,
    );
    expect(await page.getByTestId('online-count').textContent()).toBe('2 online');
    await page.screenshot({ path: join(SHOTS, 'fleet-wide-disconnected.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 40_000);

  it("a row of beta's opens the device's detail, answered by beta", async () => {
    const id = onBeta[1]!;
    await row(id).getByTestId('device-state').click();
    await page.locator('h1.mono', { hasText: id }).waitFor({ timeout: 15_000 });
    await expect
      .poll(() => page.getByTestId('device-state').first().getAttribute('data-state'), { timeout: 15_000 })
      .toBe('connected');
    await page.screenshot({ path: join(SHOTS, 'fleet-wide-detail.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 30_000);
});

/**
 * The Cluster panel of the System view on a real cluster (docs/scale-out.md): a PostgreSQL test
 * database of this file's own, an embedded broker started here, two app instances in this process
 * (`alpha` and `beta`, each with its own data folder, no demo, `--cluster` on that database and
 * broker), and the production renderer build served by alpha's own host server to Debian's
 * Chromium. Once the two have shared the shards out (read from the API, not assumed), the panel
 * lists both with the same shard counts, summing to the fleet's shard count; an instance that
 * stopped renewing shows stale; a graceful stop of beta shows it as left and alpha takes all the
 * shards. A plain single instance (SQLite, no cluster) shows one quiet line and no panel.
 * Screenshots: /tmp/cluster-panel.png, and .test-results/screenshots/cluster-*.png.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHostApi } from '../../src/host/api.js';
import type { App, AppOptions } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { ClusterInfo } from '../../src/host/contract.js';
import type { RunningServer } from '../../src/host/server.js';
import { startServer } from '../../src/host/server.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import { openPtyPair } from '../../src/sim/pty.js';
import { startSerialSimDevice } from '../../src/sim/serial-device.js';
import { openPostgresStore } from '../../src/store/postgres-store.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import type { TestDatabase } from '../store/postgres-helpers.js';
import { createTestDatabase } from '../store/postgres-helpers.js';
import { CHROMIUM, CHROMIUM_ARGS, SHOTS } from './real-host.js';
import { buildRenderer } from './serve-bundle.js';

const SCREENSHOT = '/tmp/cluster-panel.png';

/** Devices provisioned in the cluster's database before the instances start. */
const FLEET = 12;

describe.skipIf(!existsSync(CHROMIUM))('Cluster panel in the System view on two real instances', () => {
  /** Undone in reverse order in afterAll, each step whatever the others did. */
  const undo: (() => Promise<unknown> | unknown)[] = [];
  let db: TestDatabase;
  let broker: EmbeddedBroker;
  let alpha: App;
  let beta: App;
  let alphaServer: RunningServer;
  let plainServer: RunningServer;
  let betaOrigin: string;
  let browser: Browser;
  const pageErrors: string[] = [];

  const tempDir = async (name: string): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), `fleetvisor-${name}-`));
    undo.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  };

  const startInstance = async (
    name: string,
    options: Pick<AppOptions, 'storeUrl' | 'cluster' | 'serialPorts'>,
  ): Promise<App> => {
    const app = await startApp({
      dataDir: await tempDir(`cluster-view-${name}`),
      logger: silentLogger,
      demo: false,
      conventions: [],
      mqtt: { url: broker.url },
      ...options,
    });
    undo.push(() => app.stop());
    return app;
  };

  const serve = async (app: App, staticDir: string): Promise<RunningServer> => {
    const api = createHostApi(app);
    undo.push(() => api.close());
    const server = await startServer({ api, staticDir, ...(app.exports ? { exports: app.exports } : {}) });
    undo.push(() => server.close());
    return server;
  };

  const openPage = async (server: RunningServer): Promise<Page> => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(server.url);
    await page.getByTestId('nav-system').click();
    await page.getByTestId('health-list').waitFor({ timeout: 15_000 });
    return page;
  };

  /** The `cluster` method through alpha's HTTP API, as any client asks it. */
  const clusterOf = async (server: RunningServer): Promise<ClusterInfo | null> => {
    const response = await fetch(`${server.origin}/api/call`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${server.token}` },
      body: JSON.stringify({ method: 'cluster', args: {} }),
    });
    const body = (await response.json()) as { ok: boolean; value?: ClusterInfo | null; error?: unknown };
    if (!body.ok) throw new Error(`cluster: ${JSON.stringify(body.error)}`);
    return body.value ?? null;
  };

  beforeAll(async () => {
    const outDir = await tempDir('cluster-view-renderer');
    const built = buildRenderer(outDir);
    db = await createTestDatabase();
    undo.push(() => db.drop());
    broker = await startEmbeddedBroker({ port: 0 });
    undo.push(() => broker.close());
    // A fleet provisioned in the database before the instances start: each runs its shards' share.
    const provisioning = await openPostgresStore({ url: db.url });
    for (let i = 1; i <= FLEET; i++)
      await provisioning.upsertDevice({ id: `cv-${i}`, kind: 'fleetvisor.generic', name: `cv-${i}` });
    await provisioning.close();
    // A serial device on alpha's port: pinned to alpha whatever its shard (src/cluster/pins.ts).
    const ptyDir = await tempDir('cluster-view-pty');
    const pty = await openPtyPair(join(ptyDir, 'host'), join(ptyDir, 'device'));
    undo.push(() => pty.close());
    alpha = await startInstance('alpha', {
      storeUrl: db.url,
      cluster: { instanceId: 'alpha' },
      serialPorts: [pty.hostPath],
    });
    const boiler = await startSerialSimDevice(pty.devicePath, { id: 'cv-boiler', telemetryIntervalMs: 1000 });
    undo.push(() => boiler.stop());
    beta = await startInstance('beta', { storeUrl: db.url, cluster: { instanceId: 'beta' } });
    const plain = await startInstance('plain', {});
    await built;
    alphaServer = await serve(alpha, outDir);
    const betaServer = await serve(beta, outDir);
    // What main.ts does once an instance's server listens: the others' cluster view links to it.
    alpha.cluster?.keeper.setApiUrl(alphaServer.origin);
    beta.cluster?.keeper.setApiUrl(betaServer.origin);
    betaOrigin = betaServer.origin;
    plainServer = await serve(plain, outDir);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    undo.push(() => browser.close());
  }, 180_000);

  afterAll(async () => {
    const failures: unknown[] = [];
    while (undo.length > 0)
      try {
        await undo.pop()!();
      } catch (error) {
        failures.push(error);
      }
    if (failures.length > 0) throw new AggregateError(failures, 'cleaning up the cluster view test failed');
  }, 90_000);

  it('lists both instances with the shards the API says they hold, then beta as left once it stops', async () => {
    // Beta joins after alpha took every shard; alpha hands over a few at a time. Wait until the
    // API says they are balanced (and nothing unowned), so the page and the API see one split.
    await expect
      .poll(
        async () => {
          const info = await clusterOf(alphaServer);
          if (!info) return 'null';
          const held = info.instances.filter((i) => i.shards > 0);
          const sum = held.reduce((n, i) => n + i.shards, 0);
          const balanced = held.length === 2 && Math.abs(held[0]!.shards - held[1]!.shards) <= 1;
          return balanced && sum === info.shardCount && info.unowned === 0
            ? 'balanced'
            : `${held.map((i) => `${i.id} ${i.shards}`).join(', ')}; unowned ${info.unowned}`;
        },
        { timeout: 60_000, interval: 500 },
      )
      .toBe('balanced');
    const api = await clusterOf(alphaServer);
    if (!api) throw new Error('alpha answers no cluster');
    expect(api.self).toBe('alpha');
    expect(api.shardCount).toBe(1024);
    const apiShards = Object.fromEntries(api.instances.map((i) => [i.id, i.shards]));
    expect(Object.keys(apiShards).sort()).toEqual(['alpha', 'beta']);
    expect(apiShards.alpha! + apiShards.beta!).toBe(1024);

    const page = await openPage(alphaServer);
    const panel = page.getByTestId('cluster-panel');
    await panel.waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('cluster-single').count()).toBe(0);
    expect(await panel.getByTestId('cluster-self').textContent()).toBe('alpha');
    expect(await panel.getByTestId('cluster-shard-count').textContent()).toBe('1,024');
    expect(await panel.getByTestId('cluster-unowned').getAttribute('data-unowned')).toBe('0');

    const rows = panel.getByTestId('cluster-instance');
    const shown = async () => {
      const out: Record<string, { shards: number; state: string | null; text: string }> = {};
      for (const row of await rows.all())
        out[(await row.getAttribute('data-instance-id'))!] = {
          shards: Number(await row.getAttribute('data-shards')),
          state: await row.getAttribute('data-state'),
          text: (await row.getByTestId('cluster-shards').textContent()) ?? '',
        };
      return out;
    };
    await expect
      .poll(async () => Object.fromEntries(Object.entries(await shown()).map(([id, r]) => [id, r.shards])), {
        timeout: 10_000,
      })
      .toEqual(apiShards);
    const now = await shown();
    expect(now.alpha!.shards + now.beta!.shards).toBe(1024);
    expect(now.alpha!.text).toBe(apiShards.alpha!.toLocaleString('en-US'));
    expect(now.alpha!.state).toBe('live');
    expect(now.beta!.state).toBe('live');
    const alphaRow = panel.locator('[data-testid="cluster-instance"][data-instance-id="alpha"]');
    expect(await alphaRow.textContent()).toContain('this UI');
    // The leader lease (docs/scale-out.md): alpha started first and holds `primary`; the API and
    // the badge agree, and only the leader's row carries it.
    await expect
      .poll(
        async () =>
          (await clusterOf(alphaServer))?.instances
            .map((i) => `${i.id}:${i.leads.join(',')}`)
            .sort()
            .join(' '),
        { timeout: 15_000 },
      )
      .toBe('alpha:primary beta:');
    await expect
      .poll(
        async () =>
          alphaRow
            .getByTestId('cluster-leads')
            .textContent()
            .catch(() => null),
        { timeout: 10_000 },
      )
      .toBe('leads: primary');
    expect(await panel.getByTestId('cluster-leads').count()).toBe(1);
    // Seen whole, not clipped by the column (it was cut to "…" at 1,440 px beside "this UI").
    const badge = await alphaRow.getByTestId('cluster-leads').boundingBox();
    const cell = await alphaRow.locator('td').first().boundingBox();
    expect(badge!.x + badge!.width).toBeLessThanOrEqual(cell!.x + cell!.width + 0.5);
    // Each other live instance links to its own UI; this one does not link to itself.
    const betaRow = panel.locator('[data-testid="cluster-instance"][data-instance-id="beta"]');
    await expect
      .poll(
        async () =>
          betaRow
            .getByTestId('cluster-open')
            .getAttribute('href')
            .catch(() => null),
        {
          timeout: 10_000,
        },
      )
      .toBe(betaOrigin);
    expect(await alphaRow.getByTestId('cluster-open').count()).toBe(0);
    // The serial device on alpha's port is pinned to alpha: its row says so, beta's does not.
    await expect
      .poll(
        async () =>
          alphaRow
            .getByTestId('cluster-pins')
            .textContent()
            .catch(() => null),
        { timeout: 15_000 },
      )
      .toBe('1 pinned');
    expect(await betaRow.getByTestId('cluster-pins').count()).toBe(0);
    expect(await alphaRow.textContent()).toMatch(/\d+\.\d s ago/);
    expect(await panel.getByTestId('cluster-stats').textContent()).toMatch(/\d+ renewals/);
    await page.waitForTimeout(1_200); // a few stats samples for the cards' sparklines
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await page.screenshot({ path: join(SHOTS, 'cluster-two.png'), fullPage: true });

    // An instance that stopped renewing, as a kill -9 leaves it once its shards were claimed: its
    // row in the lease table's instances, last seen 40 s ago (no leases; the others ignore it).
    await db.query(
      `INSERT INTO fleetvisor_instances (id, host, pid, api_url, started_at, seen_at)
       VALUES ('gamma', 'lab-3', 4242, NULL, clock_timestamp() - interval '10 minutes',
               clock_timestamp() - interval '40 seconds')`,
    );
    const gamma = panel.locator('[data-testid="cluster-instance"][data-instance-id="gamma"]');
    await gamma.waitFor({ timeout: 10_000 });
    expect(await gamma.getAttribute('data-state')).toBe('stale');
    expect(await gamma.getAttribute('data-shards')).toBe('0');
    expect(await gamma.textContent()).toContain('stale');

    // A graceful stop: beta hands its shards back and is shown as left; alpha holds them all.
    await beta.stop();
    await expect
      .poll(
        async () => {
          const r = await shown();
          return `${r.alpha?.shards} ${r.beta?.state} ${r.beta?.shards}`;
        },
        { timeout: 20_000, interval: 250 },
      )
      .toBe('1024 left 0');
    expect(await page.getByTestId('cluster-unowned').getAttribute('data-unowned')).toBe('0');
    await page.screenshot({ path: join(SHOTS, 'cluster-left.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it('says above the fleet table how much of the fleet this instance runs', async () => {
    const page = await openPage(alphaServer);
    await page.getByTestId('nav-fleet').click();
    const note = page.getByTestId('cluster-share');
    await note.waitFor({ timeout: 15_000 });
    // Beta stopped in the test before: alpha runs the whole provisioned fleet now.
    await expect
      .poll(
        async () =>
          `${await note.getByTestId('cluster-share-here').textContent()} of ${await note.getByTestId('cluster-share-fleet').textContent()}`,
        {
          timeout: 20_000,
        },
      )
      .toBe(`${FLEET} of ${FLEET}`);
    const api = await clusterOf(alphaServer);
    expect(api?.devices).toBe(FLEET);
    expect(api?.fleetDevices).toBe(FLEET);
    await page.screenshot({ path: join(SHOTS, 'cluster-fleet-note.png') });
    // A single instance shows no such note.
    const plain = await openPage(plainServer);
    await plain.getByTestId('nav-fleet').click();
    await plain
      .getByTestId('filter-text')
      .or(plain.locator('input.filter-text'))
      .first()
      .waitFor({ timeout: 10_000 });
    expect(await plain.getByTestId('cluster-share').count()).toBe(0);
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('shows one quiet line and no panel for a single instance', async () => {
    expect(await clusterOf(plainServer)).toBeNull();
    const page = await openPage(plainServer);
    await page.getByTestId('cluster-single').waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('cluster-single').textContent()).toBe('Single instance (no cluster)');
    expect(await page.getByTestId('cluster-panel').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'cluster-single.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 30_000);
});

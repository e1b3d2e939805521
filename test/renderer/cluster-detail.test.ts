/**
 * Another instance's device in the device view, and the change feed in the cluster view
 * (docs/scale-out.md, "One fleet in every UI"), on a real cluster: a PostgreSQL test database of
 * this file's own, an embedded broker started here, two app instances in this process (`alpha`
 * and `beta`, each with its own data folder, `--cluster` on that database and broker), and the
 * production renderer build served by each instance's own host server to Debian's Chromium.
 *
 * - A device beta supervises, open in the device view of alpha's page: each state change on beta
 *   (an event sent to its machine through beta's API) shows in alpha's detail within
 *   {@link SHOWN_WITHIN_MS}. Each change is made right after the page's last read of the detail
 *   (the read that showed the previous state), so the old 10 s refresh would show it ~10 s late;
 *   the remote detail's safety poll (REMOTE_DETAIL_POLL_MS, 30 s) is far past the bound, so only
 *   the push can bring it in time. The latencies are printed (LATENCY lines).
 * - The change feed's figures of both instances through alpha's `cluster` API (beta's as beta
 *   wrote them with its heartbeat, equal to its own counts once quiet) and in the Cluster panel;
 *   alpha's listening connection killed on the server → one re-read shown for alpha.
 * Screenshots: .test-results/screenshots/cluster-remote-detail.png, cluster-feed.png (and /tmp/cluster-feed.png).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changesListenerName } from '../../src/cluster/fleet-changes.js';
import type { HostApiHandle } from '../../src/host/api.js';
import { createHostApi } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { ClusterInfo, Results } from '../../src/host/contract.js';
import type { RunningServer } from '../../src/host/server.js';
import { startServer } from '../../src/host/server.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import { openPostgresStore } from '../../src/store/postgres-store.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import type { TestDatabase } from '../store/postgres-helpers.js';
import { createTestDatabase } from '../store/postgres-helpers.js';
import { waitFor } from '../transports/helpers.js';
import { CHROMIUM, CHROMIUM_ARGS, SHOTS } from './real-host.js';
import { buildRenderer } from './serve-bundle.js';

const FEED_SCREENSHOT = '/tmp/cluster-feed.png';
const FLEET = 12;
const SHARDS = 16;
const LEASE_MS = 3000;
/** State changes made on beta while alpha's page shows the device. */
const ROUNDS = 5;
/** From the change on beta to alpha's detail showing it; the old 10 s refresh misses it. */
const SHOWN_WITHIN_MS = 5000;
const HEADER_STATE = '.detail-header [data-testid="device-state"]';

describe.skipIf(!existsSync(CHROMIUM))(
  "Another instance's device and the change feed, on two real instances",
  () => {
    /** Undone in reverse order in afterAll, each step whatever the others did. */
    const undo: (() => Promise<unknown> | unknown)[] = [];
    let db: TestDatabase;
    let broker: EmbeddedBroker;
    let alpha: App;
    let beta: App;
    const apis = new Map<App, HostApiHandle>();
    let alphaServer: RunningServer;
    let browser: Browser;
    const pageErrors: string[] = [];

    const tempDir = async (name: string): Promise<string> => {
      const dir = await mkdtemp(join(tmpdir(), `fleetvisor-${name}-`));
      undo.push(() => rm(dir, { recursive: true, force: true }));
      return dir;
    };

    const startInstance = async (name: string): Promise<App> => {
      const app = await startApp({
        dataDir: await tempDir(`cluster-detail-${name}`),
        logger: silentLogger,
        demo: false,
        conventions: [],
        mqtt: { url: broker.url },
        storeUrl: db.url,
        cluster: { instanceId: name, shardCount: SHARDS, leaseMs: LEASE_MS },
      });
      undo.push(() => app.stop());
      return app;
    };

    const serve = async (app: App, staticDir: string): Promise<RunningServer> => {
      const api = createHostApi(app);
      apis.set(app, api);
      undo.push(() => api.close());
      const server = await startServer({ api, staticDir, ...(app.exports ? { exports: app.exports } : {}) });
      undo.push(() => server.close());
      return server;
    };

    const newPage = async (): Promise<Page> => {
      const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
      page.on('pageerror', (error) => pageErrors.push(error.message));
      return page;
    };

    /** The `cluster` method through alpha's HTTP API, as any client asks it. */
    const clusterOf = async (server: RunningServer): Promise<ClusterInfo> => {
      const response = await fetch(`${server.origin}/api/call`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${server.token}` },
        body: JSON.stringify({ method: 'cluster', args: {} }),
      });
      const body = (await response.json()) as { ok: boolean; value?: ClusterInfo | null; error?: unknown };
      if (!body.ok || !body.value) throw new Error(`cluster: ${JSON.stringify(body.error ?? body.value)}`);
      return body.value;
    };

    const feedOf = (info: ClusterInfo, id: string) => {
      const feed = info.instances.find((i) => i.id === id)?.feed;
      if (!feed) throw new Error(`no change feed for ${id} in ${JSON.stringify(info.instances)}`);
      return feed;
    };

    /** Sends beta's device the event that moves it out of its state, through beta's API; the state entered. */
    const toggle = async (id: string): Promise<{ to: string; enteredAt: number }> => {
      const state = beta.fleet.device(id)?.state;
      const r = await apis.get(beta)!.call('sendEvent', {
        id,
        event: state === 'disconnected' ? 'CONNECT' : 'DISCONNECT',
      });
      if (!r.ok) throw new Error(`sendEvent: ${r.error.code}: ${r.error.message}`);
      return { to: (r.value as Results['sendEvent']).to, enteredAt: beta.fleet.device(id)!.stateEnteredAt };
    };

    beforeAll(async () => {
      const outDir = await tempDir('cluster-detail-renderer');
      const built = buildRenderer(outDir);
      db = await createTestDatabase();
      undo.push(() => db.drop());
      broker = await startEmbeddedBroker({ port: 0 });
      undo.push(() => broker.close());
      const provisioning = await openPostgresStore({ url: db.url });
      for (let i = 1; i <= FLEET; i++)
        await provisioning.upsertDevice({ id: `cd-${i}`, kind: 'fleetvisor.generic', name: `cd-${i}` });
      await provisioning.close();
      alpha = await startInstance('alpha');
      beta = await startInstance('beta');
      await built;
      alphaServer = await serve(alpha, outDir);
      const betaServer = await serve(beta, outDir);
      alpha.cluster?.keeper.setApiUrl(alphaServer.origin);
      beta.cluster?.keeper.setApiUrl(betaServer.origin);
      const held = (app: App) => app.cluster?.keeper.held.size ?? 0;
      await waitFor(
        () =>
          held(alpha) === SHARDS / 2 &&
          held(beta) === SHARDS / 2 &&
          alpha.fleet.list().length + beta.fleet.list().length === FLEET,
        60_000,
        'the shards and the fleet split between the two',
        100,
      );
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
      if (failures.length > 0)
        throw new AggregateError(failures, 'cleaning up the cluster detail test failed');
    }, 90_000);

    it("shows each state change of beta's device in alpha's device view within 5 s, brought by the push", async () => {
      const id = beta.fleet
        .list()
        .map((d) => d.id)
        .sort()[0];
      if (!id) throw new Error('beta supervises no device');
      expect(alpha.fleet.has(id)).toBe(false);

      const page = await newPage();
      /** When the page asked for the device's detail (the `device` call on its socket or over HTTP). */
      const detailReads: number[] = [];
      const isDetailCall = (text: string) => text.includes('"device"') && text.includes(`"${id}"`);
      page.on('websocket', (ws) =>
        ws.on('framesent', (frame) => {
          if (typeof frame.payload === 'string' && isDetailCall(frame.payload)) detailReads.push(Date.now());
        }),
      );
      page.on('request', (request) => {
        if (request.url().endsWith('/api/call') && isDetailCall(request.postData() ?? ''))
          detailReads.push(Date.now());
      });
      const url = new URL(alphaServer.url);
      url.search = `?device=${encodeURIComponent(id)}`;
      await page.goto(url.toString());
      const badge = page.locator(HEADER_STATE);
      await badge.waitFor({ timeout: 15_000 });
      await expect
        .poll(() => badge.getAttribute('data-state'), { timeout: 10_000 })
        .toBe(beta.fleet.device(id)!.state);

      const latencies: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // Right after the read that showed the state: the old code read again only 10 s later.
        const readsBefore = detailReads.length;
        const { to, enteredAt } = await toggle(id);
        await page.waitForFunction(
          ([selector, want]) =>
            document.querySelector(selector as string)?.getAttribute('data-state') === want,
          [HEADER_STATE, to],
          { polling: 20, timeout: SHOWN_WITHIN_MS },
        );
        const latency = Date.now() - enteredAt;
        latencies.push(latency);
        expect(latency).toBeLessThan(SHOWN_WITHIN_MS);
        // It was a read of the detail that showed it (there is no live row of beta's device on alpha).
        expect(detailReads.length).toBeGreaterThan(readsBefore);
        expect(await page.locator('.detail-title h1').textContent()).toBe(id);
      }
      const sorted = [...latencies].sort((a, b) => a - b);
      console.log(
        `LATENCY remote detail: beta's state change → alpha's device view, ms: ${latencies.join(', ')} (median ${sorted[Math.floor(sorted.length / 2)]}, max ${sorted[sorted.length - 1]})`,
      );
      await page.screenshot({ path: join(SHOTS, 'cluster-remote-detail.png'), fullPage: true });
      await page.close();
      expect(pageErrors).toEqual([]);
    }, 120_000);

    it("shows both instances' change feed in the cluster API and panel, and a re-read after alpha's listener dropped", async () => {
      // Beta's figures reach alpha with beta's heartbeat: once quiet, they are beta's own counts.
      const betaOwn = beta.cluster!.changes.stats();
      expect(betaOwn.notices).toBeGreaterThanOrEqual(1);
      await expect
        .poll(
          async () => {
            const f = feedOf(await clusterOf(alphaServer), 'beta');
            const own = beta.cluster!.changes.stats();
            return `${f.noticesSent}/${own.notices} ${f.idsSent}/${own.ids} ${f.noticesHeard}/${own.heard}`;
          },
          { timeout: 10_000, interval: 250 },
        )
        .toMatch(/^(\d+)\/\1 (\d+)\/\2 (\d+)\/\3$/);
      const before = await clusterOf(alphaServer);
      const alphaFeed = feedOf(before, 'alpha');
      const betaFeed = feedOf(before, 'beta');
      expect(betaFeed.noticesSent).toBeGreaterThanOrEqual(1);
      expect(betaFeed.idsSent).toBeGreaterThanOrEqual(ROUNDS);
      expect(alphaFeed.noticesHeard).toBeGreaterThanOrEqual(betaFeed.noticesSent);
      expect(alphaFeed.idsHeard).toBeGreaterThanOrEqual(ROUNDS);
      expect(alphaFeed.listening).toBe(true);
      expect(betaFeed.listening).toBe(true);
      expect(alphaFeed.rereads).toBe(0);
      expect(alphaFeed.lastNoticeAgoMs).not.toBeNull();
      expect(alphaFeed.lastNoticeAgoMs!).toBeLessThan(60_000);
      expect(before.remotePush?.rows).toBeGreaterThanOrEqual(ROUNDS);
      console.log(
        `FEED alpha ${JSON.stringify(alphaFeed)} beta ${JSON.stringify(betaFeed)} push ${JSON.stringify(before.remotePush)}`,
      );

      // Alpha's listening connection killed on the server: it listens again and reads the fleet again.
      const killed = await db.query<{ n: string }>(
        'SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE application_name = $1',
        [changesListenerName('alpha')],
      );
      expect(Number(killed[0]?.n)).toBe(1);
      await expect
        .poll(
          async () => {
            const f = feedOf(await clusterOf(alphaServer), 'alpha');
            return `${f.rereads} ${f.listening}`;
          },
          { timeout: 15_000, interval: 250 },
        )
        .toBe('1 true');

      const page = await newPage();
      await page.goto(alphaServer.url);
      await page.getByTestId('nav-system').click();
      const panel = page.getByTestId('cluster-panel');
      await panel.waitFor({ timeout: 15_000 });
      const cell = (instance: string) =>
        panel.locator(
          `[data-testid="cluster-instance"][data-instance-id="${instance}"] [data-testid="cluster-feed"]`,
        );
      await expect.poll(() => cell('alpha').getAttribute('data-rereads'), { timeout: 10_000 }).toBe('1');
      expect(await cell('alpha').getAttribute('data-listening')).toBe('true');
      expect(await cell('alpha').textContent()).toContain('1 re-read after a dropped listener');
      await expect
        .poll(async () => Number(await cell('beta').getAttribute('data-notices-sent')), { timeout: 10_000 })
        .toBe(feedOf(await clusterOf(alphaServer), 'beta').noticesSent);
      expect(await cell('beta').textContent()).toMatch(/sent \d+ · \d+ ids/);
      expect(await cell('beta').textContent()).toMatch(/heard \d+ · \d+ ids · last (\d+\.\d s|\d.*) ago/);
      expect(await cell('beta').textContent()).toContain('0 re-reads after a dropped listener');
      expect(
        Number(await panel.getByTestId('cluster-pushed').getAttribute('data-rows')),
      ).toBeGreaterThanOrEqual(ROUNDS);
      await page.screenshot({ path: FEED_SCREENSHOT, fullPage: true });
      await page.screenshot({ path: join(SHOTS, 'cluster-feed.png'), fullPage: true });
      await page.close();
      expect(pageErrors).toEqual([]);
    }, 90_000);
  },
);

/**
 * The header's broker line after the page reconnects to a restarted host (issue 13: a stale "Broker
 * unreachable" stayed after the host's broker was back), in Debian's Chromium on a real host: an
 * external Mosquitto of the test's own behind a TCP relay the test can hold, a SQLite file, the
 * built renderer served by the host's own server on a fixed port and token, and the tab left open
 * while the host stops and starts again.
 *
 * The restarted host's MQTT link is held at the relay, so the snapshot the page gets on reconnecting
 * truly says "not connected", and the banner says so. Then the relay lets the link through. The
 * page used to learn the broker state only from the stream's figures (once a second, held back
 * while the socket is congested, as with a big fleet's snapshot): the test holds that source away
 * (the page's socket drops `stats` from diffs; the diffs themselves still flow, so the store's
 * silence probe does not fire either). The page must still show "Connected" within 15 s of the
 * host's link being up: it now asks the host itself after a reconnect whose snapshot said the
 * broker was down. Screenshots: .test-results/screenshots/broker-banner-reconnect-*.png.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server, Socket } from 'node:net';
import { connect, createServer } from 'node:net';
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
import { freePort, waitFor } from '../transports/helpers.js';
import { HAS_MOSQUITTO, MOSQUITTO } from '../transports/private-mosquitto.js';
import { CHROMIUM, CHROMIUM_ARGS, SHOTS } from './real-host.js';
import { buildRenderer } from './serve-bundle.js';

const TOKEN = 'broker-banner-token-0123456789';

/**
 * Before any script of the page: the stream's socket hands the page every message but with `stats`
 * taken out of diffs (the snapshot keeps its own), and counts the diffs it saw.
 */
const HOLD_STREAM_STATS = `
  window.__fvDiffs = 0;
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    addEventListener(type, listener, options) {
      if (type !== 'message') return super.addEventListener(type, listener, options);
      return super.addEventListener(type, (event) => {
        let data = event.data;
        if (typeof data === 'string' && data.startsWith('{"type":"diff"')) {
          const m = JSON.parse(data);
          window.__fvDiffs++;
          if (m.stats) {
            delete m.stats;
            data = JSON.stringify(m);
          }
        }
        listener.call(this, data === event.data ? event : new MessageEvent('message', { data }));
      }, options);
    }
  };
`;

/** A TCP relay to the broker that can hold new connections (accepted, not passed on) until released. */
async function startRelay(target: number): Promise<{
  port: number;
  hold(): void;
  release(): void;
  close(): Promise<void>;
}> {
  let holding = false;
  const held: Socket[] = [];
  const open = new Set<Socket>();
  const pass = (client: Socket) => {
    const upstream = connect(target, '127.0.0.1');
    open.add(upstream);
    upstream.on('close', () => open.delete(upstream));
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
      a.pipe(b);
    }
    client.resume();
  };
  const server: Server = createServer({ pauseOnConnect: true }, (client) => {
    open.add(client);
    client.on('close', () => open.delete(client));
    if (holding) held.push(client);
    else pass(client);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    hold: () => {
      holding = true;
    },
    release: () => {
      holding = false;
      for (const client of held.splice(0)) if (!client.destroyed) pass(client);
    },
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe.skipIf(!existsSync(CHROMIUM) || !HAS_MOSQUITTO)(
  'the broker banner after reconnecting to a restarted host',
  () => {
    let dir: string;
    let outDir: string;
    let dataDir: string;
    let uiPort: number;
    let mosquitto: ChildProcess | undefined;
    let relay: Awaited<ReturnType<typeof startRelay>> | undefined;
    let host: { app: App; api: HostApiHandle; server: RunningServer } | undefined;
    let browser: Browser | undefined;
    let page: Page;
    const pageErrors: string[] = [];

    const start = async () => {
      const app = await startApp({
        dataDir,
        logger: silentLogger,
        // A held connect must not time out before the relay lets it through.
        mqtt: { url: `mqtt://127.0.0.1:${relay!.port}`, connectTimeoutMs: 120_000 },
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
    const linkUp = () => host?.app.links.mqtt?.stats().connected === true;
    const banner = () => page.getByTestId('connection-status');
    const title = () => banner().locator('.connection-title').innerText();
    const diffs = () => page.evaluate(() => (window as unknown as { __fvDiffs: number }).__fvDiffs);

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'fleetvisor-broker-banner-'));
      outDir = join(dir, 'renderer');
      dataDir = join(dir, 'data');
      await mkdir(dataDir);
      await buildRenderer(outDir);
      await mkdir(SHOTS, { recursive: true });
      const brokerPort = await freePort();
      const conf = join(dir, 'mosquitto.conf');
      await writeFile(
        conf,
        [
          `listener ${brokerPort} 127.0.0.1`,
          'allow_anonymous true',
          'persistence false',
          ...(process.getuid?.() === 0 ? ['user root'] : []),
          '',
        ].join('\n'),
      );
      mosquitto = spawn(MOSQUITTO, ['-c', conf], { stdio: 'ignore' });
      relay = await startRelay(brokerPort);
      uiPort = await freePort();
      await start();
      await waitFor(linkUp, 30_000, "the host's MQTT link");
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.addInitScript(HOLD_STREAM_STATS);
      await page.goto(host!.server.url);
    }, 180_000);

    afterAll(async () => {
      await browser?.close();
      relay?.release();
      await stop();
      await relay?.close();
      if (mosquitto && mosquitto.exitCode === null && mosquitto.signalCode === null) {
        const exited = new Promise((resolve) => mosquitto!.once('exit', resolve));
        mosquitto.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    }, 60_000);

    it('shows the broker connected soon after the restarted host reaches it, without the stream saying so', async () => {
      await expect.poll(title, { timeout: 30_000 }).toBe('Connected');

      // The host stops; it starts again while its broker connection is held at the relay.
      await stop();
      relay!.hold();
      await start();
      expect(linkUp()).toBe(false);

      // The page reconnects by itself; the snapshot truly says the broker is not reached.
      await expect.poll(title, { timeout: 60_000 }).toMatch(/^Broker unreachable at mqtt:\/\/127\.0\.0\.1:/);
      expect(await banner().getAttribute('data-state')).toBe('live');
      expect(linkUp()).toBe(false);
      await page.screenshot({ path: join(SHOTS, 'broker-banner-reconnect-held.png') });

      // The link gets through; from then on the banner has 15 s to say so (the stream never does).
      relay!.release();
      await waitFor(linkUp, 30_000, "the restarted host's MQTT link");
      const linkUpAt = Date.now();
      const diffsAtLinkUp = await diffs();
      await expect.poll(title, { timeout: 15_000, interval: 250 }).toBe('Connected');
      console.log(`banner back ${Date.now() - linkUpAt} ms after the host's link was up`);
      expect(await banner().innerText()).toMatch(/broker mqtt:\/\/127\.0\.0\.1:\d+/);
      // The stream was live all along, its figures held away: the page did not wait for them.
      await expect.poll(diffs, { timeout: 10_000 }).toBeGreaterThan(diffsAtLinkUp);
      await page.screenshot({ path: join(SHOTS, 'broker-banner-reconnect-back.png') });
      expect(pageErrors).toEqual([]);
    }, 180_000);
  },
);

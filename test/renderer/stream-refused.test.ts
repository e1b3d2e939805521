/**
 * The UI when the headless server has no room for its stream (issue 12 §4: "the UI must retry
 * after a rate-limit close"): a real app (embedded broker, demo devices, SQLite), its server with
 * `maxConnections` 4, the test holding all 4 authenticated sockets, and the production build in
 * Debian's Chromium. The operator must see why the window is not live (not a blank or frozen
 * view), the page must back off instead of hammering the server, and it must come back by itself
 * once a slot is free, with live data. Screenshot: .test-results/screenshots/stream-refused.png.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { RunningServer } from '../../src/host/server.js';
import { waitFor } from '../transports/helpers.js';
import type { RealHost } from './real-host.js';
import { CHROMIUM, SHOTS, startRealHost } from './real-host.js';

const MAX_CONNECTIONS = 4;

/** Counts the page's WebSocket attempts (when each began, how each closed), before any script of the page runs. */
const COUNT_SOCKETS = `
  window.__fvSockets = [];
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      const record = { at: Date.now(), closedAt: null, code: null, reason: '' };
      window.__fvSockets.push(record);
      this.addEventListener('close', (e) => {
        record.closedAt = Date.now();
        record.code = e.code;
        record.reason = e.reason;
      });
    }
  };
`;

interface Attempt {
  readonly at: number;
  readonly closedAt: number | null;
  readonly code: number | null;
  readonly reason: string;
}

/** An authenticated stream socket as the UI opens it (token as the subprotocol); resolves on its first push. */
function holdSlot(server: RunningServer): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(
      `${server.origin.replace('http', 'ws')}/api/stream`,
      ['fleetvisor', `fleetvisor.token.${server.token}`],
      { origin: server.origin },
    );
    ws.once('message', () => resolve(ws));
    ws.once('error', reject);
    ws.once('close', (code) => reject(new Error(`slot socket closed ${code}`)));
  });
}

describe.skipIf(!existsSync(CHROMIUM))('the UI when the server has no room for its stream', () => {
  let host: RealHost;
  const slots: WebSocket[] = [];

  beforeAll(async () => {
    host = await startRealHost({
      name: 'stream-refused',
      app: { broker: { port: 0 }, demo: { mqtt: 2, serial: 0, telemetryIntervalMs: 1000 } },
      ready: (app) =>
        waitFor(() => app.fleet.device('demo-m002')?.state === 'connected', 15_000, 'the demo devices'),
      server: { maxConnections: MAX_CONNECTIONS },
      beforePage: async (server, page) => {
        for (let i = 0; i < MAX_CONNECTIONS; i++) slots.push(await holdSlot(server));
        await page.addInitScript(COUNT_SOCKETS);
      },
    });
  }, 180_000);

  afterAll(async () => {
    for (const ws of slots) ws.terminate();
    await host?.close();
  });

  const attempts = () =>
    host.page.evaluate(() => (window as unknown as { __fvSockets: Attempt[] }).__fvSockets);

  it('says why it is not live, backs off, and comes back by itself once a slot is free', async () => {
    const { page } = host;
    const status = page.getByTestId('connection-status');
    // What the operator sees: the window is up, and says it cannot get a connection and why.
    await expect.poll(() => status.getAttribute('data-state'), { timeout: 10_000 }).toBe('reconnecting');
    await expect
      .poll(async () => (await status.innerText()).toLowerCase(), { timeout: 10_000 })
      .toMatch(/too many connections/);
    const main = await page.locator('main').innerText();
    expect(main.toLowerCase()).toMatch(/too many connections/);

    expect(await status.innerText()).toMatch(/Next try in \d+ s/);
    expect(await status.innerText()).toMatch(/close those you no longer need/);
    // The one-line banner may cut its hint short: the whole of it is the hint's title, on hover.
    expect(await status.locator('.connection-hint').getAttribute('title')).toMatch(
      /too many connections.*Next try/,
    );

    // Backs off: over 8 s from its first try, a few attempts, each refused 4429 with the reason,
    // each wait (from a refusal to the next try) at least as long as the one before.
    const first = (await attempts())[0]!;
    await page.waitForTimeout(Math.max(0, first.at + 8_000 - Date.now()));
    const tried = (await attempts()).filter((a) => a.at <= first.at + 8_000);
    const waits = tried.slice(1).map((a, i) => a.at - tried[i]!.closedAt!);
    console.log(
      `attempts in 8 s: ${tried.length}; waits ms: ${waits.join(' ')}; closes: ${tried.map((a) => a.code).join(' ')}`,
    );
    expect(tried.length).toBeGreaterThanOrEqual(3);
    expect(tried.length).toBeLessThanOrEqual(5);
    for (const a of tried.slice(0, -1)) {
      expect(a.code).toBe(4429);
      expect(a.reason).toBe(`too many connections (${MAX_CONNECTIONS} of ${MAX_CONNECTIONS} in use)`);
    }
    expect(waits[0]!).toBeGreaterThanOrEqual(450);
    for (let i = 1; i < waits.length; i++) expect(waits[i]!).toBeGreaterThanOrEqual(waits[i - 1]! - 50);
    await page.screenshot({ path: join(SHOTS, 'stream-refused.png') });

    // A slot frees: the page gets it by itself, within its longest wait, and shows live data again.
    const freedAt = Date.now();
    slots.pop()!.close();
    await expect.poll(() => status.getAttribute('data-state'), { timeout: 15_000 }).toBe('live');
    console.log('live again after', Date.now() - freedAt, 'ms');
    const row = page.locator('[data-testid="fleet-row"][data-device-id="demo-m001"]');
    await expect
      .poll(async () => (await row.innerText()).toLowerCase(), { timeout: 10_000 })
      .toContain('connected');
    await host.app.sim!.mqtt[0]!.stop();
    await expect
      .poll(async () => (await row.innerText()).toLowerCase(), { timeout: 15_000 })
      .toContain('disconnected');
    // Once in, it stays in: no further attempts.
    const count = (await attempts()).length;
    await page.waitForTimeout(2_000);
    expect((await attempts()).length).toBe(count);
    expect(host.pageErrors).toEqual([]);
  }, 90_000);
});

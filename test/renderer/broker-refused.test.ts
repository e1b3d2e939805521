/**
 * The embedded broker's refusals shown per client in the System view (issue 12 §1: "refusals are
 * counted and shown per client"): a real app with its broker, two strangers refused on real
 * sockets (no credentials; a device's id with a guessed secret), the production build in Debian's
 * Chromium. Screenshot: .test-results/screenshots/broker-refused.png.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../transports/helpers.js';
import type { RealHost } from './real-host.js';
import { CHROMIUM, SHOTS, startRealHost } from './real-host.js';

async function refused(url: string, options: { clientId: string; username?: string; password?: string }) {
  const c = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, ...options }).catch(
    (error: { code?: number }) => error,
  );
  if ('endAsync' in c) {
    await c.endAsync(true);
    throw new Error(`${options.clientId} was let in`);
  }
  return c.code;
}

describe.skipIf(!existsSync(CHROMIUM))('System view: broker refusals by client', () => {
  let host: RealHost;

  beforeAll(async () => {
    host = await startRealHost({
      name: 'broker-refused',
      app: { broker: { port: 0 }, demo: { mqtt: 1, serial: 0, telemetryIntervalMs: 1000 } },
      ready: (app) =>
        waitFor(() => app.fleet.device('demo-m001')?.state === 'connected', 15_000, 'the demo device'),
    });
  }, 180_000);

  afterAll(async () => {
    await host?.close();
  });

  it('lists each refused client with its counts and last reason', async () => {
    const url = host.app.brokerUrl!;
    expect(await refused(url, { clientId: 'spy-on-lan' })).toBe(4);
    expect(await refused(url, { clientId: 'demo-m001', username: 'demo-m001', password: 'guess' })).toBe(4);
    const { page } = host;
    await page.getByTestId('nav-system').click();
    const block = page.getByTestId('broker-refused');
    await block.getByText('by client').waitFor({ timeout: 10_000 });
    await block.getByText('by client').click();
    const list = page.getByTestId('broker-refused-clients');
    // The stats reach the page at most once a second: the second refusal may come a push later.
    await list.getByText('spy-on-lan').waitFor({ timeout: 5000 });
    await list.getByText('demo-m001').waitFor({ timeout: 5000 });
    const text = await list.innerText();
    expect(text).toMatch(/spy-on-lan: 1 connect — noCredentials/);
    expect(text).toMatch(/demo-m001: 1 connect — badCredentials/);
    expect(await block.innerText()).toMatch(/refused: 2 connects/);
    await page.screenshot({ path: join(SHOTS, 'broker-refused.png') });
    expect(host.pageErrors).toEqual([]);
  }, 60_000);
});

/**
 * The views on the real-fleet path (`npm start -- --no-demo`): a real host (embedded broker,
 * SQLite, manual adoption), simulated devices over MQTT that say hello, the built renderer served
 * by the host's own server, and Debian's Chromium. The operator finds the discovered devices (what
 * they said: kind, firmware, link, when), adopts one, then all that match a filter, and ignores
 * one. Screenshots go to .test-results/screenshots/real-*.png.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/host/app.js';
import type { MqttSimDevice } from '../../src/sim/mqtt-device.js';
import { startMqttSimDevice } from '../../src/sim/mqtt-device.js';
import { CHROMIUM, type RealHost, SHOTS, startRealHost } from './real-host.js';

const DEVICES = 12;

describe.skipIf(!existsSync(CHROMIUM))('the real-fleet path: --no-demo, devices say hello, adopt', () => {
  let app: App;
  const sim: MqttSimDevice[] = [];
  let page: Page;
  let pageErrors: string[] = [];
  let host: RealHost | undefined;

  beforeAll(async () => {
    // What `npm start -- --no-demo` starts: no simulated devices, manual adoption.
    host = await startRealHost({ name: 'real', app: { broker: { port: 0 }, demo: false, conventions: [] } });
    ({ app, page, pageErrors } = host);
  }, 90_000);

  afterAll(async () => {
    await host?.browser.close();
    await Promise.all(sim.map((d) => d.stop()));
    await host?.close();
  }, 30_000);

  it('the empty fleet says that --no-demo adopts manually, and where', async () => {
    const empty = page.getByTestId('fleet-empty');
    await empty.waitFor({ timeout: 15_000 });
    const text = (await empty.textContent()) ?? '';
    expect(text).toContain('--no-demo');
    expect(text).toMatch(/adopt/i);
    expect(text).toContain('Discovered');
    // The simulator hint names the broker this host uses (a free port here), not a fixed 1883.
    await expect
      .poll(async () => (await empty.textContent()) ?? '', { timeout: 10_000 })
      .toContain(`npm run sim -- --mqtt 10 --url ${app.brokerUrl}`);
    expect(app.brokerUrl).not.toBe('mqtt://127.0.0.1:1883');
    expect(await page.getByTestId('fleet-empty-waiting').count()).toBe(0); // nobody waits yet
    await page.screenshot({ path: join(SHOTS, 'real-empty.png') });
  }, 30_000);

  it('lists the devices that said hello with what they said, and adopts one', async () => {
    // Each device with its own broker account when the embedded broker asks for one, as a real one.
    const accounts = (app as { brokerAccounts?: { issueDevice(id: string): string } }).brokerAccounts;
    for (let n = 1; n <= DEVICES; n++) {
      const id = `hello-m${String(n).padStart(3, '0')}`;
      const credentials = accounts ? { username: id, password: accounts.issueDevice(id) } : {};
      sim.push(await startMqttSimDevice(app.brokerUrl!, { id, ...credentials }));
    }
    // The nav shows how many wait, without opening the view.
    await expect
      .poll(() => page.getByTestId('nav-discovered-count').textContent(), { timeout: 15_000 })
      .toBe(String(DEVICES));
    // The empty fleet says how many wait, and leads there.
    await expect
      .poll(() => page.getByTestId('fleet-empty-waiting').textContent(), { timeout: 10_000 })
      .toContain(`${DEVICES} devices wait for adoption.`);
    await page.screenshot({ path: join(SHOTS, 'real-empty-waiting.png') });
    await page.getByTestId('fleet-empty-waiting').getByRole('button', { name: 'Review and adopt' }).click();
    const rows = page.getByTestId('discovered-row');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(DEVICES);
    const first = page.locator('[data-testid="discovered-row"][data-device-id="hello-m001"]');
    const text = (await first.textContent()) ?? '';
    expect(text).toContain('fleetvisor.generic');
    expect(text).toContain('1.0.0');
    expect(text).toContain('mqtt');
    expect(text).toMatch(/now|s ago/);
    await page.screenshot({ path: join(SHOTS, 'real-discovered.png') });

    await first.getByRole('button', { name: 'Adopt' }).click();
    await expect.poll(() => app.fleet.has('hello-m001'), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(DEVICES - 1);
    await expect.poll(() => app.fleet.device('hello-m001')?.state, { timeout: 10_000 }).toBe('connected');
  }, 60_000);

  it('ignores one, then adopts all that match a filter, and the fleet shows them connected', async () => {
    const rows = page.getByTestId('discovered-row');
    await page
      .locator('[data-testid="discovered-row"][data-device-id="hello-m012"]')
      .getByRole('button', { name: 'Ignore' })
      .click();
    await expect.poll(() => rows.count()).toBe(DEVICES - 2);
    await expect.poll(() => page.getByTestId('discovered-ignored').textContent()).toContain('1 ignored');

    await page.getByLabel('Filter discovered devices').fill('hello-m00');
    await expect.poll(() => rows.count()).toBe(8); // m002 … m009
    await page.getByTestId('adopt-all-matching').click();
    await page.getByTestId('confirm-ok').click();
    await expect
      .poll(() => [2, 3, 4, 5, 6, 7, 8, 9].every((n) => app.fleet.has(`hello-m00${n}`)), {
        timeout: 15_000,
      })
      .toBe(true);
    expect(app.fleet.has('hello-m010')).toBe(false);
    expect(app.fleet.has('hello-m012')).toBe(false);
    // Adopted by the host as one job (adoptBulk); its line says the result.
    await expect
      .poll(() => page.getByTestId('adopt-job').getAttribute('data-state'), { timeout: 10_000 })
      .toBe('finished');
    expect(await page.getByTestId('adopt-job-result').textContent()).toBe('8 adopted, 0 failed');
    await page.getByLabel('Filter discovered devices').fill('');
    await expect.poll(() => rows.count()).toBe(2); // m010, m011 (m012 ignored)
    await expect.poll(() => page.getByTestId('nav-discovered-count').textContent()).toBe('2');
    await page.screenshot({ path: join(SHOTS, 'real-adopted.png') });

    await page.getByTestId('nav-fleet').click();
    const fleetRows = page.getByTestId('fleet-row');
    await expect.poll(() => fleetRows.count(), { timeout: 10_000 }).toBe(9);
    await expect
      .poll(
        () =>
          page
            .locator('[data-testid="fleet-row"][data-device-id="hello-m005"] [data-testid="device-state"]')
            .getAttribute('data-state'),
        { timeout: 15_000 },
      )
      .toBe('connected');
    await page.screenshot({ path: join(SHOTS, 'real-fleet.png') });
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it("shows each command's outcome live: status, round-trip time and reply, in the results and the device", async () => {
    await page.getByTestId('nav-fleet').click();
    const row = (id: string) => page.locator(`[data-testid="fleet-row"][data-device-id="${id}"]`);
    for (const id of ['hello-m002', 'hello-m003', 'hello-m004'])
      await row(id).getByTestId('row-check').click();
    await page.getByTestId('action-select').selectOption('ping');
    await page.getByTestId('action-submit').click();
    const results = page.getByTestId('act-result');
    await expect.poll(() => results.count(), { timeout: 10_000 }).toBe(3);
    // The device answers within a few ms: the panel follows without a reload.
    await expect
      .poll(() => results.evaluateAll((els) => els.map((e) => e.getAttribute('data-status'))), {
        timeout: 10_000,
      })
      .toEqual(['succeeded', 'succeeded', 'succeeded']);
    const line = (await results.first().textContent()) ?? '';
    expect(line).toMatch(/succeeded/);
    expect(line).toMatch(/\d+ ms/); // the round trip
    expect(line).toMatch(/pong|reply/i);
    // One format for command ids: what the results show is what the device detail shows.
    const shownId = await results.first().getByTestId('command-id').textContent();
    const deviceId = await results.first().getAttribute('data-device-id');
    expect(shownId).toMatch(/^#[0-9a-f]{8}$/);
    await page.screenshot({ path: join(SHOTS, 'real-command-results.png') });

    await row(deviceId!).click();
    const recent = page.locator(`[data-testid="command-row"][data-status="succeeded"]`);
    await recent.first().waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('command-row').getByTestId('command-id').allTextContents()).toContain(
      shownId,
    );
    await page.setViewportSize({ width: 1440, height: 1900 });
    await page.screenshot({ path: join(SHOTS, 'real-device-commands.png') });
    await page.setViewportSize({ width: 1440, height: 900 });
    await page.getByRole('button', { name: /Back/ }).click();
    await page.getByRole('button', { name: 'Clear', exact: true }).click();
  }, 60_000);
});

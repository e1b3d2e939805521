/**
 * The supervision tree on the real stack: a real host (embedded broker, SQLite, the demo's
 * simulated devices over MQTT), the built renderer served by the host's own server, and Debian's
 * Chromium. The tree is the app's root supervisor; a kill's banner says what the supervisor did;
 * a device whose supervisor gave up stays in the tree, failed, with its reason (issue 13, defect
 * 5); the tree follows state transitions, not only process starts and exits (defect 2).
 * Screenshots go to .test-results/screenshots/tree-*.png.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostApiHandle } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { waitFor } from '../transports/helpers.js';
import { CHROMIUM, type RealHost, SHOTS, startRealHost } from './real-host.js';

const ids = ['demo-m001', 'demo-m002', 'demo-m003'];

describe.skipIf(!existsSync(CHROMIUM))('the supervision tree on the real stack', () => {
  let app: App;
  let api: HostApiHandle;
  let page: Page;
  let pageErrors: string[] = [];
  let host: RealHost | undefined;

  const row = (key: string) => page.locator(`[data-testid="tree-node"][data-key="${key}"]`);
  const open = async (key: string) => {
    const r = row(key);
    await r.waitFor();
    if ((await r.getAttribute('aria-expanded')) === 'false') await r.locator('button.caret').click();
  };
  const machinePid = () =>
    app.fleet.supervisor.whichChildren().find((c) => c.id === 'demo-m002')?.process as
      | { whichChildren(): { id: string; pid: number | undefined }[] }
      | undefined;

  beforeAll(async () => {
    host = await startRealHost({
      name: 'tree',
      app: { broker: { port: 0 }, demo: { mqtt: 3, serial: 0, telemetryIntervalMs: 500 }, conventions: [] },
      ready: (app) =>
        waitFor(
          () => ids.every((id) => app.fleet.device(id)?.state === 'connected'),
          15_000,
          'demo connected',
        ),
    });
    ({ app, api, page, pageErrors } = host);
    await page.getByTestId('nav-tree').click();
  }, 120_000);

  afterAll(() => host?.close(), 30_000);

  it('shows the app root supervisor with the broker, the devices and the links, with intensities', async () => {
    await row('fleetvisor').waitFor({ timeout: 15_000 });
    for (const key of [
      'fleetvisor/broker',
      'fleetvisor/devices',
      'fleetvisor/links',
      'fleetvisor/links/mqtt',
    ])
      expect(await row(key).getAttribute('data-status')).toBe('running');
    expect(await row('fleetvisor').textContent()).toContain('oneForOne');
    expect(await row('fleetvisor/links').textContent()).toMatch(/0\/5/);
    await page.screenshot({ path: join(SHOTS, 'tree-root.png') });
  }, 30_000);

  it('a kill says what its supervisor did: restarted as a new pid', async () => {
    await open('fleetvisor/devices/demo-m002');
    const machine = row('fleetvisor/devices/demo-m002/machine');
    await machine.click();
    await page.getByTestId('kill-button').click();
    expect(await page.locator('dialog').textContent()).toContain('restarts it');
    await page.getByTestId('confirm-ok').click();
    await expect
      .poll(() => page.getByTestId('tree-notice').textContent(), { timeout: 10_000 })
      .toMatch(/restarted it as <\d+>/);
  }, 30_000);

  it('a device whose supervisor gave up stays in the tree, failed, with its reason; the banner says so', async () => {
    // Two more kills through the API, then the one that exceeds the intensity through the UI.
    for (let i = 0; i < 2; i++) {
      const before = app.fleet.device('demo-m002')!.restarts;
      const pid = machinePid()!
        .whichChildren()
        .find((c) => c.id === 'machine')!.pid!;
      expect((await api.call('killProcess', { pid })).ok).toBe(true);
      await expect.poll(() => app.fleet.device('demo-m002')!.restarts, { timeout: 5000 }).toBe(before + 1);
    }
    const machine = row('fleetvisor/devices/demo-m002/machine');
    await expect.poll(() => machine.getAttribute('data-restarts'), { timeout: 5000 }).toBe('3');
    await machine.click();
    await page.getByTestId('kill-button').click();
    expect(await page.locator('dialog').textContent()).toContain('give up');
    await page.getByTestId('confirm-ok').click();
    const notice = page.getByTestId('tree-notice');
    await expect.poll(() => notice.textContent(), { timeout: 10_000 }).toContain('gave up');
    expect(await notice.textContent()).not.toContain('restarts it');
    const device = row('fleetvisor/devices/demo-m002');
    await expect.poll(() => device.getAttribute('data-status'), { timeout: 5000 }).toBe('failed');
    const reason = (await device.getByTestId('tree-reason').textContent()) ?? '';
    expect(reason).toContain('crashLoop');
    expect(reason).toContain('killed');
    await device.click();
    expect(await page.getByTestId('node-reason').textContent()).toContain('crashLoop');
    await page.screenshot({ path: join(SHOTS, 'tree-gave-up.png') });
    await page.getByRole('button', { name: 'Restart child' }).click();
    await expect.poll(() => device.getAttribute('data-status'), { timeout: 10_000 }).toBe('running');
    await expect.poll(() => app.fleet.device('demo-m002')?.health, { timeout: 5000 }).toBe('running');
  }, 60_000);

  it('follows state transitions: a device that drops its link shows disconnected, then connected', async () => {
    await open('fleetvisor/devices/demo-m003');
    const state = row('fleetvisor/devices/demo-m003/machine').getByTestId('tree-state');
    await expect.poll(() => state.getAttribute('data-state'), { timeout: 5000 }).toBe('connected');
    app.sim!.mqtt.find((s) => s.id === 'demo-m003')!.dropLink(4000);
    await expect.poll(() => state.getAttribute('data-state'), { timeout: 10_000 }).toBe('disconnected');
    await page.screenshot({ path: join(SHOTS, 'tree-disconnected.png') });
    await expect.poll(() => state.getAttribute('data-state'), { timeout: 20_000 }).toBe('connected');
    expect(pageErrors).toEqual([]);
  }, 45_000);
});

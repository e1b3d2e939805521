/**
 * The Alarms view on a real host in demo mode (embedded broker, two simulated MQTT devices
 * reporting temp ~20–25 °C, SQLite), the built renderer served by the host's server, Debian's
 * Chromium: a rule refused by the host names the bad field in the editor; "temp above 10 for
 * 2 s" saved from the editor fires on both demo devices, the navigation counts them, one is
 * acknowledged from its row and the count drops. Notifications are never asked for on load; once
 * the button asked (permission granted), a new alarm shows one.
 * Screenshots go to .test-results/screenshots/alarms-*.png.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, type RealHost, SHOTS, startRealHost } from './real-host.js';

describe.skipIf(!existsSync(CHROMIUM))('the Alarms view', () => {
  let page: Page;
  let host: RealHost | undefined;

  beforeAll(async () => {
    host = await startRealHost({
      name: 'alarms-view',
      app: { broker: { port: 0 }, demo: { mqtt: 2, serial: 0, telemetryIntervalMs: 500 }, conventions: [] },
      ready: async (app) => {
        const deadline = Date.now() + 20_000;
        while (!app.sim!.mqtt.every((d) => app.fleet.device(d.id)?.link.up)) {
          if (Date.now() > deadline) throw new Error('the demo devices never came online');
          await new Promise((r) => setTimeout(r, 100));
        }
      },
    });
    page = host.page;
  }, 90_000);

  afterAll(() => host?.close(), 30_000);

  it('a threshold rule from the editor fires on the demo devices, counted in the nav, acknowledged from its row', async () => {
    const app = host!.app;
    const [first] = app.sim!.mqtt.map((d) => d.id) as [string, string];
    // Asked for only from the button: nothing prompts on load.
    expect(await page.evaluate(() => Notification.permission)).toBe('default');

    await page.getByTestId('nav-alarms').click();
    await page.getByText('No alarms').waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('nav-alarms-count').count()).toBe(0);
    await expect.poll(() => page.getByTestId('alarms-notify').textContent()).toBe('Enable notifications');

    await page.getByTestId('rule-new').click();
    await page.getByTestId('rule-id').fill('warm');
    await page.getByTestId('rule-value').fill('10');
    await page.getByTestId('rule-forMs').fill('2000');
    await page.screenshot({ path: join(SHOTS, 'alarms-rule-editor.png'), fullPage: true });
    await page.getByTestId('rule-save').click();
    // No metric: the host's validation names the field.
    await expect
      .poll(() => page.getByTestId('rule-error').textContent(), { timeout: 5_000 })
      .toMatch(/metric:/);
    await page.screenshot({ path: join(SHOTS, 'alarms-rule-refused.png'), fullPage: true });

    await page.getByTestId('rule-metric').fill('temp');
    await page.getByTestId('rule-save').click();
    await page.getByTestId('rule-warm').waitFor({ timeout: 5_000 });
    expect(await page.getByTestId('rule-warm').textContent()).toContain('temp above 10 for 2 s');
    expect(app.alarms.rules()).toMatchObject([
      { rule: { id: 'warm', forMs: 2000 }, updatedBy: expect.any(String) },
    ]);

    const count = page.getByTestId('nav-alarms-count');
    await expect.poll(() => count.textContent(), { timeout: 15_000 }).toBe('2');
    const rows = page.locator('[data-testid="alarms-table"] tbody tr');
    await expect.poll(() => rows.count(), { timeout: 5_000 }).toBe(2);
    const row = page.locator('[data-testid="alarms-table"] tbody tr', { hasText: first });
    expect(await row.textContent()).toMatch(/temp above 10 for 2 s: \d/);
    expect(await row.getAttribute('data-state')).toBe('open');
    await page.screenshot({ path: join(SHOTS, 'alarms-raised.png'), fullPage: true });

    await row.getByRole('button', { name: 'Acknowledge' }).click();
    await expect.poll(() => count.textContent(), { timeout: 5_000 }).toBe('1');
    await expect.poll(() => row.getAttribute('data-state')).toBe('acknowledged');
    expect(await row.getByTestId('alarm-state').textContent()).toMatch(/acked by /);
    const acked = await host!.api.call('alarms', { deviceId: first });
    expect(acked).toMatchObject({
      ok: true,
      value: { items: [{ deviceId: first, ackedBy: expect.any(String) }] },
    });
    await page.screenshot({ path: join(SHOTS, 'alarms-acknowledged.png'), fullPage: true });

    // Notifications: asked for by the button; then a new alarm shows one (a spy counts them).
    await page.context().grantPermissions(['notifications'], { origin: new URL(host!.server.url).origin });
    await page.evaluate(() => {
      const Real = window.Notification;
      const seen: string[] = [];
      (window as unknown as { seenNotifications: string[] }).seenNotifications = seen;
      class Spy extends Real {
        constructor(title: string, options?: NotificationOptions) {
          seen.push(title);
          super(title, options);
        }
      }
      Object.defineProperty(window, 'Notification', { value: Spy, configurable: true, writable: true });
    });
    await page.getByTestId('alarms-notify').click();
    await expect
      .poll(() => page.getByTestId('alarms-notify').textContent())
      .toBe('Notifications on — turn off');
    const set = await host!.api.call('alarmRuleSet', {
      rule: { id: 'hotter', type: 'threshold', metric: 'temp', op: 'above', value: 5, severity: 'critical' },
    });
    expect(set.ok).toBe(true);
    await expect
      .poll(
        () => page.evaluate(() => (window as unknown as { seenNotifications: string[] }).seenNotifications),
        {
          timeout: 10_000,
        },
      )
      .toEqual(expect.arrayContaining([`critical alarm: ${first}`]));
    await expect.poll(() => count.textContent(), { timeout: 5_000 }).toBe('3');
    expect(host!.pageErrors).toEqual([]);
  }, 60_000);
});

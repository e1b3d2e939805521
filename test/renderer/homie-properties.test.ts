/**
 * A Homie device's properties in its detail view, on the real app (demo mode: the embedded broker
 * with accounts, the Homie bridge) with a real Homie device (the npm `homie-device` library in a
 * child process, on its own broker account) and Debian's Chromium: every property the device
 * described is listed with its value and unit; settable ones get a form typed by their datatype
 * (a bounded number, an enum choice, a boolean); an out-of-range number keeps Set disabled and
 * says why; a set goes out through the one command lifecycle, the device echoes it, the row shows
 * `succeeded` and the new value. Screenshot: .test-results/screenshots/homie-properties.png.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCleanups, startPeer } from '../conventions/homie-helpers.js';
import { CHROMIUM, type RealHost, SHOTS, startRealHost } from './real-host.js';

afterEach(runCleanups);

describe.skipIf(!existsSync(CHROMIUM))('Homie properties in the device detail', () => {
  let page: Page;
  let host: RealHost | undefined;
  const id = `boiler${process.pid.toString(36)}`;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    host = await startRealHost({
      name: 'homie-props',
      app: { broker: { port: 0 }, demo: { mqtt: 1, serial: 0, telemetryIntervalMs: 1000 } },
    });
    ({ page } = host);
  }, 90_000);

  afterAll(() => host?.close(), 30_000);

  it('lists the properties, sets a bounded number through the form and shows the echoed value', async () => {
    const app = host!.app;
    const secret = app.brokerAccounts!.issueDevice(id, { convention: 'homie', base: 'homie' });
    await startPeer(app.brokerUrl!, { id, base: 'homie', username: id, password: secret, temperature: 21.5 });
    const deadline = Date.now() + 20_000;
    while (app.fleet.device(id)?.state !== 'connected') {
      if (Date.now() > deadline) throw new Error(`${id} never connected in the fleet`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const row = page.locator(`[data-testid="fleet-row"][data-device-id="${id}"]`);
    await row.waitFor({ timeout: 15_000 });
    await row.click();
    const props = page.getByTestId('homie-properties');
    await props.waitFor({ timeout: 10_000 });

    const prop = (key: string) => props.locator(`[data-testid="homie-prop"][data-prop="${key}"]`);
    await expect.poll(() => props.getByTestId('homie-prop').count()).toBeGreaterThanOrEqual(5);
    expect(await prop('sensor/temperature').textContent()).toContain('read only');
    await expect
      .poll(() => prop('sensor/temperature').getByTestId('homie-value').textContent(), { timeout: 10_000 })
      .toMatch(/21\.5 °C/);
    // Typed forms: an enum is a choice of its options, a boolean true/false, an integer a bounded number.
    const mode = prop('sensor/mode').getByTestId('homie-input');
    expect(
      await mode.evaluate((el) => Array.from((el as HTMLSelectElement).options, (o) => o.value)),
    ).toEqual(['eco', 'comfort', 'off']);
    const count = prop('sensor/count').getByTestId('homie-input');
    expect(await count.getAttribute('type')).toBe('number');
    expect(await count.getAttribute('max')).toBe('100');

    await count.fill('150');
    expect(await prop('sensor/count').getByTestId('homie-invalid').textContent()).toContain('from 0 to 100');
    expect(await prop('sensor/count').getByTestId('homie-set').isDisabled()).toBe(true);

    await count.fill('42');
    await prop('sensor/count').getByTestId('homie-set').click();
    const outcome = prop('sensor/count').getByTestId('homie-outcome');
    await expect.poll(() => outcome.getAttribute('data-status'), { timeout: 15_000 }).toBe('succeeded');
    await expect
      .poll(() => prop('sensor/count').getByTestId('homie-value').textContent(), { timeout: 15_000 })
      .toBe('42');

    await mode.selectOption('comfort');
    await prop('sensor/mode').getByTestId('homie-set').click();
    await expect
      .poll(() => prop('sensor/mode').getByTestId('homie-outcome').getAttribute('data-status'), {
        timeout: 15_000,
      })
      .toBe('succeeded');
    // Text values come back in the device's status: the row shows the echoed choice.
    await expect
      .poll(() => prop('sensor/mode').getByTestId('homie-value').textContent(), { timeout: 10_000 })
      .toBe('comfort');
    await props.screenshot({ path: join(SHOTS, 'homie-properties.png') });
    // The set went through the command log, audited as any command.
    const commands = await host!.api.call('commands', { id, limit: 10 });
    expect(commands.ok).toBe(true);
    if (commands.ok)
      expect(
        (commands.value as { items: { action: string; status: string }[] }).items.filter(
          (c) => c.action === 'set',
        ),
      ).toHaveLength(2);
    expect(host!.pageErrors).toEqual([]);
  }, 90_000);
});

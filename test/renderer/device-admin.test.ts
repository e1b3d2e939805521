/**
 * Devices managed from the UI on a real host (embedded broker, SQLite, the Modbus bridge) with a
 * real Modbus RTU slave (pymodbus over a socat pty), the built renderer and Debian's Chromium:
 * "Add device" in the fleet view, a Modbus device's port and register map filled in, "Test read"
 * shows the slave's values (and a wrong slave id says why not) before Save; the device shows in
 * the fleet table, connects, is renamed from its detail ("Edit"), and removed ("Remove", the
 * confirmation naming what is kept). Screenshots go to .test-results/screenshots/device-admin-*.png.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModbusSlaveRig } from '../host/modbus-slave-rig.js';
import { modbusSlaveSkip, startModbusSlaveRig } from '../host/modbus-slave-rig.js';
import { CHROMIUM, type RealHost, SHOTS, startRealHost } from './real-host.js';

const SKIP = existsSync(CHROMIUM) ? modbusSlaveSkip() : 'no Chromium';

describe.skipIf(SKIP !== '')(`devices managed from the UI ${SKIP}`, () => {
  let page: Page;
  let host: RealHost | undefined;
  let slave: ModbusSlaveRig | undefined;

  beforeAll(async () => {
    host = await startRealHost({ name: 'device-admin', app: { broker: { port: 0 }, demo: false } });
    slave = await startModbusSlaveRig(host.dataDir, ['--units', '1']);
    page = host.page;
  }, 120_000);

  afterAll(async () => {
    await host?.close();
    await slave?.stop();
  }, 30_000);

  it('adds a Modbus device after a test read, sees it in the fleet, renames it and removes it', async () => {
    const app = host!.app;
    await page.getByTestId('add-device').click();
    const form = page.getByTestId('device-form');
    await form.waitFor();
    await page.getByTestId('device-kind').selectOption('modbus.device');
    await page.getByTestId('device-id').fill('meter-1');
    await page.getByTestId('device-name').fill('Main meter');
    await page.getByTestId('device-tags').fill('hall, power');
    await page.getByTestId('modbus-port').fill(slave!.hostPath);
    await page.getByTestId('modbus-slaveId').fill('9');
    await page.getByTestId('modbus-timeoutMs').fill('200');
    await form.getByLabel('register 1 name').fill('voltage');
    await form.getByLabel('register 1 table').selectOption('input');
    await form.getByLabel('register 1 scale').fill('0.1');
    await form.getByLabel('register 1 unit').fill('V');
    await page.getByTestId('add-register').click();
    await form.getByLabel('register 2 name').fill('setpoint');
    await form.getByLabel('register 2 address').fill('1');
    await form.getByLabel('register 2 writable').check();

    await page.getByTestId('test-read').click();
    const result = page.getByTestId('test-read-result');
    await expect
      .poll(() => result.textContent(), { timeout: 10_000 })
      .toMatch(/Test read failed — timeout: .*slave 9/);
    await page.getByTestId('modbus-slaveId').fill('1');
    await page.getByTestId('test-read').click();
    await expect
      .poll(() => result.textContent(), { timeout: 10_000 })
      .toBe('Read: setpoint = 100, voltage = 230.1');
    await page.screenshot({ path: join(SHOTS, 'device-admin-test-read.png') });
    expect(app.fleet.has('meter-1')).toBe(false); // nothing saved by a test read

    await page.getByTestId('device-save').click();
    await form.waitFor({ state: 'detached' });
    const row = page.getByTestId('fleet-row').filter({ hasText: 'meter-1' });
    await row.waitFor({ timeout: 10_000 });
    await expect.poll(() => row.textContent(), { timeout: 15_000 }).toContain('connected');
    expect(app.fleet.device('meter-1')).toMatchObject({ name: 'Main meter', tags: ['hall', 'power'] });
    await page.screenshot({ path: join(SHOTS, 'device-admin-fleet.png') });

    await row.click();
    await page.getByTestId('device-edit').click();
    await form.waitFor();
    expect(await page.getByTestId('modbus-port').inputValue()).toBe(slave!.hostPath);
    expect(await form.getByLabel('register 2 name').inputValue()).toBe('setpoint');
    await page.getByTestId('device-name').fill('Hall meter');
    await page.screenshot({ path: join(SHOTS, 'device-admin-edit.png') });
    await page.getByTestId('device-save').click();
    await form.waitFor({ state: 'detached' });
    await expect
      .poll(() => page.locator('.detail-name').textContent(), { timeout: 10_000 })
      .toBe('Hall meter');
    expect(app.fleet.device('meter-1')!.name).toBe('Hall meter');

    await page.getByTestId('device-remove').click();
    const kept = page.getByTestId('remove-kept');
    expect(await kept.textContent()).toMatch(/Kept: its telemetry, its events and its command history/);
    await page.screenshot({ path: join(SHOTS, 'device-admin-remove.png') });
    await page.getByTestId('confirm-ok').click();
    await page.getByTestId('fleet-empty').waitFor({ timeout: 10_000 });
    expect(app.fleet.has('meter-1')).toBe(false);
    const audits = await app.store.queryEvents({ deviceId: 'meter-1', kind: 'device.audit', limit: 10 });
    expect(audits.items.map((i) => (i.ok ? (i.value.data as { action: string }).action : null))).toEqual([
      'add',
      'edit',
      'remove',
    ]);
    expect(host!.pageErrors).toEqual([]);
  }, 90_000);
});

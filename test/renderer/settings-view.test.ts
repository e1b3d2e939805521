/**
 * The Settings view on the real app and Debian's Chromium: the start flags grouped by topic with
 * what this run uses; a bad value is refused by the host with the start's own message and nothing
 * is written; good values are saved to the data folder's settings.json (0600, audited), the view
 * says a restart applies them, and the next start's command line parsing takes them (the command
 * line still winning). Screenshot: .test-results/screenshots/settings.png.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/host/main.js';
import { SETTINGS_FILE } from '../../src/host/settings.js';
import { CHROMIUM, type RealHost, SHOTS, startRealHost } from './real-host.js';

describe.skipIf(!existsSync(CHROMIUM))('the Settings view', () => {
  let page: Page;
  let host: RealHost | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'fv-settings-'));
  const file = join(dataDir, SETTINGS_FILE);

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    // As `fleetvisor serve --data-dir D --adopt auto` would start it.
    const cli = parseCommandLine(['--data-dir', dataDir, '--adopt', 'auto', '--no-demo'], {});
    if (cli.help) throw new Error('help');
    host = await startRealHost({
      name: 'settings',
      app: { broker: { port: 0 }, demo: false, conventions: [], settings: cli.options.settings! },
    });
    ({ page } = host);
  }, 90_000);

  afterAll(async () => {
    await host?.close();
    rmSync(dataDir, { recursive: true, force: true });
  }, 30_000);

  const row = (name: string) => page.locator(`[data-testid="setting"][data-name="${name}"]`);

  it('refuses a bad value in place, saves good ones for the next start and says a restart applies them', async () => {
    await page.getByTestId('nav-settings').click();
    await row('broker-port').waitFor({ timeout: 10_000 });
    expect(await page.locator('fieldset legend').allTextContents()).toEqual(
      expect.arrayContaining(['Broker', 'Serial', 'Devices', 'Retention']),
    );
    expect(await row('adopt').getByTestId('setting-running').textContent()).toContain(
      'running: auto (set on the command line',
    );
    expect(await page.getByTestId('settings-restart').count()).toBe(0);

    await row('broker-port').locator('input').fill('not-a-port');
    await page.getByTestId('settings-save').click();
    const error = page.getByTestId('settings-error');
    await error.waitFor({ timeout: 5000 });
    expect(await error.textContent()).toMatch(/broker-port/);
    expect(existsSync(file)).toBe(false);

    await row('broker-port').locator('input').fill('1884');
    await row('retention-days').locator('input').fill('90');
    await row('adopt').locator('select').selectOption('manual');
    await row('serial').locator('input').fill('auto');
    await page.getByTestId('settings-save').click();
    await page.getByTestId('settings-saved').waitFor({ timeout: 5000 });
    const restart = await page.getByTestId('settings-restart').textContent();
    expect(restart).toContain('Embedded broker port');
    expect(restart).toContain('Keep history (days)');
    expect(restart).toContain('Serial ports');
    await page.screenshot({ path: join(SHOTS, 'settings.png'), fullPage: true });

    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      'broker-port': 1884,
      serial: 'auto',
      adopt: 'manual',
      'retention-days': 90,
    });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const audit = await host!.app.store.queryEvents({ kind: 'settings.saved', limit: 5 });
    expect(audit.items).toHaveLength(1);

    // The next start takes them; the command line still wins.
    const next = parseCommandLine(['--data-dir', dataDir], {});
    if (next.help) throw new Error('help');
    expect(next.options.broker?.port).toBe(1884);
    expect(next.options.serialPorts).toBe('auto');
    expect(next.options.adopt).toBe('manual');
    expect(next.options.retention).toEqual({ telemetry: 90, events: 90, commands: 90 });
    const overriding = parseCommandLine(
      ['--data-dir', dataDir, '--adopt', 'auto', '--broker-port', '1999'],
      {},
    );
    if (!overriding.help) {
      expect(overriding.options.adopt).toBe('auto');
      expect(overriding.options.broker?.port).toBe(1999);
    }
    expect(host!.pageErrors).toEqual([]);
  }, 60_000);
});

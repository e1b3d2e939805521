/**
 * A device being updated, seen from the fleet table and the device detail, on a real host in demo
 * mode (embedded broker, SQLite, the sample key trusted), the built renderer served by the host's
 * own server, and Debian's Chromium: the sample image imported and an update of one demo device
 * started over the API; while it runs the device's fleet row carries the updating mark (its step,
 * the version in the tooltip), and once it succeeded the mark is gone and the device detail's
 * "Updates" section lists the job: version, the version before, succeeded, who asked. The other
 * demo device's detail says it has no updates yet. Screenshots go to /tmp/shots/fleet-updating-*.png.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, type RealHost, startRealHost } from './real-host.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SAMPLE = join(ROOT, 'assets/firmware/sample-1.1.0.bin');
const SHOTS = '/tmp/shots';

describe.skipIf(!existsSync(CHROMIUM))(
  'devices being updated in the fleet table and the device detail',
  () => {
    let page: Page;
    let pageErrors: string[] = [];
    let host: RealHost | undefined;

    beforeAll(async () => {
      mkdirSync(SHOTS, { recursive: true });
      host = await startRealHost({
        name: 'fleet-updating',
        app: {
          broker: { port: 0 },
          demo: { mqtt: 2, serial: 0, telemetryIntervalMs: 1000 },
          conventions: [],
        },
      });
      ({ page, pageErrors } = host);
    }, 90_000);

    afterAll(() => host?.close(), 30_000);

    it('marks the row while the update runs, drops the mark when it succeeded, and lists it in the detail', async () => {
      const app = host!.app;
      const [target, other] = app.sim!.mqtt.map((d) => d.id) as [string, string];
      const deadline = Date.now() + 20_000;
      while (![target, other].every((id) => app.fleet.device(id) && app.links.hub?.device(id)?.online)) {
        if (Date.now() > deadline) throw new Error('the demo devices never came online in the fleet');
        await new Promise((r) => setTimeout(r, 100));
      }
      const before = app.fleet.device(target)!.status.firmware;
      expect(before).not.toBe('1.1.0');

      const imported = await host!.api.call('firmwareImport', {
        manifest: readFileSync(`${SAMPLE}.manifest.json`, 'utf8'),
        image: readFileSync(SAMPLE).toString('base64'),
      });
      expect(imported.ok).toBe(true);
      const sha256 = (imported as { value: { image: { sha256: string } } }).value.image.sha256;

      const row = page.locator(`[data-testid="fleet-row"][data-device-id="${target}"]`);
      await row.waitFor({ timeout: 15_000 });
      expect(await page.getByTestId('fleet-updating').count()).toBe(0);

      const started = await host!.api.call(
        'firmwareUpdate',
        { deviceId: target, sha256 },
        { actor: 'tester' },
      );
      expect(started.ok).toBe(true);

      // During the update: the mark in the device's row, naming version and step in its tooltip.
      const mark = row.getByTestId('fleet-updating');
      await mark.waitFor({ timeout: 10_000 });
      expect(await mark.getAttribute('title')).toContain('Firmware update to 1.1.0');
      const steps = new Set<string>();
      let shot = false;
      const until = Date.now() + 40_000;
      for (;;) {
        const step = app.updates.get(target)?.step ?? '';
        if (['succeeded', 'failed', 'rolledBack', 'cancelled'].includes(step)) break;
        if (Date.now() > until) throw new Error(`the job is still at ${step} after 40 s`);
        if ((await mark.count()) > 0) {
          const shown = (await mark.getAttribute('data-step')) ?? '';
          steps.add(shown);
          if (!shot && shown === 'onTrial') {
            expect(await mark.textContent()).toBe('on trial');
            expect(await page.getByTestId('fleet-updating').count()).toBe(1);
            await page.screenshot({ path: join(SHOTS, 'fleet-updating-table.png') });
            shot = true;
            // The detail shows the running job live at the top of its Updates, then back to the table.
            await row.click();
            const running = page.getByTestId('device-updates').getByTestId('fw-history-row').first();
            await running.waitFor({ timeout: 5_000 });
            expect(await running.getAttribute('data-step')).toBe('onTrial');
            // The row comes first from the event log; the live job (polled each second) adds the countdown.
            await expect
              .poll(() => running.textContent(), { timeout: 5_000 })
              .toMatch(/on trial.*\d+ s of trial/);
            await page.getByTestId('device-updates').scrollIntoViewIfNeeded();
            await page.screenshot({ path: join(SHOTS, 'fleet-updating-detail-running.png') });
            await page.keyboard.press('Escape');
            await row.waitFor({ timeout: 5_000 });
          }
        }
        await page.waitForTimeout(100);
      }
      expect(app.updates.get(target)?.step).toBe('succeeded');
      expect(shot).toBe(true);
      expect(steps.has('onTrial')).toBe(true);

      // Succeeded: the mark is gone.
      await expect.poll(() => row.getByTestId('fleet-updating').count(), { timeout: 10_000 }).toBe(0);
      await page.screenshot({ path: join(SHOTS, 'fleet-updating-done.png') });

      // The device detail lists the update.
      await row.click();
      const section = page.getByTestId('device-updates');
      await section.waitFor({ timeout: 10_000 });
      const history = section.getByTestId('fw-history-row');
      await expect
        .poll(() => history.first().getAttribute('data-step'), { timeout: 10_000 })
        .toBe('succeeded');
      expect(await history.count()).toBe(1);
      const text = (await history.first().textContent()) ?? '';
      expect(text).toContain('1.1.0');
      expect(text).toContain('succeeded');
      expect(text).toContain(before ?? '');
      expect(text).toContain('tester');
      await section.scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(SHOTS, 'fleet-updating-detail.png') });

      // A device never updated says so.
      await page.keyboard.press('Escape');
      await page.locator(`[data-testid="fleet-row"][data-device-id="${other}"]`).click();
      const empty = page.getByTestId('device-updates').getByTestId('fw-history-empty');
      await empty.waitFor({ timeout: 10_000 });
      expect(await empty.textContent()).toContain('No firmware updates yet');
      expect(await page.getByTestId('fw-not-supported').count()).toBe(0);
      expect(pageErrors).toEqual([]);
    }, 120_000);
  },
);

/**
 * Rollouts in the Firmware view on a real host in demo mode (embedded broker, SQLite, the sample
 * key trusted), the built renderer served by the host's own server, and Debian's Chromium: the
 * sample image imported, "Roll out…" on its row counts the demo devices not on 1.1.0 yet (a tag no
 * device has counts none and is refused in place, `noDevices`), then a rollout in waves "1, 100%"
 * is paused and resumed from its row and followed in the "Rollouts" table to completed, every
 * device of its list succeeded; a bad trial check is refused by the host in place, the checks the
 * devices pass are saved in the policy and named under the rollout's devices. A rollout whose saved JSON is damaged shows as its own row, the
 * field at fault named, and Delete… removes it. Screenshots go to
 * .test-results/screenshots/rollout-*.png.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_DATABASE_FILE_NAME } from '../../src/host/app.js';
import { rawAll, rawRun } from '../store/helpers.js';
import { CHROMIUM, type RealHost, SHOTS, startRealHost } from './real-host.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SAMPLE = join(ROOT, 'assets/firmware/sample-1.1.0.bin');
const DEMO_DEVICES = 3;

describe.skipIf(!existsSync(CHROMIUM))('rollouts in the Firmware view on a real demo host', () => {
  let page: Page;
  let pageErrors: string[] = [];
  let host: RealHost | undefined;

  beforeAll(async () => {
    host = await startRealHost({
      name: 'ro-view',
      app: {
        broker: { port: 0 },
        demo: { mqtt: DEMO_DEVICES, serial: 0, telemetryIntervalMs: 1000 },
        conventions: [],
      },
    });
    ({ page, pageErrors } = host);
  }, 90_000);

  afterAll(() => host?.close(), 30_000);

  /** The demo's MQTT devices online in the fleet and not on `version` yet (waits for all to be online). */
  const demoNotOn = async (version: string): Promise<string[]> => {
    const app = host!.app;
    const ids = app.sim!.mqtt.map((d) => d.id);
    const deadline = Date.now() + 20_000;
    while (!ids.every((id) => app.fleet.device(id) && app.links.hub?.device(id)?.online)) {
      if (Date.now() > deadline) throw new Error('the demo devices never all came online in the fleet');
      await new Promise((r) => setTimeout(r, 100));
    }
    return ids.filter((id) => app.fleet.device(id)?.status.firmware !== version).sort();
  };

  it('counts the devices a rollout takes, refuses one that takes none in place, and rolls the sample out to completed', async () => {
    const targets = await demoNotOn('1.1.0');
    expect(targets.length).toBe(DEMO_DEVICES);

    await page.getByTestId('nav-firmware').click();
    await page.getByTestId('firmware-drop').waitFor({ timeout: 15_000 });
    await page.getByTestId('firmware-manifest-file').setInputFiles({
      name: 'sample-1.1.0.bin.manifest.json',
      mimeType: 'application/json',
      buffer: readFileSync(`${SAMPLE}.manifest.json`),
    });
    await page.getByTestId('firmware-image-file').setInputFiles({
      name: 'sample-1.1.0.bin',
      mimeType: 'application/octet-stream',
      buffer: readFileSync(SAMPLE),
    });
    await page.getByTestId('firmware-import').click();
    await page.getByTestId('firmware-1.1.0').waitFor({ timeout: 10_000 });
    const list = page.getByTestId('ro-list');
    await expect.poll(() => list.textContent(), { timeout: 10_000 }).toContain('No rollout yet');

    await page.getByTestId('firmware-1.1.0').getByTestId('ro-open').click();
    const count = page.getByTestId('ro-match-count');
    await expect.poll(() => count.textContent(), { timeout: 10_000 }).toBe(String(targets.length));
    expect(await page.getByTestId('ro-waves').inputValue()).toBe('1, 5%, 25%, 100%');
    expect(await page.getByTestId('ro-concurrent').inputValue()).toBe('10');
    expect(await page.getByTestId('ro-fail-share').inputValue()).toBe('20');
    expect(await page.getByTestId('ro-on-failure').inputValue()).toBe('pause');
    expect(await page.getByTestId('ro-soak').inputValue()).toBe('0');
    // The sample image declares no trial: the job's 10 s.
    expect(await page.getByTestId('ro-trial').inputValue()).toBe('10');

    // A tag no device has: none match, and the host refuses in place.
    await page.getByTestId('ro-tag').fill('no-such-tag');
    await expect.poll(() => count.textContent()).toBe('0');
    await page.getByTestId('ro-start').click();
    await page.getByTestId('confirm-ok').click();
    const refusal = page.getByTestId('ro-error');
    await refusal.waitFor({ timeout: 10_000 });
    expect(await refusal.textContent()).toContain('noDevices');
    await page.screenshot({ path: join(SHOTS, 'rollout-refused.png') });
    await page.getByTestId('ro-tag').fill('');
    await expect.poll(() => count.textContent()).toBe(String(targets.length));
    expect(await page.getByTestId('ro-error').count()).toBe(0);

    // A wave text that does not parse keeps Start disabled and says why.
    await page.getByTestId('ro-waves').fill('1, 120%');
    expect(await page.getByTestId('ro-invalid').textContent()).toContain('120%');
    expect(await page.getByTestId('ro-start').isDisabled()).toBe(true);
    await page.getByTestId('ro-waves').fill('1, 100%');
    expect(await page.getByTestId('ro-invalid').count()).toBe(0);
    // So does a maintenance window that is not one.
    await page.getByTestId('ro-window').fill('at night');
    expect(await page.getByTestId('ro-invalid').textContent()).toContain('Window');
    expect(await page.getByTestId('ro-start').isDisabled()).toBe(true);
    await page.getByTestId('ro-window').fill('');
    expect(await page.getByTestId('ro-invalid').count()).toBe(0);
    // And a trial of no time; 3 s is taken.
    await page.getByTestId('ro-trial').fill('0');
    expect(await page.getByTestId('ro-invalid').textContent()).toContain('Trial');
    expect(await page.getByTestId('ro-start').isDisabled()).toBe(true);
    await page.getByTestId('ro-trial').fill('3');
    expect(await page.getByTestId('ro-invalid').count()).toBe(0);
    // Trial checks: the host refuses a bad one in place, naming it, and starts nothing.
    expect(await page.getByTestId('ro-checks').inputValue()).toBe('');
    await page.getByTestId('ro-checks').fill('temp<=1000, temp<=abc');
    await page.getByTestId('ro-start').click();
    await page.getByTestId('confirm-ok').click();
    await refusal.waitFor({ timeout: 10_000 });
    expect(await refusal.textContent()).toContain('badRequest');
    expect(await refusal.textContent()).toContain('"temp<=abc": the limit must be a number');
    expect(await list.getByTestId('ro-row').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'rollout-bad-check.png') });
    // Checks the demo devices pass (they send temp and rssi every second; each trial is 3 s).
    await page.getByTestId('ro-checks').fill('temp<=1000,  rssi ');
    expect(await page.getByTestId('ro-error').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'rollout-form.png') });

    await page.getByTestId('ro-start').click();
    await page.getByTestId('confirm-ok').click();
    const row = list.getByTestId('ro-row').first();
    await row.waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('ro-form').count()).toBe(0);
    expect(await row.textContent()).toContain('1.1.0');
    expect(await row.textContent()).toContain('of 2');
    const state = row.getByTestId('ro-state');
    // Each device's trial, as typed, saved with the rollout's policy.
    const saved = await rawAll<{ body: string }>(
      join(host!.dataDir, DEMO_DATABASE_FILE_NAME),
      'SELECT body FROM firmware_rollouts',
    );
    expect(saved.map((r) => (JSON.parse(r.body) as { policy: { trialMs?: number } }).policy.trialMs)).toEqual(
      [3000],
    );
    // The trial checks, as typed, in the policy too.
    expect(
      saved.map((r) => (JSON.parse(r.body) as { policy: { trialChecks?: string[] } }).policy.trialChecks),
    ).toEqual([['temp<=1000', 'rssi']]);

    // Pause while the canary runs, then resume.
    expect(await state.getAttribute('data-state')).toBe('running');
    await row.getByTestId('ro-pause').click();
    await expect.poll(() => state.getAttribute('data-state'), { timeout: 10_000 }).toBe('paused');
    expect(await row.getByTestId('ro-resume').count()).toBe(1);
    expect(await row.getByTestId('ro-pause').count()).toBe(0);
    expect(await row.getByTestId('ro-cancel').count()).toBe(1);
    await page.screenshot({ path: join(SHOTS, 'rollout-paused.png'), fullPage: true });
    await row.getByTestId('ro-resume').click();
    await expect.poll(() => state.getAttribute('data-state'), { timeout: 10_000 }).not.toBe('paused');

    await row.getByTestId('ro-expand').click();
    // Expanded ("Hide devices"), a running rollout's Cancel is seen whole, not cut by its column
    // (it was clipped to "…" at 1,440 px).
    const cancel = await row.getByTestId('ro-cancel').boundingBox();
    const actions = await row.locator('td.ro-col-actions').boundingBox();
    expect(cancel!.x + cancel!.width).toBeLessThanOrEqual(actions!.x + actions!.width + 0.5);
    let midShot = false;
    /** What an update on trial says of its checks in the Updates table. */
    let checksShown: string | null = null;
    const until = Date.now() + 60_000;
    for (;;) {
      const now = (await state.getAttribute('data-state')) ?? '';
      if (['completed', 'aborted', 'cancelled'].includes(now)) break;
      if (checksShown === null && (await page.getByTestId('fw-job-checks').count()) > 0)
        checksShown = await page.getByTestId('fw-job-checks').first().textContent();
      if (!midShot && now === 'running' && (await row.getAttribute('data-state')) === 'running') {
        const text = (await row.getByTestId('ro-counts').textContent()) ?? '';
        if (/succeeded/.test(text)) {
          await page.screenshot({ path: join(SHOTS, 'rollout-running.png'), fullPage: true });
          midShot = true;
        }
      }
      if (Date.now() > until) throw new Error(`the rollout is still ${now} after 60 s`);
      await page.waitForTimeout(200);
    }
    expect(await state.textContent()).toBe('completed');
    expect(checksShown).toBe('checks temp<=1000, rssi');
    expect(await row.getByTestId('ro-counts').textContent()).toContain(`${targets.length} succeeded`);
    expect(await row.getByTestId('ro-pause').count()).toBe(0);
    expect(await row.getByTestId('ro-cancel').count()).toBe(0);
    const devices = page.getByTestId('ro-device');
    expect(await devices.count()).toBe(targets.length);
    // Under its devices, the checks every trial was judged by.
    expect(await page.getByTestId('ro-trial-checks').textContent()).toBe('Trial checks: temp<=1000, rssi');
    for (const id of targets)
      expect(
        await page.locator(`[data-testid="ro-device"][data-device-id="${id}"]`).getAttribute('data-state'),
      ).toBe('succeeded');
    // Every demo device now runs the image.
    for (const id of targets) expect(host!.app.fleet.device(id)?.status.firmware).toBe('1.1.0');
    // The images table follows at once: the image runs on every device of the rollout.
    for (const id of targets)
      await expect
        .poll(() => page.getByTestId('firmware-1.1.0').textContent(), { timeout: 3_000 })
        .toContain(id);
    await page.screenshot({ path: join(SHOTS, 'rollout-done.png'), fullPage: true });

    // The image now runs on all of them: a new rollout form counts none.
    await page.getByTestId('firmware-1.1.0').getByTestId('ro-open').click();
    await expect.poll(() => count.textContent(), { timeout: 10_000 }).toBe('0');
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it('shows a damaged rollout as its own row naming the field, and deletes it on confirmation', async () => {
    const file = join(host!.dataDir, DEMO_DATABASE_FILE_NAME);
    const at = Date.now();
    // A saved rollout as an app would write it, but for one field no rollout has: wave -1.
    const body = {
      snapshot: {
        id: 'ro-damaged',
        version: '1.1.0',
        sha256: 'f'.repeat(64),
        state: 'paused',
        wave: -1,
        waveEnds: [1],
        order: ['demo-m001'],
        devices: { 'demo-m001': { state: 'pending', wave: 0, attempts: 0 } },
        counts: { pending: 1 },
        createdBy: 'ana',
        createdAt: at,
      },
      policy: {},
    };
    await rawRun(
      file,
      `INSERT INTO firmware_rollouts (id, sha256, version, state, body, actor, created_at, updated_at)
       VALUES ('ro-damaged', ?, '1.1.0', 'paused', ?, 'ana', ?, ?)`,
      ['f'.repeat(64), JSON.stringify(body), at, at],
    );
    await page.getByTestId('nav-firmware').click();
    const row = page.locator('[data-testid="ro-row"][data-rollout-id="ro-damaged"]');
    await row.waitFor({ timeout: 10_000 });
    expect(await row.getAttribute('data-state')).toBe('damaged');
    expect(await row.getByTestId('ro-state').textContent()).toBe('damaged');
    expect(await row.getByTestId('ro-damage-field').textContent()).toBe('snapshot.wave');
    expect(await row.getByTestId('ro-damage').textContent()).toContain(
      'rollout ro-damaged: saved snapshot.wave must be a whole number >= 0, got -1',
    );
    expect(await row.getByTestId('ro-pause').count()).toBe(0);
    expect(await row.getByTestId('ro-resume').count()).toBe(0);
    expect(await row.getByTestId('ro-expand').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'rollout-damaged.png'), fullPage: true });

    await row.getByTestId('ro-delete').click();
    await page.getByTestId('confirm-ok').click();
    await row.waitFor({ state: 'detached', timeout: 10_000 });
    expect(await rawAll(file, "SELECT id FROM firmware_rollouts WHERE id = 'ro-damaged'")).toEqual([]);
    expect(await page.getByTestId('ro-action-error').count()).toBe(0);
    expect(pageErrors).toEqual([]);
  }, 60_000);
});

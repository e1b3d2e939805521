/**
 * The Firmware view on a real host in demo mode (embedded broker, SQLite, the sample key trusted),
 * the built renderer served by the host's own server, and Debian's Chromium: a tampered image
 * picked with its manifest is refused in place with the host's code and nothing is stored; the
 * sample image from assets/firmware imports and shows in the list; "Update device…" on its row
 * updates an online demo device to it, followed in the "Updates" table through transfer, reboot
 * and trial to succeeded. Screenshots go to .test-results/screenshots/firmware-*.png.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firmwareDirFor } from '../../src/firmware/index.js';
import { DEMO_DATABASE_FILE_NAME } from '../../src/host/app.js';
import { CHROMIUM, type RealHost, SHOTS, startRealHost } from './real-host.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SAMPLE = join(ROOT, 'assets/firmware/sample-1.1.0.bin');
const SAMPLE_SHA256 = 'ad36f74d0eba0cf72e4e5ed6096121f4a4f2454b02d47d9be792fc036b571e54';

describe.skipIf(!existsSync(CHROMIUM))('the Firmware view on a real demo host', () => {
  let dataDir: string;
  let page: Page;
  let pageErrors: string[] = [];
  let host: RealHost | undefined;
  const manifest = { name: 'sample-1.1.0.bin.manifest.json', mimeType: 'application/json' };
  const imageFile = (buffer: Buffer) => ({
    name: 'sample-1.1.0.bin',
    mimeType: 'application/octet-stream',
    buffer,
  });

  beforeAll(async () => {
    host = await startRealHost({
      name: 'fw-view',
      app: { broker: { port: 0 }, demo: { mqtt: 2, serial: 0, telemetryIntervalMs: 1000 }, conventions: [] },
    });
    ({ page, pageErrors, dataDir } = host);
  }, 90_000);

  afterAll(() => host?.close(), 30_000);

  const stored = () => readdirSync(firmwareDirFor(join(dataDir, DEMO_DATABASE_FILE_NAME)));

  it('refuses a tampered image in place, naming the reason, and stores nothing', async () => {
    await page.getByTestId('nav-firmware').click();
    await page.getByText('No firmware image yet').waitFor({ timeout: 15_000 });
    const tampered = Buffer.from(readFileSync(SAMPLE));
    tampered[4096] = (tampered[4096]! ^ 0x01) & 0xff;
    await page
      .getByTestId('firmware-manifest-file')
      .setInputFiles({ ...manifest, buffer: readFileSync(`${SAMPLE}.manifest.json`) });
    await page.getByTestId('firmware-image-file').setInputFiles(imageFile(tampered));
    await page.getByTestId('firmware-import').click();
    const refusal = page.getByTestId('firmware-refusal');
    await refusal.waitFor({ timeout: 10_000 });
    const text = (await refusal.textContent()) ?? '';
    expect(text).toContain('hashMismatch');
    expect(text).toContain('SHA-256');
    expect(text).toContain('Nothing was stored');
    expect(stored()).toEqual([]);
    expect(await page.getByTestId('firmware-table').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'firmware-refused.png') });
  }, 60_000);

  it('imports the sample image and lists it with its version, kind, size, signer and hash', async () => {
    await page.getByTestId('firmware-image-file').setInputFiles(imageFile(readFileSync(SAMPLE)));
    await page.getByTestId('firmware-import').click();
    await page.getByTestId('firmware-imported').waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('firmware-refusal').count()).toBe(0);
    const row = page.getByTestId('firmware-1.1.0');
    await row.waitFor({ timeout: 10_000 });
    const text = (await row.textContent()) ?? '';
    expect(text).toContain('fleetvisor.generic');
    expect(text).toMatch(/64(\.0)? KiB/);
    expect(text).toContain(SAMPLE_SHA256.slice(0, 12));
    expect(text).toContain('d213408028e3');
    expect(stored()).toEqual([SAMPLE_SHA256]);
    await page.screenshot({ path: join(SHOTS, 'firmware-imported.png') });
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('takes both files dropped on the import bar; the same image again changes nothing', async () => {
    const files = [
      { name: 'sample-1.1.0.bin', bytes: [...readFileSync(SAMPLE)] },
      { name: 'sample-1.1.0.bin.manifest.json', bytes: [...readFileSync(`${SAMPLE}.manifest.json`)] },
    ];
    const dataTransfer = await page.evaluateHandle((list) => {
      const dt = new DataTransfer();
      for (const f of list) dt.items.add(new File([new Uint8Array(f.bytes)], f.name));
      return dt;
    }, files);
    await page.getByTestId('firmware-drop').dispatchEvent('drop', { dataTransfer });
    await expect
      .poll(() => page.getByTestId('firmware-picked').textContent())
      .toBe('sample-1.1.0.bin.manifest.json + sample-1.1.0.bin');
    await page.getByTestId('firmware-import').click();
    const done = page.getByTestId('firmware-imported');
    await expect.poll(() => done.textContent(), { timeout: 10_000 }).toContain('stored already');
    expect(await page.locator('[data-testid="firmware-table"] tbody tr').count()).toBe(1);
    expect(stored()).toEqual([SAMPLE_SHA256]);
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('updates an online demo device to the sample image from its row and follows the job to succeeded', async () => {
    const target = host!.app.sim!.mqtt[0]!.id;
    const deadline = Date.now() + 20_000;
    while (!(host!.app.fleet.device(target) && host!.app.links.hub?.device(target)?.online)) {
      if (Date.now() > deadline) throw new Error(`${target} never came online in the fleet`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // The sample image, imported as above (unless the earlier tests did it already).
    await page.getByTestId('nav-firmware').click();
    await page.getByTestId('firmware-drop').waitFor({ timeout: 15_000 });
    if ((await page.getByTestId('firmware-1.1.0').count()) === 0) {
      await page
        .getByTestId('firmware-manifest-file')
        .setInputFiles({ ...manifest, buffer: readFileSync(`${SAMPLE}.manifest.json`) });
      await page.getByTestId('firmware-image-file').setInputFiles(imageFile(readFileSync(SAMPLE)));
      await page.getByTestId('firmware-import').click();
      await page.getByTestId('firmware-1.1.0').waitFor({ timeout: 10_000 });
    }
    const jobs = page.getByTestId('fw-jobs');
    await jobs.waitFor({ timeout: 10_000 });
    expect(await jobs.getByTestId('fw-job-row').count()).toBe(0);

    await page.getByTestId('firmware-1.1.0').getByTestId('fw-update-open').click();
    const input = page.getByTestId('fw-update-device');
    // The datalist offers the fleet's devices of the image's kind.
    await expect
      .poll(() => page.locator(`datalist option[value="${target}"]`).count(), { timeout: 10_000 })
      .toBe(1);
    // A device that is not in the fleet is refused in place.
    await input.fill('nobody');
    await page.getByTestId('fw-update-start').click();
    await page.getByTestId('confirm-ok').click();
    const refusal = page.getByTestId('fw-update-error');
    await refusal.waitFor({ timeout: 10_000 });
    expect(await refusal.textContent()).toContain("no device 'nobody'");
    await page.screenshot({ path: join(SHOTS, 'firmware-update-form.png') });

    await input.fill(target);
    await page.getByTestId('fw-update-start').click();
    await page.getByTestId('confirm-ok').click();
    const row = jobs.locator(`[data-testid="fw-job-row"][data-device-id="${target}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('fw-update-device').count()).toBe(0);
    expect(await row.textContent()).toContain('1.1.0');

    const step = row.getByTestId('fw-job-step');
    let midShot = false;
    let transferShot = false;
    const seen = new Set<string>();
    const until = Date.now() + 40_000;
    for (;;) {
      const now = (await step.getAttribute('data-step')) ?? '';
      seen.add(now);
      // Mid-transfer when the poll catches it (the sample is 64 KiB: often done within a second).
      if (!transferShot && now === 'transferring' && /\b([1-9]\d?)%/.test((await row.textContent()) ?? '')) {
        await page.screenshot({ path: join(SHOTS, 'firmware-update-transfer.png'), fullPage: true });
        transferShot = true;
      }
      // On trial (10 s soak): the countdown.
      if (!midShot && now === 'onTrial') {
        expect(await row.getByTestId('fw-job-left').textContent()).toMatch(/^\d+ s of trial$/);
        await page.screenshot({ path: join(SHOTS, 'firmware-update-trial.png'), fullPage: true });
        midShot = true;
      }
      if (['succeeded', 'failed', 'rolledBack', 'cancelled'].includes(now)) break;
      if (Date.now() > until) throw new Error(`the job is still at ${now} after 40 s (saw ${[...seen]})`);
      await page.waitForTimeout(100);
    }
    expect(await step.textContent()).toBe('succeeded');
    expect(midShot).toBe(true);
    expect(await row.textContent()).toContain('100%');
    expect(await row.getByTestId('fw-job-cancel').count()).toBe(0);
    // The image now runs on the device.
    await expect
      .poll(() => page.getByTestId('firmware-1.1.0').textContent(), { timeout: 10_000 })
      .toContain(target);
    await page.screenshot({ path: join(SHOTS, 'firmware-update-done.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 90_000);
});

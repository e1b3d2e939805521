/**
 * The Firmware view on a real host in demo mode (embedded broker, SQLite, the sample key trusted),
 * the built renderer served by the host's own server, and Debian's Chromium: a tampered image
 * picked with its manifest is refused in place with the host's code and nothing is stored; the
 * sample image from assets/firmware imports and shows in the list. Screenshots go to
 * .test-results/screenshots/firmware-*.png.
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
});

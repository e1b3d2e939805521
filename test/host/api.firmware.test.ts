/**
 * The firmware methods of the host API on the real app with the demo fleet (embedded broker,
 * simulated MQTT devices, a real SQLite file): the sample signed image in assets/firmware imports
 * and lists; a tampered image or manifest is refused with the firmware layer's code and nothing is
 * stored (no file, no row); an oversized upload is refused at the boundary.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firmwareDirFor, TRUSTED_KEYS_DIR } from '../../src/firmware/index.js';
import type { HostApiHandle } from '../../src/host/api.js';
import { createHostApi } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { DEMO_DATABASE_FILE_NAME, startApp } from '../../src/host/app.js';
import type { Results } from '../../src/host/contract.js';
import { MAX_FIRMWARE_IMAGE_BYTES } from '../../src/host/contract.js';
import { silentLogger } from '../../src/runtime/runtime.js';

const SAMPLE = join(import.meta.dirname, '../../assets/firmware/sample-1.1.0.bin');
const sampleImage = readFileSync(SAMPLE);
const sampleManifest = readFileSync(`${SAMPLE}.manifest.json`, 'utf8');
const SAMPLE_SHA256 = 'ad36f74d0eba0cf72e4e5ed6096121f4a4f2454b02d47d9be792fc036b571e54';
const SAMPLE_KEY_ID = 'd213408028e3794ca6b76a6dbfde3305e27af3a6e6e7a3a8745a8cfcced10e5a';

let dir: string;
let app: App;
let api: HostApiHandle;
let imagesDir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fv-api-fw-'));
  app = await startApp({
    dataDir: dir,
    logger: silentLogger,
    broker: { port: 0 },
    demo: { mqtt: 2, serial: 0, telemetryIntervalMs: 1000 },
  });
  api = createHostApi(app);
  imagesDir = firmwareDirFor(join(dir, DEMO_DATABASE_FILE_NAME));
});

afterAll(async () => {
  api?.close();
  await app?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function list(): Promise<Results['firmwareList']> {
  const r = await api.call('firmwareList', {});
  if (!r.ok) throw new Error(`firmwareList failed: ${r.error.code} ${r.error.message}`);
  return r.value as Results['firmwareList'];
}

/** Waits until the demo device is in the fleet and online on its link. */
async function onlineInFleet(id: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(app.fleet.device(id) && app.links.hub?.device(id)?.online)) {
    if (Date.now() > deadline) throw new Error(`${id} never came online in the fleet`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What the images folder holds, temporary files included. */
const filesStored = () => readdirSync(imagesDir);

describe('firmware over the host API (demo, sample key trusted)', () => {
  it('refuses a tampered image with hashMismatch and stores nothing', async () => {
    const tampered = Buffer.from(sampleImage);
    tampered[1000] = (tampered[1000]! ^ 0xff) & 0xff;
    const r = await api.call('firmwareImport', {
      manifest: sampleManifest,
      image: tampered.toString('base64'),
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('hashMismatch');
    expect(r.error.message).toMatch(/SHA-256/);
    expect((await list()).images).toEqual([]);
    expect(filesStored()).toEqual([]);
  });

  it('refuses a manifest changed after signing with badSignature and stores nothing', async () => {
    const changed = sampleManifest.replace('"1.1.0"', '"1.1.1"');
    expect(changed).not.toBe(sampleManifest);
    const r = await api.call('firmwareImport', { manifest: changed, image: sampleImage.toString('base64') });
    expect(r).toMatchObject({ ok: false, error: { code: 'badSignature' } });
    expect((await list()).images).toEqual([]);
    expect(filesStored()).toEqual([]);
  });

  it('refuses a cut-off image with truncated and a cut-off manifest with badManifest', async () => {
    const short = await api.call('firmwareImport', {
      manifest: sampleManifest,
      image: sampleImage.subarray(0, 60_000).toString('base64'),
    });
    expect(short).toMatchObject({ ok: false, error: { code: 'truncated' } });
    const cut = await api.call('firmwareImport', {
      manifest: sampleManifest.slice(0, 100),
      image: sampleImage.toString('base64'),
    });
    expect(cut).toMatchObject({ ok: false, error: { code: 'badManifest' } });
    expect(filesStored()).toEqual([]);
  });

  it('refuses an upload over the cap, or not base64, at the boundary', async () => {
    const big = await api.call('firmwareImport', {
      manifest: sampleManifest,
      image: 'A'.repeat(Math.ceil(MAX_FIRMWARE_IMAGE_BYTES / 3) * 4 + 4),
    });
    expect(big.ok).toBe(false);
    if (!big.ok) {
      expect(big.error.code).toBe('badRequest');
      expect(big.error.message).toContain(`over ${MAX_FIRMWARE_IMAGE_BYTES} bytes`);
    }
    const notBase64 = await api.call('firmwareImport', { manifest: sampleManifest, image: 'not base64!' });
    expect(notBase64).toMatchObject({ ok: false, error: { code: 'badRequest' } });
    expect(filesStored()).toEqual([]);
  });

  it('imports the sample image, lists it, and takes it again as already stored', async () => {
    const r = await api.call('firmwareImport', {
      manifest: sampleManifest,
      image: sampleImage.toString('base64'),
    });
    if (!r.ok) throw new Error(`import failed: ${r.error.code} ${r.error.message}`);
    const imported = r.value as Results['firmwareImport'];
    expect(imported.created).toBe(true);
    expect(imported.image).toMatchObject({
      sha256: SAMPLE_SHA256,
      version: '1.1.0',
      kinds: ['fleetvisor.generic'],
      size: 65_536,
      keyId: SAMPLE_KEY_ID,
      importedBy: 'api',
      downgradeFrom: null,
    });
    expect(filesStored()).toEqual([SAMPLE_SHA256]);

    const listed = await list();
    expect(listed.unreadable).toEqual([]);
    expect(listed.images).toHaveLength(1);
    expect(listed.images[0]).toEqual(imported.image);

    const again = await api.call('firmwareImport', {
      manifest: sampleManifest,
      image: sampleImage.toString('base64'),
    });
    expect(again).toMatchObject({ ok: true, value: { created: false, image: { sha256: SAMPLE_SHA256 } } });
    expect((await list()).images).toHaveLength(1);
  });

  it('audits the import once in the event log', async () => {
    const events = await app.store.queryEvents({ kind: 'firmware.imported', order: 'desc', limit: 10 });
    const audited = events.items.flatMap((e) => (e.ok ? [e.value] : []));
    expect(audited).toHaveLength(1);
    expect(JSON.stringify(audited[0]!.data)).toContain(SAMPLE_SHA256);
  });

  it('updates a demo device to the sample image: transfer, reboot, trial, confirmed; audited, one job at a time', async () => {
    const sim = app.sim!.mqtt[0]!;
    const target = sim.id;
    await onlineInFleet(target);
    const r = await api.call('firmwareUpdate', { deviceId: target, sha256: SAMPLE_SHA256 });
    if (!r.ok) throw new Error(`update refused: ${r.error.code} ${r.error.message}`);
    expect(r.value).toMatchObject({
      deviceId: target,
      version: '1.1.0',
      size: 65_536,
      sha256: SAMPLE_SHA256,
    });
    expect(await api.call('firmwareUpdate', { deviceId: target, sha256: SAMPLE_SHA256 })).toMatchObject({
      ok: false,
      error: { code: 'busy' },
    });
    // Other commands wait for the update to end (a reboot on trial would roll it back).
    const reboot = await api.call('act', { ids: [target], action: 'reboot', args: {} });
    expect(reboot).toMatchObject({
      ok: true,
      value: [
        { id: target, ok: false, error: { code: 'updating', message: expect.stringContaining('1.1.0') } },
      ],
    });
    const deadline = Date.now() + 40_000;
    let job: Results['firmwareJobs'][number] | undefined;
    while (Date.now() < deadline) {
      const jobs = await api.call('firmwareJobs', {});
      job = jobs.ok ? (jobs.value as Results['firmwareJobs']).find((j) => j.deviceId === target) : undefined;
      if (job && ['succeeded', 'failed', 'rolledBack', 'cancelled'].includes(job.step)) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(job).toMatchObject({ step: 'succeeded', offset: 65_536, error: null });
    expect(sim.device.firmware).toMatchObject({ version: '1.1.0', confirmed: true });
    // The job's last step is seen before its event is written (the log appends in the background).
    const steps = async () =>
      (await app.store.queryEvents({ deviceId: target, kind: 'firmware.update', limit: 50 })).items.map(
        (e) => (e.ok ? (e.value.data as { step: string }).step : '?'),
      );
    await expect
      .poll(steps, { timeout: 5_000 })
      .toEqual(
        expect.arrayContaining([
          'transferring',
          'verifying',
          'applying',
          'rebooting',
          'onTrial',
          'confirming',
          'succeeded',
        ]),
      );
    const asked = await app.store.queryEvents({
      deviceId: target,
      kind: 'firmware.updateRequested',
      limit: 5,
    });
    expect(asked.items.map((e) => e.ok && e.value.data)).toEqual([
      { version: '1.1.0', sha256: SAMPLE_SHA256, actor: 'api' },
    ]);
  });

  it('holds a rollout outside its maintenance window: no job starts, the view says when it opens; a bad window is refused', async () => {
    const other = app.sim!.mqtt[1]!.id;
    const bad = await api.call('rolloutCreate', {
      sha256: SAMPLE_SHA256,
      devices: [other],
      window: '25:00-26:00',
    });
    expect(bad).toMatchObject({
      ok: false,
      error: { code: 'badWindow', message: expect.stringContaining('25:00') },
    });
    const hh = (h: number) => `${String(h % 24).padStart(2, '0')}:00`;
    // A window's end at midnight reads back as 24:00 (the window's own format): so does this.
    const end = (h: number) => (h % 24 === 0 ? '24:00' : hh(h));
    const inThreeHours = new Date().getUTCHours() + 3;
    const created = await api.call('rolloutCreate', {
      sha256: SAMPLE_SHA256,
      devices: [other],
      window: `${hh(inThreeHours)}-${end(inThreeHours + 1)} utc`,
    });
    if (!created.ok) throw new Error(`rollout refused: ${created.error.code} ${created.error.message}`);
    const view = created.value as Results['rolloutCreate'];
    expect(view).toMatchObject({
      state: 'running',
      window: `${hh(inThreeHours)}-${end(inThreeHours + 1)} utc`,
    });
    expect(view.windowOpensAt).toBeGreaterThan(Date.now() + 2 * 3600_000 - 60_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(app.updates.get(other)).toBeUndefined();
    expect(await api.call('rolloutCancel', { id: view.id })).toMatchObject({
      ok: true,
      value: { state: 'cancelled' },
    });
  });

  it('rolls the image out to the devices not yet running it, frozen at creation; then nothing is left to roll out', async () => {
    const other = app.sim!.mqtt[1]!.id;
    await onlineInFleet(other);
    const created = await api.call('rolloutCreate', {
      sha256: SAMPLE_SHA256,
      waves: [{ share: 1, maxConcurrent: 5 }],
    });
    if (!created.ok) throw new Error(`rollout refused: ${created.error.code} ${created.error.message}`);
    const view = created.value as Results['rolloutCreate'];
    // The first test updated the first device already: the selector leaves it out.
    expect(view.order).toEqual([other]);
    const deadline = Date.now() + 40_000;
    let now: Results['rollouts'][number] | undefined;
    while (Date.now() < deadline) {
      const all = await api.call('rollouts', {});
      now = all.ok ? (all.value as Results['rollouts']).find((r) => r.id === view.id) : undefined;
      if (now && now.state !== 'running') break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(now).toMatchObject({ state: 'completed', counts: { succeeded: 1, failed: 0 }, createdBy: 'api' });
    expect(app.sim!.mqtt[1]!.device.firmware).toMatchObject({ version: '1.1.0', confirmed: true });
    expect(await api.call('rolloutCreate', { sha256: SAMPLE_SHA256 })).toMatchObject({
      ok: false,
      error: { code: 'noDevices' },
    });
    expect(await api.call('rolloutPause', { id: 'ro-nope' })).toMatchObject({
      ok: false,
      error: { code: 'notFound' },
    });
    const audit = await app.store.queryEvents({ kind: 'firmware.rollout', limit: 20 });
    const states = audit.items.map((e) => (e.ok ? (e.value.data as { state: string }).state : '?'));
    expect(states).toEqual(expect.arrayContaining(['running', 'completed']));
  });

  it('refuses an update naming an unknown device, an unknown image or a malformed hash', async () => {
    expect(await api.call('firmwareUpdate', { deviceId: 'nobody', sha256: SAMPLE_SHA256 })).toMatchObject({
      ok: false,
      error: { code: 'notFound', message: expect.stringContaining('nobody') },
    });
    const some = app.sim!.mqtt[1]!.id;
    await onlineInFleet(some);
    expect(await api.call('firmwareUpdate', { deviceId: some, sha256: 'f'.repeat(64) })).toMatchObject({
      ok: false,
      error: { code: 'notFound', message: expect.stringContaining('no stored image') },
    });
    expect(await api.call('firmwareUpdate', { deviceId: some, sha256: 'ABC' })).toMatchObject({
      ok: false,
      error: { code: 'badRequest' },
    });
    expect(await api.call('firmwareCancel', { deviceId: some })).toMatchObject({ ok: false });
  });
});

describe('firmware over the host API with a broken trust list', () => {
  it('the app still starts; the firmware methods answer unavailable, naming the bad key file', async () => {
    const broken = mkdtempSync(join(tmpdir(), 'fv-api-fw-badkey-'));
    mkdirSync(join(broken, TRUSTED_KEYS_DIR), { recursive: true });
    writeFileSync(join(broken, TRUSTED_KEYS_DIR, 'lab.pub'), 'not a public key\n');
    const other = await startApp({
      dataDir: broken,
      logger: silentLogger,
      broker: { port: 0 },
      demo: false,
      conventions: [],
    });
    const otherApi = createHostApi(other);
    try {
      expect(other.firmware).toMatchObject({ ok: false, error: { code: 'badKey' } });
      const listed = await otherApi.call('firmwareList', {});
      expect(listed).toMatchObject({ ok: false, error: { code: 'unavailable' } });
      if (!listed.ok) expect(listed.error.message).toContain('lab.pub');
      const imported = await otherApi.call('firmwareImport', {
        manifest: sampleManifest,
        image: sampleImage.toString('base64'),
      });
      expect(imported).toMatchObject({ ok: false, error: { code: 'unavailable' } });
      expect((await otherApi.call('devices', {})).ok).toBe(true);
    } finally {
      otherApi.close();
      await other.stop();
      rmSync(broken, { recursive: true, force: true });
    }
  });
});

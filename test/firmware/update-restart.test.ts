/**
 * An update outlives the app: the real app (its SQLite file, its links to a real aedes broker)
 * is stopped mid-update and started again on the same data folder while the simulated device
 * keeps running. What an operator checks: the job continues at its step — a transfer from the
 * offset the device holds, a trial with what is left of its time (judged by the update's own or
 * its rollout's telemetry checks), a trial still ahead as long as the update asked — and ends
 * confirmed, with the image applied once; while a job runs its image cannot be deleted.
 */

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKeyPair, TRUSTED_KEYS_DIR } from '../../src/firmware/keys.js';
import { describeImage, signManifest } from '../../src/firmware/manifest.js';
import { createHostApi } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { FirmwareJobView, RolloutView } from '../../src/host/contract.js';
import type { Logger } from '../../src/runtime/runtime.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import type { MqttSimDevice } from '../../src/sim/mqtt-device.js';
import { startMqttSimDevice } from '../../src/sim/mqtt-device.js';
import { DATABASE_FILE_NAME } from '../../src/store/data-dir.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { rawRun, recordingLogger } from '../store/helpers.js';
import { uniqueId, waitFor } from '../transports/helpers.js';

const keys = generateSigningKeyPair();
let broker: EmbeddedBroker;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  broker = await startEmbeddedBroker({ port: 0 });
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  await broker?.close();
});

/** Rewrites a device's saved job settings while no app runs (an older row, a damaged value). */
const setSettings = (dir: string, deviceId: string, settings: string | null) =>
  rawRun(join(dir, DATABASE_FILE_NAME), 'UPDATE firmware_jobs SET settings = ? WHERE device_id = ?', [
    settings,
    deviceId,
  ]);

function dataFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fv-fw-restart-'));
  mkdirSync(join(dir, TRUSTED_KEYS_DIR), { recursive: true });
  writeFileSync(join(dir, TRUSTED_KEYS_DIR, 'lab.pub'), keys.publicKeyPem);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function app(dir: string, logger: Logger = silentLogger): Promise<App> {
  const a = await startApp({
    dataDir: dir,
    logger,
    mqtt: { url: broker.url },
    demo: false,
    adopt: 'auto',
    conventions: [],
  });
  cleanups.push(() => a.stop());
  return a;
}

async function device(id: string, bootDelayMs = 200): Promise<MqttSimDevice> {
  const d = await startMqttSimDevice(broker.url, {
    id,
    telemetryIntervalMs: 1000,
    reconnectMinMs: 100,
    reconnectMaxMs: 500,
    bootDelayMs,
  });
  cleanups.push(() => d.stop());
  return d;
}

async function importImage(a: App, size: number, version: string, trialSeconds?: number): Promise<string> {
  if (!a.firmware.ok) throw new Error(a.firmware.error.message);
  const image = new Uint8Array(randomBytes(size));
  const signed = describeImage(image, {
    version,
    kinds: ['fleetvisor.generic'],
    ...(trialSeconds !== undefined ? { trialSeconds } : {}),
  });
  const manifest = JSON.stringify(signManifest(signed, keys.privateKeyPem));
  const r = await a.firmware.value.images.importImage({ manifest, image, actor: 'test' });
  if (!r.ok) throw new Error(r.error.message);
  return r.value.image.sha256;
}

async function update(
  a: App,
  deviceId: string,
  sha256: string,
  settings: { trialMs?: number; trialChecks?: string[] } = {},
): Promise<void> {
  const api = createHostApi(a);
  cleanups.push(() => api.close());
  await waitFor(() => a.links.hub?.device(deviceId)?.online === true, 8000, `${deviceId} online`);
  const r = await api.call('firmwareUpdate', { deviceId, sha256, ...settings });
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
}

const job = (a: App, id: string): FirmwareJobView | undefined => {
  const s = a.updates.get(id);
  return s ? { ...s, deadline: s.deadline ?? null, error: s.error ?? null } : undefined;
};

/**
 * A 16 KiB image `1.2.0` on its way to a fresh device, and the app stopped once the device runs it
 * on trial (`trialMs`: the update's own, else the default); the data folder, the device and when
 * its trial would have ended.
 */
async function stoppedOnTrial(trialMs?: number) {
  const dir = dataFolder();
  const id = uniqueId('fw-rt');
  const d = await device(id);
  const first = await app(dir);
  const sha256 = await importImage(first, 16 * 1024, '1.2.0');
  await update(first, id, sha256, trialMs !== undefined ? { trialMs } : {});
  await waitFor(() => job(first, id)?.step === 'onTrial', 20_000, 'on trial');
  const trialEnds = job(first, id)!.deadline!;
  await first.stop();
  return { dir, id, d, trialEnds };
}

/** Resolves once the job of `id` on `a` has ended (succeeded, failed or rolled back). */
const ended = (a: App, id: string) =>
  waitFor(
    () => ['rolledBack', 'failed', 'succeeded'].includes(a.updates.get(id)?.step ?? ''),
    30_000,
    'the job ended',
  );

async function rolloutOf(
  a: App,
  sha256: string,
  devices: string[],
  waves: { count?: number; share?: number; maxConcurrent?: number }[],
) {
  const api = createHostApi(a);
  cleanups.push(() => api.close());
  // Explicit ids: the shared broker still holds retained hellos of earlier tests' devices.
  const r = await api.call('rolloutCreate', { sha256, devices, waves, retries: 0 });
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return (r.value as { id: string }).id;
}

describe('a rollout across an app restart', () => {
  it("stopped while a device is on trial with telemetry checks: the restarted app judges the rest of the trial by the rollout's checks", async () => {
    const dir = dataFolder();
    const id = uniqueId('ro-chk');
    const d = await device(id);
    const first = await app(dir);
    const sha256 = await importImage(first, 16 * 1024, '1.5.0');
    await waitFor(() => first.links.hub?.device(id)?.online === true, 8000, `${id} online`);
    const before = d.device.firmware.version;
    const api = createHostApi(first);
    cleanups.push(() => api.close());
    // A metric the device never sends: judged at the trial's end, after the restart.
    const r = await api.call('rolloutCreate', {
      sha256,
      devices: [id],
      retries: 0,
      trialMs: 10_000,
      trialChecks: ['nosuchmetric', 'temp<=1000'],
    });
    if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
    await waitFor(() => job(first, id)?.step === 'onTrial', 20_000, 'on trial');
    await first.stop();

    const second = await app(dir);
    await waitFor(() => second.updates.get(id)?.step === 'onTrial', 8000, 'on trial again');
    expect(second.updates.get(id)?.trialChecks).toEqual(['nosuchmetric', 'temp<=1000']);
    await waitFor(() => second.updates.get(id)?.step === 'rolledBack', 30_000, 'rolled back');
    expect(second.updates.get(id)?.error).toMatchObject({
      code: 'unhealthy',
      message: 'no nosuchmetric reading during the trial',
    });
    await waitFor(() => d.device.firmware.version === before, 8000, `back on ${before}`);
    expect(d.device.firmware).toMatchObject({ version: before, confirmed: true });
  }, 90_000);

  it("a job's saved checks that no longer parse are ignored with a warning: the rollout's checks judge its trial", async () => {
    const dir = dataFolder();
    const id = uniqueId('ro-bad');
    await device(id);
    const first = await app(dir);
    const sha256 = await importImage(first, 16 * 1024, '1.6.0');
    await waitFor(() => first.links.hub?.device(id)?.online === true, 8000, `${id} online`);
    const api = createHostApi(first);
    cleanups.push(() => api.close());
    const r = await api.call('rolloutCreate', {
      sha256,
      devices: [id],
      retries: 0,
      trialMs: 6000,
      trialChecks: ['nosuchmetric'],
    });
    if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
    await waitFor(() => job(first, id)?.step === 'onTrial', 20_000, 'on trial');
    await first.stop();
    await setSettings(dir, id, JSON.stringify({ trialMs: 6000, trialChecks: ['temp<=abc'] }));

    const logger = recordingLogger();
    const second = await app(dir, logger);
    await waitFor(() => second.updates.get(id) !== undefined, 8000, 'the job restored');
    expect(logger.lines).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        message: 'firmware job trial checks unreadable; the job continues without them',
        fields: expect.objectContaining({ deviceId: id }),
      }),
    );
    expect(second.updates.get(id)?.trialChecks).toEqual(['nosuchmetric']);
    await waitFor(() => second.updates.get(id)?.step === 'rolledBack', 30_000, 'rolled back');
    expect(second.updates.get(id)?.error).toMatchObject({
      code: 'unhealthy',
      message: 'no nosuchmetric reading during the trial',
    });
  }, 90_000);

  it('stopped mid-wave: the restarted app continues it and every device is flashed exactly once', async () => {
    const dir = dataFolder();
    const ids = [uniqueId('ro-a'), uniqueId('ro-b'), uniqueId('ro-c'), uniqueId('ro-d')];
    const sims = [];
    for (const id of ids) sims.push(await device(id));
    const first = await app(dir);
    const sha256 = await importImage(first, 192 * 1024, '1.3.0');
    for (const id of ids)
      await waitFor(() => first.links.hub?.device(id)?.online === true, 8000, `${id} online`);
    const id = await rolloutOf(first, sha256, ids, [
      { count: 1, maxConcurrent: 1 },
      { share: 1, maxConcurrent: 2 },
    ]);
    await waitFor(
      () =>
        (first.rollouts.all.get(id)?.snapshot().counts.updating ?? 0) > 0 &&
        first.rollouts.all.get(id)!.snapshot().wave === 1,
      40_000,
      'the second wave running',
    );
    await first.stop();

    const second = await app(dir);
    await waitFor(() => second.rollouts.all.get(id) !== undefined, 8000, 'the rollout restored');
    await waitFor(
      () => second.rollouts.all.get(id)!.snapshot().state !== 'running',
      60_000,
      'the rollout ended',
    );
    expect(second.rollouts.all.get(id)!.snapshot()).toMatchObject({
      state: 'completed',
      counts: { succeeded: 4 },
    });
    for (const d of sims) {
      expect(d.device.firmware).toMatchObject({ version: '1.3.0', confirmed: true });
      expect(d.device.reboots).toBe(1);
    }
  }, 180_000);

  it('a paused rollout stays paused after a restart, and resumes when asked', async () => {
    const dir = dataFolder();
    const ids = [uniqueId('ro-p'), uniqueId('ro-q')];
    const sims = [];
    for (const id of ids) sims.push(await device(id));
    const first = await app(dir);
    const sha256 = await importImage(first, 16 * 1024, '1.4.0');
    for (const id of ids)
      await waitFor(() => first.links.hub?.device(id)?.online === true, 8000, `${id} online`);
    const id = await rolloutOf(first, sha256, ids, [{ count: 1, maxConcurrent: 1 }, { share: 1 }]);
    first.rollouts.all.get(id)!.pause();
    await first.stop();

    const second = await app(dir);
    await waitFor(() => second.rollouts.all.get(id) !== undefined, 8000, 'the rollout restored');
    await new Promise((r) => setTimeout(r, 2000));
    const held = second.rollouts.all.get(id)!.snapshot();
    expect(held.state).toBe('paused');
    expect(held.counts.pending).toBeGreaterThanOrEqual(1); // the second wave never started
    const api = createHostApi(second);
    cleanups.push(() => api.close());
    expect(await api.call('rolloutResume', { id })).toMatchObject({ ok: true, value: { state: 'running' } });
    await waitFor(
      () => second.rollouts.all.get(id)!.snapshot().state === 'completed',
      90_000,
      'completed',
    ).catch((e) => {
      console.log(
        JSON.stringify(second.rollouts.all.get(id)!.snapshot(), null, 1),
        JSON.stringify(second.updates.list()),
      );
      throw e;
    });
    for (const d of sims) expect(d.device.reboots).toBe(1);
  }, 180_000);
});

describe('rollouts listed across an app restart', () => {
  it('a completed rollout is still listed by the restarted app, with its devices and counts', async () => {
    const dir = dataFolder();
    const ids = [uniqueId('ro-h')];
    for (const id of ids) await device(id);
    const first = await app(dir);
    const sha256 = await importImage(first, 8 * 1024, '1.5.0');
    for (const id of ids)
      await waitFor(() => first.links.hub?.device(id)?.online === true, 8000, `${id} online`);
    const id = await rolloutOf(first, sha256, ids, [{ share: 1 }]);
    await waitFor(() => first.rollouts.all.get(id)?.snapshot().state === 'completed', 60_000, 'completed');
    await first.stop();

    const second = await app(dir);
    const api = createHostApi(second);
    cleanups.push(() => api.close());
    const listed = await api.call('rollouts', {});
    if (!listed.ok) throw new Error(listed.error.message);
    expect((listed.value as readonly RolloutView[]).find((r) => r.id === id)).toMatchObject({
      state: 'completed',
      version: '1.5.0',
      order: ids,
      counts: { succeeded: 1, failed: 0 },
      devices: { [ids[0]!]: { state: 'succeeded' } },
    });
    // An ended rollout is history: it cannot be paused or resumed.
    expect(await api.call('rolloutResume', { id })).toMatchObject({ ok: false });
  }, 120_000);
});

describe('a firmware update across an app restart', () => {
  it('stopped mid-transfer: the restarted app resumes from the device offset and confirms', async () => {
    const dir = dataFolder();
    const id = uniqueId('fw-rs');
    const d = await device(id);
    const first = await app(dir);
    const sha256 = await importImage(first, 512 * 1024, '1.1.0');
    // Acks 150 ms late: the transfer takes seconds, so the app stops in its middle (on a fast
    // link the whole image crossed between two polls of the offset under a loaded machine).
    d.device.setFaults({ slowReplyMs: 150 });
    await update(first, id, sha256);
    await waitFor(() => (job(first, id)?.offset ?? 0) >= 96 * 1024, 20_000, '96 KiB across');
    // While the job runs, its image is held.
    if (!first.firmware.ok) throw new Error('no firmware');
    expect(await first.firmware.value.store.deleteImage(sha256, 'test')).toMatchObject({
      ok: false,
      error: { code: 'inUse', message: expect.stringContaining(`job:${id}`) },
    });
    // The device goes quiet, so the transfer cannot end before the app stops (it would, on a fast
    // link): the restart then really lands mid-transfer.
    d.device.setFaults({ mute: true });
    const cut = job(first, id)!.offset;
    await first.stop();
    d.device.setFaults({ mute: false, slowReplyMs: 0 });

    const second = await app(dir);
    await waitFor(() => second.updates.get(id) !== undefined, 8000, 'the job restored');
    await waitFor(
      () => ['succeeded', 'failed', 'rolledBack'].includes(second.updates.get(id)?.step ?? ''),
      40_000,
      'the job ended',
    );
    const final = second.updates.get(id)!;
    expect(final).toMatchObject({ step: 'succeeded', offset: 512 * 1024, error: undefined });
    expect(final.resumedFrom).toBeGreaterThanOrEqual(cut);
    expect(d.device.firmware).toMatchObject({ version: '1.1.0', confirmed: true });
    expect(d.device.reboots).toBe(1); // applied once
  }, 90_000);

  it('stopped while the device reboots into the new image: the restarted app sees it back on trial and confirms', async () => {
    const dir = dataFolder();
    const id = uniqueId('fw-rb');
    const d = await device(id, 2500); // a slow boot: the app stops and starts again inside it
    const first = await app(dir);
    const sha256 = await importImage(first, 16 * 1024, '1.3.0');
    await update(first, id, sha256);
    await waitFor(() => job(first, id)?.step === 'rebooting', 20_000, 'rebooting');
    await first.stop();
    // The device comes back on the new image, unconfirmed, while no app runs.
    await waitFor(
      () => d.device.firmware.version === '1.3.0' && d.device.attached && !d.device.rebooting,
      15_000,
      'back on 1.3.0',
    );
    expect(d.device.firmware).toMatchObject({ confirmed: false });
    const second = await app(dir);
    await waitFor(() => second.updates.get(id)?.step === 'succeeded', 30_000, 'confirmed');
    // The whole image counts as transferred: the views show 100 %, not 0 %.
    expect(second.updates.get(id)).toMatchObject({ offset: 16 * 1024, size: 16 * 1024 });
    expect(d.device.firmware).toMatchObject({ version: '1.3.0', confirmed: true });
    expect(d.device.reboots).toBe(1);
  }, 90_000);

  it("a job saved without settings, stopped while the device reboots into an image declaring its trial: the restarted app gives it the image's trial", async () => {
    const dir = dataFolder();
    const id = uniqueId('fw-rbt');
    const d = await device(id, 2500); // a slow boot: the app stops and starts again inside it
    const first = await app(dir);
    const sha256 = await importImage(first, 16 * 1024, '1.4.0', 600);
    await update(first, id, sha256);
    await waitFor(() => job(first, id)?.step === 'rebooting', 20_000, 'rebooting');
    await first.stop();
    await setSettings(dir, id, null); // a row saved before job settings were kept (schema version 9)
    await waitFor(
      () => d.device.firmware.version === '1.4.0' && d.device.attached && !d.device.rebooting,
      15_000,
      'back on 1.4.0',
    );
    const second = await app(dir);
    await waitFor(() => second.updates.get(id)?.step === 'onTrial', 30_000, 'on trial');
    // No trial saved: the restarted app takes the image's 600 s, not the default 10 s.
    const deadline = second.updates.get(id)!.deadline!;
    expect(deadline).toBeGreaterThan(Date.now() + 540_000);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 600_000);
    expect(d.device.firmware).toMatchObject({ version: '1.4.0', confirmed: false });
  }, 90_000);

  it("stopped while on trial with telemetry checks: the restarted app judges the rest of the trial by the update's own checks", async () => {
    const dir = dataFolder();
    const id = uniqueId('fw-chk');
    const d = await device(id);
    const first = await app(dir);
    const sha256 = await importImage(first, 16 * 1024, '1.6.0');
    const before = d.device.firmware.version;
    // A metric the device never sends: judged at the trial's end, after the restart.
    await update(first, id, sha256, { trialMs: 6000, trialChecks: ['nosuchmetric'] });
    await waitFor(() => job(first, id)?.step === 'onTrial', 20_000, 'on trial');
    expect(job(first, id)?.trialChecks).toEqual(['nosuchmetric']);
    await first.stop();

    const second = await app(dir);
    await waitFor(() => second.updates.get(id) !== undefined, 8000, 'the job restored');
    expect(second.updates.get(id)?.trialChecks).toEqual(['nosuchmetric']);
    await waitFor(() => second.updates.get(id)?.step === 'rolledBack', 30_000, 'rolled back');
    expect(second.updates.get(id)?.error).toMatchObject({
      code: 'unhealthy',
      message: 'no nosuchmetric reading during the trial',
    });
    await waitFor(() => d.device.firmware.version === before, 8000, `back on ${before}`);
    expect(d.device.firmware).toMatchObject({ version: before, confirmed: true });
  }, 90_000);

  it("stopped while the device reboots into the new image: the restarted app gives it the update's own trial, not the image's", async () => {
    const dir = dataFolder();
    const id = uniqueId('fw-rbo');
    const d = await device(id, 2500); // a slow boot: the app stops and starts again inside it
    const first = await app(dir);
    const sha256 = await importImage(first, 16 * 1024, '1.7.0', 600);
    await update(first, id, sha256, { trialMs: 20_000 });
    await waitFor(() => job(first, id)?.step === 'rebooting', 20_000, 'rebooting');
    await first.stop();
    await waitFor(
      () => d.device.firmware.version === '1.7.0' && d.device.attached && !d.device.rebooting,
      15_000,
      'back on 1.7.0',
    );
    const second = await app(dir);
    await waitFor(() => second.updates.get(id)?.step === 'onTrial', 30_000, 'on trial');
    // The whole trial starts now (the device came back while no app ran): 20 s, not the image's 600 s.
    const deadline = second.updates.get(id)!.deadline!;
    expect(deadline).toBeGreaterThan(Date.now() + 15_000);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 20_000);
    expect(d.device.firmware).toMatchObject({ version: '1.7.0', confirmed: false });
  }, 90_000);

  it('stopped while the new image is on trial: the restarted app finishes the trial and confirms', async () => {
    const { dir, id, d, trialEnds } = await stoppedOnTrial();
    expect(trialEnds).toBeGreaterThan(Date.now() + 5000); // the 10 s soak has just begun
    expect(d.device.firmware).toMatchObject({ version: '1.2.0', confirmed: false });

    const second = await app(dir);
    await waitFor(() => second.updates.get(id)?.step === 'onTrial', 8000, 'on trial again');
    // The same trial, with what was left of it: not restarted, not skipped.
    expect(Math.abs(second.updates.get(id)!.deadline! - trialEnds)).toBeLessThan(1000);
    await waitFor(() => second.updates.get(id)?.step === 'succeeded', 30_000, 'confirmed');
    expect(Date.now()).toBeGreaterThanOrEqual(trialEnds - 50);
    expect(second.updates.get(id)).toMatchObject({ offset: 16 * 1024, size: 16 * 1024 });
    expect(d.device.firmware).toMatchObject({ version: '1.2.0', confirmed: true });
    expect(d.device.reboots).toBe(1);
    const events = await second.store.queryEvents({ deviceId: id, kind: 'firmware.update', limit: 50 });
    const steps = events.items.map((e) => (e.ok ? (e.value.data as { step: string }).step : '?'));
    expect(steps.filter((s) => s === 'applying')).toHaveLength(1);
  }, 90_000);

  it('stopped while the new image is on trial, and the device reboots meanwhile (its bootloader goes back to the old image): the restarted app says rolled back', async () => {
    const { dir, id, d } = await stoppedOnTrial();
    // A power cut while the app is away: the unconfirmed image is not booted again.
    await d.stop();
    const d2 = await device(id);
    await waitFor(() => d2.device.firmware.version === '1.0.0', 5000, 'back on the old image');

    const second = await app(dir);
    await ended(second, id);
    expect(second.updates.get(id)).toMatchObject({
      step: 'rolledBack',
      error: { code: 'bootloaderRevert' },
    });
    expect(d2.device.firmware).toMatchObject({ version: '1.0.0' });
  }, 90_000);

  it('stopped while the new image is on trial, the trial over when the app returns, the device back later on its old image: rolled back, not a failed confirm', async () => {
    const { dir, id, d, trialEnds } = await stoppedOnTrial(2000);
    await d.stop(); // a power cut: the device and the app go down together
    await new Promise((r) => setTimeout(r, Math.max(0, trialEnds - Date.now()) + 300));

    // The app is back first: the trial ran out while it was away, so it asks for the confirm.
    const second = await app(dir);
    await waitFor(() => second.updates.get(id)?.step === 'confirming', 8000, 'confirming');
    // The device comes back on its old image (its bootloader did not boot the unconfirmed one
    // again) and knows no transfer any more: its hello says what happened.
    const d2 = await device(id);
    expect(d2.device.firmware.version).toBe('1.0.0');
    await ended(second, id);
    expect(second.updates.get(id)).toMatchObject({
      step: 'rolledBack',
      error: { code: 'bootloaderRevert', step: 'confirming' },
    });
  }, 90_000);
});

/**
 * Telemetry checks during a firmware trial (issue 14 §2) over the host API on the real app (demo
 * fleet of simulated MQTT devices sending temp, rssi and uptime every 200 ms, embedded broker, a
 * real SQLite file): a reading past a limit rolls the device back at once, a required metric never
 * read rolls it back at the trial's end, checks that hold let it succeed; the reason is the job's
 * error (what the API and the views show) and bad checks are refused at the boundary, named.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SigningKeyPair } from '../../../src/firmware/keys.js';
import { describeImage, signManifest } from '../../../src/firmware/manifest.js';
import type { HostApiHandle } from '../../../src/host/api.js';
import type { App } from '../../../src/host/app.js';
import { DEMO_DATABASE_FILE_NAME } from '../../../src/host/app.js';
import type { FirmwareJobView, Results } from '../../../src/host/contract.js';
import { rawAll } from '../../store/helpers.js';
import type { FirmwareApiRig } from './firmware-api-rig.js';
import { startFirmwareApi, until } from './firmware-api-rig.js';

let dir: string;
let app: App;
let api: HostApiHandle;
let sha256 = '';
let devices: string[] = [];
let keys: SigningKeyPair;
let rig: FirmwareApiRig;
const image = randomBytes(16 * 1024);
const NEW_VERSION = '2.0.0';
/** Each device's trial: short, with several readings in it. */
const TRIAL_MS = 1500;

beforeAll(async () => {
  rig = await startFirmwareApi('trial-checks', { mqtt: 4, telemetryIntervalMs: 200 });
  ({ dir, app, api, keys } = rig);
  const signed = describeImage(image, { version: NEW_VERSION, kinds: ['fleetvisor.generic'] });
  const imported = await api.call('firmwareImport', {
    manifest: JSON.stringify(signManifest(signed, keys.privateKeyPem)),
    image: image.toString('base64'),
  });
  if (!imported.ok) throw new Error(`import refused: ${imported.error.code} ${imported.error.message}`);
  sha256 = (imported.value as Results['firmwareImport']).image.sha256;
  devices = app.sim!.mqtt.map((d) => d.id).sort();
  await until(
    () => (devices.every((id) => app.links.hub?.device(id)?.online) ? true : undefined),
    'demo online',
  );
}, 60_000);

afterAll(() => rig?.close());

const FINAL = ['succeeded', 'rolledBack', 'failed', 'cancelled'];

/** The device's job as `firmwareJobs` lists it, once it has ended. */
const ended = (deviceId: string) =>
  until(async () => {
    const r = await api.call('firmwareJobs', {});
    if (!r.ok) throw new Error(r.error.message);
    const job = (r.value as FirmwareJobView[]).find((j) => j.deviceId === deviceId);
    return job && FINAL.includes(job.step) ? job : undefined;
  }, `${deviceId}'s update ended`);

/** The firmware the simulated device itself runs (its slots, as its bootloader keeps them). */
const running = (deviceId: string) => app.sim!.mqtt.find((d) => d.id === deviceId)?.device.firmware;

describe('telemetry checks during a trial', () => {
  it("a rollout whose check the device's telemetry breaks rolls back at once, naming the reading", async () => {
    const id = devices[0]!;
    const before = running(id)?.version;
    expect(before).not.toBe(NEW_VERSION);
    const created = await api.call('rolloutCreate', {
      sha256,
      devices: [id],
      retries: 0,
      // A long trial: the rollback must come from the first reading, not from the trial's end.
      trialMs: 600_000,
      trialChecks: ['temp<=-1000', ' rssi '],
    });
    if (!created.ok) throw new Error(`rollout refused: ${created.error.code} ${created.error.message}`);
    const view = created.value as Results['rolloutCreate'];
    expect(view.trialChecks).toEqual(['temp<=-1000', 'rssi']);
    const saved = await until(async () => {
      const rows = await rawAll<{ body: string }>(
        join(dir, DEMO_DATABASE_FILE_NAME),
        'SELECT body FROM firmware_rollouts WHERE id = ?',
        [view.id],
      );
      return rows[0] ? (JSON.parse(rows[0].body) as { policy: unknown }) : undefined;
    }, `rollout ${view.id} saved`);
    expect(saved.policy).toMatchObject({ trialChecks: ['temp<=-1000', 'rssi'] });

    const job = await ended(id);
    expect(job).toMatchObject({
      step: 'rolledBack',
      trialChecks: ['temp<=-1000', 'rssi'],
      error: { step: 'onTrial', code: 'unhealthy' },
    });
    expect(job.error?.message).toMatch(
      /^temp read -?\d+(\.\d+)? at \d\d:\d\d:\d\d UTC, above the trial's limit temp<=-1000$/,
    );
    await until(() => (running(id)?.version === before ? true : undefined), `${id} back on ${before}`);
    expect(running(id)).toMatchObject({ version: before, confirmed: true });
    // The rollout shows the device failed with the same reason.
    const listed = await until(async () => {
      const r = await api.call('rollouts', {});
      const ro = r.ok ? (r.value as Results['rollouts']).find((x) => x.id === view.id) : undefined;
      return ro?.devices[id]?.state === 'failed' ? ro : undefined;
    }, 'the rollout sees the failure');
    expect(listed.devices[id]?.error?.message).toContain("above the trial's limit temp<=-1000");
  }, 60_000);

  it('a required metric the device never sends rolls back at the end of the trial', async () => {
    const id = devices[1]!;
    const before = running(id)?.version;
    const started = await api.call('firmwareUpdate', {
      deviceId: id,
      sha256,
      trialMs: TRIAL_MS,
      trialChecks: ['nosuchmetric', 'temp<=1000'],
    });
    if (!started.ok) throw new Error(`update refused: ${started.error.code} ${started.error.message}`);
    expect((started.value as FirmwareJobView).trialChecks).toEqual(['nosuchmetric', 'temp<=1000']);
    const onTrial = await until(() => {
      const s = app.updates.get(id);
      return s?.step === 'onTrial' ? s : undefined;
    }, `${id} on trial`);
    const job = await ended(id);
    expect(job).toMatchObject({
      step: 'rolledBack',
      error: { step: 'onTrial', code: 'unhealthy', message: 'no nosuchmetric reading during the trial' },
    });
    // Judged at the trial's end, not before.
    expect(Date.now()).toBeGreaterThanOrEqual(onTrial.deadline!);
    await until(() => (running(id)?.version === before ? true : undefined), `${id} back on ${before}`);
  }, 60_000);

  it('checks that hold let the update succeed', async () => {
    const id = devices[2]!;
    const started = await api.call('firmwareUpdate', {
      deviceId: id,
      sha256,
      trialMs: TRIAL_MS,
      trialChecks: ['temp<=1000', 'temp>=-1000', 'rssi', 'uptime>=0'],
    });
    if (!started.ok) throw new Error(`update refused: ${started.error.code} ${started.error.message}`);
    const job = await ended(id);
    expect(job).toMatchObject({ step: 'succeeded', error: null });
    await until(() => (running(id)?.version === NEW_VERSION ? true : undefined), `${id} on ${NEW_VERSION}`);
    expect(running(id)).toMatchObject({ version: NEW_VERSION, confirmed: true });
  }, 60_000);

  it('refuses bad checks at the boundary, naming the check, and starts nothing', async () => {
    const id = devices[3]!;
    for (const [method, args] of [
      ['firmwareUpdate', { deviceId: id, sha256, trialChecks: ['temp<=abc'] }],
      ['rolloutCreate', { sha256, devices: [id], trialChecks: ['rssi', 'temp/#'] }],
      ['rolloutCreate', { sha256, devices: [id], trialChecks: Array.from({ length: 17 }, () => 'rssi') }],
    ] as const) {
      const r = await api.call(method, args);
      expect(r).toMatchObject({ ok: false, error: { code: 'badRequest' } });
      expect(!r.ok && r.error.message).toMatch(/^trialChecks: /);
    }
    const named = await api.call('firmwareUpdate', { deviceId: id, sha256, trialChecks: ['temp<=abc'] });
    expect(!named.ok && named.error.message).toContain('"temp<=abc"');
    const wildcard = await api.call('rolloutCreate', { sha256, devices: [id], trialChecks: ['temp/#'] });
    expect(!wildcard.ok && wildcard.error.message).toContain('"temp/#"');
    expect(app.updates.get(id)).toBeUndefined();
  });
});

/**
 * The image's own trial over the host API on the real app (demo fleet, embedded broker, a real
 * SQLite file): an image whose signed manifest declares `trialSeconds` keeps each device on trial
 * that long, not the job's default 10 s, both in a rollout (frozen into its saved policy as
 * `trialMs`) and in an update of one device (`firmwareUpdate`).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SigningKeyPair } from '../../../src/firmware/keys.js';
import { describeImage, signManifest } from '../../../src/firmware/manifest.js';
import type { HostApiHandle } from '../../../src/host/api.js';
import type { App } from '../../../src/host/app.js';
import type { Results } from '../../../src/host/contract.js';
import type { FirmwareApiRig } from './firmware-api-rig.js';
import { startFirmwareApi, until } from './firmware-api-rig.js';

let app: App;
let api: HostApiHandle;
let keys: SigningKeyPair;
let rig: FirmwareApiRig;
const image = randomBytes(24 * 1024);
const TRIAL_SECONDS = 600;

beforeAll(async () => {
  rig = await startFirmwareApi('ro-trial', { mqtt: 4, telemetryIntervalMs: 1000 });
  ({ app, api, keys } = rig);
}, 60_000);

afterAll(() => rig?.close());

const savedPolicy = (id: string) => rig.savedPolicy(id);

/** The device's job once it is on trial. */
const onTrial = (deviceId: string) =>
  until(() => {
    const s = app.updates.get(deviceId);
    return s?.step === 'onTrial' ? s : undefined;
  }, `${deviceId} on trial`);

let sha = '';

describe("an image's own trial over the API", () => {
  it('keeps each device on trial as long as the image declares, in a rollout and in a single update', async () => {
    const signed = describeImage(image, {
      version: '1.3.0',
      kinds: ['fleetvisor.generic'],
      trialSeconds: TRIAL_SECONDS,
    });
    const imported = await api.call('firmwareImport', {
      manifest: JSON.stringify(signManifest(signed, keys.privateKeyPem)),
      image: image.toString('base64'),
    });
    if (!imported.ok) throw new Error(`import refused: ${imported.error.code} ${imported.error.message}`);
    const sha256 = (imported.value as Results['firmwareImport']).image.sha256;

    const [first, second] = app.sim!.mqtt.map((d) => d.id).sort();
    sha = sha256;
    await until(
      () =>
        app.links.hub?.device(first!)?.online && app.links.hub?.device(second!)?.online ? true : undefined,
      'demo online',
    );
    const created = await api.call('rolloutCreate', { sha256, devices: [first!], retries: 0 });
    if (!created.ok) throw new Error(`rollout refused: ${created.error.code} ${created.error.message}`);
    const id = (created.value as Results['rolloutCreate']).id;
    expect(await savedPolicy(id)).toMatchObject({ trialMs: TRIAL_SECONDS * 1000 });
    const inRollout = await onTrial(first!);
    // The trial ends about 600 s from now (the job's default would end it within 10 s).
    expect(inRollout.deadline!).toBeGreaterThan(Date.now() + (TRIAL_SECONDS - 60) * 1000);
    expect(inRollout.deadline!).toBeLessThanOrEqual(Date.now() + TRIAL_SECONDS * 1000);
    // The rollout's device list says where the job is (it said `transferring` until the end).
    const listed = await until(async () => {
      const r = await api.call('rollouts', {});
      const mine = r.ok ? (r.value as Results['rollouts']).find((x) => x.id === id) : undefined;
      return mine?.devices[first!]?.step === 'onTrial' ? mine : undefined;
    }, 'the rollout listing the device on trial');
    expect(listed.devices[first!]).toMatchObject({ state: 'updating', step: 'onTrial' });

    const single = await api.call('firmwareUpdate', { deviceId: second!, sha256 });
    if (!single.ok) throw new Error(`update refused: ${single.error.code} ${single.error.message}`);
    const alone = await onTrial(second!);
    expect(alone.deadline!).toBeGreaterThan(Date.now() + (TRIAL_SECONDS - 60) * 1000);
    expect(alone.deadline!).toBeLessThanOrEqual(Date.now() + TRIAL_SECONDS * 1000);
    expect(await api.call('rolloutCancel', { id })).toMatchObject({ ok: true });
  }, 90_000);

  it("lists the image's trial, and a rollout's or an update's own trial wins over it", async () => {
    expect(sha).not.toBe('');
    const listed = await api.call('firmwareList', {});
    if (!listed.ok) throw new Error(listed.error.message);
    expect((listed.value as Results['firmwareList']).images.find((i) => i.sha256 === sha)).toMatchObject({
      trialSeconds: TRIAL_SECONDS,
    });
    const [, , third, fourth] = app.sim!.mqtt.map((d) => d.id).sort();
    await until(
      () =>
        app.links.hub?.device(third!)?.online && app.links.hub?.device(fourth!)?.online ? true : undefined,
      'third and fourth online',
    );
    const OWN_MS = 1_800_000;
    const created = await api.call('rolloutCreate', {
      sha256: sha,
      devices: [third!],
      retries: 0,
      trialMs: OWN_MS,
    });
    if (!created.ok) throw new Error(`rollout refused: ${created.error.code} ${created.error.message}`);
    const id = (created.value as Results['rolloutCreate']).id;
    expect(await savedPolicy(id)).toMatchObject({ trialMs: OWN_MS });
    const inRollout = await onTrial(third!);
    // About 1,800 s from now: the rollout's own, not the image's 600 s.
    expect(inRollout.deadline!).toBeGreaterThan(Date.now() + TRIAL_SECONDS * 1000 + 60_000);
    expect(inRollout.deadline!).toBeLessThanOrEqual(Date.now() + OWN_MS);

    const single = await api.call('firmwareUpdate', { deviceId: fourth!, sha256: sha, trialMs: OWN_MS });
    if (!single.ok) throw new Error(`update refused: ${single.error.code} ${single.error.message}`);
    const alone = await onTrial(fourth!);
    expect(alone.deadline!).toBeGreaterThan(Date.now() + TRIAL_SECONDS * 1000 + 60_000);
    expect(alone.deadline!).toBeLessThanOrEqual(Date.now() + OWN_MS);

    // Out of range: refused at the boundary, naming the field.
    const refused = await api.call('rolloutCreate', { sha256: sha, devices: [third!], trialMs: 10 });
    expect(refused).toMatchObject({ ok: false, error: { code: 'badRequest' } });
    expect(JSON.stringify(refused)).toContain('trialMs');
    expect(await api.call('rolloutCancel', { id })).toMatchObject({ ok: true });
  }, 90_000);
});

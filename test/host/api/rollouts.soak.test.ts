/**
 * The image's own soak over the host API on the real app (demo fleet, embedded broker, a real
 * SQLite file): an image whose signed manifest declares `soakSeconds` is listed with it, and a
 * rollout of it that sets no soak of its own waits that long after its canary wave (the view says
 * until when, the next device stays pending); a rollout that sets its own (0) keeps it. The soak
 * is frozen into the rollout's saved policy.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SigningKeyPair } from '../../../src/firmware/keys.js';
import { describeImage, signManifest } from '../../../src/firmware/manifest.js';
import type { HostApiHandle } from '../../../src/host/api.js';
import type { App } from '../../../src/host/app.js';
import type { Results, RolloutView } from '../../../src/host/contract.js';
import type { FirmwareApiRig } from './firmware-api-rig.js';
import { startFirmwareApi, until } from './firmware-api-rig.js';

let app: App;
let api: HostApiHandle;
let keys: SigningKeyPair;
let rig: FirmwareApiRig;
const image = randomBytes(24 * 1024);
const SOAK_SECONDS = 600;

beforeAll(async () => {
  rig = await startFirmwareApi('ro-soak', { mqtt: 2, telemetryIntervalMs: 1000 });
  ({ app, api, keys } = rig);
}, 60_000);

afterAll(() => rig?.close());

async function rolloutNamed(id: string): Promise<RolloutView | undefined> {
  const r = await api.call('rollouts', {});
  return r.ok ? (r.value as Results['rollouts']).find((x) => x.id === id) : undefined;
}

const savedPolicy = (id: string) => rig.savedPolicy(id);

describe("an image's own soak over the API", () => {
  it('holds the wave after the canary for the soak the image declares, unless the rollout sets its own', async () => {
    const signed = describeImage(image, {
      version: '1.2.0',
      kinds: ['fleetvisor.generic'],
      soakSeconds: SOAK_SECONDS,
    });
    const imported = await api.call('firmwareImport', {
      manifest: JSON.stringify(signManifest(signed, keys.privateKeyPem)),
      image: image.toString('base64'),
    });
    if (!imported.ok) throw new Error(`import refused: ${imported.error.code} ${imported.error.message}`);
    const view = (imported.value as Results['firmwareImport']).image;
    expect(view.soakSeconds).toBe(SOAK_SECONDS);

    const devices = app.sim!.mqtt.map((d) => d.id).sort();
    await until(
      () => (devices.every((id) => app.links.hub?.device(id)?.online) ? true : undefined),
      'demo online',
    );
    const created = await api.call('rolloutCreate', {
      sha256: view.sha256,
      devices,
      waves: [{ count: 1 }, { share: 1 }],
      retries: 0,
    });
    if (!created.ok) throw new Error(`rollout refused: ${created.error.code} ${created.error.message}`);
    const id = (created.value as Results['rolloutCreate']).id;
    expect(await savedPolicy(id)).toMatchObject({ soakMs: SOAK_SECONDS * 1000 });

    // The canary is updated (transfer, reboot, trial); then the rollout soaks the image's 600 s.
    const soaking = await until(async () => {
      const r = await rolloutNamed(id);
      return r?.soakEndsAt !== null ? r : undefined;
    }, 'the canary wave done and the soak begun');
    const canary = soaking.order[0]!;
    const next = soaking.order[1]!;
    expect(soaking).toMatchObject({ state: 'running', wave: 0 });
    expect(soaking.devices[canary]!.state).toBe('succeeded');
    expect(soaking.devices[next]!.state).toBe('pending');
    expect(soaking.soakEndsAt!).toBeGreaterThan(Date.now() + (SOAK_SECONDS - 60) * 1000);
    expect(soaking.soakEndsAt!).toBeLessThanOrEqual(Date.now() + SOAK_SECONDS * 1000);
    expect(app.updates.get(next)).toBeUndefined();
    expect(await api.call('rolloutCancel', { id })).toMatchObject({
      ok: true,
      value: { state: 'cancelled' },
    });

    // Its own soak wins, 0 included: frozen into its policy as asked.
    const own = await api.call('rolloutCreate', { sha256: view.sha256, devices: [next], soakMs: 0 });
    if (!own.ok) throw new Error(`rollout refused: ${own.error.code} ${own.error.message}`);
    const ownId = (own.value as Results['rolloutCreate']).id;
    expect(await savedPolicy(ownId)).toMatchObject({ soakMs: 0 });
    expect(await api.call('rolloutCancel', { id: ownId })).toMatchObject({ ok: true });
  }, 90_000);
});

/**
 * The image's own soak over the host API on the real app (demo fleet, embedded broker, a real
 * SQLite file): an image whose signed manifest declares `soakSeconds` is listed with it, and a
 * rollout of it that sets no soak of its own waits that long after its canary wave (the view says
 * until when, the next device stays pending); a rollout that sets its own (0) keeps it. The soak
 * is frozen into the rollout's saved policy.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRUSTED_KEYS_DIR } from '../../../src/firmware/index.js';
import { generateSigningKeyPair } from '../../../src/firmware/keys.js';
import { describeImage, signManifest } from '../../../src/firmware/manifest.js';
import type { HostApiHandle } from '../../../src/host/api.js';
import { createHostApi } from '../../../src/host/api.js';
import type { App } from '../../../src/host/app.js';
import { DEMO_DATABASE_FILE_NAME, startApp } from '../../../src/host/app.js';
import type { Results, RolloutView } from '../../../src/host/contract.js';
import { silentLogger } from '../../../src/runtime/runtime.js';
import { rawAll } from '../../store/helpers.js';

let dir: string;
let app: App;
let api: HostApiHandle;
const keys = generateSigningKeyPair();
const image = randomBytes(24 * 1024);
const SOAK_SECONDS = 600;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fv-api-ro-soak-'));
  mkdirSync(join(dir, TRUSTED_KEYS_DIR), { recursive: true });
  writeFileSync(join(dir, TRUSTED_KEYS_DIR, 'lab.pub'), keys.publicKeyPem);
  app = await startApp({
    dataDir: dir,
    logger: silentLogger,
    broker: { port: 0 },
    demo: { mqtt: 2, serial: 0, telemetryIntervalMs: 1000 },
    conventions: [],
  });
  api = createHostApi(app);
}, 60_000);

afterAll(async () => {
  api?.close();
  await app?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function until<T>(
  get: () => Promise<T | undefined> | T | undefined,
  what: string,
  ms = 40_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`never: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function rolloutNamed(id: string): Promise<RolloutView | undefined> {
  const r = await api.call('rollouts', {});
  return r.ok ? (r.value as Results['rollouts']).find((x) => x.id === id) : undefined;
}

/** The policy saved with rollout `id` (saved just after each change: waited for). */
const savedPolicy = (id: string) =>
  until(async () => {
    const rows = await rawAll<{ body: string }>(
      join(dir, DEMO_DATABASE_FILE_NAME),
      'SELECT body FROM firmware_rollouts WHERE id = ?',
      [id],
    );
    return rows[0] ? (JSON.parse(rows[0].body).policy as { soakMs?: number }) : undefined;
  }, `rollout ${id} saved`);

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

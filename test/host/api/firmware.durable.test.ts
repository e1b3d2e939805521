/**
 * What the firmware API acknowledges is already in the database (issue 14; CI found a rollout
 * answered "started" and gone after a kill -9 right after): each answer of `rolloutCreate`,
 * `rolloutPause`, `rolloutCancel` and `firmwareUpdate` comes after its row is written. Each row is
 * read at once, by another connection to the real SQLite file, as an app restarted at that moment
 * would read it; nothing is waited for.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeImage, signManifest } from '../../../src/firmware/manifest.js';
import type { App } from '../../../src/host/app.js';
import { DEMO_DATABASE_FILE_NAME } from '../../../src/host/app.js';
import type { Results } from '../../../src/host/contract.js';
import { rawAll } from '../../store/helpers.js';
import type { FirmwareApiRig } from './firmware-api-rig.js';
import { startFirmwareApi, until } from './firmware-api-rig.js';

let rig: FirmwareApiRig;
let app: App;

beforeAll(async () => {
  rig = await startFirmwareApi('durable', { mqtt: 3, telemetryIntervalMs: 1000 });
  app = rig.app;
}, 60_000);
afterAll(() => rig?.close());

const db = () => join(rig.dir, DEMO_DATABASE_FILE_NAME);

describe('the firmware API answers once the row is written', () => {
  it('a rollout created, paused and cancelled; an update started', async () => {
    const image = randomBytes(48 * 1024);
    const manifest = signManifest(
      describeImage(image, { version: '1.4.0', kinds: ['fleetvisor.generic'] }),
      rig.keys.privateKeyPem,
    );
    const imported = await rig.api.call('firmwareImport', {
      manifest: JSON.stringify(manifest),
      image: image.toString('base64'),
    });
    if (!imported.ok) throw new Error(`import refused: ${imported.error.code} ${imported.error.message}`);
    const sha256 = (imported.value as Results['firmwareImport']).image.sha256;
    const [first, second] = app.sim!.mqtt.map((d) => d.id).sort();
    await until(
      () =>
        app.links.hub?.device(first!)?.online && app.links.hub?.device(second!)?.online ? true : undefined,
      'demo online',
    );

    const created = await rig.api.call('rolloutCreate', { sha256, devices: [first!], trialMs: 600_000 });
    if (!created.ok) throw new Error(`rollout refused: ${created.error.code} ${created.error.message}`);
    const id = (created.value as Results['rolloutCreate']).id;
    const rollout = () =>
      rawAll<{ state: string }>(db(), 'SELECT state FROM firmware_rollouts WHERE id = ?', [id]);
    expect(await rollout()).toEqual([{ state: 'running' }]);
    expect(await rig.api.call('rolloutPause', { id })).toMatchObject({ ok: true });
    expect(await rollout()).toEqual([{ state: 'paused' }]);

    const started = await rig.api.call('firmwareUpdate', { deviceId: second!, sha256, trialMs: 600_000 });
    if (!started.ok) throw new Error(`update refused: ${started.error.code} ${started.error.message}`);
    const job = () =>
      rawAll<{ step: string; transfer_id: string }>(
        db(),
        'SELECT step, transfer_id FROM firmware_jobs WHERE device_id = ?',
        [second!],
      );
    const [row] = await job();
    expect(row?.transfer_id).toBe((started.value as Results['firmwareUpdate']).transferId);
    expect(await rig.api.call('rolloutCancel', { id })).toMatchObject({ ok: true });
    expect(await rollout()).toEqual([{ state: 'cancelled' }]);
  }, 90_000);
});

/**
 * A rollout across a cluster (src/host/rollout-remote-jobs.ts): two real apps in this process on a
 * real PostgreSQL (a database of this file's own), an embedded broker, simulated MQTT devices, two
 * run by each instance. Created on alpha:
 * - by selector, it takes the whole fleet's devices of the image's kind, alpha's and beta's; beta
 *   runs the jobs of its devices (asked through the router, audited as the rollout), each device
 *   flashed once, and the rollout completes on alpha; beta's Rollouts list shows it, read-only;
 * - an image signed by a key only alpha trusts: beta refuses its device's job, the rollout shows
 *   the device failed with beta's reason and pauses;
 * - alpha stopped mid-rollout: beta takes the rollout over (src/host/rollout-takeover.ts) and
 *   follows the jobs where they are; it completes, no device flashed twice; alpha, started again
 *   on its data folder, leaves it to beta;
 * - the reconciler (`firmwareDrift: 'update'` on both): an image imported on alpha is shared at
 *   once; a device beta runs whose spec asks for that version is updated by beta's reconciler,
 *   which imports the image from the shared table under its own trust list first.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRUSTED_KEYS_DIR } from '../../src/firmware/index.js';
import type { SigningKeyPair } from '../../src/firmware/keys.js';
import { generateSigningKeyPair } from '../../src/firmware/keys.js';
import { describeImage, signManifest } from '../../src/firmware/manifest.js';
import type { HostApiHandle } from '../../src/host/api.js';
import { createHostApi } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { RolloutView } from '../../src/host/contract.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import type { MqttSimDevice } from '../../src/sim/mqtt-device.js';
import { startMqttSimDevice } from '../../src/sim/mqtt-device.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import type { TestDatabase } from '../store/postgres-helpers.js';
import { createTestDatabase } from '../store/postgres-helpers.js';
import { waitFor } from '../transports/helpers.js';
import { apiCallers, idOn, splitEvenly, until } from './app-pair.js';

const SHARDS = 16;
const LEASE_MS = 3000;

let db: TestDatabase;
let broker: EmbeddedBroker;
const apis = new Map<App, HostApiHandle>();
const { call, refused } = apiCallers(apis);
const dirs = new Map<string, string>();
const sims: MqttSimDevice[] = [];
let alpha: App;
let beta: App;
const alphaDevices: string[] = [];
const betaDevices: string[] = [];

/** Both instances trust the lab key; only alpha trusts its own. */
const labKeys = generateSigningKeyPair();
const alphaOnlyKeys = generateSigningKeyPair();

async function instance(name: string): Promise<App> {
  let dataDir = dirs.get(name);
  if (!dataDir) {
    dataDir = mkdtempSync(join(tmpdir(), `fv-cluster-rollouts-${name}-`));
    dirs.set(name, dataDir);
    mkdirSync(join(dataDir, TRUSTED_KEYS_DIR), { recursive: true });
    writeFileSync(join(dataDir, TRUSTED_KEYS_DIR, 'lab.pub'), labKeys.publicKeyPem);
    if (name === 'alpha')
      writeFileSync(join(dataDir, TRUSTED_KEYS_DIR, 'alpha.pub'), alphaOnlyKeys.publicKeyPem);
  }
  const app = await startApp({
    dataDir,
    logger: silentLogger,
    storeUrl: db.url,
    cluster: { instanceId: name, shardCount: SHARDS, leaseMs: LEASE_MS },
    mqtt: { url: broker.url },
    demo: false,
    adopt: 'manual',
    conventions: [],
    firmwareDrift: 'update',
  });
  apis.set(app, createHostApi(app));
  return app;
}

async function stop(app: App): Promise<void> {
  apis.get(app)?.close();
  apis.delete(app);
  await app.stop();
}

/** A signed image of `version` for the generic kind, imported on alpha. */
async function imageOnAlpha(version: string, keys: SigningKeyPair = labKeys): Promise<string> {
  const image = randomBytes(16 * 1024);
  const manifest = signManifest(
    describeImage(image, { version, kinds: ['fleetvisor.generic'] }),
    keys.privateKeyPem,
  );
  const { image: stored } = await call(alpha, 'firmwareImport', {
    manifest: JSON.stringify(manifest),
    image: image.toString('base64'),
  });
  return stored.sha256;
}

async function rollout(on: App, id: string): Promise<RolloutView> {
  const r = (await call(on, 'rollouts', {})).find((x) => x.id === id);
  if (!r) throw new Error(`no rollout ${id} on this instance`);
  return r;
}

/** How many times each device was told to apply `version` (its job's `applying` step, in the shared event log). */
async function applies(ids: readonly string[], version: string): Promise<Record<string, number>> {
  const r = await db.query<{ device_id: string; n: string }>(
    `SELECT device_id, count(*) AS n FROM events
     WHERE kind = 'firmware.update' AND device_id = ANY($1::text[])
       AND data::jsonb->>'step' = 'applying' AND data::jsonb->>'version' = $2
     GROUP BY device_id`,
    [ids, version],
  );
  const counts: Record<string, number> = Object.fromEntries(ids.map((id) => [id, 0]));
  for (const row of r) counts[row.device_id] = Number(row.n);
  return counts;
}

const connectedOn = (app: App, id: string) => app.fleet.device(id)?.state.startsWith('connected') === true;

async function adoptOn(app: App, ids: readonly string[]): Promise<void> {
  for (const id of ids)
    sims.push(
      await startMqttSimDevice(broker.url, {
        id,
        telemetryIntervalMs: 1000,
        reconnectMinMs: 100,
        reconnectMaxMs: 500,
      }),
    );
  await waitFor(
    () => ids.every((id) => app.links.hub?.discovered().some((d) => d.id === id) === true),
    20_000,
    'discovered',
    50,
  );
  for (const id of ids) await call(app, 'adopt', { id }, 'setup');
  await waitFor(() => ids.every((id) => connectedOn(app, id)), 20_000, 'connected', 50);
}

beforeAll(async () => {
  db = await createTestDatabase();
  broker = await startEmbeddedBroker({ port: 0 });
  alpha = await instance('alpha');
  beta = await instance('beta');
  await splitEvenly([alpha, beta], SHARDS, 20_000);
  for (let i = 0; i < 2; i++) alphaDevices.push(idOn(alpha, `cra${i}-`));
  for (let i = 0; i < 3; i++) betaDevices.push(idOn(beta, `crb${i}-`));
  await adoptOn(alpha, alphaDevices);
  await adoptOn(beta, betaDevices);
}, 90_000);

afterAll(async () => {
  for (const a of apis.values()) a.close();
  for (const s of sims) await s.stop().catch(() => {});
  for (const app of [...apis.keys()].reverse()) await app.stop().catch(() => {});
  await broker?.close();
  await db?.drop();
  for (const d of dirs.values()) rmSync(d, { recursive: true, force: true });
}, 60_000);

describe('a rollout created on one instance reaches the whole fleet', () => {
  it("by selector: alpha's and beta's devices, beta's jobs run by beta; it completes on alpha, each device flashed once", async () => {
    const sha256 = await imageOnAlpha('4.1.0');
    const created = await call(
      alpha,
      'rolloutCreate',
      {
        sha256,
        kind: 'fleetvisor.generic',
        waves: [{ count: 1 }, { share: 1, maxConcurrent: 4 }],
        trialMs: 1000,
      },
      'ann',
    );
    const all = [...alphaDevices, ...betaDevices].sort();
    // The list is the whole fleet's, frozen at creation.
    expect([...created.order].sort()).toEqual(all);
    let last = created;
    await until(
      async () => {
        last = await rollout(alpha, created.id);
        return last.state !== 'running';
      },
      60_000,
      () => `the rollout to end (${last.state}, ${JSON.stringify(last.counts)})`,
    );
    expect(last.state).toBe('completed');
    expect(last.counts.succeeded).toBe(all.length);
    for (const id of alphaDevices) expect(alpha.fleet.device(id)?.status.firmware).toBe('4.1.0');
    for (const id of betaDevices) expect(beta.fleet.device(id)?.status.firmware).toBe('4.1.0');
    // Beta ran its devices' jobs, asked by alpha for the rollout; alpha ran none of them.
    for (const id of betaDevices) {
      expect(beta.updates.get(id)).toMatchObject({ step: 'succeeded', actor: `rollout:${created.id}` });
      expect(alpha.updates.get(id)).toBeUndefined();
    }
    const routed = await db.query<{
      device_id: string;
      requested_by: string;
      claimed_by: string;
      actor: string;
    }>(
      `SELECT device_id, requested_by, claimed_by, actor FROM fleetvisor_routed_actions
       WHERE action = 'op:firmwareUpdate' AND device_id = ANY($1::text[])`,
      [betaDevices],
    );
    expect(routed.map((r) => r.device_id).sort()).toEqual([...betaDevices].sort());
    for (const r of routed)
      expect(r).toMatchObject({ requested_by: 'alpha', claimed_by: 'beta', actor: `rollout:${created.id}` });
    expect(await applies(all, '4.1.0')).toEqual(Object.fromEntries(all.map((id) => [id, 1])));
    // Beta's Rollouts view lists it, as alpha last saved it, read-only there.
    const onBeta = await rollout(beta, created.id);
    expect(onBeta).toMatchObject({ state: 'completed', runsOn: 'alpha', counts: { succeeded: all.length } });
    expect((await rollout(alpha, created.id)).runsOn).toBeNull();
    expect(await refused(beta, 'rolloutPause', { id: created.id })).toEqual({
      code: 'notOwner',
      message: `rollout '${created.id}' runs on instance alpha: pause, resume or cancel it there`,
    });
  }, 90_000);

  it("an image only alpha trusts: beta refuses its device's job, the rollout shows beta's reason and pauses", async () => {
    const sha256 = await imageOnAlpha('4.3.0', alphaOnlyKeys);
    const id = betaDevices[0]!;
    const created = await call(alpha, 'rolloutCreate', { sha256, devices: [id], retries: 0 });
    let last = created;
    await until(
      async () => {
        last = await rollout(alpha, created.id);
        return last.state !== 'running';
      },
      30_000,
      () => `the rollout to stop (${last.state})`,
    );
    expect(last.state).toBe('paused');
    expect(last.devices[id]?.state).toBe('failed');
    expect(last.devices[id]?.error?.code).toBe('unknownKey');
    expect(last.devices[id]?.error?.message).toMatch(
      /^instance beta, which runs the device, refuses the image instance alpha shared: /,
    );
    expect(beta.fleet.device(id)?.status.firmware).toBe('4.1.0');
    // A device in no table is still notFound.
    const nobody = idOn(beta, 'nobody-ro');
    expect(await refused(alpha, 'rolloutCreate', { sha256, devices: [nobody] })).toEqual({
      code: 'notFound',
      message: `not in the fleet: ${nobody}`,
    });
  }, 60_000);
  it('alpha stopped mid-rollout: beta takes it over and follows the jobs where they are; alpha, back, leaves it to beta; no device flashed twice', async () => {
    const sha256 = await imageOnAlpha('4.4.0');
    const created = await call(alpha, 'rolloutCreate', {
      sha256,
      devices: betaDevices,
      waves: [{ share: 1, maxConcurrent: 3 }],
      trialMs: 4000,
    });
    // Every job has started on beta (asked by alpha) before alpha goes.
    await until(
      async () => betaDevices.every((id) => beta.updates.get(id)?.version === '4.4.0'),
      20_000,
      () => `beta running the three jobs (${betaDevices.map((id) => beta.updates.get(id)?.step).join(', ')})`,
    );
    expect((await rollout(alpha, created.id)).counts.updating).toBe(3);
    // Beta lists it as alpha's (alpha writes it within a second).
    await until(
      async () => (await call(beta, 'rollouts', {})).some((r) => r.id === created.id && r.runsOn === 'alpha'),
      10_000,
      () => 'beta to list the rollout as alpha’s',
    );
    await stop(alpha);
    // Alpha left: beta claims the rollout and continues it, following its own jobs.
    let last = await rollout(beta, created.id);
    await until(
      async () => {
        last = await rollout(beta, created.id);
        return last.runsOn === null && last.state !== 'running';
      },
      60_000,
      () =>
        `beta to take the rollout over and end it (runs on ${last.runsOn}, ${last.state}, ${JSON.stringify(last.counts)})`,
    );
    expect(last.state).toBe('completed');
    expect(last.counts.succeeded).toBe(betaDevices.length);
    for (const id of betaDevices) {
      expect(beta.fleet.device(id)?.status.firmware).toBe('4.4.0');
      // Each job followed to its end: one attempt, never a second start.
      expect(last.devices[id]).toMatchObject({ state: 'succeeded', attempts: 1 });
    }
    // Alpha, back on its data folder, does not continue it: it lists it as beta's.
    alpha = await instance('alpha');
    expect(alpha.rollouts.all.has(created.id)).toBe(false);
    expect(await rollout(alpha, created.id)).toMatchObject({ runsOn: 'beta', state: 'completed' });
    expect(await applies(betaDevices, '4.4.0')).toEqual(Object.fromEntries(betaDevices.map((id) => [id, 1])));
  }, 120_000);

  it("the reconciler: a device beta runs asks for a version only alpha imported; beta's reconciler imports the shared image and updates it", async () => {
    const sha256 = await imageOnAlpha('4.9.0');
    // Alpha came back in the test before: the shards move back gradually; a device that moves
    // mid-job would leave beta's job waiting. Once they are split again, nothing moves.
    await splitEvenly([alpha, beta], SHARDS);
    // A device of beta's shards as they are now, adopted there.
    const id = idOn(beta, 'crd-');
    await adoptOn(beta, [id]);
    expect((await call(beta, 'firmwareList', {})).images.map((i) => i.sha256)).not.toContain(sha256);
    expect(await beta.fleet.setSpec(id, { firmware: '4.9.0' })).toMatchObject({ ok: true });
    const report = await beta.firmwareDrift!.pass();
    expect(report.started).toEqual([id]);
    expect(report.noImage).toEqual([]);
    const there = (await call(beta, 'firmwareList', {})).images.find((i) => i.sha256 === sha256);
    expect(there).toMatchObject({ version: '4.9.0', importedBy: 'system:reconciler' });
    let step: string | undefined;
    await until(
      async () => {
        step = beta.updates.get(id)?.step;
        return step === 'succeeded';
      },
      40_000,
      () => `the reconciler's job to succeed (${step})`,
    );
    expect(beta.updates.get(id)?.actor).toBe('system:reconciler');
    expect(beta.fleet.device(id)?.status.firmware).toBe('4.9.0');
  }, 60_000);
});

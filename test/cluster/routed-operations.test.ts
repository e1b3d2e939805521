/**
 * The API's calls on one device routed to the device's owner (src/host/api/routed.ts over
 * src/cluster/command-router.ts), with two real apps in this process on a real PostgreSQL (a
 * database of this file's own) and an embedded broker, simulated devices on it, adoption by hand.
 * Asked on alpha about devices beta runs:
 * - `device` and `deviceInspect` answer what beta answers (its machine, its live transitions, the
 *   events it processed), which alpha alone does not know;
 * - `sendEvent` moves beta's machine and beta audits it with the operator's name;
 * - `restartDevice` restarts a device that failed on beta; a running one is refused as on beta;
 * - `cancelCommand` cancels a command open on beta (the command log says who);
 * - `adopt` adopts a device beta discovered (alpha never lists it), audited by beta;
 * - `firmwareUpdate` of an image only alpha has: shared through the database, imported by beta
 *   under its own trust list, run by beta, followed from alpha (`firmwareJobs` of the device); an
 *   image signed by a key only alpha trusts is refused by beta, which says so; one alpha imported
 *   as a downgrade, explicitly, is imported by beta as one too;
 * - nobody holding the shard: `noOwner` at once (for `adopt` too, whose device is in no table);
 * - the owner stopping mid-way (it took a `sendEvent`, never answered): `ownerDidNotAnswer` at the
 *   deadline, and it is not carried out later.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommandRouter } from '../../src/cluster/command-router.js';
import { TRUSTED_KEYS_DIR } from '../../src/firmware/index.js';
import { generateSigningKeyPair } from '../../src/firmware/keys.js';
import { describeImage, signManifest } from '../../src/firmware/manifest.js';
import type { HostApiHandle } from '../../src/host/api.js';
import { createHostApi } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { Results, TreeNode } from '../../src/host/contract.js';
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
const TIMEOUT_MS = 5000;

let db: TestDatabase;
let broker: EmbeddedBroker;
const apps = new Map<string, App>();
const apis = new Map<App, HostApiHandle>();
const { call, refused } = apiCallers(apis);
const dirs: string[] = [];
const sims = new Map<string, MqttSimDevice>();
let alpha: App;
let beta: App;
/** Devices beta runs, adopted there by hand. */
const betaDevices: string[] = [];

/** Both instances trust the lab key; only alpha trusts its own. */
const labKeys = generateSigningKeyPair();
const alphaOnlyKeys = generateSigningKeyPair();

async function instance(name: string): Promise<App> {
  const dataDir = mkdtempSync(join(tmpdir(), `fv-routed-ops-${name}-`));
  dirs.push(dataDir);
  mkdirSync(join(dataDir, TRUSTED_KEYS_DIR), { recursive: true });
  writeFileSync(join(dataDir, TRUSTED_KEYS_DIR, 'lab.pub'), labKeys.publicKeyPem);
  if (name === 'alpha')
    writeFileSync(join(dataDir, TRUSTED_KEYS_DIR, 'alpha.pub'), alphaOnlyKeys.publicKeyPem);
  const app = await startApp({
    dataDir,
    logger: silentLogger,
    storeUrl: db.url,
    cluster: { instanceId: name, shardCount: SHARDS, leaseMs: LEASE_MS, actTimeoutMs: TIMEOUT_MS },
    mqtt: { url: broker.url },
    demo: false,
    adopt: 'manual',
    conventions: [],
  });
  apps.set(name, app);
  apis.set(app, createHostApi(app));
  return app;
}

async function device(id: string): Promise<void> {
  sims.set(
    id,
    await startMqttSimDevice(broker.url, {
      id,
      telemetryIntervalMs: 1000,
      reconnectMinMs: 100,
      reconnectMaxMs: 500,
    }),
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits, asking `on` for the device's job (routed to its owner), until it succeeded. */
async function succeededAsSeenFrom(on: App, id: string): Promise<void> {
  let last: Results['firmwareJobs'][number] | undefined;
  await until(
    async () => {
      [last] = await call(on, 'firmwareJobs', { deviceId: id });
      return last?.step === 'succeeded';
    },
    40_000,
    () => `${id}'s update to succeed (last: ${last?.step})`,
  );
}

const discoveredOn = (app: App, id: string) => app.links.hub?.discovered().some((d) => d.id === id) === true;
const connectedOn = (app: App, id: string) => app.fleet.device(id)?.state.startsWith('connected') === true;

const routedRows = (deviceId: string) =>
  db.query<{
    action: string;
    status: string;
    requested_by: string;
    claimed_by: string | null;
    actor: string;
  }>(
    `SELECT action, status, requested_by, claimed_by, actor FROM fleetvisor_routed_actions
     WHERE device_id = $1 ORDER BY requested_at`,
    [deviceId],
  );

async function eventsOf(deviceId: string, kind: string) {
  await beta.fleet.flush();
  const page = await alpha.store.queryEvents({ deviceId, kind, order: 'asc', limit: 50 });
  return page.items.flatMap((e) => (e.ok ? [e.value.data as Record<string, unknown>] : []));
}

beforeAll(async () => {
  db = await createTestDatabase();
  broker = await startEmbeddedBroker({ port: 0 });
  alpha = await instance('alpha');
  beta = await instance('beta');
  await splitEvenly([alpha, beta], SHARDS, 20_000);
  // Four devices in beta's shards, adopted by hand on beta (adoption is manual here); the fourth is updated.
  for (let i = 0; i < 4; i++) betaDevices.push(idOn(beta, `ro${i}-`));
  for (const id of betaDevices) await device(id);
  await waitFor(() => betaDevices.every((id) => discoveredOn(beta, id)), 20_000, 'discovered on beta', 50);
  for (const id of betaDevices) await call(beta, 'adopt', { id }, 'setup');
  await waitFor(() => betaDevices.every((id) => connectedOn(beta, id)), 20_000, 'connected on beta', 50);
}, 60_000);

afterAll(async () => {
  for (const a of apis.values()) a.close();
  for (const s of sims.values()) await s.stop().catch(() => {});
  for (const app of [...apps.values()].reverse()) await app.stop().catch(() => {});
  await broker?.close();
  await db?.drop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

describe("a device's detail and inspector, asked on another instance", () => {
  it("device: beta's answer, with its machine and the transitions only beta saw", async () => {
    const id = betaDevices[0]!;
    expect(alpha.fleet.has(id)).toBe(false);
    const there = await call(alpha, 'device', { id }, 'ann');
    const here = await call(beta, 'device', { id }, 'ann');
    expect(there).toMatchObject({ id, kind: here.kind, state: 'connected', health: 'running' });
    for (const field of ['attributes', 'spec', 'machine', 'actions', 'metrics', 'driftItems'] as const)
      expect(there[field]).toEqual(here[field]);
    expect(there.machine).not.toBeNull();
    expect(there.transitions.length).toBeGreaterThan(0);
    expect(there.transitions).toEqual(here.transitions.slice(0, there.transitions.length));
    expect((await routedRows(id)).at(-1)).toMatchObject({
      action: 'op:device',
      status: 'done',
      requested_by: 'alpha',
      claimed_by: 'beta',
      actor: 'ann',
    });
  });

  it("deviceInspect: beta's machine and the events it processed", async () => {
    const id = betaDevices[0]!;
    const there = await call(alpha, 'deviceInspect', { id });
    const here = await call(beta, 'deviceInspect', { id });
    expect(there).toMatchObject({
      id,
      state: here.state,
      running: true,
      events: here.events,
      accepts: here.accepts,
    });
    expect(there.lastEvents.length).toBeGreaterThan(0);
    expect(there.lastEvents.map((e) => e.type)).toContain('HELLO');
    expect(there.recordedSince).toBe(here.recordedSince);
    expect((await routedRows(id)).at(-1)).toMatchObject({ action: 'op:deviceInspect', actor: '' });
  });

  it("telemetry: beta's device's points, read on alpha from the shared database; an unknown device is notFound", async () => {
    const id = betaDevices[0]!;
    await until(
      async () => (await call(beta, 'device', { id })).metrics.length > 0,
      15_000,
      `${id}'s first telemetry on beta`,
    );
    const metric = (await call(beta, 'device', { id })).metrics[0]!;
    const args = { id, metric, fromMs: Date.now() - 600_000, toMs: Date.now() + 1000, buckets: 100 };
    await until(
      async () => (await call(beta, 'telemetry', args)).length > 0,
      15_000,
      `${id}'s ${metric} stored`,
    );
    expect(alpha.fleet.has(id)).toBe(false);
    const there = await call(alpha, 'telemetry', args);
    expect(there.length).toBeGreaterThan(0);
    expect(there).toEqual(await call(beta, 'telemetry', args));
    const unknown = await refused(alpha, 'telemetry', { ...args, id: 'ro-nobody' });
    expect(unknown.code).toBe('notFound');
  });

  it('an unknown device is notFound, an action named like another operation is refused: asked of nobody', async () => {
    const unknown = idOn(beta, 'nobody');
    const before = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM fleetvisor_routed_actions');
    for (const method of ['device', 'deviceInspect', 'restartDevice'] as const) {
      const e = await refused(alpha, method, { id: unknown });
      expect(e).toEqual({ code: 'notFound', message: `no device '${unknown}' in the fleet` });
    }
    // An action named like another operation is no action: refused here, never read as that operation.
    const [act] = await call(alpha, 'act', { ids: [betaDevices[0]!], action: 'op:restartDevice' }, 'ann');
    expect(act).toMatchObject({ ok: false, error: { code: 'badRequest' } });
    expect(act?.error?.message).toMatch(/no action 'op:restartDevice'/);
    const after = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM fleetvisor_routed_actions');
    expect(after[0]?.n).toBe(before[0]?.n);
  });
});

describe("firmware of beta's device, asked on alpha", () => {
  it('the update runs on beta with the image alpha shared; alpha follows its job and sees it succeed', async () => {
    const id = betaDevices[3]!;
    const image = randomBytes(24 * 1024);
    const manifest = signManifest(
      describeImage(image, { version: '3.1.0', kinds: ['fleetvisor.generic'] }),
      labKeys.privateKeyPem,
    );
    const imported = await call(
      alpha,
      'firmwareImport',
      { manifest: JSON.stringify(manifest), image: image.toString('base64') },
      'ann',
    );
    const sha256 = imported.image.sha256;
    expect((await call(beta, 'firmwareList', {})).images.map((i) => i.sha256)).not.toContain(sha256);

    const started = await call(alpha, 'firmwareUpdate', { deviceId: id, sha256, trialMs: 1000 }, 'ann');
    expect(started).toMatchObject({ deviceId: id, version: '3.1.0', sha256 });
    // Beta took the image from the shared table through its own import (its trust list), audited as ann's.
    expect((await call(beta, 'firmwareList', {})).images.map((i) => i.sha256)).toContain(sha256);
    expect(alpha.updates.get(id)).toBeUndefined();
    expect(beta.updates.get(id)?.transferId).toBe(started.transferId);

    // Followed from alpha, as `update start --wait` on alpha does: the job is beta's.
    await succeededAsSeenFrom(alpha, id);
    expect(beta.fleet.device(id)?.status.firmware).toBe('3.1.0');
    // Alpha's Firmware view lists the image as running on it: read from the shared database (the
    // data folder's file holds the images, not the fleet's devices).
    await until(
      async () =>
        (await call(alpha, 'firmwareList', {})).images
          .find((i) => i.sha256 === sha256)
          ?.runningOn.includes(id) === true,
      15_000,
      `alpha listing 3.1.0 as running on ${id}`,
    );
    expect(await call(alpha, 'firmwareJobs', {})).toEqual([]); // the list of every job is each instance's own
    expect((await routedRows(id)).filter((r) => r.action === 'op:firmwareUpdate')).toEqual([
      {
        action: 'op:firmwareUpdate',
        status: 'done',
        requested_by: 'alpha',
        claimed_by: 'beta',
        actor: 'ann',
      },
    ]);
    const requested = await eventsOf(id, 'firmware.updateRequested');
    expect(requested.at(-1)).toMatchObject({ version: '3.1.0', sha256, actor: 'ann' });

    // Beta's refusals come back as they are: its job has ended, nothing to cancel.
    const cancel = await refused(alpha, 'firmwareCancel', { deviceId: id });
    expect(cancel).toEqual(await refused(beta, 'firmwareCancel', { deviceId: id }));
    expect(cancel.code).toBe('finished');
  }, 60_000);

  it('refusals: an image nobody has is notFound; an image signed by a key only alpha trusts is refused by beta, which says so', async () => {
    const id = betaDevices[3]!;
    expect(await refused(alpha, 'firmwareUpdate', { deviceId: id, sha256: 'a'.repeat(64) })).toMatchObject({
      code: 'notFound',
      message: `no stored image with SHA-256 ${'a'.repeat(64)}`,
    });
    const image = randomBytes(8 * 1024);
    const manifest = signManifest(
      describeImage(image, { version: '3.2.0', kinds: ['fleetvisor.generic'] }),
      alphaOnlyKeys.privateKeyPem,
    );
    const { image: stored } = await call(alpha, 'firmwareImport', {
      manifest: JSON.stringify(manifest),
      image: image.toString('base64'),
    });
    const e = await refused(alpha, 'firmwareUpdate', { deviceId: id, sha256: stored.sha256 });
    expect(e.code).toBe('unknownKey');
    expect(e.message).toMatch(
      /^instance beta, which runs the device, refuses the image instance alpha shared: /,
    );
    expect((await call(beta, 'firmwareList', {})).images.map((i) => i.sha256)).not.toContain(stored.sha256);
    expect(beta.updates.get(id)?.version).toBe('3.1.0'); // its last job, untouched
    // Shared bytes changed behind the apps' backs (alpha has not this image: beta reads the row).
    const forged = createHash('sha256').update('forged').digest('hex');
    await db.query(
      `INSERT INTO fleetvisor_firmware_images (sha256, manifest, image, shared_by) VALUES ($1, '{}', $2, 'mallory')`,
      [forged, Buffer.from('not the image')],
    );
    const corrupt = await refused(alpha, 'firmwareUpdate', { deviceId: id, sha256: forged });
    expect(corrupt.code).toBe('corrupt');
    expect(corrupt.message).toMatch(
      /^instance beta cannot take the shared image: .* does not hash to its key/,
    );
    // A device in no table is still notFound, asked of nobody.
    const unknown = idOn(beta, 'nobody-fw');
    expect(await refused(alpha, 'firmwareUpdate', { deviceId: unknown, sha256: stored.sha256 })).toEqual({
      code: 'notFound',
      message: `no device '${unknown}' in the fleet`,
    });
  });
});

describe('a downgrade asked on another instance', () => {
  it('an image alpha imported as a downgrade, explicitly, is imported by beta as one too (audited there) and runs', async () => {
    const id = betaDevices[3]!; // runs 3.1.0 (above); beta stores 3.1.0
    const image = randomBytes(8 * 1024);
    const manifest = signManifest(
      describeImage(image, { version: '3.0.5', kinds: ['fleetvisor.generic'] }),
      labKeys.privateKeyPem,
    );
    const args = { manifest: JSON.stringify(manifest), image: image.toString('base64') };
    expect((await refused(alpha, 'firmwareImport', args)).code).toBe('downgrade');
    const { image: stored } = await call(alpha, 'firmwareImport', { ...args, allowDowngrade: true }, 'ann');
    expect(stored.downgradeFrom).toBe('3.2.0'); // alpha stores 3.2.0 too (above); beta 3.1.0 only
    await call(alpha, 'firmwareUpdate', { deviceId: id, sha256: stored.sha256, trialMs: 1000 }, 'ann');
    const there = (await call(beta, 'firmwareList', {})).images.find((i) => i.sha256 === stored.sha256);
    expect(there).toMatchObject({ version: '3.0.5', downgradeFrom: '3.1.0', importedBy: 'ann' });
    await succeededAsSeenFrom(alpha, id);
    expect(beta.fleet.device(id)?.status.firmware).toBe('3.0.5');
  }, 60_000);
});

describe('writes asked on another instance, carried out by the owner', () => {
  it("sendEvent: beta's machine takes it, beta audits it with the operator; its refusals come back as they are", async () => {
    const id = betaDevices[1]!;
    const sent = await call(
      alpha,
      'sendEvent',
      { id, event: 'HELLO', payload: { firmware: '7.7.7' } },
      'bob',
    );
    expect(sent).toMatchObject({ from: 'connected', to: 'connected', crashed: false });
    expect((await call(beta, 'deviceInspect', { id })).context).toMatchObject({ firmware: '7.7.7' });
    expect(await eventsOf(id, 'device.eventSent')).toEqual([
      { event: 'HELLO', payload: { firmware: '7.7.7' }, actor: 'bob', from: 'connected', to: 'connected' },
    ]);
    // Beta's own refusals, in the API's words.
    const notAccepted = await refused(alpha, 'sendEvent', { id, event: 'CONNECT' }, 'bob');
    expect(notAccepted).toEqual(await refused(beta, 'sendEvent', { id, event: 'CONNECT' }, 'bob'));
    expect(notAccepted.code).toBe('notAccepted');
    expect((await refused(alpha, 'sendEvent', { id, event: 'HELLO', payload: [1] })).code).toBe('badPayload');
    expect((await routedRows(id)).map((r) => [r.action, r.status, r.claimed_by])).toEqual([
      ['op:sendEvent', 'done', 'beta'],
      ['op:sendEvent', 'done', 'beta'],
      ['op:sendEvent', 'done', 'beta'],
    ]);
  });

  it('restartDevice: a device failed on beta is restarted by beta; a running one is refused as on beta', async () => {
    const id = betaDevices[2]!;
    const running = await refused(alpha, 'restartDevice', { id });
    expect(running).toEqual(await refused(beta, 'restartDevice', { id }));
    expect(running.code).toBe('conflict');

    // Killed on beta until its supervisor gives up.
    const machineOf = (t: TreeNode): TreeNode | undefined =>
      t.deviceId === id && t.childId === 'machine' ? t : t.children?.map(machineOf).find((x) => x);
    for (let i = 0; i < 6 && beta.fleet.device(id)?.health !== 'failed'; i++) {
      const m = machineOf(await call(beta, 'tree', {}));
      if (m?.pid) await call(beta, 'killProcess', { pid: m.pid });
      await waitFor(
        () => beta.fleet.device(id)?.health === 'failed' || beta.fleet.device(id)?.restarts === i + 1,
        5000,
        `kill ${i + 1} handled`,
        20,
      );
    }
    await waitFor(() => beta.fleet.device(id)?.health === 'failed', 5000, 'failed on beta', 20);

    const row = await call(alpha, 'restartDevice', { id }, 'carol');
    expect(row).toMatchObject({ id, health: 'running' });
    expect(beta.fleet.device(id)?.health).toBe('running');
    expect(alpha.fleet.has(id)).toBe(false);
    expect((await routedRows(id)).at(-1)).toMatchObject({ action: 'op:restartDevice', claimed_by: 'beta' });
    await waitFor(() => connectedOn(beta, id), 10_000, 'connected again on beta', 50);
  }, 40_000);

  it('cancelCommand: a command open on beta is cancelled by beta, and the log says by whom', async () => {
    const id = betaDevices[1]!;
    sims.get(id)!.dropLink(60_000); // offline: its commands wait, open
    await waitFor(() => !connectedOn(beta, id), 10_000, 'offline on beta', 50);
    const r = await call(alpha, 'act', { ids: [id], action: 'identify', args: { seconds: 2 } }, 'dave');
    expect(r[0]).toMatchObject({ ok: true, commandStatus: 'pending' });
    const commandId = r[0]!.commandId!;
    expect(beta.fleet.commands.open(id).map((c) => c.commandId)).toEqual([commandId]);
    const logged = async () =>
      (await alpha.store.queryCommands({ deviceId: id, limit: 10 })).items.flatMap((i) =>
        i.ok && i.value.commandId === commandId ? [i.value] : [],
      )[0];
    await until(async () => (await logged()) !== undefined, 5000, 'the command in the log');

    expect(await call(alpha, 'cancelCommand', { commandId }, 'erin')).toEqual({ cancelled: true });
    expect(beta.fleet.commands.open(id)).toEqual([]);
    await beta.fleet.flush();
    await until(async () => (await logged())?.status === 'cancelled', 5000, 'cancelled in the log');
    expect((await logged())?.error).toEqual({ code: 'cancelled', message: 'cancelled by erin' });
    expect((await routedRows(id)).at(-1)).toMatchObject({
      action: 'op:cancelCommand',
      status: 'done',
      claimed_by: 'beta',
      actor: 'erin',
    });
    // Not open any more (beta answers), and a command nobody knows (answered here, as on one instance).
    expect(await call(alpha, 'cancelCommand', { commandId }, 'erin')).toEqual({ cancelled: false });
    expect(await call(alpha, 'cancelCommand', { commandId: 'no-such-command' })).toEqual({
      cancelled: false,
    });
    sims.get(id)!.dropLink(0);
  }, 30_000);

  it('adopt: a device beta discovered is adopted by beta, audited there, though alpha never listed it', async () => {
    const id = idOn(beta, 'ad');
    await device(id);
    await waitFor(() => discoveredOn(beta, id), 10_000, 'discovered on beta', 50);
    expect(discoveredOn(alpha, id)).toBe(false);

    const row = await call(alpha, 'adopt', { id }, 'frank');
    expect(row).toMatchObject({ id, health: 'running' });
    expect(beta.fleet.has(id)).toBe(true);
    expect(alpha.fleet.has(id)).toBe(false);
    await waitFor(() => connectedOn(beta, id), 10_000, 'connected on beta', 50);
    expect(await eventsOf(id, 'device.audit')).toEqual([
      expect.objectContaining({ action: 'adopt', actor: 'frank' }),
    ]);
    expect((await routedRows(id)).at(-1)).toMatchObject({
      action: 'op:adopt',
      status: 'done',
      claimed_by: 'beta',
    });

    // Beta's own refusals (no discovered device: adopted already, or never seen).
    expect(await refused(alpha, 'adopt', { id })).toEqual(await refused(beta, 'adopt', { id }));
    const never = idOn(beta, 'never');
    expect(await refused(alpha, 'adopt', { id: never })).toEqual(await refused(beta, 'adopt', { id: never }));
    expect((await routedRows(never)).at(-1)).toMatchObject({ action: 'op:adopt', claimed_by: 'beta' });
  }, 30_000);
});

describe('when the owner stops', () => {
  it('mid-way (it took a sendEvent and never answered): ownerDidNotAnswer at the deadline, never carried out later', async () => {
    const id = betaDevices[0]!;
    const taken: string[] = [];
    // Beta takes the operation and hangs in it, as an instance stopped or dying mid-way.
    beta.cluster?.router.answerWith((op) => {
      taken.push(op.kind);
      return new Promise(() => {});
    });
    const started = Date.now();
    const asked = refused(alpha, 'sendEvent', { id, event: 'HELLO', payload: { firmware: '6.6.6' } }, 'gina');
    await waitFor(() => taken.length === 1, 5000, 'beta took it', 20);
    expect((await routedRows(id)).at(-1)).toMatchObject({
      status: 'running',
      claimed_by: 'beta',
      actor: 'gina',
    });
    const stopping = beta.stop();
    const e = await asked;
    const waited = Date.now() - started;
    expect(e.code).toBe('ownerDidNotAnswer');
    expect(e.message).toMatch(/beta took 'sendEvent' on .* did not answer.*unknown.*will not run again/);
    expect(waited).toBeGreaterThanOrEqual(TIMEOUT_MS - 200);
    expect(waited).toBeLessThan(TIMEOUT_MS + 3000);
    await stopping;
    apps.delete('beta');

    // Alpha owns every shard now and runs the device: what beta took is not run again.
    await waitFor(() => alpha.fleet.has(id), 15_000, `${id} runs on alpha`, 50);
    await sleep(1500); // a sweep or more
    expect((await routedRows(id)).at(-1)).toMatchObject({ status: 'running', claimed_by: 'beta' });
    expect((await eventsOf(id, 'device.eventSent')).filter((x) => x.actor === 'gina')).toEqual([]);
    // Asked on alpha now, it runs there, not routed.
    const inspected = await call(alpha, 'deviceInspect', { id });
    expect(inspected.context).not.toMatchObject({ firmware: '6.6.6' });
  }, 40_000);

  it('nobody holds the shard: noOwner at once, for every kind (adopt too)', async () => {
    const id = betaDevices[0]!;
    await alpha.stop(); // releases every lease: no shard has an owner now
    apps.delete('alpha');
    const probe = createCommandRouter({
      url: db.url,
      instanceId: 'probe',
      shardCount: SHARDS,
      owns: () => false,
      ready: () => false,
      run: async () => {
        throw new Error('nothing runs here');
      },
      logger: silentLogger,
    });
    await probe.start();
    try {
      const started = Date.now();
      const answers = [
        await probe.call({ kind: 'device', deviceId: id }),
        await probe.call({ kind: 'sendEvent', deviceId: id, event: 'HELLO', actor: 'ann' }),
        await probe.call({ kind: 'restartDevice', deviceId: id }),
        await probe.call({ kind: 'cancelCommand', deviceId: id, commandId: 'c-1' }),
        await probe.call({ kind: 'adopt', deviceId: 'never-seen-anywhere' }),
      ];
      for (const a of answers) {
        expect(a.ok).toBe(false);
        expect(!a.ok && a.error.code).toBe('noOwner');
        expect(!a.ok && a.error.message).toMatch(/no instance runs .* try again in a few seconds/);
      }
      expect(Date.now() - started).toBeLessThan(2000);
      // A device in no table is notFound for everything but adopt.
      expect(await probe.call({ kind: 'deviceInspect', deviceId: 'never-seen-anywhere' })).toMatchObject({
        ok: false,
        error: { code: 'notFound' },
      });
    } finally {
      await probe.stop();
    }
  });
});

/**
 * Actions routed to the device's owner (issue 17 §3, src/cluster/command-router.ts), with real
 * apps in this process on a real PostgreSQL (a database of this file's own) and an embedded
 * broker, simulated devices on it. What an operator checks:
 * - asked on alpha, an action on a device beta runs is carried out by beta: alpha answers with
 *   beta's reply, the device's own answer lands in the command log with the operator as actor,
 *   and the owner's refusals (bad arguments, not possible now) come back as they are;
 * - an unknown device is a clear `notFound`, and no instance holding a shard a clear `noOwner`;
 * - the owner stops before it took the action: the shard's next owner carries it out;
 * - the owner stops mid-way (it took the action, never answered): the requester gets
 *   `ownerDidNotAnswer` at its deadline, not a hang, and the action is not run a second time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommandRouter } from '../../src/cluster/command-router.js';
import type { Fleet } from '../../src/devices/fleet.js';
import type { HostApiHandle } from '../../src/host/api.js';
import { createHostApi } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { ActResult } from '../../src/host/contract.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import type { MqttSimDevice } from '../../src/sim/mqtt-device.js';
import { startMqttSimDevice } from '../../src/sim/mqtt-device.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import type { TestDatabase } from '../store/postgres-helpers.js';
import { createTestDatabase } from '../store/postgres-helpers.js';
import { uniqueId, waitFor } from '../transports/helpers.js';

const SHARDS = 16;
const LEASE_MS = 3000;
const ACT_TIMEOUT_MS = 8000;

let db: TestDatabase;
let broker: EmbeddedBroker;
const apps = new Map<string, App>();
const dirs: string[] = [];
const sims: MqttSimDevice[] = [];
const apis: HostApiHandle[] = [];
let alpha: App;
let beta: App;
/** Devices by the instance that runs them once the shards are split. */
const alphaDevices: string[] = [];
const betaDevices: string[] = [];

async function instance(name: string): Promise<App> {
  const dataDir = mkdtempSync(join(tmpdir(), `fv-routing-${name}-`));
  dirs.push(dataDir);
  const app = await startApp({
    dataDir,
    logger: silentLogger,
    storeUrl: db.url,
    cluster: { instanceId: name, shardCount: SHARDS, leaseMs: LEASE_MS, actTimeoutMs: ACT_TIMEOUT_MS },
    mqtt: { url: broker.url },
    demo: false,
    adopt: 'auto',
    conventions: [],
  });
  apps.set(name, app);
  return app;
}

function api(app: App): HostApiHandle {
  const a = createHostApi(app);
  apis.push(a);
  return a;
}

async function device(id: string): Promise<void> {
  sims.push(
    await startMqttSimDevice(broker.url, {
      id,
      telemetryIntervalMs: 1000,
      reconnectMinMs: 100,
      reconnectMaxMs: 500,
    }),
  );
}

/** Runs the device, connected, on this app (and no other). */
const runs = (app: App, id: string) => app.fleet.device(id)?.state.startsWith('connected') === true;

async function act(
  on: App,
  ids: string[],
  action: string,
  args: Record<string, number>,
  actor: string,
): Promise<ActResult[]> {
  const r = await api(on).call('act', { ids, action, args }, { actor });
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value as ActResult[];
}

async function commandsOf(app: App, deviceId: string) {
  const page = await app.store.queryCommands({ deviceId, limit: 50 });
  return page.items.flatMap((i) => (i.ok ? [i.value] : []));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The command's row in the fleet's log once it ended (or as it is after 8 s). */
async function finished(app: App, deviceId: string, commandId: string | undefined) {
  let row: Awaited<ReturnType<typeof commandsOf>>[number] | undefined;
  for (let i = 0; i < 80; i++) {
    row = (await commandsOf(app, deviceId)).find((c) => c.commandId === commandId);
    if (row && row.status !== 'pending' && row.status !== 'sent') break;
    await sleep(100);
  }
  return row;
}

const routedRows = (deviceId: string) =>
  db.query<{
    id: string;
    status: string;
    requested_by: string;
    target: string;
    claimed_by: string | null;
    actor: string;
    result: string | null;
  }>(
    `SELECT id, status, requested_by, target, claimed_by, actor, result FROM fleetvisor_routed_actions
     WHERE device_id = $1 ORDER BY requested_at`,
    [deviceId],
  );

beforeAll(async () => {
  db = await createTestDatabase();
  broker = await startEmbeddedBroker({ port: 0 });
  alpha = await instance('alpha');
  beta = await instance('beta');
  const held = (app: App) => app.cluster?.keeper.held.size ?? 0;
  await waitFor(
    () => held(alpha) === SHARDS / 2 && held(beta) === SHARDS / 2,
    20_000,
    'the shards split 8/8',
    50,
  );
  // Three devices in the shards of each: each is adopted by its owner when it says hello.
  for (let i = 0; alphaDevices.length < 3 || betaDevices.length < 3; i++) {
    const id = uniqueId(`rt${i}-`);
    const list = alpha.cluster?.keeper.owns(id) ? alphaDevices : betaDevices;
    if (list.length < 3) list.push(id);
  }
  for (const id of [...alphaDevices, ...betaDevices]) await device(id);
  await waitFor(
    () => alphaDevices.every((id) => runs(alpha, id)) && betaDevices.every((id) => runs(beta, id)),
    20_000,
    'every device adopted and connected on its owner',
    50,
  );
}, 60_000);

afterAll(async () => {
  for (const a of apis) a.close();
  for (const s of sims) await s.stop().catch(() => {});
  for (const app of [...apps.values()].reverse()) await app.stop().catch(() => {});
  await broker?.close();
  await db?.drop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

describe('actions asked on any instance', () => {
  it("alpha asked, beta carries it out: beta's reply, the device's own answer, the operator as actor in the command log", async () => {
    const id = betaDevices[0]!;
    expect(alpha.fleet.has(id)).toBe(false);
    const [reply] = await act(alpha, [id], 'identify', { seconds: 7 }, 'ann');
    expect(reply).toMatchObject({ id, ok: true, state: 'connected', commandStatus: 'sent' });
    const commandId = reply?.commandId ?? '';
    expect(commandId).toMatch(/^[0-9a-f-]{32,36}$/);

    // Written by beta (the owner, fenced by its lease) into the fleet's log, read here on alpha.
    const row = await finished(alpha, id, commandId);
    expect(row).toMatchObject({
      commandId,
      deviceId: id,
      action: 'identify',
      actor: 'ann',
      status: 'succeeded',
    });
    expect(row?.result).toEqual({ seconds: 7 }); // what the simulated device replied
    expect(beta.fleet.commands.open(id)).toEqual([]);

    const routed = await routedRows(id);
    expect(routed).toHaveLength(1);
    expect(routed[0]).toMatchObject({
      status: 'done',
      requested_by: 'alpha',
      target: 'beta',
      claimed_by: 'beta',
      actor: 'ann',
    });
    expect(JSON.parse(routed[0]?.result ?? '')).toEqual({
      ok: true,
      value: { commandId, state: 'connected', commandStatus: 'sent' },
    });
    const events = await alpha.store.queryEvents({
      deviceId: id,
      kind: 'device.command',
      order: 'desc',
      limit: 5,
    });
    const event = events.items
      .flatMap((e) => (e.ok ? [e.value] : []))
      .find((e) => (e.data as { commandId?: string }).commandId === commandId);
    expect(event?.data).toMatchObject({ action: 'identify', actor: 'ann', commandId });
  });

  it("the owner's refusals come back as they are; a bulk action mixes local and routed devices", async () => {
    const id = betaDevices[1]!;
    // The same refusals as a local action on a device alpha runs itself.
    const local = alphaDevices[0]!;
    const [tooLong, tooLongHere] = await act(alpha, [id, local], 'identify', { seconds: 9999 }, 'ann');
    expect(tooLong).toMatchObject({ id, ok: false, error: { code: 'badArgs' } });
    expect(tooLong?.error?.message).toMatch(/seconds/);
    expect(tooLong?.error).toEqual(tooLongHere?.error);
    const [notNow, notNowHere] = await act(alpha, [id, local], 'connect', {}, 'ann');
    expect(notNow).toMatchObject({ id, ok: false, error: { code: 'notAllowed' } });
    expect(notNow?.error?.message).toBe(`action 'connect' is not possible while ${id} is connected`);
    expect(notNowHere?.error?.message).toBe(`action 'connect' is not possible while ${local} is connected`);

    const ids = [alphaDevices[0]!, betaDevices[1]!, betaDevices[2]!, alphaDevices[1]!];
    const replies = await act(alpha, ids, 'ping', {}, 'bob');
    expect(replies.map((r) => [r.id, r.ok, r.commandStatus])).toEqual(ids.map((x) => [x, true, 'sent']));
    // The other way round: beta asked, alpha carries it out.
    const [back] = await act(beta, [alphaDevices[2]!], 'ping', {}, 'carol');
    expect(back).toMatchObject({ ok: true, commandStatus: 'sent' });
    expect((await routedRows(alphaDevices[2]!))[0]).toMatchObject({
      requested_by: 'beta',
      claimed_by: 'alpha',
      actor: 'carol',
    });
    // Local actions write no routed row.
    expect(await routedRows(alphaDevices[0]!)).toEqual([]);
  });

  it('an unknown device is a clear notFound, asked nowhere', async () => {
    // One unknown id in alpha's own shards and one in beta's: the database says neither is in the
    // fleet (a device of alpha's shards not in its fleet may be pinned to another instance).
    let here: string | undefined;
    let there: string | undefined;
    for (let i = 0; here === undefined || there === undefined; i++) {
      const candidate = `no-such-device-${i}`;
      if (alpha.cluster?.keeper.owns(candidate)) here ??= candidate;
      else there ??= candidate;
    }
    const before = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM fleetvisor_routed_actions');
    const [r, l] = await act(alpha, [there, here], 'ping', {}, 'ann');
    expect(r).toMatchObject({ id: there, ok: false, error: { code: 'notFound' } });
    expect(r?.error?.message).toBe(`no device '${there}' in the fleet`);
    expect(l).toMatchObject({
      id: here,
      ok: false,
      error: { code: 'notFound', message: `no device '${here}' in the fleet` },
    });
    const after = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM fleetvisor_routed_actions');
    expect(after[0]?.n).toBe(before[0]?.n);
  });
});

describe('when the owner stops', () => {
  it('mid-way (it took the action and never answered): the requester gets ownerDidNotAnswer at its deadline, and it never runs again', async () => {
    const id = betaDevices[0]!;
    // Beta takes the action and hangs in it, as an instance stopped or dying mid-way.
    const taken: string[] = [];
    const fleet = beta.fleet as { act: Fleet['act'] };
    const act0 = fleet.act;
    fleet.act = (deviceId, action, args, actor) => {
      if (deviceId !== id) return act0(deviceId, action, args, actor);
      taken.push(action);
      return new Promise(() => {});
    };
    const started = Date.now();
    const asked = act(alpha, [id], 'identify', { seconds: 3 }, 'dave');
    await waitFor(() => taken.length === 1, 5000, 'beta took the action', 20);
    const rows = await routedRows(id);
    expect(rows.at(-1)).toMatchObject({ status: 'running', claimed_by: 'beta', actor: 'dave' });
    const stopping = beta.stop();
    const [r] = await asked;
    const waited = Date.now() - started;
    expect(r).toMatchObject({ id, ok: false, error: { code: 'ownerDidNotAnswer' } });
    expect(r?.error?.message).toMatch(/beta took 'identify' .* did not answer.*unknown/);
    expect(waited).toBeGreaterThanOrEqual(ACT_TIMEOUT_MS - 200);
    expect(waited).toBeLessThan(ACT_TIMEOUT_MS + 3000);
    await stopping;
    apps.delete('beta');

    // Alpha owns every shard now and runs the device; the action it never saw is not run again.
    await waitFor(() => runs(alpha, id), 15_000, `${id} runs on alpha`, 50);
    await sleep(1500); // a sweep or more
    expect((await routedRows(id)).at(-1)).toMatchObject({ status: 'running', claimed_by: 'beta' });
    expect((await commandsOf(alpha, id)).filter((c) => c.actor === 'dave')).toEqual([]);
  }, 40_000);

  it('before it took the action: the next owner of the shard carries it out', async () => {
    const gamma = await instance('gamma');
    const held = (app: App) => app.cluster?.keeper.held.size ?? 0;
    await waitFor(
      () => held(alpha) === SHARDS / 2 && held(gamma) === SHARDS / 2,
      20_000,
      'the shards split 8/8',
      50,
    );
    const mine = [...alphaDevices, ...betaDevices].filter((id) => gamma.cluster?.keeper.owns(id));
    // With 6 devices over 16 shards gamma may have none: add one in its shards if so.
    let id = mine[0];
    if (id === undefined) {
      for (let i = 0; id === undefined; i++) {
        const candidate = uniqueId(`rg${i}-`);
        if (gamma.cluster?.keeper.owns(candidate)) id = candidate;
      }
      await device(id);
    }
    const target = id;
    await waitFor(() => runs(gamma, target), 20_000, `${target} runs on gamma`, 50);

    // Gamma no longer takes actions, but still holds its shards: the action waits, pending.
    await gamma.cluster?.router.stop();
    const asked = act(alpha, [target], 'identify', { seconds: 4 }, 'erin');
    await sleep(300);
    let rows = await routedRows(target);
    expect(rows.at(-1)).toMatchObject({ status: 'pending', target: 'gamma', actor: 'erin' });
    await gamma.stop(); // hands its shards over: alpha takes them and the pending action
    apps.delete('gamma');
    const [r] = await asked;
    expect(r).toMatchObject({ id: target, ok: true, commandStatus: 'sent' });
    rows = await routedRows(target);
    expect(rows.at(-1)).toMatchObject({
      status: 'done',
      target: 'gamma',
      claimed_by: 'alpha',
      actor: 'erin',
    });
    const logged = await finished(alpha, target, r?.commandId);
    expect(logged).toMatchObject({ actor: 'erin', status: 'succeeded', result: { seconds: 4 } });
  }, 60_000);

  it('nobody holds the shard: noOwner at once', async () => {
    const id = alphaDevices[0]!;
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
      const r = await probe.act(id, 'ping', {}, 'ann');
      expect(r.ok).toBe(false);
      expect(!r.ok && r.error.code).toBe('noOwner');
      expect(!r.ok && r.error.message).toMatch(/no instance runs .* try again in a few seconds/);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(await probe.act('no-such-device-y', 'ping', {}, 'ann')).toMatchObject({
        ok: false,
        error: { code: 'notFound' },
      });
    } finally {
      await probe.stop();
    }
  });
});

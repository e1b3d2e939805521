/**
 * The `devices` query of a cluster instance lists the whole fleet (src/host/api/fleet-wide.ts):
 * two real apps in this process on a real PostgreSQL database of this file's own, an embedded
 * broker, simulated MQTT devices adopted by hand on their owner, and devices provisioned in the
 * database before the instances start. Asked on alpha:
 * - every device of the fleet, alpha's live and beta's read from the database, each of beta's
 *   marked remote with owner `beta` and the state, link and firmware beta's own row says;
 * - `scope` own/remote split it; filters (state, tag, text, health) and paging work across both
 *   instances, in the same order as beta's answer to the same query;
 * - every row was read within the refresh period of the call (or, when a read takes longer than a
 *   call waits, of the call before); a slow read (the device table locked) or a failed one (the
 *   pool ended) answers the rows read before, the failure reported once;
 * - a device that disconnects on beta reads disconnected on alpha within the refresh period;
 * - a device failed on beta (its supervisor gave up) reads failed on alpha, and running again
 *   after alpha asks beta to restart it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFleetWide, FLEET_WIDE_REFRESH_MS } from '../../../src/host/api/fleet-wide.js';
import type { HostApiHandle } from '../../../src/host/api.js';
import { createHostApi } from '../../../src/host/api.js';
import type { App } from '../../../src/host/app.js';
import { startApp } from '../../../src/host/app.js';
import type { ArgsOf, DeviceRow, Results, TreeNode } from '../../../src/host/contract.js';
import { silentLogger } from '../../../src/runtime/runtime.js';
import type { MqttSimDevice } from '../../../src/sim/mqtt-device.js';
import { startMqttSimDevice } from '../../../src/sim/mqtt-device.js';
import { openPostgresStore } from '../../../src/store/postgres-store.js';
import type { EmbeddedBroker } from '../../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../../src/transports/embedded-broker.js';
import type { TestDatabase } from '../../store/postgres-helpers.js';
import { createTestDatabase } from '../../store/postgres-helpers.js';
import { uniqueId, waitFor } from '../../transports/helpers.js';

const SHARDS = 16;
const LEASE_MS = 3000;
/** Devices in the database before the instances start (no simulator: disconnected). */
const PROVISIONED = 24;
/** Simulated devices adopted on each instance. */
const LIVE_EACH = 3;

let db: TestDatabase;
let broker: EmbeddedBroker;
const apps: App[] = [];
const apis = new Map<App, HostApiHandle>();
const dirs: string[] = [];
const sims = new Map<string, MqttSimDevice>();
let alpha: App;
let beta: App;
const liveOn = new Map<App, string[]>();

async function instance(name: string): Promise<App> {
  const dataDir = mkdtempSync(join(tmpdir(), `fv-fleet-wide-${name}-`));
  dirs.push(dataDir);
  const app = await startApp({
    dataDir,
    logger: silentLogger,
    storeUrl: db.url,
    cluster: { instanceId: name, shardCount: SHARDS, leaseMs: LEASE_MS },
    mqtt: { url: broker.url },
    demo: false,
    adopt: 'manual',
    conventions: [],
  });
  apps.push(app);
  apis.set(app, createHostApi(app));
  return app;
}

async function call<M extends keyof Results>(on: App, method: M, args: ArgsOf<M>): Promise<Results[M]> {
  const r = await apis.get(on)!.call(method, args);
  if (!r.ok) throw new Error(`${method}: ${r.error.code}: ${r.error.message}`);
  return r.value as Results[M];
}

/** Every page of a `devices` query, `limit` rows at a time. */
async function allPages(on: App, args: ArgsOf<'devices'>, limit: number): Promise<DeviceRow[]> {
  const out: DeviceRow[] = [];
  let offset: number | null = 0;
  while (offset !== null) {
    const page: Results['devices'] = await call(on, 'devices', { ...args, offset, limit });
    out.push(...page.items);
    offset = page.next;
  }
  return out;
}

const rowOf = async (on: App, id: string): Promise<DeviceRow | undefined> =>
  (await call(on, 'devices', { text: id, limit: 10 })).items.find((r) => r.id === id);

/** An id in the shards `app` leases. */
function idOn(app: App, prefix: string): string {
  for (let i = 0; ; i++) {
    const id = uniqueId(`${prefix}${i}-`);
    if (app.cluster?.keeper.owns(id)) return id;
  }
}

const connectedOn = (app: App, id: string) => app.fleet.device(id)?.state === 'connected';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  db = await createTestDatabase();
  broker = await startEmbeddedBroker({ port: 0 });
  const provisioning = await openPostgresStore({ url: db.url });
  for (let i = 1; i <= PROVISIONED; i++)
    await provisioning.upsertDevice({
      id: `fw-${String(i).padStart(2, '0')}`,
      kind: 'fleetvisor.generic',
      name: `Provisioned ${i}`,
      tags: [i % 2 === 0 ? 'even' : 'odd'],
    });
  await provisioning.close();
  alpha = await instance('alpha');
  beta = await instance('beta');
  const held = (app: App) => app.cluster?.keeper.held.size ?? 0;
  await waitFor(() => held(alpha) === SHARDS / 2 && held(beta) === SHARDS / 2, 30_000, 'an 8/8 split', 50);
  for (const app of [alpha, beta]) {
    const ids = Array.from({ length: LIVE_EACH }, (_, i) => idOn(app, `fwl${i}-`));
    liveOn.set(app, ids);
    for (const id of ids)
      sims.set(
        id,
        await startMqttSimDevice(broker.url, {
          id,
          telemetryIntervalMs: 1000,
          reconnectMinMs: 100,
          reconnectMaxMs: 500,
        }),
      );
    await waitFor(
      () => ids.every((id) => app.links.hub?.discovered().some((d) => d.id === id)),
      20_000,
      'discovered',
      50,
    );
    for (const id of ids) await call(app, 'adopt', { id });
    await waitFor(() => ids.every((id) => connectedOn(app, id)), 20_000, 'connected', 50);
  }
  // Every provisioned device supervised by the owner of its shard (each loaded its shards' share).
  await waitFor(
    () => alpha.fleet.list().length + beta.fleet.list().length === PROVISIONED + 2 * LIVE_EACH,
    30_000,
    'the fleet split between the two',
    50,
  );
  // A device adopted on one instance is on the other's list once its owner's write is signalled
  // and read there (src/host/api/remote-push.ts): milliseconds after the adoption, not at once.
  const listsAll = async (app: App) =>
    (await call(app, 'devices', { limit: 1000 })).total === PROVISIONED + 2 * LIVE_EACH;
  for (const app of [alpha, beta]) {
    const deadline = Date.now() + 10_000;
    while (!(await listsAll(app))) {
      if (Date.now() > deadline)
        throw new Error(`${app.cluster?.keeper.instanceId} does not list the whole fleet`);
      await sleep(100);
    }
  }
}, 120_000);

afterAll(async () => {
  for (const a of apis.values()) a.close();
  for (const s of sims.values()) await s.stop().catch(() => {});
  for (const app of [...apps].reverse()) await app.stop().catch(() => {});
  await broker?.close();
  await db?.drop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

describe("a cluster instance's devices query lists the whole fleet", () => {
  it("lists beta's devices on alpha with owner beta, as beta's own rows say", async () => {
    const total = PROVISIONED + 2 * LIVE_EACH;
    const all = await allPages(alpha, {}, 1000);
    expect(all).toHaveLength(total);
    expect(new Set(all.map((r) => r.id)).size).toBe(total);
    for (const r of all) {
      if (alpha.fleet.has(r.id)) expect(r.remote).toBeUndefined();
      else {
        expect(beta.fleet.has(r.id)).toBe(true);
        expect(r.remote?.owner).toBe('beta');
      }
    }
    // Beta's live devices, read on alpha, agree with beta's own rows (the owner's saves land).
    for (const id of liveOn.get(beta)!) {
      await expect
        .poll(
          async () => {
            const there = await rowOf(alpha, id);
            const here = await rowOf(beta, id);
            const fields = (r?: DeviceRow) =>
              r && {
                name: r.name,
                kind: r.kind,
                tags: r.tags,
                health: r.health,
                state: r.state,
                stateEnteredAt: r.stateEnteredAt,
                up: r.link.up,
                via: r.link.via,
                firmware: r.firmware,
              };
            return JSON.stringify(fields(there)) === JSON.stringify(fields(here)) ? 'same' : [there, here];
          },
          { timeout: 10_000, interval: 250 },
        )
        .toBe('same');
      const there = (await rowOf(alpha, id))!;
      expect(there).toMatchObject({ state: 'connected', health: 'running', link: { up: true } });
      expect(there.firmware).toMatch(/\d/);
      expect(there.remote?.savedAt).toBeGreaterThan(0);
    }
    // And the other way round: alpha's devices on beta, owned by alpha.
    const onBeta = await allPages(beta, {}, 1000);
    expect(onBeta.map((r) => r.id)).toEqual(all.map((r) => r.id));
    for (const id of liveOn.get(alpha)!)
      expect(onBeta.find((r) => r.id === id)).toMatchObject({
        remote: { owner: 'alpha' },
        state: 'connected',
      });
  }, 30_000);

  it('scope splits the list into own and remote', async () => {
    const own = await allPages(alpha, { scope: 'own' }, 1000);
    const remote = await allPages(alpha, { scope: 'remote' }, 1000);
    expect(own.map((r) => r.id).sort()).toEqual(
      alpha.fleet
        .list()
        .map((d) => d.id)
        .sort(),
    );
    expect(own.every((r) => r.remote === undefined)).toBe(true);
    expect(remote.map((r) => r.id).sort()).toEqual(
      beta.fleet
        .list()
        .map((d) => d.id)
        .sort(),
    );
    expect(remote.every((r) => r.remote?.owner === 'beta')).toBe(true);
    expect(own.length + remote.length).toBe(PROVISIONED + 2 * LIVE_EACH);
  });

  it('filters and pages across both instances, in the order beta answers too', async () => {
    const connected = await allPages(alpha, { state: 'connected' }, 1000);
    expect(connected.map((r) => r.id).sort()).toEqual([...liveOn.get(alpha)!, ...liveOn.get(beta)!].sort());
    const even = await allPages(alpha, { tag: 'even' }, 1000);
    expect(even).toHaveLength(PROVISIONED / 2);
    expect(even.some((r) => r.remote) && even.some((r) => !r.remote)).toBe(true);
    const text = await allPages(alpha, { text: 'PROVISIONED 1' }, 1000);
    expect(text.map((r) => r.name).sort()).toEqual(
      Array.from({ length: PROVISIONED }, (_, i) => `Provisioned ${i + 1}`)
        .filter((n) => n.toLowerCase().includes('provisioned 1'))
        .sort(),
    );

    // Pages of 5 walk the same list as one page, ordered by id; beta pages identically.
    const whole = (await call(alpha, 'devices', { limit: 1000 })).items.map((r) => r.id);
    expect(whole).toEqual([...whole].sort((a, b) => a.localeCompare(b)));
    const paged = await allPages(alpha, {}, 5);
    expect(paged.map((r) => r.id)).toEqual(whole);
    const page = await call(alpha, 'devices', { tag: 'odd', offset: 5, limit: 4 });
    expect(page.total).toBe(PROVISIONED / 2);
    expect(page.items.map((r) => r.id)).toEqual(
      (await call(beta, 'devices', { tag: 'odd', offset: 5, limit: 4 })).items.map((r) => r.id),
    );
    expect(page.next).toBe(9);
    const last = await call(alpha, 'devices', { tag: 'odd', offset: 10, limit: 4 });
    expect(last.items).toHaveLength(2);
    expect(last.next).toBeNull();
  });

  it('every remote row was read within the refresh period of the call, or of the call before when the read was slow', async () => {
    for (let i = 0; i < 3; i++) {
      const asked = Date.now();
      const remote = (await call(alpha, 'devices', { scope: 'remote', limit: 1000 })).items;
      expect(remote.length).toBeGreaterThan(0);
      // Rows read again since the last full read (their owner signalled a change) are newer.
      const oldest = Math.min(...remote.map((r) => r.remote!.readAt));
      if (oldest < asked - FLEET_WIDE_REFRESH_MS) {
        // The read took longer than a call waits: this call answered the read before, the next
        // one answers the read this call started.
        await sleep(1000);
        const next = (await call(alpha, 'devices', { scope: 'remote', limit: 1000 })).items;
        expect(Math.min(...next.map((r) => r.remote!.readAt))).toBeGreaterThanOrEqual(asked);
      }
      await sleep(FLEET_WIDE_REFRESH_MS / 2);
    }
  }, 20_000);

  it('a read slower than the wait answers the rows read before; a failed read too, reported', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    const reported: string[] = [];
    const wide = createFleetWide({
      db: pool,
      shardCount: SHARDS,
      now: () => Date.now(),
      conventionOf: () => undefined,
      refreshMs: 0,
      maxWaitMs: 300,
      report: (what, error) => reported.push(`${what}: ${(error as Error).message}`),
    });
    try {
      const first = await wide.rows();
      expect(first).toHaveLength(PROVISIONED + 2 * LIVE_EACH);
      const firstReadAt = first[0]!.remote!.readAt;
      // The device table locked by another session: the read waits for it.
      await db.query('BEGIN');
      await db.query('LOCK TABLE devices IN ACCESS EXCLUSIVE MODE');
      let slow: readonly DeviceRow[];
      try {
        slow = await wide.rows();
      } finally {
        await db.query('COMMIT');
      }
      expect(slow).toBe(first);
      await expect.poll(async () => (await wide.rows())[0]!.remote!.readAt > firstReadAt).toBe(true);
      const kept = await wide.rows();
      await pool.end();
      expect(await wide.rows()).toBe(kept);
      expect(reported).toHaveLength(1);
      expect(reported[0]).toMatch(/^reading the fleet from the shared database failed: /);
    } finally {
      if (!pool.ended) await pool.end();
    }
  }, 20_000);

  it('a device that disconnects on beta reads disconnected on alpha within the refresh period', async () => {
    const id = liveOn.get(beta)![0]!;
    expect(await rowOf(alpha, id)).toMatchObject({ state: 'connected', link: { up: true } });
    await sims.get(id)!.stop();
    sims.delete(id);
    await waitFor(() => beta.fleet.device(id)?.state === 'disconnected', 10_000, 'disconnected on beta', 10);
    const changed = Date.now();
    let there = await rowOf(alpha, id);
    while (there?.state !== 'disconnected' || there.link.up) {
      // The owner's write plus one refresh; generous for a loaded machine, far under a poll's 5 s.
      if (Date.now() - changed > FLEET_WIDE_REFRESH_MS + 2000)
        throw new Error(`alpha still says ${JSON.stringify(there)}`);
      await sleep(100);
      there = await rowOf(alpha, id);
    }
    expect(there).toMatchObject({ health: 'running', link: { up: false }, remote: { owner: 'beta' } });
    expect(there.link.reason).toBe((await rowOf(beta, id))?.link.reason);
    expect(there.remote!.savedAt).toBeGreaterThanOrEqual(changed - 1000);
    expect((await allPages(alpha, { state: 'connected' }, 1000)).map((r) => r.id)).not.toContain(id);
  }, 20_000);

  it('a device failed on beta reads failed on alpha, and running again once restarted through alpha', async () => {
    const id = liveOn.get(beta)![1]!;
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
    await expect
      .poll(async () => (await rowOf(alpha, id))?.health, {
        timeout: FLEET_WIDE_REFRESH_MS + 3000,
        interval: 100,
      })
      .toBe('failed');
    expect((await rowOf(alpha, id))?.failure).toEqual(
      beta.fleet.device(id)?.failure && {
        code: beta.fleet.device(id)!.failure!.code,
        message: beta.fleet.device(id)!.failure!.message,
      },
    );
    expect((await call(alpha, 'devices', { health: 'failed', limit: 100 })).items.map((r) => r.id)).toEqual([
      id,
    ]);

    await call(alpha, 'restartDevice', { id });
    await expect
      .poll(async () => (await rowOf(alpha, id))?.health, {
        timeout: FLEET_WIDE_REFRESH_MS + 3000,
        interval: 100,
      })
      .toBe('running');
    expect((await call(alpha, 'devices', { health: 'failed', limit: 100 })).total).toBe(0);
  }, 40_000);
});

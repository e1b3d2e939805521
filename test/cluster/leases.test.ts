/**
 * Shards and leases on a real PostgreSQL (a database of this file's own): the shard function,
 * claiming, renewal, failover after a crash or a partition, gradual hand-over to a joining
 * instance, graceful stop, and the store's fencing of a former owner's writes.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LeaseKeeper, LeaseKeeperOptions } from '../../src/cluster/lease-keeper.js';
import { createLeaseKeeper } from '../../src/cluster/lease-keeper.js';
import { claimLeases, clusterView, initCluster } from '../../src/cluster/leases.js';
import { shardOf } from '../../src/cluster/shard.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import type { PostgresStore } from '../../src/store/postgres-store.js';
import { openPostgresStore } from '../../src/store/postgres-store.js';
import { StoreError } from '../../src/store/store.js';
import type { TestDatabase } from '../store/postgres-helpers.js';
import { createTestDatabase } from '../store/postgres-helpers.js';
import { waitFor } from '../transports/helpers.js';

let db: TestDatabase;
let store: PostgresStore;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  store = await openPostgresStore({ url: db.url });
}, 60_000);

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  await db.query(
    'DELETE FROM fleetvisor_leases; DELETE FROM fleetvisor_cluster; DELETE FROM fleetvisor_instances',
  );
});

afterAll(async () => {
  await store?.close();
  await db?.drop();
});

/** Short enough for quick tests, long enough that a loaded CI machine does not lose leases by stalling. */
const LEASE_MS = 2000;

interface Probe {
  readonly keeper: LeaseKeeper;
  readonly pool: pg.Pool;
  readonly gained: number[];
  readonly handedOver: number[];
  readonly lost: { shards: number[]; at: number }[];
}

async function keeper(
  id: string,
  shardCount: number,
  extra: Partial<LeaseKeeperOptions> = {},
): Promise<Probe> {
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  pool.on('error', () => {});
  const probe: Probe = {
    pool,
    gained: [],
    handedOver: [],
    lost: [],
    keeper: createLeaseKeeper({
      pool,
      instance: { id, host: 'test', pid: process.pid, apiUrl: undefined },
      shardCount: await initCluster(pool, shardCount),
      leaseMs: LEASE_MS,
      logger: silentLogger,
      gained: async (s) => {
        probe.gained.push(...s);
      },
      handOver: async (s) => {
        probe.handedOver.push(...s);
      },
      lost: (s) => {
        probe.lost.push({ shards: [...s], at: Date.now() });
      },
      ...extra,
    }),
  };
  await probe.keeper.start();
  cleanups.push(async () => {
    await probe.keeper.stop().catch(() => {});
    await pool.end().catch(() => {});
  });
  return probe;
}

async function owners(): Promise<Map<number, string | null>> {
  const rows = await db.query<{ shard: number; owner: string | null }>(
    'SELECT shard, owner FROM fleetvisor_leases WHERE expires_at > clock_timestamp() OR owner IS NULL ORDER BY shard',
  );
  return new Map(rows.map((r) => [r.shard, r.owner]));
}

describe('shardOf', () => {
  it('is FNV-1a 32 of the id bytes mod the count: the published test vectors, and UTF-8', () => {
    // FNV-1a 32: "a" → 0xe40c292c, "foobar" → 0xbf9cf968 (the FNV authors' test vectors).
    expect(shardOf('a', 2 ** 31)).toBe(0xe40c292c % 2 ** 31);
    expect(shardOf('foobar', 1000)).toBe(0xbf9cf968 % 1000);
    expect(shardOf('capteur-é', 1024)).toBe(shardOf('capteur-é', 1024));
    expect(shardOf('capteur-é', 1024)).not.toBe(shardOf('capteur-e', 1024));
  });

  it('spreads ids that share a prefix evenly over the shards', () => {
    const counts = new Array<number>(1024).fill(0);
    for (let i = 0; i < 100_000; i++) counts[shardOf(`pump-${String(i).padStart(6, '0')}`, 1024)]!++;
    const mean = 100_000 / 1024;
    expect(Math.max(...counts)).toBeLessThan(mean * 1.6);
    expect(Math.min(...counts)).toBeGreaterThan(mean * 0.5);
  });
});

describe('leases', () => {
  it('the shard count is stored with the fleet: a second instance asking for another count gets the stored one', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      expect(await initCluster(pool, 64)).toBe(64);
      expect(await initCluster(pool, 1024)).toBe(64);
      expect((await owners()).size).toBe(64);
    } finally {
      await pool.end();
    }
  });

  it('three instances share the shards: every shard owned once, each holding its third', async () => {
    const probes = await Promise.all(['a', 'b', 'c'].map((id) => keeper(id, 64)));
    await waitFor(() => probes.map((p) => p.keeper.held.size).join() === '22,21,21', 15_000, 'balanced');
    const all = probes.flatMap((p) => [...p.keeper.held.keys()]);
    expect(new Set(all).size).toBe(64);
    expect(all.length).toBe(64);
    const byDb = await owners();
    for (const p of probes)
      for (const s of p.keeper.held.keys()) expect(byDb.get(s)).toBe(p.keeper.instanceId);
    const view = await clusterView(store.pool);
    expect(view.shardCount).toBe(64);
    expect(view.unowned).toBe(0);
    expect(view.instances.map((i) => [i.id, i.shards])).toEqual(
      probes.map((p) => [p.keeper.instanceId, p.keeper.held.size]),
    );
  }, 30_000);

  it('an instance cut off from the database stops its devices before its leases end; the others take its shards after', async () => {
    const a = await keeper('a', 32);
    const b = await keeper('b', 32);
    await waitFor(() => a.keeper.held.size === 16 && b.keeper.held.size === 16, 15_000, 'balanced');
    const aShards = [...a.keeper.held.keys()].sort((x, y) => x - y);
    const cutAt = Date.now();
    await a.pool.end(); // a's renewals fail from now on, as in a network partition
    await waitFor(() => b.keeper.held.size === 32, 10_000, 'b owns everything');
    const tookOver = Date.now() - cutAt;
    expect(a.lost).toHaveLength(1);
    expect(a.lost[0]!.shards.sort((x, y) => x - y)).toEqual(aShards);
    expect(a.keeper.held.size).toBe(0);
    // a let go before its lease could end, so before b could claim.
    expect(a.lost[0]!.at - cutAt).toBeLessThan(LEASE_MS);
    expect(tookOver).toBeGreaterThanOrEqual(LEASE_MS - 2 * (LEASE_MS / 3));
    expect(tookOver).toBeLessThan(LEASE_MS * 4);
    for (const s of aShards) expect(b.gained).toContain(s);
  }, 30_000);

  it('a joining instance takes shards gradually, a few per pass, until balanced', async () => {
    const a = await keeper('a', 48, { maxMovesPerPass: 4 });
    await waitFor(() => a.keeper.held.size === 48, 10_000, 'a owns everything');
    const c = await keeper('c', 48, { maxMovesPerPass: 4 });
    const sizes: number[] = [];
    const sample = setInterval(() => sizes.push(c.keeper.held.size), 50);
    try {
      await waitFor(() => c.keeper.held.size === 24 && a.keeper.held.size === 24, 30_000, 'balanced');
    } finally {
      clearInterval(sample);
    }
    // Moved in steps of at most 4: c went through several sizes between 0 and 24.
    const distinct = [...new Set(sizes)].filter((n) => n > 0 && n < 24);
    expect(distinct.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < sizes.length; i++) expect(sizes[i]! - sizes[i - 1]!).toBeLessThanOrEqual(4);
    expect(a.handedOver.length).toBe(24);
    expect(a.lost).toHaveLength(0);
  }, 45_000);

  it('a graceful stop hands every shard over and releases it at once: the other claims it without waiting for the lease', async () => {
    const a = await keeper('a', 16);
    const b = await keeper('b', 16);
    await waitFor(() => a.keeper.held.size === 8 && b.keeper.held.size === 8, 15_000, 'balanced');
    const given = [...a.keeper.held.keys()];
    await a.keeper.stop();
    expect(a.handedOver.sort()).toEqual(given.sort());
    expect((await clusterView(store.pool)).instances.find((i) => i.id === 'a')).toMatchObject({
      left: true,
      shards: 0,
    });
    // Free at once (not left to expire): nobody or b holds them the moment stop() returns.
    const now = await db.query<{ shard: number; owner: string | null }>(
      'SELECT shard, owner FROM fleetvisor_leases WHERE shard = ANY($1::int[])',
      [given],
    );
    for (const row of now) expect(row.owner === null || row.owner === 'b').toBe(true);
    await waitFor(() => b.keeper.held.size === 16, 15_000, 'b owns everything');
    expect(b.lost).toHaveLength(0);
  }, 45_000);
});

describe('fencing', () => {
  const snapshot = (deviceId: string) => ({
    deviceId,
    kind: 'fleetvisor.generic',
    snapshot: { machine: {}, timers: [] },
    deadlines: [],
    version: 1,
  });

  it("a former owner's writes of a shard's devices are refused once another instance claimed the shard", async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    cleanups.push(() => pool.end());
    const count = await initCluster(pool, 8);
    const deviceId = 'fenced-1';
    const shard = shardOf(deviceId, count);
    const mine = await claimLeases(pool, 'old', 8, 60_000);
    const epoch = mine.get(shard)!;
    store.setFence({ owner: 'old', tokenOf: (id) => ({ shard: shardOf(id, count), epoch }) });
    cleanups.push(async () => store.setFence(undefined));
    await store.upsertDevice({ id: deviceId, kind: 'fleetvisor.generic', name: deviceId });
    await store.saveSnapshot(snapshot(deviceId));
    const cmd = {
      commandId: 'c-fence-1',
      deviceId,
      action: 'reboot',
      args: {},
      actor: 'test',
      requestedAt: Date.now(),
    };
    expect(await store.recordCommand(cmd)).toEqual({ ok: true, value: undefined });
    await store.appendEvents([{ at: Date.now(), deviceId, kind: 'test.before', data: {} }], {
      durability: 'full',
    });

    // 'old' pauses; its lease runs out and 'new' claims the shard at a higher epoch.
    await db.query(
      "UPDATE fleetvisor_leases SET expires_at = clock_timestamp() - interval '1 second' WHERE shard = $1",
      [shard],
    );
    const taken = await claimLeases(pool, 'new', 1, 60_000);
    expect(taken.get(shard)).toBe(epoch + 1);

    const refused = async (p: Promise<unknown>) => {
      const e = await p.then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(StoreError);
      expect((e as StoreError).code).toBe('fenced');
    };
    await refused(store.saveSnapshot({ ...snapshot(deviceId), version: 2 }));
    await refused(store.appendEvents([{ at: Date.now(), deviceId, kind: 'test.late', data: {} }]));
    await refused(
      store.appendEvents([{ at: Date.now(), deviceId, kind: 'test.late', data: {} }], { durability: 'full' }),
    );
    await refused(store.recordCommand({ ...cmd, commandId: 'c-fence-2' }));
    await refused(store.updateCommand('c-fence-1', { status: 'succeeded', completedAt: Date.now() }));
    // Nothing of it was written; events without a device are not fenced.
    expect(
      (
        await db.query<{ version: number }>('SELECT version FROM snapshots WHERE device_id = $1', [deviceId])
      )[0]?.version,
    ).toBe(1);
    expect(await db.query('SELECT 1 FROM events WHERE kind = $1', ['test.late'])).toHaveLength(0);
    expect(await db.query('SELECT 1 FROM commands WHERE command_id = $1', ['c-fence-2'])).toHaveLength(0);
    expect(
      (
        await db.query<{ status: string }>('SELECT status FROM commands WHERE command_id = $1', ['c-fence-1'])
      )[0]?.status,
    ).toBe('pending');
    await store.appendEvents([{ at: Date.now(), kind: 'test.app', data: {} }], { durability: 'full' });

    // The new owner writes.
    store.setFence({ owner: 'new', tokenOf: (id) => ({ shard: shardOf(id, count), epoch: epoch + 1 }) });
    await store.saveSnapshot({ ...snapshot(deviceId), version: 3 });
    expect(
      (
        await db.query<{ version: number }>('SELECT version FROM snapshots WHERE device_id = $1', [deviceId])
      )[0]?.version,
    ).toBe(3);
  });

  it('an expired lease fences too, even when nobody claimed the shard yet', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    cleanups.push(() => pool.end());
    const count = await initCluster(pool, 4);
    const deviceId = 'fenced-2';
    const mine = await claimLeases(pool, 'solo', 4, 60_000);
    const shard = shardOf(deviceId, count);
    store.setFence({
      owner: 'solo',
      tokenOf: (id) => ({ shard: shardOf(id, count), epoch: mine.get(shard)! }),
    });
    cleanups.push(async () => store.setFence(undefined));
    await db.query(
      "UPDATE fleetvisor_leases SET expires_at = clock_timestamp() - interval '1 ms' WHERE shard = $1",
      [shard],
    );
    const e = await store.saveSnapshot(snapshot(deviceId)).catch((x: unknown) => x);
    expect((e as StoreError).code).toBe('fenced');
  });

  it('a device whose shard this instance does not hold is refused before anything is queued', async () => {
    store.setFence({ owner: 'none', tokenOf: () => undefined });
    cleanups.push(async () => store.setFence(undefined));
    const e = await store.saveSnapshot(snapshot('fenced-3')).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StoreError);
    expect((e as StoreError).message).toMatch(/does not lease the shard of device 'fenced-3'/);
  });
});

/**
 * Serial devices pinned to the instance that has their port (src/cluster/pins.ts), on a real
 * PostgreSQL (a database of this file's own): the store's fence takes a pin's epoch instead of the
 * shard's lease, refuses the shard owner while another instance holds the pin, and a pin that ran
 * out or moved; the lease keeper's `owns` follows the pins; the last hello wins.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LeaseKeeper } from '../../src/cluster/lease-keeper.js';
import { createLeaseKeeper } from '../../src/cluster/lease-keeper.js';
import { claimLeases, initCluster } from '../../src/cluster/leases.js';
import type { PinChanges } from '../../src/cluster/pins.js';
import { devicesDeclaredFor, pinDevice, renewPins, startPinSession } from '../../src/cluster/pins.js';
import { shardOf } from '../../src/cluster/shard.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import type { PostgresStore } from '../../src/store/postgres-store.js';
import { openPostgresStore } from '../../src/store/postgres-store.js';
import type { TestDatabase } from '../store/postgres-helpers.js';
import { createTestDatabase } from '../store/postgres-helpers.js';
import { waitFor } from '../transports/helpers.js';

let db: TestDatabase;
let store: PostgresStore;
let pool: pg.Pool;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  store = await openPostgresStore({ url: db.url });
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  pool.on('error', () => {});
}, 60_000);

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  store.setFence(undefined);
  await db.query(
    'DELETE FROM fleetvisor_pins; DELETE FROM fleetvisor_pin_sessions; DELETE FROM fleetvisor_leases; DELETE FROM fleetvisor_cluster; DELETE FROM fleetvisor_instances',
  );
});

afterAll(async () => {
  await pool?.end();
  await store?.close();
  await db?.drop();
});

const event = (deviceId: string, kind: string) => [{ at: Date.now(), deviceId, kind, data: {} }];
const full = { durability: 'full' } as const;
const code = (p: Promise<unknown>) =>
  p.then(
    () => 'written',
    (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`,
  );

describe('the fence and pins', () => {
  it('a pinned device is written under its pin; the shard owner is refused until the pin runs out', async () => {
    const count = await initCluster(pool, 8);
    const id = 'serial-pump-1';
    const shard = shardOf(id, count);
    const leases = await claimLeases(pool, 'owner', 8, 60_000);
    await store.upsertDevice({ id, kind: 'fleetvisor.generic', name: id });
    const asOwner = () =>
      store.setFence({
        owner: 'owner',
        tokenOf: (d) => ({ shard: shardOf(d, count), epoch: leases.get(shard)! }),
      });
    asOwner();
    expect(await code(store.appendEvents(event(id, 'test.before-pin'), full))).toBe('written');

    const session = await startPinSession(pool, 'port-host', 60_000);
    const epoch = await pinDevice(pool, 'port-host', session, id, shard);
    expect(epoch).toBe(1);
    // The shard's owner: refused, naming who has the port.
    expect(await code(store.appendEvents(event(id, 'test.owner'), full))).toBe(
      `fenced: not written: device '${id}' is pinned to port-host, which has its serial port`,
    );
    expect(await code(store.saveSnapshot(snapshot(id)))).toMatch(/^fenced: .*pinned to port-host/);
    // Another device of the same shard is not concerned.
    const neighbour = Array.from({ length: 200 }, (_, i) => `n-${i}`).find(
      (d) => shardOf(d, count) === shard,
    )!;
    await store.upsertDevice({ id: neighbour, kind: 'fleetvisor.generic', name: neighbour });
    expect(await code(store.appendEvents(event(neighbour, 'test.neighbour'), full))).toBe('written');

    // The pinned instance writes under its pin, without the shard's lease.
    store.setFence({ owner: 'port-host', tokenOf: (d) => (d === id ? { pin: epoch } : undefined) });
    expect(await code(store.appendEvents(event(id, 'test.pinned'), full))).toBe('written');
    expect(await code(store.saveSnapshot(snapshot(id)))).toBe('written');

    // The pin's session runs out (its instance stopped renewing): its writes are refused, the owner's pass.
    await db.query("UPDATE fleetvisor_pin_sessions SET expires_at = clock_timestamp() - interval '1 second'");
    expect(await code(store.appendEvents(event(id, 'test.late'), full))).toMatch(
      /^fenced: not written: the pin of device 'serial-pump-1' at epoch 1 is no longer held by port-host/,
    );
    expect(await renewPins(pool, 'port-host', session, 60_000)).toBe(false); // a session that ran out is not renewed
    // A new session of the same instance does not bring the old pins back.
    const next = await startPinSession(pool, 'port-host', 60_000);
    expect(next).toBe(session + 1);
    expect(await renewPins(pool, 'port-host', next, 60_000)).toBe(true);
    expect(await db.query('SELECT 1 FROM fleetvisor_live_pins')).toHaveLength(0);
    expect(await db.query('SELECT 1 FROM fleetvisor_pins')).toHaveLength(0); // the void ones, deleted
    expect(await code(store.appendEvents(event(id, 'test.late-again'), full))).toMatch(/^fenced: /);
    await expect(pinDevice(pool, 'port-host', session, id, shard)).rejects.toThrow(
      /pin session 1 of port-host ran out/,
    );
    asOwner();
    expect(await code(store.appendEvents(event(id, 'test.owner-again'), full))).toBe('written');
    const kinds = (
      await db.query<{ kind: string }>('SELECT kind FROM events WHERE device_id = $1 ORDER BY seq', [id])
    ).map((r) => r.kind);
    expect(kinds).toEqual(['test.before-pin', 'test.pinned', 'test.owner-again']);
  });

  it('the last hello wins: a pin taken by another instance bumps the epoch and fences the first', async () => {
    const count = await initCluster(pool, 8);
    const id = 'serial-moved';
    await store.upsertDevice({ id, kind: 'fleetvisor.generic', name: id });
    // Each instance pins under a pin session of its own.
    const pinAs = async (owner: string) =>
      pinDevice(pool, owner, await startPinSession(pool, owner, 60_000), id, shardOf(id, count));
    const first = await pinAs('bench-a');
    const second = await pinAs('bench-b');
    expect(second).toBe(first + 1);
    store.setFence({ owner: 'bench-a', tokenOf: () => ({ pin: first }) });
    expect(await code(store.saveSnapshot(snapshot(id)))).toMatch(/^fenced: .*no longer held by bench-a/);
    store.setFence({ owner: 'bench-b', tokenOf: () => ({ pin: second }) });
    expect(await code(store.saveSnapshot(snapshot(id)))).toBe('written');
  });
});

describe('the lease keeper with pins', () => {
  async function keeperOf(
    id: string,
    changes: PinChanges[],
    declared?: () => Promise<readonly string[]>,
  ): Promise<LeaseKeeper> {
    const own = new pg.Pool({ connectionString: db.url, max: 2 });
    own.on('error', () => {});
    const keeper = createLeaseKeeper({
      pool: own,
      instance: { id, host: 'test', pid: process.pid, apiUrl: undefined },
      shardCount: await initCluster(own, 8),
      leaseMs: 1500,
      logger: silentLogger,
      gained: async () => {},
      handOver: async () => {},
      lost: () => {},
      pinned: {
        changed: async (c) => {
          changes.push(c);
        },
        handOver: async () => {},
        ...(declared ? { declared } : {}),
      },
    });
    await keeper.start();
    cleanups.push(async () => {
      await keeper.stop();
      await own.end();
    });
    return keeper;
  }

  it('owns a device heard on its port whatever its shard; the shard owner lets it go, and takes it back when the pin is released', async () => {
    const aChanges: PinChanges[] = [];
    const bChanges: PinChanges[] = [];
    const a = await keeperOf('alpha', aChanges);
    const b = await keeperOf('beta', bChanges);
    await waitFor(() => a.held.size === 4 && b.held.size === 4, 10_000, 'the shards shared 4 and 4');
    // A device of one of alpha's shards, heard on beta's port.
    const id = Array.from({ length: 100 }, (_, i) => `serial-on-beta-${i}`).find((d) =>
      a.held.has(a.shardOf(d)),
    )!;
    expect(a.owns(id)).toBe(true);
    expect(b.owns(id)).toBe(false);

    // Telemetry heard on beta's port: pinned there (no hello needed when nobody holds it).
    b.pins!.heard(id, false);
    await waitFor(() => b.owns(id), 10_000, 'beta to pin it');
    expect(bChanges).toContainEqual({ start: [id], stop: [] });
    expect(b.tokenOf(id)).toEqual({ pin: 1 });
    // Alpha sees the pin at its next renewal: it stops the device and no longer owns it.
    await waitFor(() => !a.owns(id), 10_000, 'alpha to let it go');
    expect(aChanges).toContainEqual({ start: [], stop: [id] });
    expect(a.tokenOf(id)).toBeUndefined();

    // Alpha hears the device's telemetry too (a second port, a misconfiguration): not a hello, no
    // pin taken from beta.
    a.pins!.heard(id, false);
    await new Promise((r) => setTimeout(r, 800));
    expect(b.owns(id)).toBe(true);

    // Beta stops gracefully: its pins are released; alpha, the shard's owner, runs the device again.
    await b.stop();
    await waitFor(() => aChanges.some((c) => c.start.includes(id)), 10_000, 'alpha to start it again');
    expect(a.owns(id)).toBe(true);
    expect(await db.query('SELECT 1 FROM fleetvisor_pins')).toHaveLength(0);
  });

  it('a Modbus device naming an instance is pinned there (read from its attributes), and goes back to its shard when it names none', async () => {
    const aChanges: PinChanges[] = [];
    const bChanges: PinChanges[] = [];
    const id = 'meter-on-beta';
    await store.upsertDevice({
      id,
      kind: 'modbus.device',
      name: id,
      attributes: { port: '/dev/ttyUSB0', slaveId: 1, registers: [], instance: 'beta' },
    });
    await store.upsertDevice({
      id: 'meter-elsewhere',
      kind: 'modbus.device',
      name: 'x',
      attributes: { port: '/dev/ttyUSB1', slaveId: 2, registers: [], instance: 'gamma' },
    });
    const a = await keeperOf('alpha', aChanges);
    await waitFor(() => a.held.size === 8, 10_000, 'alpha to hold every shard');
    let named = true;
    const b = await keeperOf('beta', bChanges, async () =>
      named ? devicesDeclaredFor(pool, 'beta', 'modbus.device') : [],
    );
    await waitFor(() => b.owns(id), 10_000, 'beta to pin the device that names it');
    expect(b.pins!.here.has('meter-elsewhere')).toBe(false); // it names gamma
    expect(bChanges).toContainEqual({ start: [id], stop: [] });
    await waitFor(() => !a.owns(id), 10_000, 'alpha to let it go');

    named = false; // edited to name no instance
    // Back to its shard: run by whichever of the two holds the shard now (they balance), once.
    const shard = a.shardOf(id);
    await waitFor(
      () => !b.pins!.here.has(id) && a.owns(id) === a.held.has(shard) && b.owns(id) === b.held.has(shard),
      10_000,
      'the pin released and the device run by its shard owner',
    );
    expect(a.owns(id)).not.toBe(b.owns(id));
    expect(await db.query('SELECT 1 FROM fleetvisor_pins')).toHaveLength(0);
  });
});

let version = 0;
/** A snapshot row of the device, each at a newer version. */
function snapshot(deviceId: string) {
  version += 1;
  return {
    deviceId,
    kind: 'fleetvisor.generic',
    snapshot: { machine: {}, timers: [] },
    deadlines: [],
    version,
  };
}

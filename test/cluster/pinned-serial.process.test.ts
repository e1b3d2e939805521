/**
 * A serial device in a cluster runs on the instance whose machine has its port, whatever its
 * shard (issue 17 §3; src/cluster/pins.ts), with two real `fleetvisor serve --cluster` processes
 * on a real PostgreSQL database and broker, and a simulated device on a socat pty given to
 * instance `a` only. The device's id is chosen so that its shard is `b`'s. What an operator checks:
 * - the device is online on `a` (pinned there), not supervised by `b`; `b`'s fleet-wide view
 *   names `a` as its owner; an action asked on `b` reaches the device through `a`;
 * - the shard owner cannot write the pinned device (the store's fence refuses it);
 * - kill -9 of `a`: the pin runs out with its lease and `b`, the shard owner, supervises the
 *   device again (offline: nobody can reach its port).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardOf } from '../../src/cluster/shard.js';
import type { PtyPair } from '../../src/sim/pty.js';
import { openPtyPair } from '../../src/sim/pty.js';
import type { SerialSimDevice } from '../../src/sim/serial-device.js';
import { startSerialSimDevice } from '../../src/sim/serial-device.js';
import { openPostgresStore } from '../../src/store/postgres-store.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import type { TestDatabase } from '../store/postgres-helpers.js';
import { createTestDatabase } from '../store/postgres-helpers.js';
import type { ServeInstance } from './serve-cluster.js';
import { createServeCluster } from './serve-cluster.js';

let db: TestDatabase;
let broker: EmbeddedBroker;
let pty: PtyPair;
let device: SerialSimDevice | undefined;
const ptyDir = mkdtempSync(join(tmpdir(), 'fv-pinned-'));
const cluster = createServeCluster('fv-pinned', () => ({ brokerUrl: broker.url, dbUrl: db.url }));
const { instances, call, clusterOf, appPid } = cluster;

async function supervised(inst: ServeInstance): Promise<Map<string, boolean>> {
  const page = await call(inst, 'devices', { scope: 'own', limit: 10_000 });
  return new Map(page.items.map((d) => [d.id, d.link.up]));
}

beforeAll(async () => {
  db = await createTestDatabase();
  broker = await startEmbeddedBroker({ port: 0 });
  pty = await openPtyPair(join(ptyDir, 'host'), join(ptyDir, 'device'));
  await Promise.all([cluster.start('a', ['--serial', pty.hostPath]), cluster.start('b')]);
}, 240_000);

afterAll(async () => {
  await device?.stop();
  for (const inst of instances.values()) {
    await inst.serve.stop().catch(() => {});
    rmSync(inst.dataDir, { recursive: true, force: true });
  }
  await pty?.close();
  rmSync(ptyDir, { recursive: true, force: true });
  await broker?.close();
  await db?.drop();
}, 120_000);

describe('a serial device in a cluster of two', () => {
  it('runs on the instance that has its port though its shard is the other’s, reached from both; the other takes it back when that instance dies', async () => {
    const a = instances.get('a')!;
    const b = instances.get('b')!;
    await cluster.until('both instances hold shards', 60_000, async () => {
      const view = await clusterOf(a);
      const held = view.instances.map((i) => `${i.id}:${i.shards}`).join(' ');
      return { ok: view.unowned === 0 && view.instances.every((i) => i.shards > 0), why: held };
    });
    const shardCount = (
      await db.query<{ shard_count: number }>('SELECT shard_count FROM fleetvisor_cluster')
    )[0]!.shard_count;
    const ofB = new Set(
      (
        await db.query<{ shard: number }>(
          "SELECT shard FROM fleetvisor_leases WHERE owner = 'b' AND expires_at > clock_timestamp()",
        )
      ).map((r) => r.shard),
    );
    let id = '';
    for (let i = 0; !id; i++) if (ofB.has(shardOf(`serial-${i}`, shardCount))) id = `serial-${i}`;

    device = await startSerialSimDevice(pty.devicePath, { id, telemetryIntervalMs: 500 });
    await cluster.until(`${id} online on a`, 60_000, async () => {
      const up = (await supervised(a)).get(id);
      return { ok: up === true, why: `on a: ${up}` };
    });
    expect((await supervised(b)).has(id)).toBe(false);
    const pins = await db.query<{ owner: string }>('SELECT owner FROM fleetvisor_pins WHERE device_id = $1', [
      id,
    ]);
    expect(pins).toEqual([{ owner: 'a' }]);
    // The cluster view, on either instance, counts it with a.
    expect((await clusterOf(b)).instances.map((i) => [i.id, i.pins])).toEqual([
      ['a', 1],
      ['b', 0],
    ]);

    // b's fleet-wide view names a as the device's owner.
    await cluster.until(`b shows ${id} run by a`, 30_000, async () => {
      const page = await call(b, 'devices', { scope: 'all', limit: 10_000 });
      const row = page.items.find((d) => d.id === id);
      return { ok: row?.remote?.owner === 'a', why: JSON.stringify(row?.remote ?? null) };
    });

    // An action asked on b is carried out by a, which has the port: the device answers it.
    const asked = await call(b, 'act', { ids: [id], action: 'identify', args: { seconds: 1 } });
    expect(asked[0], JSON.stringify(asked[0])).toMatchObject({ id, ok: true });
    const commandId = asked[0]!.commandId!;
    await cluster.until('the command succeeded', 30_000, async () => {
      const rows = await db.query<{ status: string }>('SELECT status FROM commands WHERE command_id = $1', [
        commandId,
      ]);
      return { ok: rows[0]?.status === 'succeeded', why: rows[0]?.status ?? 'no row' };
    });

    // The shard's owner, b, cannot write the device while a holds the pin: the fence refuses it.
    const lease = await db.query<{ shard: number; epoch: string }>(
      'SELECT shard, epoch FROM fleetvisor_leases WHERE shard = $1',
      [shardOf(id, shardCount)],
    );
    const asB = await openPostgresStore({ url: db.url });
    try {
      asB.setFence({
        owner: 'b',
        tokenOf: () => ({ shard: lease[0]!.shard, epoch: Number(lease[0]!.epoch) }),
      });
      await expect(
        asB.appendEvents([{ at: Date.now(), deviceId: id, kind: 'device.audit', data: {} }], {
          durability: 'full',
        }),
      ).rejects.toMatchObject({ code: 'fenced', message: expect.stringContaining(`pinned to a`) });
    } finally {
      await asB.close();
    }

    // kill -9 of a: its pin runs out with its leases; b, the shard's owner, supervises the device
    // again (offline: its port is on a's machine).
    const killedAt = Date.now();
    process.kill(appPid(a), 'SIGKILL');
    await cluster.until(`${id} supervised by b`, 30_000, async () => {
      const own = await supervised(b);
      return { ok: own.has(id), why: `b has ${own.size} devices` };
    });
    expect(Date.now() - killedAt).toBeLessThan(6000 + 2000 + 6000);
    expect((await supervised(b)).get(id)).toBe(false);
    const after = new pg.Client({ connectionString: db.url });
    await after.connect();
    try {
      const live = await after.query('SELECT 1 FROM fleetvisor_live_pins WHERE device_id = $1', [id]);
      expect(live.rowCount).toBe(0);
    } finally {
      await after.end();
    }
  }, 240_000);
});

/**
 * The rollouts table of a cluster (src/cluster/shared-rollouts.ts) on a real PostgreSQL (a
 * database of this file's own):
 * - a rollout whose instance left, or was not seen for a lease (a kill -9, a pause), is an orphan;
 *   one whose instance is alive, or that has ended, is not;
 * - two instances claiming one orphan at once: exactly one wins;
 * - the instance taken over writes nothing more: its write leaves the row as the new instance
 *   wrote it, and it is told to let the rollout go;
 * - a row that does not read is neither listed nor taken.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SharedRollout } from '../../src/cluster/shared-rollouts.js';
import {
  claimRollout,
  createRolloutMirror,
  orphanedRollouts,
  readOtherRollouts,
  rolloutInstance,
} from '../../src/cluster/shared-rollouts.js';
import type { RolloutSnapshot } from '../../src/firmware/rollout.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import { migratePostgres } from '../../src/store/postgres-migrations.js';
import type { TestDatabase } from '../store/postgres-helpers.js';
import { createTestDatabase } from '../store/postgres-helpers.js';

let db: TestDatabase;
let pool: pg.Pool;

const LEASE_MS = 6000;

function rollout(id: string, state: RolloutSnapshot['state'] = 'running'): SharedRollout {
  const snapshot = {
    id,
    version: '2.0.0',
    sha256: 'c'.repeat(64),
    state,
    wave: 0,
    waveEnds: [1],
    order: ['pump-1'],
    devices: { 'pump-1': { state: 'updating', wave: 0, attempts: 1 } },
    counts: { updating: 1 },
    createdBy: 'ann',
    createdAt: 1_800_000_000_000,
  } as unknown as RolloutSnapshot;
  return { snapshot, policy: { retries: 0 }, actor: 'ann' };
}

/** An instance row as the lease keeper writes it: seen `agoMs` ago, left or not. */
async function instance(id: string, agoMs: number, left = false): Promise<void> {
  await pool.query(
    `INSERT INTO fleetvisor_instances (id, host, pid, started_at, seen_at, left_at)
     VALUES ($1, 'h', 1, clock_timestamp(), clock_timestamp() - $2 * interval '1 millisecond',
             CASE WHEN $3 THEN clock_timestamp() END)`,
    [id, agoMs, left],
  );
}

async function put(instanceId: string, r: SharedRollout): Promise<void> {
  await pool.query('INSERT INTO fleetvisor_rollouts (id, instance, state, body) VALUES ($1, $2, $3, $4)', [
    r.snapshot.id,
    instanceId,
    r.snapshot.state,
    JSON.stringify(r),
  ]);
}

beforeAll(async () => {
  db = await createTestDatabase();
  pool = new pg.Pool({ connectionString: db.url, max: 6 });
  await migratePostgres(pool);
  await instance('alive', 500);
  await instance('alive2', 500);
  await instance('killed', 20_000); // a kill -9: seen last 20 s ago
  await instance('left', 500, true); // a graceful stop
  await put('alive', rollout('ro-alive'));
  await put('killed', rollout('ro-killed'));
  await put('left', rollout('ro-left', 'paused'));
  await put('killed', rollout('ro-ended', 'completed'));
  await put('nobody', rollout('ro-unknown-instance'));
  await pool.query(
    `INSERT INTO fleetvisor_rollouts (id, instance, state, body) VALUES ('ro-damaged', 'killed', 'running', '{"snapshot":')`,
  );
}, 30_000);

afterAll(async () => {
  await pool?.end();
  await db?.drop();
}, 30_000);

describe('rollouts shared by a cluster', () => {
  it("orphans: the rollouts of an instance that left, was not seen for a lease, or never was; not an alive one's, not an ended one", async () => {
    const orphans = await orphanedRollouts(pool, 'beta', LEASE_MS);
    expect(orphans.map((o) => o.id).sort()).toEqual(['ro-killed', 'ro-left', 'ro-unknown-instance']);
    expect(orphans.find((o) => o.id === 'ro-killed')).toEqual({
      id: 'ro-killed',
      instance: 'killed',
      sha256: 'c'.repeat(64),
    });
  });

  it('two instances claim one orphan at once: exactly one wins, with its body', async () => {
    const [a, b] = await Promise.all([
      claimRollout(pool, 'ro-killed', 'killed', 'alive'),
      claimRollout(pool, 'ro-killed', 'killed', 'alive2'),
    ]);
    const won = [a, b].filter((x) => x !== undefined);
    expect(won).toHaveLength(1);
    expect(won[0]).toMatchObject({ policy: { retries: 0 }, actor: 'ann', snapshot: { id: 'ro-killed' } });
    expect(await rolloutInstance(pool, 'ro-killed')).toBe(a ? 'alive' : 'alive2');
    expect((await orphanedRollouts(pool, 'delta', LEASE_MS)).map((o) => o.id)).not.toContain('ro-killed');
  });

  it('the instance taken over writes nothing more and is told to let the rollout go', async () => {
    expect(await claimRollout(pool, 'ro-left', 'left', 'alive2')).toBeDefined();
    const lost: string[] = [];
    const old = createRolloutMirror({
      db: pool,
      instanceId: 'left',
      logger: silentLogger,
      onLost: (id) => lost.push(id),
    });
    old.saved(rollout('ro-left', 'cancelled')); // an ended one is written at once
    await old.flush();
    expect(lost).toEqual(['ro-left']);
    const row = await pool.query<{ instance: string; state: string }>(
      "SELECT instance, state FROM fleetvisor_rollouts WHERE id = 'ro-left'",
    );
    expect(row.rows[0]).toEqual({ instance: 'alive2', state: 'paused' });
    // The new instance's own writes go through.
    const lostNew: string[] = [];
    const mine = createRolloutMirror({
      db: pool,
      instanceId: 'alive2',
      logger: silentLogger,
      onLost: (id) => lostNew.push(id),
    });
    mine.saved(rollout('ro-left', 'completed'));
    await mine.flush();
    expect(lostNew).toEqual([]);
    expect((await readOtherRollouts(pool, 'alive')).find((r) => r.snapshot.id === 'ro-left')).toMatchObject({
      instance: 'alive2',
      snapshot: { state: 'completed' },
    });
  });

  it('a row that does not read is neither listed nor taken', async () => {
    expect((await readOtherRollouts(pool, 'beta')).map((r) => r.snapshot.id)).not.toContain('ro-damaged');
    expect((await orphanedRollouts(pool, 'beta', LEASE_MS)).map((o) => o.id)).not.toContain('ro-damaged');
  });
});

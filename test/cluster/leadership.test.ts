/**
 * The leader lease on a real PostgreSQL (a database of this file's own): one holder among keepers
 * started at once, fencing (the old holder's epoch refused after a takeover), a holder cut off from
 * the database deposing itself before its lease ends and another taking over after, and a graceful
 * stop handing over at the other's next try, or at once when the other listens for releases.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LeaderKeeper } from '../../src/cluster/leadership.js';
import {
  claimLeadership,
  createLeaderKeeper,
  holdsLeadership,
  leadersNow,
  releaseLeadership,
  renewLeadership,
} from '../../src/cluster/leadership.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import { openPostgresStore } from '../../src/store/postgres-store.js';
import type { TestDatabase } from '../store/postgres-helpers.js';
import { createTestDatabase } from '../store/postgres-helpers.js';
import { waitFor } from '../transports/helpers.js';

let db: TestDatabase;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  // The store's migrations make the tables (fleetvisor_leaders: migration 7).
  await (await openPostgresStore({ url: db.url })).close();
}, 60_000);

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  await db.query('DELETE FROM fleetvisor_leaders');
});

afterAll(async () => {
  await db?.drop();
});

/** Short enough for quick tests, long enough that a loaded machine does not lose it by stalling. */
const LEASE_MS = 2000;

interface Probe {
  readonly keeper: LeaderKeeper;
  readonly pool: pg.Pool;
  /** What happened to it, in order: `elected:<epoch>` and `deposed:<why>`, with when. */
  readonly log: { what: string; at: number }[];
}

function newPool(): pg.Pool {
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  pool.on('error', () => {});
  return pool;
}

async function keeper(owner: string, extra: { leaseMs?: number; listen?: boolean } = {}): Promise<Probe> {
  const pool = newPool();
  const log: Probe['log'] = [];
  const probe: Probe = {
    pool,
    log,
    keeper: createLeaderKeeper({
      pool,
      name: 'primary',
      owner,
      leaseMs: extra.leaseMs ?? LEASE_MS,
      logger: silentLogger,
      ...(extra.listen ? { listenUrl: db.url } : {}),
      elected: (epoch) => {
        log.push({ what: `elected:${epoch}`, at: Date.now() });
      },
      deposed: (why) => {
        log.push({ what: `deposed:${why}`, at: Date.now() });
      },
    }),
  };
  cleanups.push(async () => {
    await probe.keeper.stop().catch(() => {});
    await pool.end().catch(() => {});
  });
  return probe;
}

const leading = (probes: readonly Probe[]) => probes.filter((p) => p.keeper.holding() !== undefined);

describe('the leader lease', () => {
  it('the queries: one claim wins, the old epoch is refused after a takeover, release frees it at once', async () => {
    const pool = newPool();
    cleanups.push(() => pool.end());
    const [a, b] = await Promise.all([
      claimLeadership(pool, 'primary', 'a', 300),
      claimLeadership(pool, 'primary', 'b', 300),
    ]);
    // Exactly one of two claims at once gets it.
    expect([a, b].filter((e) => e !== undefined)).toHaveLength(1);
    const [winner, loser] = a !== undefined ? (['a', 'b'] as const) : (['b', 'a'] as const);
    const first = (a ?? b) as number;
    expect(await holdsLeadership(pool, 'primary', winner, first)).toBe(true);
    expect(await claimLeadership(pool, 'primary', loser, 300)).toBeUndefined();
    // The lease runs out: the other claims at the next epoch; the old holder is fenced.
    await new Promise((r) => setTimeout(r, 400));
    const second = await claimLeadership(pool, 'primary', loser, 5000);
    expect(second).toBe(first + 1);
    expect(await renewLeadership(pool, 'primary', winner, first, 5000)).toBe(false);
    expect(await holdsLeadership(pool, 'primary', winner, first)).toBe(false);
    expect(await releaseLeadership(pool, 'primary', winner, first)).toBe(false);
    expect(await holdsLeadership(pool, 'primary', loser, second as number)).toBe(true);
    expect(await leadersNow(pool)).toMatchObject([{ name: 'primary', owner: loser, epoch: second }]);
    // Even the same owner with a stale epoch is refused (a restarted holder with an old token).
    expect(await renewLeadership(pool, 'primary', loser, first, 5000)).toBe(false);
    expect(await releaseLeadership(pool, 'primary', loser, second)).toBe(true);
    expect(await leadersNow(pool)).toEqual([]);
    expect(await claimLeadership(pool, 'primary', winner, 5000)).toBe((second as number) + 1);
  }, 20_000);

  it('a fence in a transaction: a claim waits for the holder’s transaction, and sees its lease', async () => {
    const pool = newPool();
    cleanups.push(() => pool.end());
    const epoch = (await claimLeadership(pool, 'primary', 'old', 200)) as number;
    const tx = await pool.connect();
    try {
      await tx.query('BEGIN');
      expect(await holdsLeadership(tx, 'primary', 'old', epoch)).toBe(true);
      await new Promise((r) => setTimeout(r, 300)); // the lease expires during the transaction
      let claimed: number | undefined | 'pending' = 'pending';
      const claim = claimLeadership(pool, 'primary', 'new', 5000).then((e) => {
        claimed = e;
      });
      await new Promise((r) => setTimeout(r, 200));
      // The share lock holds the claim back until the holder's transaction ends.
      expect(claimed).toBe('pending');
      await tx.query('COMMIT');
      await claim;
      expect(claimed).toBe(epoch + 1);
      // After the claim the old holder's check fails: whatever it writes under the fence is refused.
      await tx.query('BEGIN');
      expect(await holdsLeadership(tx, 'primary', 'old', epoch)).toBe(false);
      await tx.query('ROLLBACK');
    } finally {
      tx.release();
    }
  }, 20_000);

  it('three keepers started at once: exactly one leads', async () => {
    const probes = await Promise.all(['a', 'b', 'c'].map((o) => keeper(o)));
    await Promise.all(probes.map((p) => p.keeper.start()));
    expect(leading(probes)).toHaveLength(1);
    // And it stays so over several renewals.
    await new Promise((r) => setTimeout(r, LEASE_MS * 1.5));
    expect(leading(probes)).toHaveLength(1);
    const [leader] = leading(probes);
    expect(leader!.log.map((l) => l.what)).toEqual([`elected:${leader!.keeper.holding()!.epoch}`]);
    expect((await leadersNow(leader!.pool)).map((l) => l.owner)).toHaveLength(1);
  }, 20_000);

  it('a holder cut off from the database deposes itself before its lease ends; another takes over after, at a higher epoch, and the old epoch is fenced', async () => {
    const a = await keeper('a');
    await a.keeper.start();
    const b = await keeper('b');
    await b.keeper.start();
    const epochA = a.keeper.holding()!.epoch;
    expect(b.keeper.holding()).toBeUndefined();
    const cutAt = Date.now();
    await a.pool.end(); // a's renewals fail from now on, as in a network partition
    await waitFor(() => b.keeper.holding() !== undefined, 10_000, 'b leads');
    const tookOver = Date.now() - cutAt;
    const deposed = a.log.find((l) => l.what.startsWith('deposed:'));
    expect(deposed?.what).toMatch(/not renewed in time/);
    // a let go before its lease could end, so before b could claim.
    expect(deposed!.at - cutAt).toBeLessThan(LEASE_MS);
    expect(deposed!.at).toBeLessThanOrEqual(b.log[0]!.at);
    expect(tookOver).toBeLessThan(LEASE_MS + LEASE_MS / 3 + 1000);
    expect(b.keeper.holding()!.epoch).toBe(epochA + 1);
    expect(await holdsLeadership(b.pool, 'primary', 'a', epochA)).toBe(false);
    expect(await renewLeadership(b.pool, 'primary', 'a', epochA, LEASE_MS)).toBe(false);
    expect(a.keeper.stats().lost).toBe(1);
  }, 20_000);

  it('a graceful stop deposes first, releases at once, and another leads at its next try', async () => {
    const a = await keeper('a');
    await a.keeper.start();
    const b = await keeper('b');
    await b.keeper.start();
    expect(a.keeper.holding()).toBeDefined();
    const stoppedAt = Date.now();
    await a.keeper.stop();
    expect(a.log.map((l) => l.what)).toEqual([
      expect.stringMatching(/^elected:/),
      'deposed:this instance stops',
    ]);
    expect(await leadersNow(b.pool)).toEqual([]);
    await waitFor(() => b.keeper.holding() !== undefined, 5000, 'b leads');
    // Within one try interval (a third of the lease), not a whole lease.
    expect(Date.now() - stoppedAt).toBeLessThan(LEASE_MS / 3 + 1000);
  }, 20_000);

  it('with a listener, the release is heard and claimed at once, long before the next try', async () => {
    // Tries every 20 s: only the release's notification can make b lead within seconds.
    const a = await keeper('a', { leaseMs: 60_000, listen: true });
    await a.keeper.start();
    const b = await keeper('b', { leaseMs: 60_000, listen: true });
    await b.keeper.start();
    expect(a.keeper.holding()).toBeDefined();
    const stoppedAt = Date.now();
    await a.keeper.stop();
    await waitFor(() => b.keeper.holding() !== undefined, 10_000, 'b leads');
    expect(Date.now() - stoppedAt).toBeLessThan(5000);
    expect(b.keeper.holding()!.epoch).toBe(a.keeper.stats().elected + 1);
  }, 30_000);
});

/**
 * The lease table's queries (schema: migrations 2 and 6 in src/store/postgres-migrations.ts). Every time
 * is the database's clock (`clock_timestamp()`), never an instance's, so instances whose clocks
 * disagree still agree on who holds what. The rules:
 *
 * - A shard is claimed when it is free (never owned, released) or its lease expired; a claim
 *   bumps its epoch, the fencing token the store checks on every write of the shard's devices.
 *   Claims lock with `FOR UPDATE SKIP LOCKED`, so instances claiming at once never wait for each
 *   other and never get the same shard.
 * - A renewal extends only leases that have not expired yet: one that lapsed is lost even if no
 *   one took it, because writes were refused meanwhile and its devices must be restored again.
 * - A release frees the shard at once (a graceful stop, or a hand-over to balance the cluster).
 *
 * @example
 * const count = await initCluster(pool, 1024);
 * const mine = await claimLeases(pool, 'host-a:4242', 100, 6000); // Map shard → epoch
 */
import type pg from 'pg';
import type { FeedFigures } from './feed-figures.js';
import { readFeedFigures } from './feed-figures.js';
import { leadersNow } from './leadership.js';

type Queryable = pg.Pool | pg.PoolClient;

/** Held while the cluster row and its shards are created: 'FLTV' and 2. */
const CLUSTER_LOCK_KEY: readonly [number, number] = [0x464c5456, 2];

/**
 * Creates the fleet's cluster row and one lease row per shard if there are none, and returns the
 * fleet's shard count: the one stored, which wins over `shardCount` for a fleet that has one.
 */
export async function initCluster(pool: pg.Pool, shardCount: number): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...CLUSTER_LOCK_KEY]);
    const found = await client.query<{ shard_count: number }>(
      'SELECT shard_count FROM fleetvisor_cluster WHERE id = 1',
    );
    let count = found.rows[0]?.shard_count;
    if (count === undefined) {
      await client.query('INSERT INTO fleetvisor_cluster (id, shard_count) VALUES (1, $1)', [shardCount]);
      await client.query(
        'INSERT INTO fleetvisor_leases (shard) SELECT generate_series(0, $1::int - 1) ON CONFLICT DO NOTHING',
        [shardCount],
      );
      count = shardCount;
    }
    await client.query('COMMIT');
    return count;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

export interface InstanceInfo {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly apiUrl: string | undefined;
}

/**
 * Says this instance is alive (and not leaving); inserts its row the first time. `feed`: its
 * change feed's figures as of now, for the cluster view (kept as they were when not given).
 */
export async function heartbeat(db: Queryable, me: InstanceInfo, feed?: FeedFigures): Promise<void> {
  await db.query(
    `INSERT INTO fleetvisor_instances (id, host, pid, api_url, started_at, seen_at, feed)
     VALUES ($1, $2, $3, $4, clock_timestamp(), clock_timestamp(), $5::jsonb)
     ON CONFLICT (id) DO UPDATE SET seen_at = clock_timestamp(), left_at = NULL, host = $2, pid = $3,
       api_url = $4, feed = COALESCE($5::jsonb, fleetvisor_instances.feed)`,
    [me.id, me.host, me.pid, me.apiUrl ?? null, feed ? JSON.stringify(feed) : null],
  );
}

/** Marks a graceful stop: the others stop counting this instance at once. */
export async function leave(db: Queryable, id: string): Promise<void> {
  await db.query('UPDATE fleetvisor_instances SET left_at = clock_timestamp() WHERE id = $1', [id]);
}

/** Instances seen within `withinMs` and not gone, by id. */
export async function liveInstances(db: Queryable, withinMs: number): Promise<string[]> {
  const r = await db.query<{ id: string }>(
    `SELECT id FROM fleetvisor_instances
     WHERE left_at IS NULL AND seen_at > clock_timestamp() - $1 * interval '1 millisecond'
     ORDER BY id`,
    [withinMs],
  );
  return r.rows.map((row) => row.id);
}

function epochs(rows: readonly { shard: number; epoch: string | number }[]): Map<number, number> {
  return new Map(rows.map((r) => [r.shard, Number(r.epoch)]));
}

/** Extends this owner's unexpired leases by `leaseMs`; returns what it still holds. */
export async function renewLeases(
  db: Queryable,
  owner: string,
  leaseMs: number,
): Promise<Map<number, number>> {
  const r = await db.query<{ shard: number; epoch: string }>(
    `UPDATE fleetvisor_leases SET expires_at = clock_timestamp() + $2 * interval '1 millisecond'
     WHERE owner = $1 AND expires_at > clock_timestamp()
     RETURNING shard, epoch`,
    [owner, leaseMs],
  );
  return epochs(r.rows);
}

/** Claims up to `max` free or expired shards for `owner`, each at a new epoch. */
export async function claimLeases(
  db: Queryable,
  owner: string,
  max: number,
  leaseMs: number,
): Promise<Map<number, number>> {
  if (max <= 0) return new Map();
  const r = await db.query<{ shard: number; epoch: string }>(
    `WITH free AS (
       SELECT shard FROM fleetvisor_leases
       WHERE owner IS NULL OR expires_at <= clock_timestamp()
       ORDER BY (owner IS NULL) DESC, shard
       LIMIT $2
       FOR UPDATE SKIP LOCKED
     )
     UPDATE fleetvisor_leases AS l
     SET owner = $1, epoch = l.epoch + 1, expires_at = clock_timestamp() + $3 * interval '1 millisecond',
       acquired_at = clock_timestamp()
     FROM free WHERE l.shard = free.shard
     RETURNING l.shard, l.epoch`,
    [owner, max, leaseMs],
  );
  return epochs(r.rows);
}

/** Frees these shards of `owner` (all of them with `'all'`) at once. */
export async function releaseLeases(
  db: Queryable,
  owner: string,
  shards: readonly number[] | 'all',
): Promise<number> {
  const r =
    shards === 'all'
      ? await db.query(
          `UPDATE fleetvisor_leases SET owner = NULL, expires_at = '-infinity' WHERE owner = $1`,
          [owner],
        )
      : await db.query(
          `UPDATE fleetvisor_leases SET owner = NULL, expires_at = '-infinity'
           WHERE owner = $1 AND shard = ANY($2::int[])`,
          [owner, [...shards]],
        );
  return r.rowCount ?? 0;
}

export interface ClusterInstanceView {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly apiUrl: string | null;
  readonly startedAt: number;
  /** How long ago it last renewed (ms, the database's clock). */
  readonly seenAgoMs: number;
  readonly left: boolean;
  /** Shards whose unexpired lease it holds. */
  readonly shards: number;
  /** Devices it holds an unexpired pin of: their serial ports are on its machine (src/cluster/pins.ts). */
  readonly pins: number;
  /** Its oldest and newest lease claim, ms ago; null when it holds none. */
  readonly oldestLeaseAgeMs: number | null;
  readonly newestLeaseAgeMs: number | null;
  /** Its change feed's figures as of its last heartbeat (the last notice's age as of now); null: none written. */
  readonly feed: FeedFigures | null;
  /** The roles whose leader lease it holds (src/cluster/leadership.ts): `['primary']` or none. */
  readonly leads: readonly string[];
}

export interface ClusterView {
  readonly shardCount: number;
  readonly instances: readonly ClusterInstanceView[];
  /** Shards nobody holds an unexpired lease on (between an owner's death and a claim). */
  readonly unowned: number;
  /** Devices of the whole fleet (the device table), whichever instance runs them. */
  readonly fleetDevices: number;
}

/** Instances (seen within the last hour, or holding leases) and what each holds. */
export async function clusterView(db: Queryable): Promise<ClusterView> {
  const count = await db.query<{ shard_count: number }>(
    'SELECT shard_count FROM fleetvisor_cluster WHERE id = 1',
  );
  const rows = await db.query<{
    id: string;
    host: string;
    pid: number;
    api_url: string | null;
    started_at: Date;
    seen_ago: string;
    left: boolean;
    shards: string;
    oldest: string | null;
    newest: string | null;
    feed: unknown;
    pins: string;
  }>(
    `SELECT i.id, i.host, i.pid, i.api_url, i.started_at, i.feed,
       (extract(epoch FROM clock_timestamp() - i.seen_at) * 1000)::bigint AS seen_ago,
       i.left_at IS NOT NULL AS left,
       count(l.shard) AS shards,
       (extract(epoch FROM clock_timestamp() - min(l.acquired_at)) * 1000)::bigint AS oldest,
       (extract(epoch FROM clock_timestamp() - max(l.acquired_at)) * 1000)::bigint AS newest,
       (SELECT count(*) FROM fleetvisor_live_pins p WHERE p.owner = i.id) AS pins
     FROM fleetvisor_instances i
     LEFT JOIN fleetvisor_leases l ON l.owner = i.id AND l.expires_at > clock_timestamp()
     GROUP BY i.id
     HAVING count(l.shard) > 0 OR i.seen_at > clock_timestamp() - interval '1 hour'
     ORDER BY i.id`,
  );
  const unowned = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM fleetvisor_leases WHERE owner IS NULL OR expires_at <= clock_timestamp()`,
  );
  const devices = await db.query<{ n: string }>('SELECT count(*) AS n FROM devices');
  const leaders = await leadersNow(db);
  const leadsOf = (id: string) => leaders.filter((l) => l.owner === id).map((l) => l.name);
  return {
    shardCount: count.rows[0]?.shard_count ?? 0,
    instances: rows.rows.map((r) => ({
      id: r.id,
      host: r.host,
      pid: r.pid,
      apiUrl: r.api_url,
      startedAt: r.started_at.getTime(),
      seenAgoMs: Number(r.seen_ago),
      left: r.left,
      shards: Number(r.shards),
      pins: Number(r.pins),
      oldestLeaseAgeMs: r.oldest === null ? null : Number(r.oldest),
      newestLeaseAgeMs: r.newest === null ? null : Number(r.newest),
      feed: readFeedFigures(r.feed, Number(r.seen_ago)),
      leads: leadsOf(r.id),
    })),
    unowned: Number(unowned.rows[0]?.n ?? 0),
    fleetDevices: Number(devices.rows[0]?.n ?? 0),
  };
}

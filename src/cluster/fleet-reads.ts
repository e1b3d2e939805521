/**
 * Reads of the whole fleet from the shared database, whichever instance supervises each device
 * (docs/scale-out.md, "One fleet in every UI"): the device table with each device's saved state
 * (its snapshot row, which its owner rewrites at every transition), who leases each shard, and the
 * events that say what a snapshot does not (link up or down, failed or restarted). A few queries
 * whatever the fleet's size, never one per device; a device's rows are read again only when their
 * version changed ({@link readFleetVersions}). Nothing here is fenced: these are reads.
 *
 * Events are read incrementally: {@link readPresence} answers the latest link and health event of
 * each device among those after a `seq`; the caller passes a seq some way before the last it saw,
 * because identity values are taken at insert and committed in any order (a slow transaction may
 * commit seq 100 after seq 101 was read).
 *
 * @example
 * const versions = await readFleetVersions(pool);    // [{ id, version }]
 * const devices = await readFleetDevices(pool, ['pump-1']); // [{ id, version, kind, name, tags, status, snapshot, savedAt }]
 * const leases = await readShardOwners(pool);        // shard → { owner, acquiredAt } (unexpired only)
 * const events = await readPresence(pool, 0);        // [{ seq, deviceId, topic: 'link', kind, at, data }]
 * const latest = await readLatestPresence(pool, ['pump-1']); // the same, of these devices only
 * const picked = await readRolloutCandidates(pool, { kinds: ['fleetvisor.generic'] }); // [{ id, kind, tags, firmware }]
 */
import type pg from 'pg';

type Queryable = pg.Pool | pg.PoolClient;

/**
 * Which version of each device's rows the database holds: the row versions (`xmin`) of its device
 * row and its snapshot row, which change at every write. Compared for equality only, so that only
 * the devices written since the last read are read again.
 */
export interface FleetDeviceVersion {
  readonly id: string;
  /** `devices.xmin`, and `snapshots.xmin` (null: no snapshot), joined: changes at every write of either. */
  readonly version: string;
}

const VERSION = `d.xmin::text || '/' || coalesce(s.xmin::text, '')`;

/** Every device's id and {@link FleetDeviceVersion.version} (one narrow query over the whole fleet). */
export async function readFleetVersions(db: Queryable): Promise<FleetDeviceVersion[]> {
  const r = await db.query<{ id: string; version: string }>(
    `SELECT d.id, ${VERSION} AS version FROM devices d LEFT JOIN snapshots s ON s.device_id = d.id`,
  );
  return r.rows;
}

/** A device as the device table and its snapshot row hold it: JSON left as text, parsed per row by the caller. */
export interface FleetDeviceRead extends FleetDeviceVersion {
  readonly kind: string;
  readonly name: string;
  /** JSON array of strings. */
  readonly tags: string;
  /** JSON object: what the device reported (its firmware among it). */
  readonly status: string;
  /** The snapshot row's JSON (the fleet's stored state: machine, timers, stateEnteredAt); null: none saved. */
  readonly snapshot: string | null;
  /** When its owner last saved the snapshot (wall ms, the owner's clock); null: none saved. */
  readonly savedAt: number | null;
}

/** The devices named (all when `ids` is undefined) with their snapshots, in one query. */
export async function readFleetDevices(db: Queryable, ids?: readonly string[]): Promise<FleetDeviceRead[]> {
  const r = await db.query<{
    id: string;
    version: string;
    kind: string;
    name: string;
    tags: string;
    status: string;
    snapshot: string | null;
    saved_at: number | string | null;
  }>(
    `SELECT d.id, ${VERSION} AS version, d.kind, d.name, d.tags, d.status, s.snapshot,
       s.updated_at AS saved_at
     FROM devices d LEFT JOIN snapshots s ON s.device_id = d.id
     ${ids === undefined ? '' : 'WHERE d.id = ANY($1::text[])'}`,
    ids === undefined ? [] : [ids],
  );
  return r.rows.map((x) => ({
    id: x.id,
    version: x.version,
    kind: x.kind,
    name: x.name,
    tags: x.tags,
    status: x.status,
    snapshot: x.snapshot,
    savedAt: x.saved_at === null ? null : Number(x.saved_at),
  }));
}

/** A device as a rollout selects it (src/host/api/rollouts.ts): its kind, tags and reported firmware. */
export interface RolloutCandidate {
  readonly id: string;
  readonly kind: string;
  readonly tags: readonly string[];
  /** The version it reported running (`status.firmware`). */
  readonly firmware: string | undefined;
}

/**
 * The devices named (`ids`), or every device of these kinds (`kinds`), from the device table, for
 * a rollout created on any instance. One query; a row whose JSON does not parse reads as no tags
 * and no firmware.
 */
export async function readRolloutCandidates(
  db: Queryable,
  which: { readonly ids: readonly string[] } | { readonly kinds: readonly string[] },
): Promise<RolloutCandidate[]> {
  const byIds = 'ids' in which;
  const r = await db.query<{ id: string; kind: string; tags: string; status: string }>(
    `SELECT id, kind, tags, status FROM devices WHERE ${byIds ? 'id' : 'kind'} = ANY($1::text[])`,
    [byIds ? which.ids : which.kinds],
  );
  const parse = (text: string): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  };
  return r.rows.map((x) => {
    const tags = parse(x.tags);
    const status = parse(x.status) as { firmware?: unknown } | undefined;
    return {
      id: x.id,
      kind: x.kind,
      tags: Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string') : [],
      firmware: typeof status?.firmware === 'string' ? status.firmware : undefined,
    };
  });
}

/** A shard's unexpired lease: its owner and when the owner claimed it (the database's clock, wall ms). */
export interface ShardOwner {
  readonly owner: string;
  readonly acquiredAt: number;
}

/** The unexpired leases, by shard; a shard missing has no owner now (free, or between an owner's death and a claim). */
export async function readShardOwners(db: Queryable): Promise<Map<number, ShardOwner>> {
  const r = await db.query<{ shard: number; owner: string; acquired: number | string }>(
    `SELECT shard, owner, (extract(epoch FROM acquired_at) * 1000)::bigint AS acquired
     FROM fleetvisor_leases
     WHERE owner IS NOT NULL AND expires_at > clock_timestamp()`,
  );
  return new Map(r.rows.map((x) => [x.shard, { owner: x.owner, acquiredAt: Number(x.acquired) }]));
}

/**
 * Who runs each device: the unexpired leases by shard, and the unexpired pins by device (a pinned
 * device runs on the instance that has its serial port, whatever its shard: src/cluster/pins.ts).
 */
export interface FleetOwners {
  readonly shards: Map<number, ShardOwner>;
  readonly pins: Map<string, ShardOwner>;
}

/** {@link readShardOwners}, and the unexpired pins (few: a machine has a handful of serial ports). */
export async function readFleetOwners(db: Queryable): Promise<FleetOwners> {
  const shards = await readShardOwners(db);
  const r = await db.query<{ device_id: string; owner: string; pinned: number | string }>(
    `SELECT device_id, owner, (extract(epoch FROM pinned_at) * 1000)::bigint AS pinned
     FROM fleetvisor_live_pins`,
  );
  return {
    shards,
    pins: new Map(r.rows.map((x) => [x.device_id, { owner: x.owner, acquiredAt: Number(x.pinned) }])),
  };
}

/** The event kinds that say whether a device's link is up (`link`) and whether it failed (`health`). */
export const PRESENCE_KINDS = {
  link: ['device.online', 'device.offline'],
  health: ['device.failed', 'device.restarted'],
} as const;

export interface PresenceEvent {
  readonly seq: number;
  readonly deviceId: string;
  readonly topic: keyof typeof PRESENCE_KINDS;
  readonly kind: string;
  /** Wall ms, the writer's clock. */
  readonly at: number;
  /** JSON text. */
  readonly data: string;
}

/**
 * The latest `link` and the latest `health` event of each device among the events after
 * `afterSeq` (one query, on the events-by-kind index; `afterSeq` 0: the whole log once).
 */
export async function readPresence(db: Queryable, afterSeq: number): Promise<PresenceEvent[]> {
  const r = await db.query<{
    seq: number | string;
    device_id: string;
    topic: 'link' | 'health';
    kind: string;
    at: number | string;
    data: string;
  }>(
    `SELECT DISTINCT ON (device_id, topic) seq, device_id, topic, kind, at, data
     FROM (SELECT seq, device_id, kind, at, data,
                  CASE WHEN kind = ANY($2::text[]) THEN 'link' ELSE 'health' END AS topic
           FROM events
           WHERE kind = ANY($1::text[]) AND seq > $3 AND device_id IS NOT NULL) e
     ORDER BY device_id, topic, seq DESC`,
    [[...PRESENCE_KINDS.link, ...PRESENCE_KINDS.health], [...PRESENCE_KINDS.link], afterSeq],
  );
  return r.rows.map((x) => ({
    seq: Number(x.seq),
    deviceId: x.device_id,
    topic: x.topic,
    kind: x.kind,
    at: Number(x.at),
    data: x.data,
  }));
}

/**
 * The latest `link` and the latest `health` event of each of these devices, whatever their seqs
 * (one query: for each device and topic, the events-by-device index walked back to the first
 * match). For a device whose owner just signalled a change: its events committed, in whatever
 * seq order, are all there.
 */
export async function readLatestPresence(db: Queryable, ids: readonly string[]): Promise<PresenceEvent[]> {
  const r = await db.query<{
    seq: number | string;
    device_id: string;
    topic: 'link' | 'health';
    kind: string;
    at: number | string;
    data: string;
  }>(
    `SELECT e.seq, e.device_id, t.topic, e.kind, e.at, e.data
     FROM unnest($1::text[]) AS d (id)
     CROSS JOIN (VALUES ('link', $2::text[]), ('health', $3::text[])) AS t (topic, kinds)
     CROSS JOIN LATERAL (
       SELECT seq, device_id, kind, at, data FROM events
       WHERE device_id = d.id AND kind = ANY(t.kinds)
       ORDER BY seq DESC LIMIT 1) e`,
    [ids, [...PRESENCE_KINDS.link], [...PRESENCE_KINDS.health]],
  );
  return r.rows.map((x) => ({
    seq: Number(x.seq),
    deviceId: x.device_id,
    topic: x.topic,
    kind: x.kind,
    at: Number(x.at),
    data: x.data,
  }));
}

/**
 * Fencing of a cluster instance's writes on PostgreSQL (docs/scale-out.md; {@link StoreFence}):
 * a device's write is refused with `fenced`, before it is queued when this instance holds no
 * token for the device's shard (or pin), and in its transaction when the lease row (or pin row)
 * no longer matches, or when another instance has pinned the device meanwhile.
 *
 * @example
 * const fence = createPostgresFence(write);
 * fence.set({ owner: 'instance-a', tokenOf: (id) => keeper.tokenOf(id) });
 * await fence.change('pump-1', 'INSERT INTO snapshots …', params);   // rejects `fenced` if the lease is gone
 */
import type pg from 'pg';
import { StoreError } from './store.js';
import type { Write } from './store-life.js';

/**
 * What a cluster instance holds (src/cluster/lease-keeper.ts): the fencing token of a device's
 * shard. With a fence set, every write of a device's snapshot, events and commands checks, in
 * the transaction that writes it, that the shard's lease row still names this owner with this
 * epoch and has not expired on the database's clock (the row is share-locked until the commit,
 * so a new owner's claim waits for it or is seen by it). Telemetry is not fenced: a point is a
 * measurement kept at most once by its `(boot, seq)`, whoever writes it.
 */
export interface StoreFence {
  /** This instance, as the lease rows name their owner. */
  readonly owner: string;
  /**
   * The device's token: the shard and the epoch this instance holds it at, or, for a device pinned
   * to this instance (its serial port is here; src/cluster/pins.ts), the pin's epoch, which
   * fences instead of the shard's lease. Undefined when it holds neither.
   */
  tokenOf(
    deviceId: string,
  ): { readonly shard: number; readonly epoch: number } | { readonly pin: number } | undefined;
}

/** What a write needs to hold: shard leases (shard → epoch), and pins (device → epoch). */
export interface FenceTokens {
  readonly shards: Map<number, number>;
  readonly pins: Map<string, number>;
  /** The devices written under a shard lease: none of them may be pinned by another instance. */
  readonly sharded: string[];
}

export interface PostgresFence {
  /** Fences the writes of devices from now on; undefined: no fence. */
  set(fence: StoreFence | undefined): void;
  /** True while a fence is set. */
  readonly active: boolean;
  /** The tokens the fence holds for these devices; throws `fenced` for one it holds none for. */
  tokensOf(deviceIds: Iterable<string | null>): FenceTokens | undefined;
  /**
   * In the write's transaction: the leases and pins still ours at our epochs, share-locked until
   * commit, and no device written under a shard lease pinned by another instance.
   */
  check(conn: pg.PoolClient, deviceIds: Iterable<string | null>): Promise<void>;
  /** A device's one statement in the write queue (`'full'`), fenced; resolves with the rows changed. */
  change(deviceId: string, sql: string, params: readonly unknown[]): Promise<number>;
}

export function createPostgresFence(write: Write<pg.PoolClient>): PostgresFence {
  let fence: StoreFence | undefined;

  function tokensOf(deviceIds: Iterable<string | null>): FenceTokens | undefined {
    if (!fence) return undefined;
    const want: FenceTokens = { shards: new Map(), pins: new Map(), sharded: [] };
    for (const id of deviceIds) {
      if (id === null) continue;
      const token = fence.tokenOf(id);
      if (!token)
        throw new StoreError(
          'fenced',
          `not written: this instance (${fence.owner}) does not lease the shard of device '${id.slice(0, 80)}'`,
        );
      if ('pin' in token) want.pins.set(id, token.pin);
      else {
        want.shards.set(token.shard, token.epoch);
        want.sharded.push(id);
      }
    }
    return want;
  }

  async function check(conn: pg.PoolClient, deviceIds: Iterable<string | null>): Promise<void> {
    const want = tokensOf(deviceIds);
    if (!want || !fence) return;
    if (want.shards.size > 0) {
      const held = await conn.query<{ shard: number; epoch: number }>(
        `SELECT shard, epoch FROM fleetvisor_leases
         WHERE shard = ANY($1::int[]) AND owner = $2 AND expires_at > clock_timestamp()
         FOR SHARE`,
        [[...want.shards.keys()], fence.owner],
      );
      const epochs = new Map(held.rows.map((r) => [r.shard, Number(r.epoch)]));
      for (const [shard, epoch] of want.shards)
        if (epochs.get(shard) !== epoch)
          throw new StoreError(
            'fenced',
            `not written: the lease of shard ${shard} at epoch ${epoch} is no longer held by ${fence.owner} ` +
              '(another instance owns it now, or it ran out)',
          );
      // A statement of its own, so its snapshot is taken after the lease rows were locked: a pin
      // commits holding its shard's row FOR UPDATE, so it is either seen here or waits for this
      // transaction (src/cluster/pins.ts).
      const pinned = await conn.query<{ device_id: string; owner: string }>(
        `SELECT device_id, owner FROM fleetvisor_live_pins
         WHERE device_id = ANY($1::text[]) AND owner <> $2
         LIMIT 1`,
        [want.sharded, fence.owner],
      );
      const other = pinned.rows[0];
      if (other)
        throw new StoreError(
          'fenced',
          `not written: device '${other.device_id.slice(0, 80)}' is pinned to ${other.owner}, which has its serial port`,
        );
    }
    if (want.pins.size > 0) {
      const held = await conn.query<{ device_id: string; epoch: string }>(
        `SELECT p.device_id, p.epoch FROM fleetvisor_pins p
         JOIN fleetvisor_pin_sessions s ON s.owner = p.owner AND s.session = p.session
         WHERE p.device_id = ANY($1::text[]) AND p.owner = $2 AND s.expires_at > clock_timestamp()
         FOR SHARE OF p`,
        [[...want.pins.keys()], fence.owner],
      );
      const epochs = new Map(held.rows.map((r) => [r.device_id, Number(r.epoch)]));
      for (const [id, epoch] of want.pins)
        if (epochs.get(id) !== epoch)
          throw new StoreError(
            'fenced',
            `not written: the pin of device '${id.slice(0, 80)}' at epoch ${epoch} is no longer held by ${fence.owner} ` +
              '(its port moved to another instance, or the pin ran out)',
          );
    }
  }

  return {
    set(next) {
      fence = next;
    },
    get active() {
      return fence !== undefined;
    },
    tokensOf,
    check,
    change(deviceId, sql, params) {
      tokensOf([deviceId]);
      return write('full', 'one', async (conn) => {
        await check(conn, [deviceId]);
        return (await conn.query(sql, [...params])).rowCount ?? 0;
      });
    },
  };
}

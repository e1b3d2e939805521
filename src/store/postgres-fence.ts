/**
 * Fencing of a cluster instance's writes on PostgreSQL (docs/scale-out.md; {@link StoreFence}):
 * a device's write is refused with `fenced`, before it is queued when this instance holds no
 * token for the device's shard, and in its transaction when the lease row no longer matches.
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
  /** The shard of the device and the epoch this instance holds it at; undefined when it holds none. */
  tokenOf(deviceId: string): { readonly shard: number; readonly epoch: number } | undefined;
}

export interface PostgresFence {
  /** Fences the writes of devices from now on; undefined: no fence. */
  set(fence: StoreFence | undefined): void;
  /** True while a fence is set. */
  readonly active: boolean;
  /** The tokens the fence holds for these devices; throws `fenced` for one it holds none for. */
  tokensOf(deviceIds: Iterable<string | null>): Map<number, number> | undefined;
  /** In the write's transaction: the leases still ours at our epochs, share-locked until commit. */
  check(conn: pg.PoolClient, deviceIds: Iterable<string | null>): Promise<void>;
  /** A device's one statement in the write queue (`'full'`), fenced; resolves with the rows changed. */
  change(deviceId: string, sql: string, params: readonly unknown[]): Promise<number>;
}

export function createPostgresFence(write: Write<pg.PoolClient>): PostgresFence {
  let fence: StoreFence | undefined;

  function tokensOf(deviceIds: Iterable<string | null>): Map<number, number> | undefined {
    if (!fence) return undefined;
    const want = new Map<number, number>();
    for (const id of deviceIds) {
      if (id === null) continue;
      const token = fence.tokenOf(id);
      if (!token)
        throw new StoreError(
          'fenced',
          `not written: this instance (${fence.owner}) does not lease the shard of device '${id.slice(0, 80)}'`,
        );
      want.set(token.shard, token.epoch);
    }
    return want;
  }

  async function check(conn: pg.PoolClient, deviceIds: Iterable<string | null>): Promise<void> {
    const want = tokensOf(deviceIds);
    if (!want || want.size === 0 || !fence) return;
    const held = await conn.query<{ shard: number; epoch: number }>(
      `SELECT shard, epoch FROM fleetvisor_leases
       WHERE shard = ANY($1::int[]) AND owner = $2 AND expires_at > clock_timestamp()
       FOR SHARE`,
      [[...want.keys()], fence.owner],
    );
    const epochs = new Map(held.rows.map((r) => [r.shard, Number(r.epoch)]));
    for (const [shard, epoch] of want)
      if (epochs.get(shard) !== epoch)
        throw new StoreError(
          'fenced',
          `not written: the lease of shard ${shard} at epoch ${epoch} is no longer held by ${fence.owner} ` +
            '(another instance owns it now, or it ran out)',
        );
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

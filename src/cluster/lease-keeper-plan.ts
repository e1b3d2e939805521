/**
 * The lease keeper's arithmetic, as pure functions (lease-keeper.ts tells the whole story): when
 * to renew and when to give up, this instance's share of the shards, which shards to hand over,
 * and which leases a renewal found gone.
 *
 * @example
 * leaseTiming(6000); // { everyMs: 2000, safetyMs: 1000 }: renew every 2 s, let go 1 s before the end
 * targetShare(['a', 'b', 'c'], 'a', 64); // 22 (64 = 21 × 3 + 1: the first by id takes one more)
 */

export interface LeaseTiming {
  /** Renewal period: a third of the lease (at least 1 ms). */
  readonly everyMs: number;
  /** How long before a lease would end the instance lets go of it: a sixth of the lease. */
  readonly safetyMs: number;
}

export const leaseTiming = (leaseMs: number): LeaseTiming => ({
  everyMs: Math.max(1, Math.floor(leaseMs / 3)),
  safetyMs: Math.floor(leaseMs / 6),
});

/**
 * Whether a renewal sent at `sentAt` and answered at `answeredAt` (both on the monotonic clock)
 * came in time to rely on: before the local deadline `safetyMs` ahead of its lease's end.
 */
export const renewedInTime = (
  sentAt: number,
  answeredAt: number,
  leaseMs: number,
  safetyMs: number,
): boolean => answeredAt < sentAt + leaseMs - safetyMs;

/** How long from `nowMs` until the local deadline of leases valid until `validUntil` (at least 0). */
export const msToDeadline = (validUntil: number, safetyMs: number, nowMs: number): number =>
  Math.max(0, validUntil - safetyMs - nowMs);

/**
 * An exact share: `floor(shards / live instances)`, one more for the first `shards mod live`
 * instances by id. `live` are the instances the database sees alive; this one counts even when
 * its heartbeat is not among them yet.
 */
export function targetShare(live: readonly string[], instanceId: string, shardCount: number): number {
  const ids = live.includes(instanceId) ? [...live] : [...live, instanceId];
  ids.sort();
  const n = ids.length;
  return Math.floor(shardCount / n) + (ids.indexOf(instanceId) < shardCount % n ? 1 : 0);
}

/** The shards one balance pass hands over: the highest-numbered beyond the target, at most `maxMoves`. */
export function shardsToHandOver(
  held: ReadonlyMap<number, number>,
  target: number,
  maxMoves: number,
): number[] {
  return [...held.keys()].sort((a, b) => b - a).slice(0, Math.min(maxMoves, held.size - target));
}

/** The shards held (shard → epoch) that a renewal did not extend at the same epoch: they ran out. */
export function goneShards(held: ReadonlyMap<number, number>, still: ReadonlyMap<number, number>): number[] {
  const gone: number[] = [];
  for (const [s, epoch] of held) if (still.get(s) !== epoch) gone.push(s);
  return gone;
}

/**
 * Where a device lives in a cluster: `shard = FNV-1a-32(UTF-8 bytes of its id) mod shardCount`.
 * The count is fixed for a fleet (stored with it, docs/scale-out.md), so a device's shard never
 * changes; shards, not devices, are what instances own and hand over.
 *
 * FNV-1a because it is tiny, has no dependency, spreads short ids with common prefixes
 * (`pump-0001`, `pump-0002`) well, and is the same on every instance and in SQL-free tooling.
 * Not a cryptographic hash: a device cannot choose another's shard, it only picks its own.
 *
 * @example
 * shardOf('pump-1', 1024); // 0 … 1023, the same on every instance
 */

/** Shards of a new fleet: enough to spread over a few hundred instances, few enough to list. */
export const DEFAULT_SHARD_COUNT = 1024;

const encoder = new TextEncoder();

export function shardOf(deviceId: string, shardCount: number): number {
  let h = 0x811c9dc5;
  for (const byte of encoder.encode(deviceId)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shardCount;
}

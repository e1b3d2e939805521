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

/**
 * Runs on every message a cluster instance receives (is it ours?) and every fenced write, so it
 * encodes UTF-8 on the fly instead of allocating a byte array per call.
 */
export function shardOf(deviceId: string, shardCount: number): number {
  let h = 0x811c9dc5;
  const step = (byte: number) => {
    h = Math.imul(h ^ byte, 0x01000193);
  };
  for (let i = 0; i < deviceId.length; i++) {
    let c = deviceId.charCodeAt(i);
    if (c < 0x80) {
      step(c);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < deviceId.length) {
      const low = deviceId.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        i++;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // a lone surrogate: U+FFFD, as TextEncoder does
    if (c < 0x800) {
      step(0xc0 | (c >> 6));
    } else if (c < 0x10000) {
      step(0xe0 | (c >> 12));
      step(0x80 | ((c >> 6) & 0x3f));
    } else {
      step(0xf0 | (c >> 18));
      step(0x80 | ((c >> 12) & 0x3f));
      step(0x80 | ((c >> 6) & 0x3f));
    }
    step(0x80 | (c & 0x3f));
  }
  return (h >>> 0) % shardCount;
}

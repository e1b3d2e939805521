/**
 * The `fw.chunk.N` capability (docs/protocol.md §5.5): a device lists it in its `hello` to ask for
 * `fw.chunk` messages of N bytes (1…8192, `LIMITS.chunkBytes`) instead of the host's 4096. The
 * host then says `chunkBytes: N` in `fw.begin` and keeps a window of 8 such chunks in flight, so
 * the device announces only what it has room for (8 × N bytes, plus the framing).
 *
 * Larger chunks mean fewer chunks, acks and writes per image: on a fast serial line (a USB CDC
 * port, a pty) each chunk costs a round of system calls and wake-ups at both ends whatever its
 * size. A device that lists no such capability, or a malformed one (`fw.chunk.0`, `fw.chunk.9000`,
 * `fw.chunk.04096`), gets the 4096 of before: hosts that predate it ignore it, as any unknown
 * capability, so it is safe to list for every host.
 *
 * @example
 * fwChunkCapability(8192); // 'fw.chunk.8192'
 * announcedChunkBytes(['fw', 'fw.binary', 'fw.chunk.8192']); // 8192
 * announcedChunkBytes(['fw']); // undefined: the host's default
 */
import { LIMITS } from './protocol.js';

/** What precedes the chunk size in the capability's name. */
export const FW_CHUNK_CAPABILITY_PREFIX = 'fw.chunk.';

/** The capability naming `bytes`; throws `RangeError` outside 1…{@link LIMITS.chunkBytes}. */
export function fwChunkCapability(bytes: number): string {
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > LIMITS.chunkBytes)
    throw new RangeError(
      `fw.chunk capability: chunk bytes must be an integer 1…${LIMITS.chunkBytes}, got ${bytes}`,
    );
  return `${FW_CHUNK_CAPABILITY_PREFIX}${bytes}`;
}

/**
 * The chunk size the first well-formed `fw.chunk.N` of `capabilities` asks for, or undefined
 * when none does. Well-formed: N is decimal digits without a leading zero, 1…8192.
 */
export function announcedChunkBytes(capabilities: readonly string[]): number | undefined {
  for (const c of capabilities) {
    if (!c.startsWith(FW_CHUNK_CAPABILITY_PREFIX)) continue;
    const digits = c.slice(FW_CHUNK_CAPABILITY_PREFIX.length);
    if (!/^[1-9][0-9]{0,4}$/.test(digits)) continue;
    const n = Number(digits);
    if (n <= LIMITS.chunkBytes) return n;
  }
  return undefined;
}

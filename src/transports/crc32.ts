/**
 * CRC-32/ISO-HDLC (the IEEE 802.3 / zlib / PNG CRC) of serial frames (docs/protocol.md §7):
 * reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF; check value
 * crc32("123456789") = 0xCBF43926.
 *
 * Node's own `zlib.crc32` (native, about 4× the JavaScript table on 4 KiB frames) where the
 * runtime has it (Node ≥ 20.15 and ≥ 22.2); a table-driven CRC in one pass otherwise (our engines
 * field allows Node 20.10). Both continue a CRC across pieces, so a frame made of a header and
 * the image bytes is checksummed without being copied into one buffer first.
 *
 * @example
 * crc32(new TextEncoder().encode('123456789')); // 0xcbf43926
 * crc32(tail, crc32(head)) === crc32(concat(head, tail)); // true
 */
import * as zlib from 'node:zlib';

type Crc32Fn = (data: Uint8Array, value?: number) => number;

/** Present from Node 20.15 / 22.2 on; the types say always, the runtime may not. */
const nativeCrc32 = (zlib as { readonly crc32?: Crc32Fn }).crc32;

// Slicing-by-4: four 256-entry tables, one 32-bit word per step (2.5× the byte-wise loop).
const TABLES = (() => {
  const t = new Int32Array(4 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 4; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/**
 * The table-driven CRC-32 that {@link crc32} falls back on where zlib has none; same results.
 * `previous` is the CRC of the bytes before these (0 at the start).
 *
 * @example
 * tableCrc32(bytes) === crc32(bytes); // true
 */
export function tableCrc32(bytes: Uint8Array, previous = 0): number {
  const t = TABLES;
  const end = bytes.length;
  let c = ~previous;
  let i = 0;
  for (; i + 4 <= end; i += 4) {
    c ^= bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    c = t[768 + (c & 0xff)]! ^ t[512 + ((c >>> 8) & 0xff)]! ^ t[256 + ((c >>> 16) & 0xff)]! ^ t[c >>> 24]!;
  }
  for (; i < end; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/**
 * CRC-32 of `bytes` as an unsigned 32-bit number, continuing from `previous`, the CRC of the
 * bytes before them (0, the default, at the start).
 *
 * @example
 * crc32(new TextEncoder().encode('123456789')); // 0xcbf43926
 */
export const crc32: (bytes: Uint8Array, previous?: number) => number =
  nativeCrc32 === undefined ? tableCrc32 : (bytes, previous = 0) => nativeCrc32(bytes, previous);

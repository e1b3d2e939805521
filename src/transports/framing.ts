/**
 * Serial framing for protocol v1: COBS-encoded `payload ‖ CRC-32(payload)` between 0x00 delimiters.
 *
 * Wire format of one frame (docs/protocol.md, "Serial frames"):
 *
 *   0x00 ‖ COBS(payload ‖ crc32le(payload)) ‖ 0x00
 *
 * The trailing 0x00 ends the frame. The leading 0x00 is optional for senders: {@link encodeFrame}
 * writes it so that anything before the frame (a boot banner, line noise, half a frame from
 * before a reset) is closed off and dropped as one bad frame instead of corrupting this one.
 * Receivers ignore empty frames (two delimiters in a row), so the extra byte costs nothing else.
 *
 * The deframer decodes COBS as bytes arrive, so its buffer holds only decoded bytes of the
 * current frame and never more than `maxFrameBytes` (payload plus the 4 CRC bytes). Every
 * failure is reported once, at the delimiter that ends the bad frame, and decoding resumes
 * with the next byte: a corrupt frame never costs the frame after it.
 *
 * @example
 * const deframer = createDeframer({
 *   onFrame: (payload) => handle(decodeMessage(payload)),
 *   onError: (err) => log.warn('serial frame dropped', err), // { code: 'crcMismatch', discardedBytes: 212 }
 * });
 * port.on('data', (chunk: Buffer) => deframer.push(chunk));
 * port.write(encodeFrame(encodeMessage(msg)));
 */

/** Default cap on a decoded frame (payload + 4 CRC bytes): 64 KiB. */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024;

/** Bytes of CRC-32 at the end of every decoded frame. */
export const CRC_BYTES = 4;

export type FrameErrorCode = 'crcMismatch' | 'tooLong' | 'badCobs' | 'empty';

/**
 * One dropped frame. `discardedBytes` counts the encoded bytes between the two delimiters
 * (delimiters themselves excluded).
 * - `crcMismatch`: the CRC-32 of the payload differs from the 4 bytes after it.
 * - `tooLong`: the frame decoded to more than `maxFrameBytes`; everything up to the next 0x00 was
 *   discarded without being buffered.
 * - `badCobs`: the frame ended inside a COBS block (a code byte pointed past the end).
 * - `empty`: the frame decoded to 4 bytes or fewer, so there is no payload after the CRC.
 */
export interface FrameError {
  readonly code: FrameErrorCode;
  readonly message: string;
  readonly discardedBytes: number;
}

export interface DeframerOptions {
  /** Largest decoded frame (payload + 4 CRC bytes) accepted; at least 5. Default 64 KiB. */
  readonly maxFrameBytes?: number;
  /** Called once per intact frame with its payload (a fresh copy the callee may keep). */
  readonly onFrame: (payload: Uint8Array) => void;
  /** Called once per dropped frame (required: a dropped frame is never silent). */
  readonly onError: (error: FrameError) => void;
}

export interface Deframer {
  /**
   * Feeds received bytes, in any chunking. Never throws on its own; if a callback throws, the
   * rest of the chunk is still processed and the first callback error is re-thrown afterwards.
   */
  push(chunk: Uint8Array): void;
  /** Drops the partial frame, if any, without reporting it (e.g. on reconnect); returns its encoded byte count. */
  reset(): number;
  /** Decoded bytes held for the frame in progress; never more than `maxFrameBytes`. */
  bufferedBytes(): number;
}

/** Misuse of the framing API (bad options, an empty payload to encode). */
export class FramingError extends Error {
  readonly code: 'badOptions' | 'empty';
  constructor(code: 'badOptions' | 'empty', message: string) {
    super(message);
    this.name = 'FramingError';
    this.code = code;
  }
}

// CRC-32/ISO-HDLC (the IEEE 802.3 / zlib / PNG CRC): reflected polynomial 0xEDB88320,
// init and final xor 0xFFFFFFFF. Check value: crc32("123456789") = 0xCBF43926.
// Slicing-by-4 (four 256-entry tables, one 32-bit word per step): 2.5× the byte-wise loop,
// which matters because every frame is checksummed twice.
const CRC_TABLES = (() => {
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

function crc32Range(bytes: Uint8Array, start: number, end: number): number {
  const t = CRC_TABLES;
  let c = -1;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    c ^= bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    c = t[768 + (c & 0xff)]! ^ t[512 + ((c >>> 8) & 0xff)]! ^ t[256 + ((c >>> 16) & 0xff)]! ^ t[c >>> 24]!;
  }
  for (; i < end; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/**
 * CRC-32 (IEEE 802.3, as zlib and PNG compute it) of `bytes`, as an unsigned 32-bit number.
 *
 * @example
 * crc32(new TextEncoder().encode('123456789')); // 0xcbf43926
 */
export function crc32(bytes: Uint8Array): number {
  return crc32Range(bytes, 0, bytes.length);
}

/**
 * Encodes one payload as a frame: `0x00 ‖ COBS(payload ‖ crc32le(payload)) ‖ 0x00`.
 * Throws {@link FramingError} `empty` for an empty payload, which no receiver would accept.
 *
 * @example
 * port.write(encodeFrame(encodeMessage({ v: 1, type: 'cmd', cmdId, action: 'reboot' })));
 */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const n = payload.length;
  if (n === 0) throw new FramingError('empty', 'encodeFrame: the payload is empty');
  const crc = crc32Range(payload, 0, n);
  const data = new Uint8Array(n + CRC_BYTES);
  data.set(payload, 0);
  data[n] = crc & 0xff;
  data[n + 1] = (crc >>> 8) & 0xff;
  data[n + 2] = (crc >>> 16) & 0xff;
  data[n + 3] = crc >>> 24;
  const total = data.length;
  // Leading delimiter, then at most one code byte per 254 data bytes plus one, then the delimiter.
  const out = new Uint8Array(total + Math.ceil(total / 254) + 3);
  out[0] = 0;
  let w = 1;
  // COBS, a run at a time: each stretch between zeros becomes full 254-byte blocks (code 0xFF,
  // no implied zero) and one final block whose code implies the zero after it. The stretch at
  // the end needs no final block if it filled its last block exactly.
  let i = 0;
  for (;;) {
    const z = data.indexOf(0, i);
    const end = z === -1 ? total : z;
    const runStart = i;
    while (end - i >= 254) {
      out[w++] = 0xff;
      out.set(data.subarray(i, i + 254), w);
      w += 254;
      i += 254;
    }
    const rest = end - i;
    if (z === -1 && rest === 0 && end > runStart) break;
    out[w++] = rest + 1;
    out.set(data.subarray(i, end), w);
    w += rest;
    if (z === -1) break;
    i = z + 1;
  }
  out[w++] = 0;
  return out.subarray(0, w);
}

/**
 * Creates a streaming deframer. Feed it whatever the port delivers; it calls `onFrame` once per
 * intact frame and `onError` once per dropped frame, then carries on with the next byte.
 * Throws {@link FramingError} `badOptions` if `maxFrameBytes` is not an integer ≥ 5.
 *
 * @example
 * const deframer = createDeframer({ maxFrameBytes: 4096, onFrame: deliver, onError: countDrop });
 * deframer.push(chunk);
 */
export function createDeframer(options: DeframerOptions): Deframer {
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < CRC_BYTES + 1) {
    throw new FramingError(
      'badOptions',
      `maxFrameBytes must be an integer ≥ 5, got ${String(maxFrameBytes)}`,
    );
  }
  if (typeof options.onFrame !== 'function' || typeof options.onError !== 'function') {
    throw new FramingError('badOptions', 'onFrame and onError must be functions');
  }
  const { onFrame, onError } = options;

  let buf = new Uint8Array(Math.min(maxFrameBytes, 512));
  let len = 0; // decoded bytes of the current frame
  let encoded = 0; // encoded bytes of the current frame seen so far
  let remaining = 0; // data bytes still to come in the current COBS block
  let zeroPending = false; // the previous block was shorter than 254 bytes: a 0x00 precedes the next one
  let discarding = false; // the frame outgrew maxFrameBytes: count, don't buffer, until the delimiter

  // Callback errors are held until the chunk is consumed, so a throwing handler neither loses
  // the frames behind it nor leaves the deframer half-way through a frame.
  let callbackFailed = false;
  let callbackError: unknown;

  function clear(): void {
    len = 0;
    encoded = 0;
    remaining = 0;
    zeroPending = false;
    discarding = false;
  }

  function report(code: FrameErrorCode, message: string, discardedBytes: number): void {
    try {
      onError({ code, message, discardedBytes });
    } catch (err) {
      if (!callbackFailed) {
        callbackFailed = true;
        callbackError = err;
      }
    }
  }

  function room(extra: number): boolean {
    const need = len + extra;
    if (need > maxFrameBytes) {
      discarding = true;
      len = 0;
      return false;
    }
    if (need > buf.length) {
      const grown = new Uint8Array(Math.min(maxFrameBytes, Math.max(need, buf.length * 2)));
      grown.set(buf.subarray(0, len));
      buf = grown;
    }
    return true;
  }

  // Decodes chunk[i, end), which holds no 0x00.
  function decode(chunk: Uint8Array, i: number, end: number): void {
    encoded += end - i;
    while (i < end) {
      if (remaining === 0) {
        const code = chunk[i++]!;
        if (zeroPending) {
          if (!room(1)) return;
          buf[len++] = 0;
        }
        zeroPending = code !== 0xff;
        remaining = code - 1;
      } else {
        const take = Math.min(remaining, end - i);
        if (!room(take)) return;
        buf.set(chunk.subarray(i, i + take), len);
        len += take;
        i += take;
        remaining -= take;
      }
    }
  }

  function endFrame(): void {
    if (encoded === 0) return; // an idle delimiter (or the leading one of a frame)
    const bytes = encoded;
    if (discarding) {
      clear();
      report(
        'tooLong',
        `frame longer than maxFrameBytes (${maxFrameBytes}); ${bytes} bytes discarded`,
        bytes,
      );
      return;
    }
    if (remaining > 0) {
      const missing = remaining;
      clear();
      report('badCobs', `frame ended ${missing} byte(s) short of its last COBS block`, bytes);
      return;
    }
    if (len <= CRC_BYTES) {
      const got = len;
      clear();
      report('empty', `frame decoded to ${got} byte(s): no payload after the 4-byte CRC`, bytes);
      return;
    }
    const n = len - CRC_BYTES;
    const expected = (buf[n]! | (buf[n + 1]! << 8) | (buf[n + 2]! << 16) | (buf[n + 3]! << 24)) >>> 0;
    const actual = crc32Range(buf, 0, n);
    if (expected !== actual) {
      clear();
      report(
        'crcMismatch',
        `CRC-32 mismatch: frame says 0x${expected.toString(16).padStart(8, '0')}, payload has 0x${actual.toString(16).padStart(8, '0')}`,
        bytes,
      );
      return;
    }
    const payload = buf.slice(0, n);
    clear();
    try {
      onFrame(payload);
    } catch (err) {
      if (!callbackFailed) {
        callbackFailed = true;
        callbackError = err;
      }
    }
  }

  return {
    push(chunk: Uint8Array): void {
      const n = chunk.length;
      let i = 0;
      while (i < n) {
        const z = chunk.indexOf(0, i);
        const end = z === -1 ? n : z;
        if (end > i) {
          if (discarding) encoded += end - i;
          else decode(chunk, i, end);
        }
        if (z === -1) break;
        endFrame();
        i = z + 1;
      }
      if (callbackFailed) {
        const err = callbackError;
        callbackFailed = false;
        callbackError = undefined;
        throw err;
      }
    },
    reset(): number {
      const dropped = encoded;
      clear();
      return dropped;
    },
    bufferedBytes(): number {
      return len;
    },
  };
}

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
 * The payload is opaque here: a JSON message, or a binary frame whose first byte names its type
 * (serial-fw-frame.ts). {@link encodeFrameParts} frames a payload given in pieces (a header and
 * the image bytes) without joining them first: one CRC pass over the pieces, one COBS pass
 * writing straight into the output buffer.
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
import { crc32 } from './crc32.js';

export { crc32 } from './crc32.js';

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

/** The largest frame {@link encodeFrameParts} writes for `dataBytes` (payload + CRC): both delimiters and every code byte. */
function maxEncodedBytes(dataBytes: number): number {
  return dataBytes + Math.ceil(dataBytes / 254) + 3;
}

/**
 * COBS, written straight into `out` while the frame's bytes go by in pieces: each run of
 * non-zero bytes is copied once, and its code byte is filled in when the run ends (at a 0x00,
 * at 254 bytes, or at the end). A block that filled up (code 0xFF, no implied zero) opens the
 * next block only when a byte follows, so a frame ending on a full block gets no extra 0x01:
 * the output is the canonical COBS of the whole, byte for byte.
 */
class CobsWriter {
  /** Where the open block's code byte goes; -1 after a full block, until the next byte. */
  private codeAt: number;
  /** Data bytes in the open block. */
  private run = 0;

  constructor(
    private readonly out: Uint8Array,
    /** The next byte of `out` to write. */
    public at: number,
  ) {
    this.codeAt = this.at++;
  }

  write(bytes: Uint8Array): void {
    const out = this.out;
    const n = bytes.length;
    let i = 0;
    while (i < n) {
      const z = bytes.indexOf(0, i);
      const end = z === -1 ? n : z;
      while (i < end) {
        if (this.codeAt < 0) this.codeAt = this.at++;
        const take = Math.min(end - i, 254 - this.run);
        out.set(bytes.subarray(i, i + take), this.at);
        this.at += take;
        this.run += take;
        i += take;
        if (this.run === 254) {
          out[this.codeAt] = 0xff;
          this.codeAt = -1;
          this.run = 0;
        }
      }
      if (z === -1) return;
      if (this.codeAt < 0) this.codeAt = this.at++;
      out[this.codeAt] = this.run + 1; // the block ends at this zero, which its code implies
      this.codeAt = this.at++;
      this.run = 0;
      i = z + 1;
    }
  }

  /** Closes the last block; returns the end of the COBS data in `out`. */
  finish(): number {
    if (this.codeAt >= 0) this.out[this.codeAt] = this.run + 1;
    return this.at;
  }
}

/**
 * Encodes one payload, given as consecutive pieces, as one frame:
 * `0x00 ‖ COBS(pieces ‖ crc32le(pieces)) ‖ 0x00`, the same bytes as {@link encodeFrame} of the
 * joined pieces. The pieces are read twice (CRC, then COBS) and copied once, into the one
 * output buffer. Throws {@link FramingError} `empty` if they hold no byte.
 *
 * @example
 * port.write(encodeFrameParts([header, image.subarray(offset, offset + 4096)]));
 */
export function encodeFrameParts(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  let crc = 0;
  for (const part of parts) {
    n += part.length;
    crc = crc32(part, crc);
  }
  if (n === 0) throw new FramingError('empty', 'encodeFrame: the payload is empty');
  const out = new Uint8Array(maxEncodedBytes(n + CRC_BYTES));
  out[0] = 0; // the leading delimiter
  const cobs = new CobsWriter(out, 1);
  for (const part of parts) cobs.write(part);
  cobs.write(Uint8Array.of(crc & 0xff, (crc >>> 8) & 0xff, (crc >>> 16) & 0xff, crc >>> 24));
  const end = cobs.finish();
  out[end] = 0;
  return out.subarray(0, end + 1);
}

/**
 * Encodes one payload as a frame: `0x00 ‖ COBS(payload ‖ crc32le(payload)) ‖ 0x00`.
 * Throws {@link FramingError} `empty` for an empty payload, which no receiver would accept.
 *
 * @example
 * port.write(encodeFrame(encodeMessage({ v: 1, type: 'cmd', cmdId, action: 'reboot' })));
 */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  return encodeFrameParts([payload]);
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
  return new StreamDeframer(maxFrameBytes, options.onFrame, options.onError);
}

/** What is wrong with a frame that just ended, or undefined if it is intact. */
type FrameFault = Omit<FrameError, 'discardedBytes'>;

/** The deframer behind {@link createDeframer}: COBS decoded byte by byte into one reused buffer. */
class StreamDeframer implements Deframer {
  /** Decoded bytes of the current frame; grows (doubling, up to maxFrameBytes) and is reused. */
  private buf: Uint8Array;
  /** Decoded bytes of the current frame. */
  private len = 0;
  /** Encoded bytes of the current frame seen so far. */
  private encoded = 0;
  /** Data bytes still to come in the current COBS block. */
  private remaining = 0;
  /** The previous block was shorter than 254 bytes: a 0x00 precedes the next one. */
  private zeroPending = false;
  /** The frame outgrew maxFrameBytes: count, don't buffer, until the delimiter. */
  private discarding = false;
  /**
   * The first error a callback threw during this push: held until the chunk is consumed, so a
   * throwing handler neither loses the frames behind it nor leaves a frame half-way decoded.
   */
  private thrown: { readonly error: unknown } | undefined;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: (payload: Uint8Array) => void,
    private readonly onError: (error: FrameError) => void,
  ) {
    this.buf = new Uint8Array(Math.min(maxFrameBytes, 512));
  }

  push(chunk: Uint8Array): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      const z = chunk.indexOf(0, i);
      const end = z === -1 ? n : z;
      if (end > i) {
        if (this.discarding) this.encoded += end - i;
        else this.decode(chunk, i, end);
      }
      if (z === -1) break;
      this.endFrame();
      i = z + 1;
    }
    const thrown = this.thrown;
    this.thrown = undefined;
    if (thrown) throw thrown.error;
  }

  reset(): number {
    const dropped = this.encoded;
    this.clear();
    return dropped;
  }

  bufferedBytes(): number {
    return this.len;
  }

  private clear(): void {
    this.len = 0;
    this.encoded = 0;
    this.remaining = 0;
    this.zeroPending = false;
    this.discarding = false;
  }

  /** Decodes chunk[i, end), which holds no 0x00. */
  private decode(chunk: Uint8Array, i: number, end: number): void {
    this.encoded += end - i;
    while (i < end) {
      if (this.remaining === 0) {
        const code = chunk[i++]!;
        if (this.zeroPending) {
          if (!this.room(1)) return;
          this.buf[this.len++] = 0;
        }
        this.zeroPending = code !== 0xff;
        this.remaining = code - 1;
      } else {
        const take = Math.min(this.remaining, end - i);
        if (!this.room(take)) return;
        this.buf.set(chunk.subarray(i, i + take), this.len);
        this.len += take;
        i += take;
        this.remaining -= take;
      }
    }
  }

  /** Makes room for `extra` more decoded bytes, or starts discarding if the frame would be too long. */
  private room(extra: number): boolean {
    const need = this.len + extra;
    if (need > this.maxFrameBytes) {
      this.discarding = true;
      this.len = 0;
      return false;
    }
    if (need > this.buf.length) {
      const grown = new Uint8Array(Math.min(this.maxFrameBytes, Math.max(need, this.buf.length * 2)));
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
    }
    return true;
  }

  /** At a delimiter: delivers the frame, reports why it was dropped, or ignores an idle 0x00. */
  private endFrame(): void {
    if (this.encoded === 0) return; // an idle delimiter (or the leading one of a frame)
    const discardedBytes = this.encoded;
    const fault = this.fault();
    const payload = fault ? undefined : this.buf.slice(0, this.len - CRC_BYTES);
    this.clear();
    try {
      if (payload) this.onFrame(payload);
      else this.onError({ ...fault!, discardedBytes });
    } catch (error) {
      this.thrown ??= { error };
    }
  }

  private fault(): FrameFault | undefined {
    if (this.discarding) {
      const message = `frame longer than maxFrameBytes (${this.maxFrameBytes}); ${this.encoded} bytes discarded`;
      return { code: 'tooLong', message };
    }
    if (this.remaining > 0)
      return {
        code: 'badCobs',
        message: `frame ended ${this.remaining} byte(s) short of its last COBS block`,
      };
    if (this.len <= CRC_BYTES)
      return {
        code: 'empty',
        message: `frame decoded to ${this.len} byte(s): no payload after the 4-byte CRC`,
      };
    const n = this.len - CRC_BYTES;
    const b = this.buf;
    const expected = (b[n]! | (b[n + 1]! << 8) | (b[n + 2]! << 16) | (b[n + 3]! << 24)) >>> 0;
    const actual = crc32(b.subarray(0, n));
    if (expected === actual) return undefined;
    const hex8 = (x: number) => `0x${x.toString(16).padStart(8, '0')}`;
    return {
      code: 'crcMismatch',
      message: `CRC-32 mismatch: frame says ${hex8(expected)}, payload has ${hex8(actual)}`,
    };
  }
}

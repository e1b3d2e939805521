/**
 * encodeFrameParts: a payload given in pieces is framed in one pass, and the bytes are exactly
 * those of the canonical COBS encoder over the joined payload (the encoder this one replaced,
 * kept here as the reference).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CRC_BYTES,
  crc32,
  createDeframer,
  encodeFrame,
  encodeFrameParts,
} from '../../src/transports/framing.js';

/** The reference: the encoder this one replaced (join payload and CRC, then COBS a run between zeros at a time). */
function referenceFrame(payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const crc = crc32(payload);
  const data = new Uint8Array(n + CRC_BYTES);
  data.set(payload, 0);
  data.set([crc & 0xff, (crc >>> 8) & 0xff, (crc >>> 16) & 0xff, crc >>> 24], n);
  const total = data.length;
  const out = new Uint8Array(total + Math.ceil(total / 254) + 3);
  let w = 1;
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

function join(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Payloads rich in what COBS cares about: zeros, 0xFF, runs of exactly 254. */
const payload = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 1200 }),
  fc
    .array(fc.constantFrom(0x00, 0x01, 0xff), { minLength: 1, maxLength: 800 })
    .map((a) => Uint8Array.from(a)),
  fc
    .tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: -6, max: 2 }), fc.constantFrom(0, 0x41))
    .map(([k, d, b]) => new Uint8Array(Math.max(1, 254 * k - CRC_BYTES + d)).fill(b)),
);

describe('encodeFrameParts', () => {
  it('any payload cut into any pieces: the canonical frame of the joined payload', () => {
    fc.assert(
      fc.property(payload, fc.array(fc.nat(), { maxLength: 5 }), (p, cuts) => {
        const points = [...new Set(cuts.map((c) => c % (p.length + 1)))].sort((a, b) => a - b);
        const parts: Uint8Array[] = [];
        let from = 0;
        for (const at of points) {
          parts.push(p.subarray(from, at)); // empty pieces included
          from = at;
        }
        parts.push(p.subarray(from));
        const framed = encodeFrameParts(parts);
        expect(join(parts)).toEqual(p);
        expect(Buffer.from(framed).toString('hex')).toBe(Buffer.from(encodeFrame(p)).toString('hex'));
        expect(Buffer.from(framed).toString('hex')).toBe(Buffer.from(referenceFrame(p)).toString('hex'));
      }),
      { numRuns: 300 },
    );
  });

  it('decodes back to the joined payload', () => {
    const frames: Uint8Array[] = [];
    const deframer = createDeframer({
      onFrame: (f) => frames.push(f),
      onError: (e) => expect(e).toBeUndefined(),
    });
    const header = Uint8Array.of(1, 2, 0, 3);
    const body = new Uint8Array(4096).map((_, i) => (i * 31) & 0xff);
    deframer.push(encodeFrameParts([header, body]));
    expect(frames).toEqual([join([header, body])]);
  });

  it('refuses pieces that hold no byte at all', () => {
    expect(() => encodeFrameParts([])).toThrow(expect.objectContaining({ code: 'empty' }));
    expect(() => encodeFrameParts([new Uint8Array(0), new Uint8Array(0)])).toThrow(
      expect.objectContaining({ code: 'empty' }),
    );
  });
});

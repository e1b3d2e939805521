/**
 * Framing properties (fast-check): any payloads survive any chunking; garbage between frames
 * costs no frame; random bytes never throw, never outgrow the buffer, and every dropped byte is
 * accounted for.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CRC_BYTES, createDeframer, encodeFrame, type FrameError } from '../../src/transports/framing.js';

function rig(maxFrameBytes?: number) {
  const frames: Uint8Array[] = [];
  const errors: FrameError[] = [];
  const deframer = createDeframer({
    onFrame: (p) => frames.push(p),
    onError: (e) => errors.push(e),
    ...(maxFrameBytes === undefined ? {} : { maxFrameBytes }),
  });
  return { deframer, frames, errors };
}

const concat = (parts: readonly Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** Payloads biased towards the bytes COBS cares about (0x00, 0xFF) and its 254-byte blocks. */
const payload = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 600 }),
  fc
    .array(fc.constantFrom(0x00, 0x01, 0xfe, 0xff), { minLength: 1, maxLength: 600 })
    .map((a) => Uint8Array.from(a)),
  fc
    .integer({ min: 1, max: 4 })
    .chain((k) =>
      fc.constantFrom(0, 0x41).map((b) => new Uint8Array(254 * k - CRC_BYTES + (b === 0 ? 1 : 0)).fill(b)),
    ),
);

/** Feeds `stream` cut at the given points (taken modulo its length). */
function feed(push: (chunk: Uint8Array) => void, stream: Uint8Array, cuts: readonly number[]): void {
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  for (const p of points) {
    push(stream.subarray(from, p));
    from = p;
  }
  push(stream.subarray(from));
}

describe('framing properties', () => {
  it('any payloads, any chunking: delivered once each, in order, intact', () => {
    fc.assert(
      fc.property(
        fc.array(payload, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (payloads, cuts) => {
          const { deframer, frames, errors } = rig();
          feed((c) => deframer.push(c), concat(payloads.map(encodeFrame)), cuts);
          expect(errors).toEqual([]);
          expect(frames).toEqual(payloads);
          expect(deframer.bufferedBytes()).toBe(0);
        },
      ),
    );
  });

  it('a frame split at every byte offset: delivered once, intact', () => {
    fc.assert(
      fc.property(payload, (p) => {
        const f = encodeFrame(p);
        const wrong: number[] = [];
        for (let at = 0; at <= f.length; at++) {
          const { deframer, frames, errors } = rig();
          deframer.push(f.subarray(0, at));
          deframer.push(f.subarray(at));
          // A plain comparison: toEqual per offset would dominate the run time.
          if (errors.length !== 0 || frames.length !== 1 || !sameBytes(frames[0]!, p)) wrong.push(at);
        }
        expect(wrong).toEqual([]);
      }),
      { numRuns: 50 },
    );
  });

  it('garbage of any kind between valid frames never costs a valid frame', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.uint8Array({ maxLength: 300 }), payload), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (pairs, cuts) => {
          const { deframer, frames, errors } = rig();
          const stream = concat(pairs.flatMap(([junk, p]) => [junk, encodeFrame(p)]));
          feed((c) => deframer.push(c), stream, cuts);
          expect(frames).toEqual(pairs.map(([, p]) => p));
          expect(errors.every((e) => e.discardedBytes > 0)).toBe(true);
        },
      ),
    );
  });

  it('random bytes: never throws, buffer ≤ maxFrameBytes, every non-zero byte accounted for', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 4000 }),
        fc.integer({ min: CRC_BYTES + 1, max: 300 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (junk, max, cuts) => {
          const { deframer, frames, errors } = rig(max);
          feed(
            (c) => {
              deframer.push(c);
              expect(deframer.bufferedBytes()).toBeLessThanOrEqual(max);
            },
            junk,
            cuts,
          );
          fc.pre(frames.length === 0); // a random valid CRC is possible, if astronomically unlikely
          const nonZero = junk.reduce((n, b) => n + (b === 0 ? 0 : 1), 0);
          const discarded = errors.reduce((n, e) => n + e.discardedBytes, 0);
          expect(discarded + deframer.reset()).toBe(nonZero);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('with a small maxFrameBytes, oversized frames are dropped and the others delivered', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: CRC_BYTES + 1, max: 600 }),
        fc.array(payload, { minLength: 1, maxLength: 8 }),
        (max, payloads) => {
          const { deframer, frames, errors } = rig(max);
          deframer.push(concat(payloads.map(encodeFrame)));
          const fits = payloads.filter((p) => p.length + CRC_BYTES <= max);
          expect(frames).toEqual(fits);
          expect(errors.map((e) => e.code)).toEqual(
            payloads.filter((p) => p.length + CRC_BYTES > max).map(() => 'tooLong'),
          );
        },
      ),
    );
  });
});

/**
 * CRC-32 of serial frames: zlib's where Node has it, the table otherwise; both give the IEEE
 * check value, agree on any bytes, and continue across pieces.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32, tableCrc32 } from '../../src/transports/crc32.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('crc32', () => {
  it.each([
    ['crc32', crc32],
    ['tableCrc32', tableCrc32],
  ] as const)('%s: the IEEE check value and known vectors', (_name, f) => {
    expect(f(utf8('123456789'))).toBe(0xcbf43926);
    expect(f(utf8('hi'))).toBe(0xd8932aac);
    expect(f(new Uint8Array(0))).toBe(0);
    expect(f(new Uint8Array(32))).toBe(0x190a55ad);
    expect(f(new Uint8Array(4096).fill(0xff))).toBe(f(new Uint8Array(4096).fill(0xff)));
  });

  it('the table and zlib agree on any bytes, at any length and alignment', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(7), (bytes, skip) => {
        const view = bytes.subarray(Math.min(skip, bytes.length));
        expect(tableCrc32(view)).toBe(crc32(view));
      }),
    );
  });

  it('continues across pieces: crc32(b, crc32(a)) is the CRC of a then b', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.uint8Array({ maxLength: 600 }), (a, b) => {
        const whole = new Uint8Array(a.length + b.length);
        whole.set(a);
        whole.set(b, a.length);
        expect(crc32(b, crc32(a))).toBe(crc32(whole));
        expect(tableCrc32(b, tableCrc32(a))).toBe(crc32(whole));
      }),
    );
  });
});

/**
 * Serial framing: CRC-32, COBS edge cases, and the serial section of the bad-input corpus
 * (reference/reliability.md §d): every bad input gives one clear error and costs no valid frame.
 */
import { describe, expect, it } from 'vitest';
import {
  CRC_BYTES,
  crc32,
  createDeframer,
  DEFAULT_MAX_FRAME_BYTES,
  type DeframerOptions,
  encodeFrame,
  type FrameError,
  FramingError,
} from '../../src/transports/framing.js';
import { decodeMessage, encodeMessage } from '../../src/transports/protocol.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);
const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A deframer that records what it delivers. */
function rig(options: Partial<DeframerOptions> = {}) {
  const frames: Uint8Array[] = [];
  const errors: FrameError[] = [];
  const deframer = createDeframer({
    onFrame: (p) => frames.push(p),
    onError: (e) => errors.push(e),
    ...options,
  });
  return { deframer, frames, errors, texts: () => frames.map((f) => new TextDecoder().decode(f)) };
}

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
function noise(n: number, seed = 1, filter: (b: number) => boolean = () => true): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; ) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const b = x & 0xff;
    if (filter(b)) out[i++] = b;
  }
  return out;
}

describe('crc32', () => {
  it('matches the IEEE check value and zlib', () => {
    expect(crc32(utf8('123456789'))).toBe(0xcbf43926);
    expect(crc32(utf8('hi'))).toBe(0xd8932aac);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(new Uint8Array(32))).toBe(0x190a55ad);
  });
});

describe('encodeFrame', () => {
  it('golden vector: "hi" → 00 | 07 68 69 ac 2a 93 d8 | 00', () => {
    expect(hex(encodeFrame(utf8('hi')))).toBe('00076869ac2a93d800');
  });

  it('the worked examples of docs/protocol.md §7', () => {
    expect(hex(encodeFrame(bytes(0x11, 0x00, 0x22)))).toBe('0002110622b151c53700');
    const heartbeat = encodeFrame(utf8('{"v":1,"type":"heartbeat","boot":42,"uptimeMs":86400000}'));
    expect(hex(heartbeat.subarray(0, 8))).toBe('003d7b2276223a31');
    expect(hex(heartbeat.subarray(-9))).toBe('3030307dfb727ffa00');
    expect(heartbeat.length).toBe(63);
  });

  it('has delimiters only at both ends, whatever the payload', () => {
    for (const payload of [new Uint8Array(300), new Uint8Array(600).fill(0xff), noise(1000)]) {
      const f = encodeFrame(payload);
      expect(f[0]).toBe(0);
      expect(f[f.length - 1]).toBe(0);
      expect(f.subarray(1, -1).includes(0)).toBe(false);
      // COBS overhead: at most one byte per 254, plus one.
      expect(f.length - 2).toBeLessThanOrEqual(
        payload.length + CRC_BYTES + Math.ceil((payload.length + CRC_BYTES) / 254) + 1,
      );
    }
  });

  it('refuses an empty payload (no receiver would accept it)', () => {
    expect(() => encodeFrame(new Uint8Array(0))).toThrow(FramingError);
    expect(() => encodeFrame(new Uint8Array(0))).toThrow(expect.objectContaining({ code: 'empty' }));
  });

  it.each([1, 2, 249, 250, 251, 253, 254, 255, 500, 504, 508, 509, 1016, 4096])(
    'COBS block boundaries: %i-byte payloads of non-zero, zero and mixed bytes round-trip',
    (n) => {
      const { deframer, frames, errors } = rig();
      const payloads = [
        new Uint8Array(n).fill(0x41),
        new Uint8Array(n),
        noise(n, n),
        noise(n, n + 1, (b) => b !== 0),
      ];
      for (const p of payloads) deframer.push(encodeFrame(p));
      expect(errors).toEqual([]);
      expect(frames).toEqual(payloads);
    },
  );
});

describe('deframer: delivery', () => {
  it('two frames in one chunk', () => {
    const { deframer, texts, errors } = rig();
    deframer.push(concat(encodeFrame(utf8('one')), encodeFrame(utf8('two'))));
    expect(texts()).toEqual(['one', 'two']);
    expect(errors).toEqual([]);
  });

  it('frames without the optional leading delimiter', () => {
    const { deframer, texts, errors } = rig();
    deframer.push(concat(encodeFrame(utf8('one')).subarray(1), encodeFrame(utf8('two')).subarray(1)));
    expect(texts()).toEqual(['one', 'two']);
    expect(errors).toEqual([]);
  });

  it('a frame fed one byte at a time', () => {
    const { deframer, texts } = rig();
    for (const b of encodeFrame(utf8('byte by byte'))) deframer.push(bytes(b));
    expect(texts()).toEqual(['byte by byte']);
  });

  it('a frame split at every byte offset is delivered once, intact', () => {
    const payload = noise(600, 7);
    const f = encodeFrame(payload);
    const wrong: number[] = [];
    for (let at = 0; at <= f.length; at++) {
      const { deframer, frames, errors } = rig();
      deframer.push(f.subarray(0, at));
      deframer.push(f.subarray(at));
      if (errors.length !== 0 || frames.length !== 1 || hex(frames[0]!) !== hex(payload)) wrong.push(at);
    }
    expect(wrong).toEqual([]);
  });

  it('a message goes through frame and codec unchanged', () => {
    const { deframer, frames } = rig();
    const msg = { v: 1, type: 'heartbeat', boot: 3, uptimeMs: 1000 } as const;
    deframer.push(encodeFrame(encodeMessage(msg)));
    expect(decodeMessage(frames[0]!)).toEqual({ ok: true, value: msg });
  });

  it('onFrame gets a copy it may keep or change', () => {
    const { deframer, frames } = rig();
    deframer.push(encodeFrame(utf8('aaaa')));
    frames[0]!.fill(0);
    deframer.push(encodeFrame(utf8('bbbb')));
    expect(new TextDecoder().decode(frames[1])).toBe('bbbb');
  });
});

describe('deframer: serial bad-input corpus', () => {
  it('garbage without a 0x00 between two valid frames: both delivered, one error', () => {
    const { deframer, texts, errors } = rig();
    deframer.push(
      concat(
        encodeFrame(utf8('first')),
        noise(100, 3, (b) => b !== 0),
        encodeFrame(utf8('second')),
      ),
    );
    expect(texts()).toEqual(['first', 'second']);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.discardedBytes).toBe(100);
  });

  it('garbage with 0x00s in it between two valid frames: both delivered', () => {
    const { deframer, texts, errors } = rig();
    deframer.push(concat(encodeFrame(utf8('first')), noise(5000, 4), encodeFrame(utf8('second'))));
    expect(texts()).toEqual(['first', 'second']);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => e.discardedBytes > 0)).toBe(true);
  });

  it('random bytes: 1 byte and 1 MB never throw, and the next frame is delivered', () => {
    for (const junk of [bytes(0x7e), noise(1024 * 1024, 5)]) {
      const { deframer, texts } = rig();
      expect(() => {
        for (let i = 0; i < junk.length; i += 4096) deframer.push(junk.subarray(i, i + 4096));
      }).not.toThrow();
      deframer.push(encodeFrame(utf8('after')));
      expect(texts().at(-1)).toBe('after');
    }
  });

  it('0x00 floods are idle line, not errors', () => {
    const { deframer, texts, errors } = rig();
    deframer.push(new Uint8Array(1024 * 1024));
    deframer.push(encodeFrame(utf8('after the flood')));
    deframer.push(new Uint8Array(10));
    expect(texts()).toEqual(['after the flood']);
    expect(errors).toEqual([]);
  });

  it('a 10 MB run with no delimiter: buffer stays bounded, one tooLong, then normal service', () => {
    const max = DEFAULT_MAX_FRAME_BYTES;
    const { deframer, texts, errors } = rig();
    const chunk = noise(64 * 1024, 6, (b) => b !== 0);
    const total = 10 * 1024 * 1024;
    let peak = 0;
    for (let sent = 0; sent < total; sent += chunk.length) {
      deframer.push(chunk);
      peak = Math.max(peak, deframer.bufferedBytes());
    }
    expect(peak).toBeLessThanOrEqual(max);
    expect(errors).toEqual([]); // reported once, when the run ends
    deframer.push(encodeFrame(utf8('ok again')));
    expect(errors).toEqual([expect.objectContaining({ code: 'tooLong', discardedBytes: total })]);
    expect(texts()).toEqual(['ok again']);
    expect(deframer.bufferedBytes()).toBe(0);
  });

  it('frames at and over maxFrameBytes', () => {
    const { deframer, frames, errors } = rig({ maxFrameBytes: 64 });
    const fits = noise(64 - CRC_BYTES, 8);
    deframer.push(encodeFrame(fits));
    deframer.push(encodeFrame(noise(64 - CRC_BYTES + 1, 9)));
    deframer.push(encodeFrame(fits));
    expect(frames).toEqual([fits, fits]);
    expect(errors).toEqual([expect.objectContaining({ code: 'tooLong' })]);
  });

  it('a valid frame with a bad CRC', () => {
    const { deframer, texts, errors } = rig();
    const bad = encodeFrame(utf8('payload')).slice();
    bad[3] = bad[3]! ^ 0x01; // a data byte, still non-zero
    deframer.push(concat(bad, encodeFrame(utf8('next'))));
    expect(texts()).toEqual(['next']);
    expect(errors).toEqual([
      expect.objectContaining({ code: 'crcMismatch', discardedBytes: bad.length - 2 }),
    ]);
    expect(errors[0]!.message).toMatch(
      /^CRC-32 mismatch: frame says 0x[0-9a-f]{8}, payload has 0x[0-9a-f]{8}$/,
    );
  });

  it('a bad frame whose CRC is valid is delivered; the codec rejects it structurally', () => {
    const { deframer, frames } = rig();
    deframer.push(encodeFrame(utf8('{"v":1,"type":"telemetry","seq":"oops"}')));
    expect(frames).toHaveLength(1);
    expect(decodeMessage(frames[0]!)).toMatchObject({ ok: false, error: { code: 'badField' } });
  });

  it('a COBS code byte pointing past the end of the frame', () => {
    const { deframer, texts, errors } = rig();
    deframer.push(concat(bytes(0x00, 0x05, 0x41, 0x42, 0x00), encodeFrame(utf8('next'))));
    expect(texts()).toEqual(['next']);
    expect(errors).toEqual([expect.objectContaining({ code: 'badCobs', discardedBytes: 3 })]);
  });

  it('a 0x00 inside the encoded data (a delimiter in the payload, unescaped)', () => {
    const { deframer, texts, errors } = rig();
    const f = encodeFrame(utf8('a payload long enough to cut')).slice();
    f[10] = 0;
    deframer.push(concat(f, encodeFrame(utf8('next'))));
    expect(texts()).toEqual(['next']);
    expect(errors.length).toBe(2);
    expect(errors.map((e) => e.code).every((c) => c === 'badCobs' || c === 'crcMismatch')).toBe(true);
  });

  it('frames too short to hold a payload → empty', () => {
    const { deframer, errors, texts } = rig();
    const emptyWithCrc = bytes(0x01, 0x01, 0x01, 0x01, 0x01, 0x00); // COBS(00 00 00 00): crc32 of nothing is 0
    deframer.push(
      concat(bytes(0x01, 0x00), bytes(0x03, 0x11, 0x22, 0x00), emptyWithCrc, encodeFrame(utf8('x'))),
    );
    expect(errors.map((e) => e.code)).toEqual(['empty', 'empty', 'empty']);
    expect(texts()).toEqual(['x']);
  });

  it('device reboot banners and bootloader text interleaved with frames', () => {
    const { deframer, texts, errors } = rig();
    const banner = utf8(
      'ets Jun  8 2016 00:22:57\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n',
    );
    deframer.push(
      concat(
        banner,
        encodeFrame(utf8('one')),
        banner,
        encodeFrame(utf8('two')),
        utf8('I (29) boot: ESP-IDF\n'),
      ),
    );
    deframer.push(encodeFrame(utf8('three')));
    expect(texts()).toEqual(['one', 'two', 'three']);
    expect(errors).toHaveLength(3);
  });

  it('baud-mismatch garbage (random high-bit bytes)', () => {
    const { deframer, texts } = rig();
    deframer.push(
      concat(
        noise(2000, 10, (b) => b >= 0x80),
        encodeFrame(utf8('clean')),
      ),
    );
    expect(texts()).toEqual(['clean']);
  });

  it('half a frame, then an unplug: reset() drops it silently and says how much', () => {
    const { deframer, texts, errors } = rig();
    const f = encodeFrame(utf8('interrupted'));
    deframer.push(f.subarray(0, 6));
    expect(deframer.reset()).toBe(5);
    deframer.push(f.subarray(6)); // the tail after replug: no longer a frame
    deframer.push(encodeFrame(utf8('fresh')));
    expect(texts()).toEqual(['fresh']);
    expect(errors.map((e) => e.code)).toEqual(['badCobs']);
  });

  it('half a frame, then the device reboots and starts a new frame', () => {
    const { deframer, texts, errors } = rig();
    deframer.push(encodeFrame(utf8('interrupted')).subarray(0, 7));
    deframer.push(encodeFrame(utf8('after reboot')));
    expect(texts()).toEqual(['after reboot']);
    expect(errors).toHaveLength(1);
  });
});

describe('deframer: contract', () => {
  it('a throwing callback loses no frames and leaves the deframer consistent', () => {
    const seen: string[] = [];
    const deframer = createDeframer({
      onFrame: (p) => {
        seen.push(new TextDecoder().decode(p));
        if (seen.length === 1) throw new Error('handler bug');
      },
      onError: () => {},
    });
    expect(() => deframer.push(concat(encodeFrame(utf8('a')), encodeFrame(utf8('b'))))).toThrow(
      'handler bug',
    );
    deframer.push(encodeFrame(utf8('c')));
    expect(seen).toEqual(['a', 'b', 'c']);
  });

  it('bad options are misuse', () => {
    const ok = { onFrame: () => {}, onError: () => {} };
    expect(() => createDeframer({ ...ok, maxFrameBytes: 4 })).toThrow(FramingError);
    expect(() => createDeframer({ ...ok, maxFrameBytes: 1.5 })).toThrow(FramingError);
    expect(() => createDeframer({ onFrame: () => {} } as unknown as DeframerOptions)).toThrow(FramingError);
  });

  it('the smallest maxFrameBytes (5) carries one-byte payloads', () => {
    const { deframer, frames, errors } = rig({ maxFrameBytes: 5 });
    deframer.push(concat(encodeFrame(bytes(0)), encodeFrame(bytes(1, 2))));
    expect(frames).toEqual([bytes(0)]);
    expect(errors.map((e) => e.code)).toEqual(['tooLong']);
  });
});

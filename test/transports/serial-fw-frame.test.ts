/**
 * The binary fw.chunk frame (docs/protocol.md §7.1): its bytes, the round trip through the
 * deframer, and the bad-input corpus: a corrupt CRC, a cut frame, an oversized one, garbage and
 * JSON frames between binary ones on the line. Every bad frame gets one clear error and costs no
 * other frame.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FrameError } from '../../src/transports/framing.js';
import { createDeframer, encodeFrame, encodeFrameParts } from '../../src/transports/framing.js';
import type { DecodeError, FwChunkMessage, Message } from '../../src/transports/protocol.js';
import { encodeMessage, LIMITS } from '../../src/transports/protocol.js';
import {
  decodeDevicePayload,
  decodeFwChunkPayload,
  encodeFwChunkFrame,
  encodeFwChunkPayload,
  FW_CHUNK_HEADER_BYTES,
  isBinaryPayload,
} from '../../src/transports/serial-fw-frame.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const chunk = (data: Uint8Array, offset = 0, transferId = 'fw-9'): FwChunkMessage => ({
  v: 1,
  type: 'fw.chunk',
  transferId,
  offset,
  data,
});
const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** Deterministic pseudo-random bytes (xorshift), zeros and all. */
function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A line: the deframer, then decodeDevicePayload, as the host link and the simulator read it. */
function line(maxFrameBytes?: number) {
  const messages: Message[] = [];
  const refused: DecodeError[] = [];
  const frameErrors: FrameError[] = [];
  const deframer = createDeframer({
    ...(maxFrameBytes === undefined ? {} : { maxFrameBytes }),
    onFrame: (payload) => {
      const r = decodeDevicePayload(payload);
      if (r.ok) messages.push(r.value);
      else refused.push(r.error);
    },
    onError: (e) => frameErrors.push(e),
  });
  return { push: (b: Uint8Array) => deframer.push(b), messages, refused, frameErrors };
}

/** The frame's payload (what the CRC covers), rebuilt by hand as a firmware author reads §7.1. */
function payloadOf(transferId: string, offset: number, length: number, data: Uint8Array): Uint8Array {
  const header = new Uint8Array(FW_CHUNK_HEADER_BYTES + transferId.length);
  const view = new DataView(header.buffer);
  header[0] = 0x01;
  header[1] = transferId.length;
  header.set(new TextEncoder().encode(transferId), 2);
  view.setUint32(2 + transferId.length, offset, true);
  view.setUint16(6 + transferId.length, length, true);
  return concat(header, data);
}

describe('binary fw.chunk frame: layout', () => {
  it('the worked example of docs/protocol.md §7.1, byte for byte', () => {
    const frame = encodeFwChunkFrame(chunk(Uint8Array.of(1, 2, 3), 8192));
    expect(hex(frame)).toBe('0007010466772d390220010203080102034710854400');
    // type, id length, "fw-9", offset 8192, length 3, the data; then the CRC 0x44851047.
    const fields = ['01', '04', '66772d39', '00200000', '0300', '010203'];
    expect(hex(payloadOf('fw-9', 8192, 3, Uint8Array.of(1, 2, 3)))).toBe(fields.join(''));
    // Over MQTT the payload alone is the message, and it decodes back to the chunk.
    const mqttPayload = encodeFwChunkPayload(chunk(Uint8Array.of(1, 2, 3), 8192));
    expect(hex(mqttPayload)).toBe(fields.join(''));
    const back = decodeDevicePayload(mqttPayload);
    const fieldsBack = back.ok && back.value.type === 'fw.chunk' ? back.value : undefined;
    expect([fieldsBack?.transferId, fieldsBack?.offset, [...(fieldsBack?.data ?? [])]]).toEqual([
      'fw-9',
      8192,
      [1, 2, 3],
    ]);
    expect(() => encodeFwChunkPayload(chunk(Uint8Array.of(1), 0, 'bad id'))).toThrow(/transferId/);
  });

  it('docs/protocol.md §7.1 shows the same frame and the same field offsets', () => {
    const doc = readFileSync(fileURLToPath(new URL('../../docs/protocol.md', import.meta.url)), 'utf8');
    const section = doc.slice(doc.indexOf('### 7.1'), doc.indexOf('## 8.'));
    const frameLine = /^frame: +([0-9A-F ]+)$/m.exec(section)?.[1]?.trim();
    expect(frameLine?.replaceAll(' ', '').toLowerCase()).toBe(
      hex(encodeFwChunkFrame(chunk(Uint8Array.of(1, 2, 3), 8192))),
    );
    const rows = [...section.matchAll(/^\| ([0-9+ `n]+?) +\| ([0-9`a-z]+) +\| ([^|]+?) +\|/gm)].map((m) => [
      m[1],
      m[2],
      m[3],
    ]);
    expect(rows).toEqual([
      ['0', '1', 'type'],
      ['1', '1', '`n`'],
      ['2', '`n`', '`transferId`'],
      ['2 + `n`', '4', '`offset`'],
      ['6 + `n`', '2', '`length`'],
      ['8 + `n`', '`length`', '`data`'],
    ]);
    expect(FW_CHUNK_HEADER_BYTES).toBe(8);
  });

  it('the header is type, id length, id, offset (uint32 LE), length (uint16 LE); then the bytes as they are', () => {
    const data = noise(4096, 7);
    const frame = encodeFwChunkFrame(chunk(data, 0xfedcba98, 'fw-0123456789abcdef'));
    expect(hex(frame)).toBe(hex(encodeFrame(payloadOf('fw-0123456789abcdef', 0xfedcba98, 4096, data))));
    // 4096 image bytes cost 4096 + 27 (header) + 4 (CRC) + COBS + 2 delimiters on the wire.
    expect(frame.length / data.length).toBeLessThan(1.015);
    expect(encodeFrame(encodeMessage(chunk(data))).length / data.length).toBeGreaterThan(1.33);
  });

  it('tells binary from JSON by the first byte', () => {
    expect(isBinaryPayload(Uint8Array.of(0x01, 0))).toBe(true);
    expect(isBinaryPayload(Uint8Array.of(0x1f))).toBe(true);
    for (const first of ['{', ' ', '\t', '\n', '\r', '\ufeff'])
      expect(isBinaryPayload(new TextEncoder().encode(`${first}{}`))).toBe(false);
    expect(isBinaryPayload(new Uint8Array(0))).toBe(false);
  });
});

describe('binary fw.chunk frame: round trip', () => {
  it('any chunk survives frame and deframer unchanged, in any chunking of the line', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            data: fc.uint8Array({ minLength: 1, maxLength: LIMITS.chunkBytes }),
            offset: fc.nat({ max: 0xffffffff }),
            transferId: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        fc.nat(64),
        (chunks, cut) => {
          const l = line();
          const stream = concat(
            ...chunks.map((c) => encodeFwChunkFrame(chunk(c.data, c.offset, c.transferId))),
          );
          for (let i = 0; i < stream.length; i += cut + 1) l.push(stream.subarray(i, i + cut + 1));
          expect(l.frameErrors).toEqual([]);
          expect(l.refused).toEqual([]);
          expect(l.messages).toEqual(chunks.map((c) => chunk(c.data, c.offset, c.transferId)));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('the largest chunk (8192 bytes) and a 1-byte one', () => {
    const l = line();
    const big = noise(LIMITS.chunkBytes, 3);
    l.push(concat(encodeFwChunkFrame(chunk(big, 0)), encodeFwChunkFrame(chunk(Uint8Array.of(0), 8192))));
    expect(l.messages).toEqual([chunk(big, 0), chunk(Uint8Array.of(0), 8192)]);
  });
});

describe('binary fw.chunk frame: bad input', () => {
  it('a corrupt CRC: crcMismatch, and the next frame is delivered', () => {
    const l = line();
    const bad = encodeFwChunkFrame(chunk(noise(4096, 1)));
    bad[100] = bad[100] === 0x41 ? 0x42 : 0x41; // one flipped data byte, never a delimiter
    const good = encodeFwChunkFrame(chunk(noise(4096, 2), 4096));
    l.push(concat(bad, good));
    expect(l.frameErrors.map((e) => e.code)).toEqual(['crcMismatch']);
    expect(l.frameErrors[0]!.discardedBytes).toBe(bad.length - 2);
    expect(l.messages).toEqual([chunk(noise(4096, 2), 4096)]);
  });

  it('a frame cut short on the line (a reset mid-frame): one error, the next frame intact', () => {
    const l = line();
    const full = encodeFwChunkFrame(chunk(noise(4096, 4)));
    const next = encodeFwChunkFrame(chunk(noise(100, 5), 4096));
    l.push(concat(full.subarray(0, 2000), next));
    expect(l.frameErrors).toHaveLength(1);
    expect(['crcMismatch', 'badCobs']).toContain(l.frameErrors[0]!.code);
    expect(l.messages).toEqual([chunk(noise(100, 5), 4096)]);
  });

  it('a payload cut short or padded, with a valid CRC: refused naming the length', () => {
    const whole = payloadOf('fw-9', 0, 10, noise(10, 6));
    const cases: [Uint8Array, string, RegExp][] = [
      [whole.subarray(0, whole.length - 1), 'length', /length says 10 bytes, the frame holds 9/],
      [concat(whole, Uint8Array.of(7)), 'length', /length says 10 bytes, the frame holds 11/],
      [whole.subarray(0, 9), 'length', /cut short: 9 bytes, the header alone takes 12/],
      [Uint8Array.of(0x01), 'transferId', /transferId length must be 1…64, got 0/],
    ];
    for (const [payload, field, message] of cases) {
      const l = line();
      l.push(encodeFrame(payload));
      expect(l.frameErrors).toEqual([]);
      expect(l.refused).toEqual([
        expect.objectContaining({ code: 'badField', field, message: expect.stringMatching(message) }),
      ]);
    }
  });

  it('oversize: a chunk over 8192 bytes is refused when sent and when received', () => {
    const over = new Uint8Array(LIMITS.chunkBytes + 1).fill(9);
    expect(() => encodeFwChunkFrame(chunk(over))).toThrow(
      expect.objectContaining({ code: 'badField', field: 'data' }),
    );
    expect(() => encodeFwChunkFrame(chunk(new Uint8Array(0)))).toThrow(
      expect.objectContaining({ field: 'data' }),
    );
    const l = line();
    l.push(encodeFrame(payloadOf('fw-9', 0, over.length, over)));
    expect(l.refused).toEqual([
      expect.objectContaining({
        code: 'badField',
        field: 'length',
        message: expect.stringMatching(/1…8192, got 8193/),
      }),
    ]);
    // Over the payload limit before anything is read; over the deframer's limit before it is stored.
    expect(decodeFwChunkPayload(payloadOf('fw-9', 0, 10, noise(10, 1)), { maxBytes: 16 })).toMatchObject({
      ok: false,
      error: { code: 'tooLarge' },
    });
    const small = line(1024);
    small.push(concat(encodeFwChunkFrame(chunk(noise(4096, 8))), encodeFwChunkFrame(chunk(noise(10, 9)))));
    expect(small.frameErrors.map((e) => e.code)).toEqual(['tooLong']);
    expect(small.messages).toEqual([chunk(noise(10, 9))]);
  });

  it('a bad transfer id, a bad offset or a reserved type byte', () => {
    expect(() => encodeFwChunkFrame(chunk(Uint8Array.of(1), 0, 'fw/9'))).toThrow(
      expect.objectContaining({ code: 'badField', field: 'transferId' }),
    );
    expect(() => encodeFwChunkFrame(chunk(Uint8Array.of(1), 0, 'x'.repeat(65)))).toThrow(
      expect.objectContaining({ field: 'transferId' }),
    );
    expect(() => encodeFwChunkFrame(chunk(Uint8Array.of(1), 2 ** 32))).toThrow(
      expect.objectContaining({ field: 'offset' }),
    );
    expect(() => encodeFwChunkFrame(chunk(Uint8Array.of(1), -1))).toThrow(
      expect.objectContaining({ field: 'offset' }),
    );
    const badId = payloadOf('fw-9', 0, 1, Uint8Array.of(1));
    badId[3] = 0x2f; // '/'
    expect(decodeFwChunkPayload(badId)).toMatchObject({
      ok: false,
      error: { code: 'badField', field: 'transferId' },
    });
    const reserved = payloadOf('fw-9', 0, 1, Uint8Array.of(1));
    reserved[0] = 0x02;
    expect(decodeDevicePayload(reserved)).toMatchObject({
      ok: false,
      error: { code: 'unknownType', message: expect.stringMatching(/frame type 0x02 is not defined/) },
    });
  });

  it('garbage, JSON frames and binary frames mixed on one line: every good frame delivered, in order', () => {
    const l = line();
    const cmd: Message = { v: 1, type: 'cmd', cmdId: 'c1', action: 'ping' };
    const junk = noise(3000, 11); // with zeros in it: several junk "frames"
    const a = chunk(noise(4096, 12), 0);
    const b = chunk(noise(4096, 13), 4096);
    const stream = concat(
      new TextEncoder().encode('boot: ROM v1.2\r\n'),
      encodeFwChunkFrame(a),
      junk,
      encodeFrame(encodeMessage(cmd)),
      Uint8Array.of(0x13, 0x37), // half a frame without a leading delimiter: closed off by the next one's
      encodeFwChunkFrame(b),
    );
    for (let i = 0; i < stream.length; i += 509) l.push(stream.subarray(i, i + 509));
    expect(l.messages).toEqual([a, cmd, b]);
    // Every piece of junk was reported, each with a code and a sentence; none were delivered.
    expect(l.frameErrors.length + l.refused.length).toBeGreaterThan(0);
    for (const e of [...l.frameErrors, ...l.refused]) expect(e.message.length).toBeGreaterThan(10);
  });

  it('a frame of two pieces reads the same as one', () => {
    const p = payloadOf('fw-9', 12, 5, noise(5, 1));
    expect(hex(encodeFrameParts([p.subarray(0, 3), p.subarray(3)]))).toBe(hex(encodeFrame(p)));
  });
});

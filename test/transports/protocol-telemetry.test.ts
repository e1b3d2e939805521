/**
 * The codec's fast path for canonical telemetry (src/transports/protocol-telemetry.ts): it takes
 * exactly the form encodeMessage writes, and whatever it takes decodes to the very message the
 * general path (JSON.parse and the field checks) gives for the same bytes; everything else is
 * left to the general path. Checked over generated payloads and byte-level mutations of them
 * (seeded, so a failure repeats).
 */
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, type TelemetryMessage } from '../../src/transports/protocol.js';
import { readCanonicalTelemetry } from '../../src/transports/protocol-telemetry.js';

const utf8 = (s: string) => new TextEncoder().encode(s);

/**
 * The general path's answer for the same JSON: a leading space is JSON whitespace, so the text
 * means the same, but the fast path (which wants `{` first) leaves it to JSON.parse.
 */
const general = (bytes: Uint8Array) => decodeMessage(Uint8Array.from([0x20, ...bytes]));

/** Same outcome; when both decode, equal messages with every value the same double (-0 included). */
function expectSameAsGeneral(bytes: Uint8Array): void {
  const fast = decodeMessage(bytes);
  const slow = general(bytes);
  const text = new TextDecoder().decode(bytes);
  expect(fast.ok, text).toBe(slow.ok);
  if (fast.ok && slow.ok) {
    expect(fast.value, text).toEqual(slow.value);
    if (fast.value.type === 'telemetry' && slow.value.type === 'telemetry') {
      const a = fast.value.values;
      const b = slow.value.values;
      expect(Object.keys(a), text).toEqual(Object.keys(b));
      for (const k of Object.keys(a)) expect(Object.is(a[k], b[k]), `${text} ${k}`).toBe(true);
      expect(Object.getPrototypeOf(a)).toBe(Object.prototype);
    }
  } else if (!fast.ok && !slow.ok) {
    expect(fast.error.code, text).toBe(slow.error.code);
    expect(fast.error.field, text).toBe(slow.error.field);
  }
}

/** A small seeded generator (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NUMBERS = [
  '0',
  '-0',
  '0.0',
  '-0.0',
  '1',
  '-1',
  '20.5',
  '-61',
  '0.1',
  '0.30000000000000004',
  '123456789012345',
  '1234567890123456',
  '99999999999999.9',
  '0.000000000000001',
  '1e3',
  '1E-2',
  '2.5e+1',
  '01',
  '00',
  '-',
  '1.',
  '.5',
  '-.5',
  '4294967295',
  '9007199254740991',
  '9007199254740993',
  '1.7976931348623157',
  '3.14159265358979',
  '271828182845904.5',
  '0.123456789012345',
];
const INTS = [
  '0',
  '1',
  '7',
  '01',
  '-0',
  '1.0',
  '1e2',
  '4294967295',
  '4294967296',
  '9007199254740991',
  '9007199254740992',
  '12345678901234567',
  '',
];
const NAMES = [
  'temp',
  'rssi',
  'a',
  'x.y',
  'A_b-9',
  'm'.repeat(64),
  'm'.repeat(65),
  '',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'sp ace',
  'é',
  'q"uote',
  'back\\\\slash',
  '1',
  '10',
];

/** How many of the first entries of each list are valid in a canonical payload. */
const GOOD = { numbers: 13, ints: 3, names: 7 };

function generated(next: () => number): string {
  // Mostly valid parts, so that many payloads are canonical, and a flawed one now and then.
  const pick = <T>(xs: readonly T[], good: number): T =>
    xs[Math.floor(next() * (next() < 0.9 ? good : xs.length))]!;
  const n = Math.floor(next() * 4);
  const pairs: string[] = [];
  for (let i = 0; i < n; i++) pairs.push(`"${pick(NAMES, GOOD.names)}":${pick(NUMBERS, GOOD.numbers)}`);
  const int = () => pick(INTS, GOOD.ints);
  return `{"v":1,"type":"telemetry","boot":${int()},"seq":${int()},"ts":${int()},"values":{${pairs.join(',')}}}`;
}

describe('readCanonicalTelemetry', () => {
  it('reads what encodeMessage writes, as the general path does', () => {
    const m: TelemetryMessage = {
      v: 1,
      type: 'telemetry',
      boot: 4_294_967_295,
      seq: 0,
      ts: 1_765_000_000_123,
      values: { temp: 21.5, rssi: -61, 'x.y_z-1': 0.1, big: 123_456_789_012_345 },
    };
    const bytes = encodeMessage(m);
    expect(readCanonicalTelemetry(bytes)).toEqual(m);
    expectSameAsGeneral(bytes);
    expect(
      readCanonicalTelemetry(utf8('{"v":1,"type":"telemetry","boot":1,"seq":2,"ts":3,"values":{}}')),
    ).toEqual({
      v: 1,
      type: 'telemetry',
      boot: 1,
      seq: 2,
      ts: 3,
      values: {},
    });
  });

  it('leaves every other form to the general path', () => {
    const base = '{"v":1,"type":"telemetry","boot":1,"seq":2,"ts":3,"values":{"t":1}}';
    for (const other of [
      base.replace('{"v":1,', '{ "v":1,'), // whitespace
      base.replace('"boot":1,"seq":2', '"seq":2,"boot":1'), // key order
      base.replace('"ts":3,', '"ts":3,"extra":true,'), // an extra field
      base.replace('"t":1', '"t":1e0'), // an exponent
      base.replace('"t":1', '"t":1234567890123456'), // 16 digits
      base.replace('"t":1', '"t":1,"t":2'), // a repeated name
      base.replace('"t":1', '"__proto__":1'), // a forbidden name
      base.replace('"t"', '"\\u0074"'), // an escape
      base.replace('"boot":1', '"boot":1.0'), // an integral fraction
      `${base} `, // trailing whitespace
      base.replace('"telemetry"', '"heartbeat"'),
    ]) {
      expect(readCanonicalTelemetry(utf8(other)), other).toBeUndefined();
      expectSameAsGeneral(utf8(other));
    }
    // A byte order mark (the general path skips it only as the very first bytes).
    const bom = utf8(`\ufeff${base}`);
    expect(readCanonicalTelemetry(bom)).toBeUndefined();
    expect(decodeMessage(bom)).toEqual(decodeMessage(utf8(base)));
  });

  it('agrees with the general path on 20 000 generated payloads', () => {
    const next = random(16);
    let taken = 0;
    for (let i = 0; i < 20_000; i++) {
      const bytes = utf8(generated(next));
      if (readCanonicalTelemetry(bytes) !== undefined) taken++;
      expectSameAsGeneral(bytes);
    }
    // Most generated payloads have some flaw; enough are clean for the comparison to mean something.
    expect(taken).toBeGreaterThan(3000);
  });

  it('agrees with the general path on every one-byte change of a canonical payload', () => {
    const next = random(17);
    const bytes = utf8(
      '{"v":1,"type":"telemetry","boot":7,"seq":41,"ts":1765000000123,"values":{"temp":21.5,"rssi":-61}}',
    );
    const interesting = [
      0x20, 0x22, 0x2c, 0x2d, 0x2e, 0x30, 0x31, 0x39, 0x3a, 0x45, 0x5c, 0x65, 0x7b, 0x7d, 0x80, 0xff,
    ];
    for (let at = 0; at < bytes.length; at++) {
      for (const b of [...interesting, Math.floor(next() * 128)]) {
        const changed = Uint8Array.from(bytes);
        changed[at] = b;
        expectSameAsGeneral(changed);
      }
      expectSameAsGeneral(Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at + 1)]));
    }
  });
});

/**
 * Protocol v1 codec: round trips of every message type, device ids, the MQTT topic map, and the
 * payload, topic and ordering sections of the bad-input corpus (reference/reliability.md §d).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CHANNELS,
  type Channel,
  channelFor,
  DEFAULT_MAX_PAYLOAD_BYTES,
  type DeviceId,
  decodeMessage,
  decodePublish,
  directionOf,
  encodeMessage,
  LIMITS,
  MAX_DEPTH,
  type Message,
  nextSeq,
  ProtocolError,
  parseDeviceId,
  parseTopic,
  seqDelta,
  topicFilterFor,
  topicFor,
} from '../../src/transports/protocol.js';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);
const json = (x: unknown): Uint8Array => utf8(JSON.stringify(x));
const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

function id(s: string): DeviceId {
  const r = parseDeviceId(s);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

function decodeError(input: Uint8Array, maxBytes?: number) {
  const r = decodeMessage(input, maxBytes === undefined ? {} : { maxBytes });
  if (r.ok) throw new Error(`expected an error, got ${JSON.stringify(r.value)}`);
  return r.error;
}

const telemetry = {
  v: 1,
  type: 'telemetry',
  boot: 7,
  seq: 1042,
  ts: 1_732_350_000_000,
  values: { temp: 21.5 },
};
const withTelemetry = (patch: Record<string, unknown>) => json({ ...telemetry, ...patch });

const EXAMPLES: readonly Message[] = [
  {
    v: 1,
    type: 'hello',
    deviceId: id('pump-7'),
    kind: 'pump',
    boot: 42,
    firmware: { version: '1.4.2', slot: 'A', confirmed: true, slots: { A: '1.4.2', B: '1.4.1' } },
    capabilities: ['reboot', 'setSpeed', 'fw'],
  },
  {
    v: 1,
    type: 'hello',
    deviceId: id('x'),
    kind: 'sensor.t1',
    boot: 0,
    firmware: {
      version: '0.1.0-rc.1+build.5',
      slot: 'B',
      confirmed: false,
      slots: { A: null, B: '0.1.0-rc.1+build.5' },
    },
    capabilities: [],
  },
  { v: 1, type: 'status', state: 'online', boot: 42, conn: 3 },
  { v: 1, type: 'status', state: 'offline', boot: 42, conn: 3 },
  {
    v: 1,
    type: 'telemetry',
    boot: 42,
    seq: 4_294_967_295,
    ts: 1_732_350_000_000,
    values: { temp: 21.5, rpm: -3e-7 },
  },
  { v: 1, type: 'telemetry', boot: 42, seq: 0, ts: 0, values: {} },
  { v: 1, type: 'heartbeat', boot: 42, uptimeMs: 86_400_000 },
  { v: 1, type: 'event', boot: 42, seq: 1043, ts: 1_732_350_000_100, name: 'overheat' },
  {
    v: 1,
    type: 'event',
    boot: 42,
    seq: 1044,
    ts: 1_732_350_000_200,
    name: 'door.open',
    severity: 'warning',
    data: { zone: 3, tags: ['a', null, true], nested: { deep: [1, [2, [3]]] } },
  },
  { v: 1, type: 'cmd', cmdId: '01JD3XW5Q8K2M9ZP4R7T6V1B0C', action: 'reboot' },
  {
    v: 1,
    type: 'cmd',
    cmdId: 'c-2',
    action: 'setSpeed',
    args: { rpm: 1200, ramp: { ms: 500 }, note: 'née ✓' },
    expiresAt: 1_732_350_060_000,
  },
  { v: 1, type: 'reply', cmdId: 'c-2', ok: true, result: { rpm: 1200 } },
  { v: 1, type: 'reply', cmdId: 'c-3', ok: true },
  { v: 1, type: 'reply', cmdId: 'c-4', ok: true, result: null },
  {
    v: 1,
    type: 'reply',
    cmdId: 'c-5',
    ok: false,
    error: { code: 'busy', message: 'motor is\tramping\nretry later' },
  },
  {
    v: 1,
    type: 'fw.begin',
    transferId: 'fw-9',
    version: '1.5.0',
    size: 524_288,
    sha256: 'a'.repeat(64),
    chunkBytes: 4096,
  },
  { v: 1, type: 'fw.chunk', transferId: 'fw-9', offset: 8192, data: Uint8Array.from([0, 1, 2, 255, 254, 0]) },
  {
    v: 1,
    type: 'fw.chunk',
    transferId: 'fw-9',
    offset: 0,
    data: new Uint8Array(LIMITS.chunkBytes).fill(0xa5),
  },
  { v: 1, type: 'fw.ack', transferId: 'fw-9', step: 'chunk', offset: 12_288 },
  {
    v: 1,
    type: 'fw.ack',
    transferId: 'fw-9',
    step: 'verify',
    offset: 524_288,
    error: { code: 'hashMismatch', message: 'sha256 differs' },
  },
  { v: 1, type: 'fw.verify', transferId: 'fw-9' },
  { v: 1, type: 'fw.apply', transferId: 'fw-9' },
  { v: 1, type: 'fw.confirm', transferId: 'fw-9' },
  { v: 1, type: 'fw.rollback', transferId: 'fw-9' },
];

describe('round trips', () => {
  it('covers every message type', () => {
    const types = new Set(EXAMPLES.map((m) => m.type));
    const all = Object.values(CHANNELS).flatMap((c) => c.types);
    expect([...types].sort()).toEqual([...all].sort());
  });

  it.each(EXAMPLES.map((m, i) => [`${i} ${m.type}`, m] as const))(
    '%s decodes back to an equal message',
    (_, msg) => {
      const encoded = encodeMessage(msg);
      expect(new TextDecoder().decode(encoded.subarray(0, 14))).toBe('{"v":1,"type":');
      expect(decodeMessage(encoded)).toEqual({ ok: true, value: msg });
    },
  );

  it('fw.chunk data travels as padded base64', () => {
    const text = new TextDecoder().decode(
      encodeMessage({
        v: 1,
        type: 'fw.chunk',
        transferId: 't',
        offset: 0,
        data: Uint8Array.from([1, 2, 3, 250]),
      }),
    );
    expect(JSON.parse(text).data).toBe('AQID+g==');
  });

  it('random telemetry round-trips', () => {
    const metric = fc
      .stringMatching(/^[A-Za-z0-9_.-]{1,64}$/)
      .filter((k) => !['__proto__', 'constructor', 'prototype'].includes(k));
    fc.assert(
      fc.property(
        fc.nat(0xffffffff),
        fc.nat(0xffffffff),
        fc.nat(Number.MAX_SAFE_INTEGER),
        fc.dictionary(metric, fc.double({ noNaN: true, noDefaultInfinity: true }), { maxKeys: 20 }),
        (boot, seq, ts, values) => {
          const clean = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v + 0]));
          const msg: Message = { v: 1, type: 'telemetry', boot, seq, ts, values: clean };
          expect(decodeMessage(encodeMessage(msg))).toEqual({ ok: true, value: msg });
        },
      ),
    );
  });
});

describe('encodeMessage refuses what would not decode', () => {
  it.each([
    ['NaN value', { ...telemetry, values: { t: Number.NaN } }, 'badField', 'values.t'],
    ['seq over uint32', { ...telemetry, seq: 2 ** 32 }, 'badField', 'seq'],
    ['bad cmdId', { v: 1, type: 'cmd', cmdId: 'a/b', action: 'x' }, 'badField', 'cmdId'],
  ])('%s', (_, msg, code, field) => {
    expect(() => encodeMessage(msg as Message)).toThrow(ProtocolError);
    try {
      encodeMessage(msg as Message);
    } catch (err) {
      expect(err).toMatchObject({ code, field });
    }
  });

  it('a cycle in args', () => {
    const args: Record<string, unknown> = {};
    args.self = args;
    expect(() =>
      encodeMessage({ v: 1, type: 'cmd', cmdId: 'c', action: 'x', args } as unknown as Message),
    ).toThrow(expect.objectContaining({ code: 'notJson' }));
  });

  it('over maxBytes', () => {
    const big = { v: 1, type: 'cmd', cmdId: 'c', action: 'x', args: { s: 'x'.repeat(200) } } as const;
    expect(() => encodeMessage(big, { maxBytes: 100 })).toThrow(
      expect.objectContaining({ code: 'tooLarge' }),
    );
    expect(encodeMessage(big).length).toBeGreaterThan(200);
  });

  it('bad options are misuse', () => {
    expect(() => decodeMessage(utf8('{}'), { maxBytes: 0 })).toThrow(ProtocolError);
    expect(() => decodeMessage(utf8('{}'), { maxBytes: Number.NaN })).toThrow(ProtocolError);
    expect(() => decodeMessage('{}' as unknown as Uint8Array)).toThrow(ProtocolError);
  });
});

describe('parseDeviceId', () => {
  it('accepts 1–64 of [A-Za-z0-9_-]', () => {
    for (const s of ['a', 'pump-7', 'A_b-C_9', 'x'.repeat(64), '01JD3XW5Q8K2M9ZP4R7T6V1B0C']) {
      expect(parseDeviceId(s)).toEqual({ ok: true, value: s });
    }
  });

  it('rejects empty and overlong ids (65, 65,535 and 65,536 characters)', () => {
    expect(parseDeviceId('')).toMatchObject({ ok: false, error: { code: 'empty' } });
    for (const n of [65, 65_535, 65_536]) {
      expect(parseDeviceId('a'.repeat(n))).toMatchObject({ ok: false, error: { code: 'tooLong' } });
    }
    expect(parseDeviceId(7 as unknown as string)).toMatchObject({ ok: false, error: { code: 'notString' } });
  });

  it.each([
    ['+', '+', 0],
    ['#', '#', 0],
    ['a/b', '/', 1],
    ['a/+/b', '/', 1],
    ['$SYS', '$', 0],
    ['$share/x', '$', 0],
    ['..', '.', 0],
    ['.', '.', 0],
    ['/a', '/', 0],
    ['a/', '/', 1],
    ['   ', ' ', 0],
    ['pump\t7', '\t', 4],
    ['p\u0430mp', '\u0430', 1], // Cyrillic а, a homoglyph of a
    ['pump\u200b', '\u200b', 4], // zero-width space
    ['\u202epmup', '\u202e', 0], // right-to-left override
    ['a\u0000b', '\u0000', 1],
    ['a\u007f', '\u007f', 1],
    ['a\u0085', '\u0085', 1],
    ['a\ufffd', '\ufffd', 1], // what ill-formed UTF-8 decodes to
    ['pump😀', '😀', 4],
  ])('rejects %j, naming %j at %i', (s, character, position) => {
    const r = parseDeviceId(s);
    expect(r).toMatchObject({ ok: false, error: { code: 'badCharacter', character, position } });
    if (!r.ok) expect(r.error.message).toContain(`position ${position}`);
  });

  it('names the character readably', () => {
    const r = parseDeviceId('ab+c');
    expect(!r.ok && r.error.message).toBe(
      "device id has '+' (U+002B) at position 2; allowed: A-Z a-z 0-9 _ -",
    );
    const z = parseDeviceId('a\u200b');
    expect(!z.ok && z.error.message).toContain('U+200B');
  });

  it('nothing it accepts can carry a wildcard, separator, $ or control character', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (s) => {
        const r = parseDeviceId(s);
        if (r.ok) expect(r.value).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
      }),
    );
  });
});

describe('topics', () => {
  const channels = Object.keys(CHANNELS) as Channel[];

  it('topicFor and parseTopic are inverse for every channel', () => {
    for (const channel of channels) {
      const topic = topicFor(id('pump-7'), channel);
      expect(topic).toBe(`fleetvisor/v1/pump-7/${channel}`);
      expect(parseTopic(topic)).toEqual({ ok: true, value: { deviceId: 'pump-7', channel } });
    }
  });

  it('filters and the type ↔ channel map agree', () => {
    expect(topicFilterFor('telemetry')).toBe('fleetvisor/v1/+/telemetry');
    for (const channel of channels) {
      for (const type of CHANNELS[channel].types) {
        expect(channelFor(type)).toBe(channel);
        expect(directionOf(type)).toBe(CHANNELS[channel].direction);
      }
    }
    expect(CHANNELS.cmd).toMatchObject({ direction: 'toDevice', qos: 1, retain: false });
    expect(CHANNELS.hello.retain && CHANNELS.status.retain).toBe(true);
  });

  it.each([
    ['', 'empty'],
    ['fleetvisor/v1/+/telemetry', 'wildcard'],
    ['fleetvisor/v1/#', 'wildcard'],
    ['fleetvisor/v1/pump-7/+', 'wildcard'],
    ['a/#/b', 'wildcard'],
    ['a#', 'wildcard'],
    ['a+/b', 'wildcard'],
    ['$SYS/broker/uptime', 'reserved'],
    ['$share/x/fleetvisor/v1/pump-7/telemetry', 'reserved'],
    ['/fleetvisor/v1/pump-7/telemetry', 'emptyLevel'],
    ['fleetvisor/v1/pump-7/telemetry/', 'emptyLevel'],
    ['fleetvisor/v1//telemetry', 'emptyLevel'],
    ['fleetvisor/v1/pump\u00007/telemetry', 'badCharacter'],
    ['fleetvisor/v1/pump 7/telemetry', 'badCharacter'],
    ['fleetvisor/v1/p\u0430mp/telemetry', 'badCharacter'],
    ['fleetvisor/v1/pump\u200b/telemetry', 'badCharacter'],
    ['other/v1/pump-7/telemetry', 'foreign'],
    ['fleetvisor/beta/pump-7/telemetry', 'foreign'],
    ['fleetvisor/v2/pump-7/telemetry', 'unsupportedVersion'],
    ['fleetvisor/v1/pump-7', 'badShape'],
    ['fleetvisor/v1/pump-7/fw/ack', 'badShape'],
    ['fleetvisor/v1/../telemetry', 'badDeviceId'],
    ['fleetvisor/v1/pump.7/telemetry', 'badDeviceId'],
    [`fleetvisor/v1/${'a'.repeat(65)}/telemetry`, 'badDeviceId'],
    ['fleetvisor/v1/pump-7/commands', 'unknownChannel'],
    ['fleetvisor/v1/pump-7/__proto__', 'unknownChannel'],
  ])('rejects %j as %s', (topic, code) => {
    expect(parseTopic(topic)).toMatchObject({ ok: false, error: { code } });
  });

  it('rejects every control character, C0 and C1', () => {
    for (let c = 0; c <= 0x9f; c++) {
      if (c > 0x1f && c < 0x7f) continue;
      const topic = `fleetvisor/v1/pump${String.fromCharCode(c)}/telemetry`;
      expect(parseTopic(topic)).toMatchObject({ ok: false, error: { code: 'badCharacter', position: 18 } });
    }
  });

  it('rejects topics that arrived as ill-formed UTF-8 (decoded to U+FFFD) or with lone surrogates', () => {
    const bad = [
      bytes(0xc0, 0x80),
      bytes(0xed, 0xa0, 0x80),
      bytes(0xff),
      bytes(0xf8, 0x88, 0x80, 0x80, 0x80),
      bytes(0xe2, 0x82),
    ];
    for (const b of bad) {
      const topic = new TextDecoder().decode(concat(utf8('fleetvisor/v1/pump'), b, utf8('/telemetry')));
      expect(parseTopic(topic)).toMatchObject({ ok: false, error: { code: 'badCharacter' } });
    }
    expect(parseTopic('fleetvisor/v1/\ud800/telemetry')).toMatchObject({
      ok: false,
      error: { code: 'badCharacter' },
    });
  });

  it('rejects overlong topics before looking at them (129, 65,535 and 65,536 characters)', () => {
    for (const n of [LIMITS.topicChars + 1, 65_535, 65_536]) {
      const topic = `fleetvisor/v1/${'a'.repeat(n)}`.slice(0, n);
      expect(parseTopic(topic)).toMatchObject({ ok: false, error: { code: 'tooLong' } });
    }
  });

  it('never throws and accepts only well-formed topics', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 140 }), (s) => {
        const r = parseTopic(s);
        if (r.ok) expect(s).toMatch(/^fleetvisor\/v1\/[A-Za-z0-9_-]{1,64}\/[a-z-]+$/);
      }),
    );
  });
});

describe('payload corpus: size, encoding, syntax', () => {
  it('empty payload (a cleared retained message)', () => {
    expect(decodeError(new Uint8Array(0)).code).toBe('empty');
  });

  it('a single byte', () => {
    expect(decodeError(utf8('{')).code).toBe('notJson');
    expect(decodeError(utf8('7')).code).toBe('badEnvelope');
    expect(decodeError(bytes(0x00)).code).toBe('notJson');
    expect(decodeError(bytes(0xff)).code).toBe('notUtf8');
  });

  it('not JSON', () => {
    const e = decodeError(utf8('temp=21.5'));
    expect(e.code).toBe('notJson');
    expect(e.message).toMatch(/^payload is not JSON: /);
    expect(decodeError(utf8('{"v":1,"type":"heartbeat",}')).code).toBe('notJson');
    expect(decodeError(utf8('{"v":1} {"v":1}')).code).toBe('notJson');
  });

  it('a leading UTF-8 BOM is ignored; a second one is not', () => {
    const plain = encodeMessage(EXAMPLES[6]!);
    expect(decodeMessage(concat(bytes(0xef, 0xbb, 0xbf), plain))).toEqual({ ok: true, value: EXAMPLES[6] });
    expect(decodeError(concat(bytes(0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf), plain)).code).toBe('notJson');
    expect(decodeError(bytes(0xef, 0xbb, 0xbf)).code).toBe('notJson');
  });

  it('UTF-16 with and without a BOM', () => {
    const text = JSON.stringify(telemetry);
    const le = new Uint8Array(text.length * 2);
    for (let i = 0; i < text.length; i++) le[i * 2] = text.charCodeAt(i);
    expect(decodeError(concat(bytes(0xff, 0xfe), le)).code).toBe('notUtf8');
    expect(decodeError(concat(bytes(0xfe, 0xff), le.subarray(1))).code).toBe('notUtf8');
    expect(decodeError(le).code).toBe('notJson'); // NUL bytes between ASCII: valid UTF-8, invalid JSON
  });

  it.each([
    ['overlong NUL C0 80', [0xc0, 0x80]],
    ['surrogate ED A0 80', [0xed, 0xa0, 0x80]],
    ['FF', [0xff]],
    ['5-byte F8 88 80 80 80', [0xf8, 0x88, 0x80, 0x80, 0x80]],
    ['truncated E2 82', [0xe2, 0x82]],
  ])('ill-formed UTF-8 inside a string: %s', (_, seq) => {
    const payload = concat(
      utf8('{"v":1,"type":"event","boot":1,"seq":1,"ts":0,"name":"x","data":{"s":"'),
      Uint8Array.from(seq),
      utf8('"}}'),
    );
    expect(decodeError(payload).code).toBe('notUtf8');
  });

  it('sizes just under, at and over the limit are checked before parsing', () => {
    const fill = (n: number) => {
      const head = '{"v":1,"type":"cmd","cmdId":"c","action":"x","args":{"s":"';
      const tail = '"}}';
      return utf8(head + 'x'.repeat(n - head.length - tail.length) + tail);
    };
    expect(decodeMessage(fill(DEFAULT_MAX_PAYLOAD_BYTES - 1)).ok).toBe(true);
    expect(decodeMessage(fill(DEFAULT_MAX_PAYLOAD_BYTES)).ok).toBe(true);
    expect(decodeError(fill(DEFAULT_MAX_PAYLOAD_BYTES + 1)).code).toBe('tooLarge');
    expect(decodeMessage(fill(256 * 1024), { maxBytes: 256 * 1024 }).ok).toBe(true);
    expect(decodeError(fill(256 * 1024 + 1), 256 * 1024).code).toBe('tooLarge');
    // 1 MB of bytes that are not even UTF-8: the size check comes first.
    expect(decodeError(new Uint8Array(1024 * 1024).fill(0xff)).code).toBe('tooLarge');
  });

  it('huge arrays and strings inside the limit decode', () => {
    const arr = Array.from({ length: 3000 }, (_, i) => i);
    const r = decodeMessage(json({ v: 1, type: 'cmd', cmdId: 'c', action: 'load', args: { arr } }));
    expect(r.ok && r.value.type === 'cmd' && r.value.args?.arr).toEqual(arr);
  });
});

describe('payload corpus: nesting depth', () => {
  it('10,000 levels of [ → tooDeep, without a stack overflow', () => {
    expect(decodeError(utf8('['.repeat(10_000))).code).toBe('tooDeep');
    expect(decodeError(utf8(`${'['.repeat(10_000)}${']'.repeat(10_000)}`), 1_000_000).code).toBe('tooDeep');
  });

  it('objects nested 10,000 deep → tooDeep', () => {
    expect(decodeError(utf8(`${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`), 1_000_000).code).toBe(
      'tooDeep',
    );
  });

  it('100,000 levels inside a large limit still → tooDeep', () => {
    expect(decodeError(utf8('[{"a":'.repeat(100_000)), 1_000_000).code).toBe('tooDeep');
  });

  it(`exactly ${MAX_DEPTH} levels decode; ${MAX_DEPTH + 1} do not`, () => {
    // envelope (1) + args (2) + nested arrays
    const at = (depth: number) =>
      utf8(
        `{"v":1,"type":"cmd","cmdId":"c","action":"x","args":{"a":${'['.repeat(depth - 2)}${']'.repeat(depth - 2)}}}`,
      );
    expect(decodeMessage(at(MAX_DEPTH)).ok).toBe(true);
    expect(decodeError(at(MAX_DEPTH + 1)).code).toBe('tooDeep');
  });

  it('brackets and escaped quotes inside strings do not count', () => {
    const s = `\\"${'['.repeat(1000)}{{{\\\\`;
    const r = decodeMessage(utf8(`{"v":1,"type":"cmd","cmdId":"c","action":"x","args":{"s":"${s}"}}`));
    expect(r.ok && r.value.type === 'cmd' && r.value.args?.s).toBe(`"${'['.repeat(1000)}{{{\\`);
  });
});

describe('payload corpus: prototype pollution and keys', () => {
  const pristine = () => {
    const probe: Record<string, unknown> = {};
    expect(probe.polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  };

  it('__proto__, constructor and prototype keys are dropped everywhere', () => {
    const text =
      '{"v":1,"type":"cmd","cmdId":"c","action":"x","__proto__":{"polluted":1},' +
      '"args":{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},"prototype":{"polluted":1},' +
      '"ok":{"__proto__":{"polluted":1},"keep":1},"list":[{"__proto__":{"polluted":1}}]}}';
    const r = decodeMessage(utf8(text));
    expect(r.ok).toBe(true);
    if (!r.ok || r.value.type !== 'cmd') return;
    const args = r.value.args!;
    expect(Object.keys(args)).toEqual(['ok', 'list']);
    expect(args).toEqual({ ok: { keep: 1 }, list: [{}] });
    expect(Object.getPrototypeOf(args)).toBe(Object.prototype);
    // What a careless consumer does next must not pollute either.
    const merged = Object.assign({}, args, args.ok as object);
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
    pristine();
  });

  it('also with \\u-escaped key names', () => {
    const r = decodeMessage(
      utf8(
        '{"v":1,"type":"telemetry","boot":1,"seq":1,"ts":0,"values":{"\\u005f_proto__":1,"con\\u0073tructor":2,"t":3}}',
      ),
    );
    expect(r).toEqual({
      ok: true,
      value: { v: 1, type: 'telemetry', boot: 1, seq: 1, ts: 0, values: { t: 3 } },
    });
    pristine();
  });

  it('a __proto__ envelope cannot supply v or type', () => {
    expect(decodeError(utf8('{"__proto__":{"v":1,"type":"heartbeat","boot":1,"uptimeMs":1}}')).code).toBe(
      'badEnvelope',
    );
  });

  it('fields are read as own properties even if Object.prototype was polluted by someone else', () => {
    const proto = Object.prototype as Record<string, unknown>;
    try {
      proto.v = 1;
      proto.type = 'heartbeat';
      proto.boot = 1;
      expect(decodeError(utf8('{}')).code).toBe('badEnvelope');
      expect(decodeError(utf8('{"v":1,"type":"heartbeat","uptimeMs":5}'))).toMatchObject({
        code: 'badField',
        field: 'boot',
      });
    } finally {
      delete proto.v;
      delete proto.type;
      delete proto.boot;
    }
  });

  it('duplicate keys: the last one wins, as in JSON.parse', () => {
    const r = decodeMessage(
      utf8('{"v":1,"type":"status","type":"heartbeat","boot":1,"boot":2,"uptimeMs":5}'),
    );
    expect(r).toEqual({ ok: true, value: { v: 1, type: 'heartbeat', boot: 2, uptimeMs: 5 } });
  });

  it('unknown extra fields (and an unknown schemaVersion) are ignored and not passed on', () => {
    const r = decodeMessage(withTelemetry({ schemaVersion: 9, extra: { a: [1] }, firmwareHint: 'x' }));
    expect(r).toEqual({ ok: true, value: telemetry });
  });
});

describe('payload corpus: numbers and type confusion', () => {
  it('1e309 (→ Infinity) is an error wherever it appears', () => {
    expect(decodeError(withTelemetryText('"values":{"t":1e309}'))).toMatchObject({
      code: 'badField',
      field: 'values.t',
    });
    expect(decodeError(withTelemetryText('"values":{"t":-1e309}'))).toMatchObject({
      code: 'badField',
      field: 'values.t',
    });
    expect(decodeError(withTelemetryText('"values":{"t":1},"seq":1e309'))).toMatchObject({
      code: 'badField',
      field: 'seq',
    });
    const cmd = utf8('{"v":1,"type":"cmd","cmdId":"c","action":"x","args":{"a":[1,{"b":1e309}]}}');
    expect(decodeError(cmd)).toMatchObject({ code: 'badField', field: 'args.a[1].b' });
    expect(decodeError(utf8('{"v":1e309,"type":"heartbeat"}')).code).toBe('unsupportedVersion');
  });

  it('-0 decodes as 0', () => {
    const r = decodeMessage(withTelemetryText('"seq":-0,"values":{"t":-0}'));
    expect(r.ok).toBe(true);
    if (r.ok && r.value.type === 'telemetry') {
      expect(Object.is(r.value.seq, 0)).toBe(true);
      expect(Object.is(r.value.values.t, 0)).toBe(true);
    }
  });

  it('telemetry values: a __proto__, constructor or prototype metric is dropped, the others kept', () => {
    const r = decodeMessage(
      withTelemetryText('"values":{"t":1,"__proto__":{"polluted":1},"constructor":2,"prototype":3,"h":-0}'),
    );
    expect(r.ok).toBe(true);
    if (r.ok && r.value.type === 'telemetry') {
      expect(Object.keys(r.value.values)).toEqual(['t', 'h']);
      expect(Object.getPrototypeOf(r.value.values)).toBe(Object.prototype);
      expect(Object.is(r.value.values.h, 0)).toBe(true);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('9007199254740993 (past 2^53) is refused where integers matter', () => {
    expect(decodeError(withTelemetryText('"ts":9007199254740993'))).toMatchObject({
      code: 'badField',
      field: 'ts',
    });
    expect(decodeError(withTelemetryText('"seq":9007199254740993'))).toMatchObject({
      code: 'badField',
      field: 'seq',
    });
  });

  it('NaN and Infinity: as bare tokens not JSON, as strings a wrong type', () => {
    expect(decodeError(withTelemetryText('"values":{"t":NaN}')).code).toBe('notJson');
    expect(decodeError(withTelemetry({ values: { t: 'NaN' } }))).toMatchObject({
      code: 'badField',
      field: 'values.t',
    });
    expect(decodeError(withTelemetry({ values: { t: 'Infinity' } }))).toMatchObject({
      code: 'badField',
      field: 'values.t',
    });
  });

  it.each([
    ['"temp": "20"', { values: { temp: '20' } }, 'values.temp'],
    ['seq as a string', { seq: '1' }, 'seq'],
    ['values as an array', { values: [21.5] }, 'values'],
    ['seq fractional', { seq: 1.5 }, 'seq'],
    ['seq negative', { seq: -1 }, 'seq'],
    ['seq 2^32', { seq: 2 ** 32 }, 'seq'],
    ['boolean value', { values: { on: true } }, 'values.on'],
    ['metric name with a space', { values: { 'room temp': 1 } }, 'values["room temp"]'],
  ])('%s', (_, patch, field) => {
    expect(decodeError(withTelemetry(patch))).toMatchObject({ code: 'badField', field });
  });

  it('arrays or null where the envelope should be', () => {
    expect(decodeError(utf8('[]')).code).toBe('badEnvelope');
    expect(decodeError(utf8('null')).code).toBe('badEnvelope');
    expect(decodeError(utf8('"hello"')).code).toBe('badEnvelope');
    expect(decodeError(utf8('{"v":null,"type":"heartbeat"}'))).toMatchObject({
      code: 'badEnvelope',
      field: 'v',
    });
    expect(decodeError(utf8('{"v":"1","type":"heartbeat"}'))).toMatchObject({
      code: 'badEnvelope',
      field: 'v',
    });
    expect(decodeError(utf8('{"v":1,"type":null}'))).toMatchObject({ code: 'badEnvelope', field: 'type' });
    expect(decodeError(utf8('{"v":1,"type":["hello"]}'))).toMatchObject({
      code: 'badEnvelope',
      field: 'type',
    });
  });

  it('unknown type and unknown version', () => {
    expect(decodeError(utf8('{"v":1,"type":"telemetry2"}'))).toMatchObject({
      code: 'unknownType',
      field: 'type',
    });
    expect(decodeError(utf8('{"v":1,"type":"__proto__"}')).code).toBe('unknownType');
    expect(decodeError(utf8('{"v":1,"type":"toString"}')).code).toBe('unknownType');
    expect(decodeError(utf8('{"v":2,"type":"telemetry"}'))).toMatchObject({
      code: 'unsupportedVersion',
      field: 'v',
    });
    expect(decodeError(utf8('{"v":0,"type":"telemetry"}')).code).toBe('unsupportedVersion');
  });

  it('null in every required field of every message type → badField naming it', () => {
    for (const msg of EXAMPLES) {
      const wire = JSON.parse(new TextDecoder().decode(encodeMessage(msg))) as Record<string, unknown>;
      for (const key of Object.keys(wire)) {
        if (key === 'v' || key === 'type' || key === 'result') continue;
        const e = decodeError(json({ ...wire, [key]: null }));
        expect(e.code, `${msg.type}.${key}`).toBe('badField');
        expect(e.field, `${msg.type}.${key}`).toBe(key);
      }
    }
  });

  it('any JSON in any field of any message type never throws', () => {
    fc.assert(
      fc.property(fc.constantFrom(...EXAMPLES), fc.jsonValue(), fc.nat(), (msg, value, pick) => {
        const wire = JSON.parse(new TextDecoder().decode(encodeMessage(msg))) as Record<string, unknown>;
        const keys = Object.keys(wire);
        const key = keys[pick % keys.length]!;
        const r = decodeMessage(json({ ...wire, [key]: value }));
        expect(typeof r.ok).toBe('boolean');
      }),
    );
  });
});

function withTelemetryText(fields: string): Uint8Array {
  return utf8(`{"v":1,"type":"telemetry","boot":7,"seq":1,"ts":0,"values":{"t":1},${fields}}`);
}

describe('field rules per message type', () => {
  const hello = EXAMPLES[0] as Extract<Message, { type: 'hello' }>;
  const wireHello = () => JSON.parse(JSON.stringify(hello)) as Record<string, Record<string, unknown>>;

  it('hello: device id with a wildcard or slash is named', () => {
    const e = decodeError(json({ ...hello, deviceId: 'a/+/b' }));
    expect(e).toMatchObject({ code: 'badField', field: 'deviceId' });
    expect(e.message).toContain("'/' (U+002F) at position 1");
  });

  it('hello: the running slot must hold the running version', () => {
    const w = wireHello();
    w.firmware!.slots = { A: '1.4.1', B: '1.4.1' };
    expect(decodeError(json(w))).toMatchObject({ code: 'badField', field: 'firmware.slots.A' });
  });

  it('hello: capabilities are capped and named', () => {
    expect(
      decodeError(json({ ...hello, capabilities: Array.from({ length: 65 }, (_, i) => `c${i}`) })),
    ).toMatchObject({
      field: 'capabilities',
    });
    expect(decodeError(json({ ...hello, capabilities: ['ok', 'not ok'] }))).toMatchObject({
      field: 'capabilities[1]',
    });
  });

  it('strings are length-capped', () => {
    expect(decodeError(json({ ...hello, kind: 'k'.repeat(65) }))).toMatchObject({ field: 'kind' });
    expect(decodeError(json({ v: 1, type: 'cmd', cmdId: 'c'.repeat(65), action: 'x' }))).toMatchObject({
      field: 'cmdId',
    });
    expect(decodeError(json({ v: 1, type: 'cmd', cmdId: '', action: 'x' }))).toMatchObject({
      field: 'cmdId',
    });
    const err = (message: string) =>
      json({ v: 1, type: 'reply', cmdId: 'c', ok: false, error: { code: 'e', message } });
    expect(decodeMessage(err('m'.repeat(LIMITS.textChars))).ok).toBe(true);
    expect(decodeError(err('m'.repeat(LIMITS.textChars + 1)))).toMatchObject({ field: 'error.message' });
  });

  it('metrics are capped', () => {
    const values = Object.fromEntries(Array.from({ length: LIMITS.metrics + 1 }, (_, i) => [`m${i}`, i]));
    expect(decodeError(withTelemetry({ values }))).toMatchObject({ field: 'values' });
  });

  it('error messages carry no terminal escapes or bidi overrides', () => {
    const err = (message: string) =>
      json({ v: 1, type: 'reply', cmdId: 'c', ok: false, error: { code: 'e', message } });
    expect(decodeError(err('\u001b[2J'))).toMatchObject({ field: 'error.message' });
    expect(decodeError(err('\u001b]8;;http://x\u0007link'))).toMatchObject({ field: 'error.message' });
    expect(decodeError(err('abc\u202eexe.txt'))).toMatchObject({ field: 'error.message' });
    expect(decodeMessage(err('<img src=x onerror=alert(1)> 😀')).ok).toBe(true); // escaping HTML is the UI's job
  });

  it('reply needs ok, and an error when ok is false', () => {
    expect(decodeError(json({ v: 1, type: 'reply', cmdId: 'c' }))).toMatchObject({ field: 'ok' });
    expect(decodeError(json({ v: 1, type: 'reply', cmdId: 'c', ok: 'yes' }))).toMatchObject({ field: 'ok' });
    expect(decodeError(json({ v: 1, type: 'reply', cmdId: 'c', ok: false }))).toMatchObject({
      field: 'error',
    });
    expect(
      decodeError(json({ v: 1, type: 'reply', cmdId: 'c', ok: false, error: { code: 'a b', message: '' } })),
    ).toMatchObject({
      field: 'error.code',
    });
  });

  it('cmd args must be an object; expiresAt a non-negative integer', () => {
    expect(decodeError(json({ v: 1, type: 'cmd', cmdId: 'c', action: 'x', args: [1] }))).toMatchObject({
      field: 'args',
    });
    expect(decodeError(json({ v: 1, type: 'cmd', cmdId: 'c', action: 'x', expiresAt: -1 }))).toMatchObject({
      field: 'expiresAt',
    });
    expect(
      decodeError(json({ v: 1, type: 'cmd', cmdId: 'c', action: 'x', expiresAt: '2030-01-01' })),
    ).toMatchObject({
      field: 'expiresAt',
    });
  });

  it('fw.begin: sha256 lowercase hex, size and chunkBytes in range', () => {
    const begin = EXAMPLES.find((m) => m.type === 'fw.begin')!;
    expect(decodeError(json({ ...begin, sha256: 'A'.repeat(64) }))).toMatchObject({ field: 'sha256' });
    expect(decodeError(json({ ...begin, sha256: 'a'.repeat(63) }))).toMatchObject({ field: 'sha256' });
    expect(decodeError(json({ ...begin, size: 0 }))).toMatchObject({ field: 'size' });
    expect(decodeError(json({ ...begin, chunkBytes: LIMITS.chunkBytes + 1 }))).toMatchObject({
      field: 'chunkBytes',
    });
  });

  it('fw.chunk: strict padded base64, 1…chunkBytes bytes', () => {
    const chunk = (data: string) => json({ v: 1, type: 'fw.chunk', transferId: 't', offset: 0, data });
    // Also refused: whitespace inside, non-zero padding bits ('AR==' is not how 0x01 encodes).
    for (const bad of [
      '',
      'AQID+g',
      'AQID+g=',
      'AQ ID',
      'AQID-g==',
      '====',
      'A===',
      'AQI\n',
      'AR==',
      'AQID_g==',
    ]) {
      expect(decodeError(chunk(bad)), bad).toMatchObject({ field: 'data' });
    }
    const good = decodeMessage(chunk('AQID+g=='));
    expect(good.ok && good.value.type === 'fw.chunk' && [...good.value.data]).toEqual([1, 2, 3, 250]);
    const over = btoa(String.fromCharCode(...new Uint8Array(LIMITS.chunkBytes + 1)));
    expect(decodeError(chunk(over))).toMatchObject({ field: 'data' });
  });

  it('fw.ack: step from the closed set', () => {
    expect(
      decodeError(json({ v: 1, type: 'fw.ack', transferId: 't', step: 'reboot', offset: 0 })),
    ).toMatchObject({
      field: 'step',
    });
  });
});

describe('ordering, duplicates and time', () => {
  it('the same message twice, or 100 times, decodes to the same dedupe key', () => {
    const payload = encodeMessage(EXAMPLES[4]!);
    const keys = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const r = decodeMessage(payload);
      if (r.ok && r.value.type === 'telemetry') keys.add(`${r.value.boot}:${r.value.seq}`);
    }
    expect([...keys]).toEqual(['42:4294967295']);
  });

  it('seq wraps 2^32−1 → 0, and seqDelta orders across the wrap', () => {
    expect(nextSeq(4_294_967_295)).toBe(0);
    expect(nextSeq(41)).toBe(42);
    expect(seqDelta(4_294_967_295, 0)).toBe(1); // wrap: newer
    expect(seqDelta(0, 4_294_967_295)).toBe(-1); // wrap: older
    expect(seqDelta(10, 7)).toBe(-3); // backwards: late or duplicate
    expect(seqDelta(7, 7)).toBe(0); // duplicate
    expect(seqDelta(7, 1_000_007)).toBe(1_000_000); // a gap ahead
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.integer({ min: -(2 ** 31) + 1, max: 2 ** 31 - 1 }), (a, d) => {
        expect(seqDelta(a, (a + d) >>> 0)).toBe(d);
      }),
    );
  });

  it('a reboot resets seq under a new boot value, so (boot, seq) stays unique', () => {
    const before = decodeMessage(withTelemetry({ boot: 7, seq: 5 }));
    const after = decodeMessage(withTelemetry({ boot: 8, seq: 5 }));
    expect(
      before.ok && after.ok && before.value.type === 'telemetry' && after.value.type === 'telemetry',
    ).toBe(true);
    if (before.ok && after.ok && before.value.type === 'telemetry' && after.value.type === 'telemetry') {
      expect(before.value.boot).not.toBe(after.value.boot);
    }
  });

  it.each([
    ['1970', 0],
    ['2100', 4_102_444_800_000],
    ['seconds instead of ms (kept as sent; the host flags it)', 1_700_000_000],
    ['2038: 2147483647', 2_147_483_647],
    ['2038: 2147483648', 2_147_483_648],
  ])('device timestamp %s is carried as sent', (_, ts) => {
    expect(decodeMessage(withTelemetry({ ts }))).toMatchObject({ ok: true, value: { ts } });
  });

  it.each([
    ['negative', -1],
    ['fractional', 1.5],
    ['a leap-second string', '2016-12-31T23:59:60Z'],
    ['a local time with no offset', '2024-10-27 02:30'],
  ])('device timestamp %s is refused', (_, ts) => {
    expect(decodeError(withTelemetry({ ts }))).toMatchObject({ code: 'badField', field: 'ts' });
  });
});

describe('decodePublish', () => {
  const pump = id('pump-7');

  it('accepts a message on its own channel', () => {
    const r = decodePublish(topicFor(pump, 'telemetry'), encodeMessage(EXAMPLES[4]!));
    expect(r).toEqual({
      ok: true,
      value: { deviceId: 'pump-7', channel: 'telemetry', message: EXAMPLES[4] },
    });
  });

  it('passes topic and payload errors through', () => {
    expect(decodePublish('fleetvisor/v1/+/telemetry', encodeMessage(EXAMPLES[4]!))).toMatchObject({
      ok: false,
      error: { code: 'wildcard' },
    });
    expect(decodePublish(topicFor(pump, 'hello'), new Uint8Array(0))).toMatchObject({
      ok: false,
      error: { code: 'empty' },
    });
    expect(decodePublish(topicFor(pump, 'telemetry'), utf8('['.repeat(10_000)))).toMatchObject({
      ok: false,
      error: { code: 'tooDeep' },
    });
  });

  it('a message on the wrong channel is refused (a device cannot publish commands)', () => {
    expect(decodePublish(topicFor(pump, 'cmd'), encodeMessage(EXAMPLES[4]!))).toMatchObject({
      ok: false,
      error: { code: 'wrongChannel' },
    });
    expect(decodePublish(topicFor(pump, 'reply'), encodeMessage(EXAMPLES[9]!))).toMatchObject({
      ok: false,
      error: { code: 'wrongChannel' },
    });
  });

  it('a hello naming another device is refused (spoofing)', () => {
    expect(decodePublish(topicFor(id('pump-8'), 'hello'), encodeMessage(EXAMPLES[0]!))).toMatchObject({
      ok: false,
      error: { code: 'deviceMismatch', field: 'deviceId' },
    });
  });
});

describe('never throws', () => {
  it('for random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (b) => {
        expect(typeof decodeMessage(b).ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it('for mutated valid payloads (flipped, cut, spliced bytes)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...EXAMPLES),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat(),
        (msg, flips, cut) => {
          const b = encodeMessage(msg).slice();
          for (const [at, value] of flips) b[at % b.length] = value;
          expect(typeof decodeMessage(b.subarray(0, 1 + (cut % b.length))).ok).toBe('boolean');
          expect(typeof decodeMessage(b).ok).toBe('boolean');
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('for random JSON texts', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(typeof decodeMessage(json(value)).ok).toBe('boolean');
        expect(
          typeof decodeMessage(json({ v: 1, type: 'cmd', cmdId: 'c', action: 'x', args: { value } })).ok,
        ).toBe('boolean');
      }),
    );
  });
});

describe('docs/protocol.md', () => {
  it('every JSON example in the document decodes', () => {
    const doc = readFileSync(fileURLToPath(new URL('../../docs/protocol.md', import.meta.url)), 'utf8');
    const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const examples = blocks.flatMap((b) => {
      try {
        JSON.parse(b);
        return [b];
      } catch {
        return b.split('\n').filter((line) => line.trim() !== '');
      }
    });
    expect(examples.length).toBeGreaterThanOrEqual(15);
    const types = new Set<string>();
    for (const text of examples) {
      const r = decodeMessage(utf8(text));
      expect(r, text).toMatchObject({ ok: true });
      if (r.ok) types.add(r.value.type);
    }
    expect(types.size).toBe(Object.values(CHANNELS).flatMap((c) => c.types).length);
  });
});

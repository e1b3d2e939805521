/**
 * The Sparkplug B pieces that need no broker: fleet ids from Sparkplug names, topics, payloads
 * through Tahu's codec (also without a datatype, compressed, or not protobuf at all), STATE in
 * both dialects, the values a write may carry, and the lifecycle machine.
 */
import { deflateSync, gzipSync } from 'node:zlib';
import protoRoot from 'sparkplug-payload/lib/sparkplugPayloadProto.js';
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import {
  checkWriteValue,
  decodeSparkplugPayload,
  encodeSparkplugCommand,
  encodeSparkplugPayload,
  parseSparkplugTopic,
  parseStatePayload,
  sameValue,
  telemetryValue,
  valueAs,
} from '../../src/conventions/sparkplug/sparkplug-codec.js';
import {
  sparkplugDeviceKind,
  sparkplugFleetId,
  sparkplugMachine,
  sparkplugNodeKind,
} from '../../src/conventions/sparkplug/sparkplug-kind.js';

const MAX = { maxBytes: 64 * 1024 };

describe('Sparkplug fleet ids', () => {
  it('joins group, node and device, replacing characters outside [A-Za-z0-9_-]', () => {
    expect(sparkplugFleetId('Plant 1', 'Line-4')).toEqual({ ok: true, value: 'Plant_1-Line-4' });
    expect(sparkplugFleetId('Plant 1', 'Line-4', 'Press.2/ü')).toEqual({
      ok: true,
      value: 'Plant_1-Line-4-Press_2__',
    });
  });

  it('refuses an id longer than 64 characters, saying why', () => {
    const r = sparkplugFleetId('group', 'n'.repeat(40), 'd'.repeat(30));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/would be 77 characters; the limit is 64/);
  });
});

describe('Sparkplug topics', () => {
  it('reads node, device and STATE topics', () => {
    expect(parseSparkplugTopic('spBv1.0/G/NBIRTH/N')).toEqual({
      ok: true,
      value: { kind: 'node', type: 'NBIRTH', group: 'G', node: 'N' },
    });
    expect(parseSparkplugTopic('spBv1.0/G/DDATA/N/D')).toEqual({
      ok: true,
      value: { kind: 'device', type: 'DDATA', group: 'G', node: 'N', device: 'D' },
    });
    expect(parseSparkplugTopic('spBv1.0/STATE/scada')).toEqual({
      ok: true,
      value: { kind: 'state', hostId: 'scada' },
    });
  });

  it('names what is wrong with a bad one', () => {
    expect(parseSparkplugTopic('spBv1.0/G/NDATA/N/extra')).toEqual({
      ok: false,
      error: 'NDATA takes 4 topic levels, got 5',
    });
    expect(parseSparkplugTopic('spBv1.0/G/DDATA/N')).toMatchObject({ ok: false });
    expect(parseSparkplugTopic('spBv1.0/G/HELLO/N')).toMatchObject({
      ok: false,
      error: /unknown message type/,
    });
    expect(parseSparkplugTopic('spAv1.0/G/NDATA/N')).toMatchObject({ ok: false });
  });
});

describe('Sparkplug payloads', () => {
  it('decodes a Tahu payload: 64-bit values become numbers, properties plain JSON', () => {
    const bytes = encodeSparkplugPayload({
      timestamp: 1_700_000_000_123,
      seq: 7,
      metrics: [
        { name: 'bdSeq', type: 'UInt64', value: 3 },
        {
          name: 't',
          alias: 5,
          type: 'Float',
          value: 21.5,
          properties: { unit: { type: 'String', value: '°C' } },
        },
        { name: 'n', type: 'Int8', value: -5 },
      ],
    });
    const r = decodeSparkplugPayload(bytes, MAX);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject({ timestamp: 1_700_000_000_123, seq: 7, compressed: false });
    expect(r.value.metrics[0]).toMatchObject({ name: 'bdSeq', datatype: 'UInt64', value: 3 });
    expect(r.value.metrics[1]).toMatchObject({
      name: 't',
      alias: 5,
      value: 21.5,
      properties: { unit: '°C' },
    });
    expect(r.value.metrics[2]).toMatchObject({ value: -5 });
  });

  it('reads a metric sent without a datatype (allowed in DATA) with the birth’s datatype', () => {
    const Payload = protoRoot.org.eclipse.tahu.protobuf.Payload;
    const bytes = Payload.encode(
      Payload.create({
        seq: 1,
        metrics: [
          { alias: 9, intValue: 0xfffffffe },
          { alias: 10, doubleValue: 2.5 },
        ],
      }),
    ).finish();
    const r = decodeSparkplugPayload(bytes, MAX);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const [a, b] = r.value.metrics;
    expect(a!.datatype).toBeUndefined();
    expect(valueAs(a!, 'Int32')).toBe(-2); // sent as uint32 on the wire
    expect(valueAs(a!, 'UInt32')).toBe(null); // the value is not in longValue
    expect(valueAs(b!, 'Double')).toBe(2.5);
  });

  it('inflates Tahu’s compressed payloads (DEFLATE and GZIP)', () => {
    const inner = encodeSparkplugPayload({ seq: 3, metrics: [{ name: 'x', type: 'Int32', value: 42 }] });
    for (const [algorithm, body] of [
      ['DEFLATE', deflateSync(inner)],
      ['GZIP', gzipSync(inner)],
    ] as const) {
      const outer = encodeSparkplugPayload({
        uuid: 'SPBV1.0_COMPRESSED',
        body,
        metrics: [{ name: 'algorithm', type: 'String', value: algorithm }],
      });
      const r = decodeSparkplugPayload(outer, MAX);
      expect(r).toMatchObject({
        ok: true,
        value: { compressed: true, seq: 3, metrics: [{ name: 'x', value: 42 }] },
      });
    }
  });

  it('refuses bytes that are not a Sparkplug payload, or too many of them, without throwing', () => {
    expect(decodeSparkplugPayload(Buffer.from([0xff, 0xff, 0xff]), MAX)).toMatchObject({
      ok: false,
      error: { code: 'protobuf' },
    });
    expect(decodeSparkplugPayload(Buffer.alloc(100), { maxBytes: 10 })).toMatchObject({
      ok: false,
      error: { code: 'tooLarge' },
    });
    const bomb = encodeSparkplugPayload({
      uuid: 'SPBV1.0_COMPRESSED',
      body: deflateSync(Buffer.alloc(1 << 20)),
    });
    expect(decodeSparkplugPayload(bomb, MAX)).toMatchObject({ ok: false, error: { code: 'compression' } });
  });

  it('encodes a command without seq, through Tahu’s encoder', () => {
    const r = decodeSparkplugPayload(
      encodeSparkplugCommand([{ name: 'Node Control/Rebirth', datatype: 'Boolean', value: true }], 5),
      MAX,
    );
    expect(r).toMatchObject({
      ok: true,
      value: {
        seq: undefined,
        timestamp: 5,
        metrics: [{ name: 'Node Control/Rebirth', datatype: 'Boolean', value: true }],
      },
    });
  });

  it('reads STATE in the 3.0 JSON form and the older text form', () => {
    expect(parseStatePayload(Buffer.from('{"online":true,"timestamp":12}'))).toEqual({
      online: true,
      timestamp: 12,
    });
    expect(parseStatePayload(Buffer.from('OFFLINE'))).toEqual({ online: false, timestamp: null });
    expect(parseStatePayload(Buffer.alloc(0))).toBeUndefined();
    expect(parseStatePayload(Buffer.from('{"online":"yes"}'))).toBeUndefined();
  });
});

describe('Sparkplug values', () => {
  it('checks a written value against the datatype, naming it', () => {
    expect(checkWriteValue('Int32', 42)).toEqual({ ok: true, value: 42 });
    expect(checkWriteValue('UInt8', 300)).toMatchObject({ ok: false, message: /UInt8 .*0…255, got 300/ });
    expect(checkWriteValue('Int16', 1.5)).toMatchObject({ ok: false });
    expect(checkWriteValue('Float', '1.5')).toMatchObject({
      ok: false,
      message: /Float takes a number, got the string "1.5"/,
    });
    expect(checkWriteValue('Float', 1e39)).toMatchObject({ ok: false });
    expect(checkWriteValue('Boolean', 1)).toMatchObject({
      ok: false,
      message: /Boolean takes true or false/,
    });
    expect(checkWriteValue('String', 'on')).toEqual({ ok: true, value: 'on' });
    expect(checkWriteValue('DataSet', 'x')).toMatchObject({ ok: false, message: /not supported/ });
  });

  it('compares a Float at single precision; telemetry is numbers and booleans', () => {
    expect(sameValue('Float', 21.1, Math.fround(21.1))).toBe(true);
    expect(sameValue('Double', 21.1, Math.fround(21.1))).toBe(false);
    expect(telemetryValue('Boolean', true)).toBe(1);
    expect(telemetryValue('Int64', 12)).toBe(12);
    expect(telemetryValue('String', '12')).toBeUndefined();
    expect(telemetryValue('DateTime', 12)).toBeUndefined();
  });
});

describe('Sparkplug kinds', () => {
  it('moves disconnected → connected → stale → connected → disconnected', () => {
    const actor = createActor(sparkplugMachine).start();
    actor.send({ type: 'CONNECT' });
    actor.send({ type: 'HELLO', firmware: '2.1.0' });
    expect(actor.getSnapshot().value).toBe('connected');
    expect(actor.getSnapshot().context.firmware).toBe('2.1.0');
    actor.send({ type: 'STALE', reason: 'seq gap' });
    expect(actor.getSnapshot().value).toBe('stale');
    expect(actor.getSnapshot().context.staleReason).toBe('seq gap');
    actor.send({ type: 'HELLO', firmware: '' });
    expect(actor.getSnapshot().value).toBe('connected');
    expect(actor.getSnapshot().context).toMatchObject({ firmware: null, births: 2, staleReason: null });
    actor.send({ type: 'LINK_DOWN', reason: 'NDEATH' });
    expect(actor.getSnapshot()).toMatchObject({ value: 'disconnected', context: { lastError: 'NDEATH' } });
    actor.stop();
  });

  it('declares write on both kinds and rebirth on nodes, as device commands', () => {
    expect(sparkplugNodeKind.buildAction('rebirth', {})).toMatchObject({
      ok: true,
      value: { type: 'command' },
    });
    expect(sparkplugDeviceKind.buildAction('rebirth', {})).toMatchObject({
      ok: false,
      code: 'unknownAction',
    });
    expect(sparkplugDeviceKind.buildAction('write', { metric: 'sp', value: 1 })).toMatchObject({
      ok: true,
      value: { type: 'command', command: 'write', args: { metric: 'sp', value: 1 } },
    });
    expect(sparkplugDeviceKind.buildAction('write', { metric: 'sp' })).toMatchObject({
      ok: false,
      code: 'badArgs',
    });
    expect(sparkplugDeviceKind.parseAttributes({ group: 'g', node: 'n' })).toMatchObject({ ok: false });
  });
});

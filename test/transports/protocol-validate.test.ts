/**
 * Per-type validation (readFields) seen from inside: what decodeMessage's results cannot show,
 * i.e. that a clean telemetry `values` object is kept as parsed (no copy per message on the ingest
 * path) and copied only when it must be.
 */
import { describe, expect, it } from 'vitest';
import { BadField } from '../../src/transports/protocol-fields.js';
import { readFields } from '../../src/transports/protocol-validate.js';

const telemetry = (values: Record<string, unknown>): Record<string, unknown> => ({
  v: 1,
  type: 'telemetry',
  boot: 3,
  seq: 41,
  ts: 1_732_350_000_000,
  values,
});

const valuesOf = (o: Record<string, unknown>): unknown => {
  const msg = readFields('telemetry', o);
  if (msg.type !== 'telemetry') throw new Error(`expected telemetry, got ${msg.type}`);
  return msg.values;
};

describe('readFields: telemetry values', () => {
  it('keeps a clean parsed object as it is (the hot path allocates no copy)', () => {
    const o = JSON.parse('{"v":1,"type":"telemetry","boot":3,"seq":41,"ts":0,"values":{"t":21.5,"h":40}}');
    expect(valuesOf(o)).toBe(o.values);
  });

  it('copies when a forbidden key must be dropped', () => {
    const o = JSON.parse(
      '{"v":1,"type":"telemetry","boot":3,"seq":41,"ts":0,"values":{"t":1,"__proto__":2}}',
    );
    const values = valuesOf(o);
    expect(values).not.toBe(o.values);
    expect(values).toEqual({ t: 1 });
    expect(Object.hasOwn(values as object, '__proto__')).toBe(false);
  });

  it('copies when a -0 must become 0', () => {
    const o = telemetry({ t: -0, h: 1 });
    const values = valuesOf(o) as Record<string, number>;
    expect(values).not.toBe(o.values);
    expect(Object.is(values.t, 0)).toBe(true);
  });

  it('copies an object whose prototype is not Object.prototype', () => {
    const raw = Object.assign(Object.create(null) as Record<string, number>, { t: 1 });
    const values = valuesOf(telemetry(raw));
    expect(values).not.toBe(raw);
    expect(Object.getPrototypeOf(values)).toBe(Object.prototype);
  });
});

describe('readFields: failures', () => {
  it('throws BadField naming the field, for decodeMessage to turn into a result', () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['telemetry', telemetry({ t: 'hot' }), 'values.t'],
      ['telemetry', { ...telemetry({}), seq: -1 }, 'seq'],
      ['heartbeat', { v: 1, type: 'heartbeat', boot: 1, uptimeMs: 1.5 }, 'uptimeMs'],
      ['fw.ack', { v: 1, type: 'fw.ack', transferId: 't1', step: 'flash', offset: 0 }, 'step'],
      ['reply', { v: 1, type: 'reply', cmdId: 'c1', ok: false, error: { code: 'x' } }, 'error.message'],
    ];
    for (const [type, o, field] of cases) {
      let thrown: unknown;
      try {
        readFields(type as Parameters<typeof readFields>[0], o);
      } catch (err) {
        thrown = err;
      }
      expect(thrown, `${type} ${field}`).toBeInstanceOf(BadField);
      expect((thrown as BadField).field).toBe(field);
    }
  });
});

/**
 * Homie ids, datatypes and formats (src/conventions/homie/homie-values.ts): what a value means,
 * what is refused and with which words, what a `set` payload is, and the form schema.
 *
 * @example
 * npx vitest run test/conventions/homie-values.test.ts
 */
import { describe, expect, it } from 'vitest';
import type { ValueSpec } from '../../src/conventions/homie/homie-values.js';
import {
  BASE_TOPIC,
  encodeSetValue,
  isHomieId,
  parseFormat,
  parseValue,
  propertyValueSchema,
  sameValue,
} from '../../src/conventions/homie/homie-values.js';

const spec = (datatype: ValueSpec['datatype'], format: string | null = null): ValueSpec => ({
  datatype,
  format,
});

describe('Homie ids and base topics', () => {
  it('accepts [a-z0-9-] ids not starting with a hyphen, at most 64 characters', () => {
    for (const id of ['a', 'peer-1', '0x', 'my-device-2']) expect(isHomieId(id)).toBe(true);
    for (const id of ['', '-a', 'A', 'a_b', 'a/b', 'a+', '#', '$homie', 'x'.repeat(65)])
      expect(isHomieId(id)).toBe(false);
  });

  it('base topics are plain levels: no wildcards, no $ at the start', () => {
    for (const b of ['homie', 'site-1/homie', 'devices']) expect(BASE_TOPIC.test(b)).toBe(true);
    for (const b of ['', 'homie/+', 'a/#', '$SYS', 'a//b', 'homie/']) expect(BASE_TOPIC.test(b)).toBe(false);
  });
});

describe('parseFormat', () => {
  it('ranges for numbers, with either end optional; lists for enums; models for colors', () => {
    expect(parseFormat('integer', '0:100')).toEqual({
      ok: true,
      format: { kind: 'range', min: 0, max: 100 },
    });
    expect(parseFormat('float', '-20.5:')).toEqual({
      ok: true,
      format: { kind: 'range', min: -20.5, max: undefined },
    });
    expect(parseFormat('enum', 'a,b,c')).toEqual({
      ok: true,
      format: { kind: 'enum', values: ['a', 'b', 'c'] },
    });
    expect(parseFormat('color', 'hsv')).toEqual({ ok: true, format: { kind: 'color', model: 'hsv' } });
    expect(parseFormat('string', 'anything')).toEqual({ ok: true, format: { kind: 'none' } });
    expect(parseFormat('integer', null)).toEqual({ ok: true, format: { kind: 'none' } });
  });

  it('names a malformed format', () => {
    expect(parseFormat('integer', '0-100')).toMatchObject({
      ok: false,
      message: expect.stringContaining('"0-100"'),
    });
    expect(parseFormat('float', '10:1')).toMatchObject({
      ok: false,
      message: expect.stringContaining('10 is above 1'),
    });
    expect(parseFormat('enum', 'a,,b')).toMatchObject({
      ok: false,
      message: expect.stringContaining('empty enum'),
    });
    expect(parseFormat('color', 'cmyk')).toMatchObject({
      ok: false,
      message: expect.stringContaining('color model'),
    });
  });
});

describe('parseValue', () => {
  it.each([
    [spec('integer', '0:100'), '42', 42],
    [spec('integer'), '-7', -7],
    [spec('float', '-20:60'), '21.5', 21.5],
    [spec('float'), '1e3', 1000],
    [spec('boolean'), 'true', 1],
    [spec('boolean'), 'false', 0],
    [spec('enum', 'eco,comfort,off'), 'off', 2],
    [spec('enum'), 'whatever', null],
    [spec('string'), 'hello', null],
    [spec('color', 'rgb'), '255,128,0', null],
    [spec('color', 'hsv'), '360,100,50', null],
    [spec('color', 'xyz'), '0.3,0.4', null],
    [spec('datetime'), '2024-03-01T12:30:00Z', null],
    [spec('duration'), 'PT12H5M46S', null],
  ])('%o takes %s as %s', (s, raw, number) => {
    expect(parseValue(s, raw)).toEqual({ ok: true, number, text: raw });
  });

  it.each([
    [spec('integer', '0:100'), 'abc', '"abc" is not an integer'],
    [spec('integer', '0:100'), '101', '101 is outside 0:100'],
    [spec('integer'), '1.5', '"1.5" is not an integer'],
    [spec('integer'), '99999999999999999999', 'too large'],
    [spec('float', ':0'), '0.5', '0.5 is outside :0'],
    [spec('float'), 'NaN', '"NaN" is not a number'],
    [spec('boolean'), 'yes', '"yes" is not true or false'],
    [spec('enum', 'a,b'), 'c', '"c" is not one of a, b'],
    [spec('color', 'rgb'), '256,0,0', 'not an rgb color'],
    [spec('color', 'hsv'), '10,200,0', 'not an hsv color'],
    [spec('datetime'), 'yesterday', 'not an ISO 8601 date-time'],
    [spec('duration'), '12 minutes', 'not an ISO 8601 duration'],
  ])('%o refuses %s: %s', (s, raw, message) => {
    const r = parseValue(s, raw);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain(message);
  });

  it('a malformed format checks nothing (it is reported on its own)', () => {
    expect(parseValue(spec('integer', 'lots'), '5')).toEqual({ ok: true, number: 5, text: '5' });
  });
});

describe('encodeSetValue', () => {
  it('turns form values into payloads', () => {
    expect(encodeSetValue(spec('integer', '0:100'), 42)).toEqual({ ok: true, payload: '42' });
    expect(encodeSetValue(spec('float'), 21.5)).toEqual({ ok: true, payload: '21.5' });
    expect(encodeSetValue(spec('boolean'), false)).toEqual({ ok: true, payload: 'false' });
    expect(encodeSetValue(spec('enum', 'a,b'), 'b')).toEqual({ ok: true, payload: 'b' });
    expect(encodeSetValue(spec('string'), '')).toEqual({ ok: true, payload: '' });
  });

  it('refuses what the property would refuse, in words', () => {
    expect(encodeSetValue(spec('integer', '0:100'), 500)).toEqual({
      ok: false,
      message: '500 is outside 0:100',
    });
    expect(encodeSetValue(spec('integer'), 2.5)).toEqual({ ok: false, message: '2.5 is not an integer' });
    expect(encodeSetValue(spec('integer'), true)).toMatchObject({
      ok: false,
      message: expect.stringContaining('boolean'),
    });
    expect(encodeSetValue(spec('float'), Number.NaN)).toMatchObject({ ok: false });
    expect(encodeSetValue(spec('boolean'), 1)).toMatchObject({
      ok: false,
      message: expect.stringContaining('number'),
    });
    expect(encodeSetValue(spec('enum', 'a,b'), 'c')).toMatchObject({ ok: false });
    expect(encodeSetValue(spec('string'), 5)).toEqual({ ok: false, message: 'expects text, got number' });
    // Numbers and booleans take their JSON type, not text that looks like one; null is refused.
    expect(encodeSetValue(spec('integer'), '12')).toMatchObject({
      ok: false,
      message: expect.stringMatching(/"12" is not an integer.*not text/),
    });
    expect(encodeSetValue(spec('float'), '21.5')).toMatchObject({
      ok: false,
      message: expect.stringContaining('text'),
    });
    expect(encodeSetValue(spec('boolean'), 'on')).toMatchObject({
      ok: false,
      message: expect.stringMatching(/"on" is not true or false/),
    });
    expect(encodeSetValue(spec('integer'), null)).toEqual({
      ok: false,
      message: 'expects an integer, got null',
    });
  });
});

describe('sameValue (a set’s echo)', () => {
  it('compares numbers as numbers, colors without spaces, the rest as text', () => {
    expect(sameValue(spec('float'), '21.5', '21.50')).toBe(true);
    expect(sameValue(spec('integer'), '7', '+7')).toBe(true);
    expect(sameValue(spec('integer'), '7', '8')).toBe(false);
    expect(sameValue(spec('boolean'), 'true', 'true')).toBe(true);
    expect(sameValue(spec('enum', 'a,b'), 'a', 'b')).toBe(false);
    expect(sameValue(spec('string'), 'a', 'a ')).toBe(false);
  });
});

describe('propertyValueSchema', () => {
  it('types the form field by datatype and format', () => {
    expect(propertyValueSchema({ ...spec('integer', '0:100'), name: 'Count', unit: '%' })).toEqual({
      type: 'integer',
      minimum: 0,
      maximum: 100,
      title: 'Count',
      description: 'in %',
    });
    expect(propertyValueSchema(spec('float', ':30'))).toEqual({ type: 'number', maximum: 30 });
    expect(propertyValueSchema(spec('boolean'))).toEqual({ type: 'boolean' });
    expect(propertyValueSchema(spec('enum', 'eco,off'))).toEqual({ type: 'string', enum: ['eco', 'off'] });
    expect(propertyValueSchema(spec('datetime'))).toEqual({ type: 'string', format: 'date-time' });
    expect(propertyValueSchema(spec('color', 'rgb'))).toMatchObject({
      type: 'string',
      description: 'rgb color',
    });
    expect(propertyValueSchema(spec('string'))).toEqual({ type: 'string' });
  });
});

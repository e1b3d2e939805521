/**
 * Field checks: each validator reads own properties only and names the failing field by its
 * full path (`error.code`, `args.list[1]`), which is what a `badField` result reports.
 */
import { describe, expect, it } from 'vitest';
import {
  BadField,
  cleanJson,
  optObject,
  own,
  reqId,
  reqMs,
  reqName,
  reqUint32,
} from '../../src/transports/protocol-fields.js';

function fieldOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    if (err instanceof BadField) return err.field;
    throw err;
  }
  return undefined;
}

describe('field checks', () => {
  it('accept the edges of their ranges and normalise -0', () => {
    expect(reqUint32({ n: 0xffffffff }, 'n', '')).toBe(0xffffffff);
    expect(Object.is(reqUint32({ n: -0 }, 'n', ''), 0)).toBe(true);
    expect(reqMs({ t: Number.MAX_SAFE_INTEGER }, 't', '')).toBe(Number.MAX_SAFE_INTEGER);
    expect(reqId({ id: 'a'.repeat(64) }, 'id', '')).toHaveLength(64);
    expect(reqName({ n: 'temp.max_1-a' }, 'n', '')).toBe('temp.max_1-a');
  });

  it('name the field by its full path', () => {
    expect(fieldOf(() => reqUint32({ n: 2 ** 32 }, 'n', ''))).toBe('n');
    expect(fieldOf(() => reqUint32({}, 'n', 'firmware'))).toBe('firmware.n');
    expect(fieldOf(() => reqMs({ t: -1 }, 't', 'a.b'))).toBe('a.b.t');
    expect(fieldOf(() => reqId({ id: 'a.b' }, 'id', ''))).toBe('id');
    expect(fieldOf(() => reqName({ code: 'has space' }, 'code', 'error'))).toBe('error.code');
    expect(fieldOf(() => cleanJson({ list: [1, Number.NaN] }, 'args'))).toBe('args.list[1]');
    expect(fieldOf(() => optObject({ args: [] }, 'args', ''))).toBe('args');
  });

  it('read own properties only', () => {
    const inherited = Object.create({ boot: 1 }) as Record<string, unknown>;
    expect(own(inherited, 'boot')).toBeUndefined();
    expect(fieldOf(() => reqUint32(inherited, 'boot', ''))).toBe('boot');
  });

  it('free-form JSON: forbidden keys dropped at every depth, a missing optional object is undefined', () => {
    const parsed = JSON.parse('{"a":{"__proto__":1,"constructor":2,"b":[{"prototype":3,"c":-0}]}}');
    expect(cleanJson(parsed, 'data')).toEqual({ a: { b: [{ c: 0 }] } });
    expect(optObject({}, 'args', '')).toBeUndefined();
  });
});

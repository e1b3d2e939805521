/**
 * Device protocol v1, field checks: one small validator per kind of field (uint32, ms, id, name,
 * version, wire error, free-form JSON), each throwing {@link BadField} with the field's path.
 *
 * Internal to the codec: decodeMessage catches BadField and turns it into a `badField` result.
 * Own properties only, forbidden keys dropped, numbers finite, strings length-capped.
 *
 * @example
 * const boot = reqUint32(o, 'boot', '');                 // BadField('boot', …) unless 0…2³²−1
 * const code = reqName(err, 'code', 'error');            // field path 'error.code'
 */

import { describeChar, ID_MAX_CHARS, isIdChar } from '../devices/device-id.js';
import type { JsonObject, JsonValue } from '../lib/json.js';
import type { WireError } from './protocol-types.js';
import { LIMITS } from './protocol-types.js';

export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** A field failed validation. Caught in decodeMessage (protocol-codec.ts); never escapes it. */
export class BadField {
  constructor(
    readonly field: string,
    readonly message: string,
  ) {}
}

export type Obj = Readonly<Record<string, unknown>>;

export function isObject(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Own properties only, so a polluted Object.prototype can never supply a field. */
export function own(o: Obj, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

export function show(x: unknown): string {
  if (typeof x === 'string') return JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}…` : x);
  if (Array.isArray(x)) return 'an array';
  if (x === null) return 'null';
  return typeof x === 'object' ? 'an object' : String(x);
}

export function path(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

export function reqUint32(o: Obj, key: string, at: string): number {
  const x = own(o, key);
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 0xffffffff) {
    throw new BadField(path(at, key), `${path(at, key)} must be an integer 0…4294967295, got ${show(x)}`);
  }
  return x + 0; // -0 → 0
}

/** A wall-clock instant or a duration in ms: a non-negative safe integer. */
export function reqMs(o: Obj, key: string, at: string): number {
  const x = own(o, key);
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) {
    throw new BadField(
      path(at, key),
      `${path(at, key)} must be a non-negative integer of milliseconds, got ${show(x)}`,
    );
  }
  return x + 0;
}

function checkChars(
  x: unknown,
  field: string,
  max: number,
  ok: (c: number) => boolean,
  what: string,
): asserts x is string {
  if (typeof x !== 'string') throw new BadField(field, `${field} must be a string, got ${show(x)}`);
  if (x.length === 0 || x.length > max) {
    throw new BadField(field, `${field} must have 1…${max} characters, got ${x.length}`);
  }
  for (let i = 0; i < x.length; i++) {
    if (!ok(x.charCodeAt(i))) {
      throw new BadField(field, `${field} has ${describeChar(x, i).text} at position ${i}; allowed: ${what}`);
    }
  }
}

export function reqId(o: Obj, key: string, at: string): string {
  const x = own(o, key);
  checkChars(x, path(at, key), ID_MAX_CHARS, isIdChar, 'A-Z a-z 0-9 _ -');
  return x;
}

function isNameChar(c: number): boolean {
  return isIdChar(c) || c === 0x2e; // .
}

export function checkName(x: unknown, field: string): asserts x is string {
  checkChars(x, field, LIMITS.nameChars, isNameChar, 'A-Z a-z 0-9 _ - .');
}

/** Whether {@link checkName} takes `x`, without building its field path (a metric per message). */
export function isName(x: string): boolean {
  if (x.length === 0 || x.length > LIMITS.nameChars) return false;
  for (let i = 0; i < x.length; i++) if (!isNameChar(x.charCodeAt(i))) return false;
  return true;
}

export function reqName(o: Obj, key: string, at: string): string {
  const x = own(o, key);
  checkName(x, path(at, key));
  return x;
}

export function checkVersion(x: unknown, field: string): asserts x is string {
  checkChars(x, field, LIMITS.versionChars, (c) => c > 0x20 && c < 0x7f, 'printable ASCII without spaces');
}

/** Text shown to people: no control characters but tab and newline, no bidi overrides. */
function isTextChar(c: number): boolean {
  if (c === 0x09 || c === 0x0a) return true;
  if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return false;
  return !((c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069));
}

export function reqWireError(o: Obj, key: string, at: string): WireError {
  const x = own(o, key);
  const field = path(at, key);
  if (!isObject(x)) throw new BadField(field, `${field} must be an object { code, message }, got ${show(x)}`);
  const code = reqName(x, 'code', field);
  const message = own(x, 'message');
  if (typeof message !== 'string')
    throw new BadField(`${field}.message`, `${field}.message must be a string`);
  if (message.length > LIMITS.textChars) {
    throw new BadField(
      `${field}.message`,
      `${field}.message must have at most ${LIMITS.textChars} characters`,
    );
  }
  for (let i = 0; i < message.length; i++) {
    if (!isTextChar(message.charCodeAt(i))) {
      throw new BadField(
        `${field}.message`,
        `${field}.message has ${describeChar(message, i).text} at position ${i}`,
      );
    }
  }
  return { code, message };
}

export function oneOf<T extends string>(o: Obj, key: string, at: string, allowed: readonly T[]): T {
  const x = own(o, key);
  if (typeof x !== 'string' || !(allowed as readonly string[]).includes(x)) {
    throw new BadField(
      path(at, key),
      `${path(at, key)} must be one of ${allowed.join(', ')}, got ${show(x)}`,
    );
  }
  return x as T;
}

/**
 * Copies free-form JSON (command args, results, event data): drops the keys that could reach
 * a prototype and rejects non-finite numbers. Depth is already bounded by the byte scan.
 */
export function cleanJson(x: unknown, field: string): JsonValue {
  switch (typeof x) {
    case 'string':
    case 'boolean':
      return x;
    case 'number':
      if (!Number.isFinite(x))
        throw new BadField(field, `${field} must be a finite number, got ${String(x)}`);
      return x + 0;
    case 'object': {
      if (x === null) return null;
      if (Array.isArray(x)) return x.map((item, i) => cleanJson(item, `${field}[${i}]`));
      return cleanObject(x as Obj, field);
    }
    default:
      throw new BadField(field, `${field} is not JSON`);
  }
}

function cleanObject(o: Obj, field: string): JsonObject {
  const out: Record<string, JsonValue> = {};
  for (const key of Object.keys(o)) {
    if (FORBIDDEN_KEYS.has(key)) continue;
    out[key] = cleanJson(o[key], path(field, key));
  }
  return out;
}

export function optObject(o: Obj, key: string, at: string): JsonObject | undefined {
  const x = own(o, key);
  if (x === undefined) return undefined;
  if (!isObject(x)) throw new BadField(path(at, key), `${path(at, key)} must be an object, got ${show(x)}`);
  return cleanObject(x, path(at, key));
}

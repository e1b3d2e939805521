/**
 * Device protocol v1, the hot path of the codec (issue 16): a telemetry payload in the exact form
 * `encodeMessage` writes — `{"v":1,"type":"telemetry","boot":…,"seq":…,"ts":…,"values":{…}}`, no
 * whitespace, keys in that order, ASCII only — read straight from the bytes, without decoding the
 * text, `JSON.parse` and the field checks behind it (most of a message's decoding cost).
 *
 * It only ever says yes to what the general path (protocol-codec.ts) accepts, with an equal
 * result: anything else — another key order, whitespace, an extra field, an exponent, a number
 * with more than 15 digits, a forbidden or repeated metric name, a non-name character — answers
 * undefined, and the general path decides, with its own error. The same bytes decode to the same
 * message either way; test/transports/protocol-telemetry.test.ts checks that over generated
 * payloads.
 *
 * Numbers: integers are summed digit by digit (exact below 2⁵³); a fraction with at most 15
 * digits in all is `digits / 10^k`, one correctly rounded division of two exact doubles, so it is
 * the double `JSON.parse` gives (Clinger's fast path); `-0` becomes 0, as the general path makes it.
 *
 * @example
 * readCanonicalTelemetry(utf8('{"v":1,"type":"telemetry","boot":3,"seq":41,"ts":5,"values":{"t":21.5}}'));
 * // { v: 1, type: 'telemetry', boot: 3, seq: 41, ts: 5, values: { t: 21.5 } }
 * readCanonicalTelemetry(utf8('{"type":"telemetry","v":1, …}')); // undefined: the general path decides
 */
import { isIdChar } from '../devices/device-id.js';
import { FORBIDDEN_KEYS } from './protocol-fields.js';
import type { TelemetryMessage } from './protocol-types.js';
import { LIMITS } from './protocol-types.js';

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const HEAD = ascii('{"v":1,"type":"telemetry","boot":');
const SEQ = ascii(',"seq":');
const TS = ascii(',"ts":');
const VALUES = ascii(',"values":{');

const QUOTE = 0x22;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const CLOSE = 0x7d;

/** The characters of a protocol name (protocol-fields.ts `checkName`): A-Z a-z 0-9 _ - . */
const NAME_CHAR = Uint8Array.from({ length: 128 }, (_, c) => (isIdChar(c) || c === DOT ? 1 : 0));

/** 10^k for k ≤ 15, all exact doubles. */
const POW10 = Array.from({ length: 16 }, (_, k) => 10 ** k);
/** Digits a number may have for the arithmetic above to be exact. */
const MAX_DIGITS = 15;
/** Digits an integer field may have (2⁵³ has 16). */
const MAX_INT_DIGITS = 16;

const asciiText = new TextDecoder('utf-8');
/** The metric name last seen at each position of `values`: a fleet sends the same ones. */
const names: string[] = [];
const MAX_REMEMBERED = 64;

/** Where the scan is; the reader is synchronous, so one cursor serves every call. */
let pos = 0;

/**
 * The message, when `bytes` is a canonical telemetry payload that the general path would accept;
 * otherwise undefined (the general path then decodes it, or says what is wrong with it).
 */
export function readCanonicalTelemetry(bytes: Uint8Array): TelemetryMessage | undefined {
  pos = 0;
  if (!literal(bytes, HEAD)) return undefined;
  const boot = integer(bytes, 0xffffffff);
  if (boot < 0 || !literal(bytes, SEQ)) return undefined;
  const seq = integer(bytes, 0xffffffff);
  if (seq < 0 || !literal(bytes, TS)) return undefined;
  const ts = integer(bytes, Number.MAX_SAFE_INTEGER);
  if (ts < 0 || !literal(bytes, VALUES)) return undefined;
  const values: Record<string, number> = {};
  if (bytes[pos] === CLOSE) pos++;
  else
    for (let count = 0; ; ) {
      const name = metricName(bytes, count);
      if (name === undefined || bytes[pos++] !== COLON) return undefined;
      const x = number(bytes);
      if (Number.isNaN(x) || FORBIDDEN_KEYS.has(name) || Object.hasOwn(values, name)) return undefined;
      if (++count > LIMITS.metrics) return undefined;
      values[name] = x;
      const c = bytes[pos++];
      if (c === CLOSE) break;
      if (c !== COMMA) return undefined;
    }
  if (pos !== bytes.length - 1 || bytes[pos] !== CLOSE) return undefined;
  return { v: 1, type: 'telemetry', boot, seq, ts, values };
}

function literal(bytes: Uint8Array, expected: Uint8Array): boolean {
  if (pos + expected.length > bytes.length) return false;
  for (let i = 0; i < expected.length; i++) if (bytes[pos + i] !== expected[i]) return false;
  pos += expected.length;
  return true;
}

/** A JSON integer 0…max without sign, fraction or exponent; -1 for anything else. */
function integer(bytes: Uint8Array, max: number): number {
  const start = pos;
  let n = 0;
  for (let c = bytes[pos]!; c >= ZERO && c <= NINE; c = bytes[++pos]!) n = n * 10 + (c - ZERO);
  const digits = pos - start;
  if (digits === 0 || digits > MAX_INT_DIGITS || (digits > 1 && bytes[start] === ZERO)) return -1;
  const next = bytes[pos];
  if (next !== COMMA && next !== CLOSE) return -1; // a fraction or an exponent: the general path
  return n <= max ? n : -1;
}

/** A JSON number without exponent and with at most 15 digits, -0 as 0; NaN for anything else. */
function number(bytes: Uint8Array): number {
  const negative = bytes[pos] === MINUS;
  if (negative) pos++;
  const start = pos;
  let m = 0;
  for (let c = bytes[pos]!; c >= ZERO && c <= NINE; c = bytes[++pos]!) m = m * 10 + (c - ZERO);
  const whole = pos - start;
  if (whole === 0 || (whole > 1 && bytes[start] === ZERO)) return Number.NaN;
  let fraction = 0;
  if (bytes[pos] === DOT) {
    pos++;
    for (let c = bytes[pos]!; c >= ZERO && c <= NINE; c = bytes[++pos]!) {
      m = m * 10 + (c - ZERO);
      fraction++;
    }
    if (fraction === 0) return Number.NaN;
  }
  if (whole + fraction > MAX_DIGITS) return Number.NaN;
  const next = bytes[pos];
  if (next !== COMMA && next !== CLOSE) return Number.NaN; // an exponent, or not JSON
  const x = fraction === 0 ? m : m / POW10[fraction]!;
  return negative && x !== 0 ? -x : x;
}

/** A quoted protocol name (no escapes); the same string as last time at this position if equal. */
function metricName(bytes: Uint8Array, index: number): string | undefined {
  if (bytes[pos] !== QUOTE) return undefined;
  const start = ++pos;
  for (let c = bytes[pos]!; c < 128 && NAME_CHAR[c] === 1; c = bytes[++pos]!);
  const length = pos - start;
  if (bytes[pos] !== QUOTE || length === 0 || length > LIMITS.nameChars) return undefined;
  pos++;
  const known = names[index];
  if (known !== undefined && known.length === length) {
    let same = true;
    for (let i = 0; i < length; i++)
      if (known.charCodeAt(i) !== bytes[start + i]) {
        same = false;
        break;
      }
    if (same) return known;
  }
  const name = asciiText.decode(bytes.subarray(start, pos - 1));
  if (index < MAX_REMEMBERED) names[index] = name;
  return name;
}

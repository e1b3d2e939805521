/**
 * Device ids: the one rule every convention and link follows. An id is 1–64 characters from
 * `A–Z a–z 0–9 _ -`, so nothing that reaches a topic, a file name or a log line can carry an MQTT
 * wildcard, a separator, a control character or a look-alike. Made only by {@link parseDeviceId}.
 *
 * @example
 * const id = parseDeviceId('pump-7');
 * if (!id.ok) return refuse(id.error.message); // names the character and its position
 */
import type { Result } from '../lib/result.js';

/** Longest device id, in characters. */
export const ID_MAX_CHARS = 64;

/** A validated device id: 1–64 of `[A-Za-z0-9_-]`. Made only by {@link parseDeviceId}. */
export type DeviceId = string & { readonly __brand: 'DeviceId' };

export type DeviceIdErrorCode = 'notString' | 'empty' | 'tooLong' | 'badCharacter';

export interface DeviceIdError {
  readonly code: DeviceIdErrorCode;
  readonly message: string;
  /** For `badCharacter`: the offending character and its 0-based index (UTF-16 units). */
  readonly character?: string;
  readonly position?: number;
}

export function isIdChar(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) || // 0-9
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x61 && c <= 0x7a) || // a-z
    c === 0x5f || // _
    c === 0x2d // -
  );
}

/** `'+' (U+002B)`: readable even for invisible, control and look-alike characters. */
export function describeChar(s: string, i: number): { character: string; text: string } {
  const cp = s.codePointAt(i) ?? 0;
  const character = String.fromCodePoint(cp);
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  const printable = cp > 0x20 && cp < 0x7f;
  return { character, text: printable ? `'${character}' (${hex})` : hex };
}

/**
 * Validates a device id: 1–64 characters from `A–Z a–z 0–9 _ -`. Nothing else can reach a topic
 * (no `+ # / $`, no dots, spaces, control or non-ASCII characters, so no homoglyphs either).
 *
 * @example
 * parseDeviceId('pump-7');   // { ok: true, value: 'pump-7' }
 * parseDeviceId('a/+/b');    // { ok: false, error: { code: 'badCharacter', character: '/', position: 1, … } }
 */
export function parseDeviceId(s: string): Result<DeviceId, DeviceIdError> {
  if (typeof s !== 'string')
    return { ok: false, error: { code: 'notString', message: 'device id must be a string' } };
  if (s.length === 0) return { ok: false, error: { code: 'empty', message: 'device id is empty' } };
  if (s.length > ID_MAX_CHARS) {
    return {
      ok: false,
      error: { code: 'tooLong', message: `device id has ${s.length} characters; at most ${ID_MAX_CHARS}` },
    };
  }
  for (let i = 0; i < s.length; i++) {
    if (!isIdChar(s.charCodeAt(i))) {
      const { character, text } = describeChar(s, i);
      return {
        ok: false,
        error: {
          code: 'badCharacter',
          message: `device id has ${text} at position ${i}; allowed: A-Z a-z 0-9 _ -`,
          character,
          position: i,
        },
      };
    }
  }
  return { ok: true, value: s as DeviceId };
}

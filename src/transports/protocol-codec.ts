/**
 * Device protocol v1, the JSON codec: bytes → message (hardened, never throws for any bytes),
 * message → bytes (checked by decoding it back), and one received MQTT publish → device message.
 *
 * Pure code, no I/O; protocol.ts is the public entry and describes the hardening.
 *
 * @example
 * const r = decodeMessage(payload, { maxBytes: 16 * 1024 });
 * if (r.ok && r.value.type === 'telemetry') store(r.value.boot, r.value.seq, r.value.values);
 * client.publish(topicFor(id, 'cmd'), encodeMessage(cmd), { qos: 1 });
 */

import type { DeviceId } from '../devices/device-id.js';
import type { Result } from '../lib/result.js';
import { BadField, isObject, own, show } from './protocol-fields.js';
import { readCanonicalTelemetry } from './protocol-telemetry.js';
import type { Channel, DeviceTopic, TopicError, TopicErrorCode } from './protocol-topics.js';
import { CHANNELS, isMessageType, parseTopic } from './protocol-topics.js';
import type { DecodeError, DecodeErrorCode, DecodeOptions, Message } from './protocol-types.js';
import {
  DEFAULT_MAX_PAYLOAD_BYTES,
  LIMITS,
  MAX_DEPTH,
  PROTOCOL_VERSION,
  ProtocolError,
} from './protocol-types.js';
import { readFields, toBase64 } from './protocol-validate.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/**
 * Nesting depth of a JSON text, found by a flat scan of the bytes (no recursion, so 10,000 `[`
 * cost nothing). Brackets inside strings are skipped; `"` `\` `[` `]` `{` `}` never occur inside
 * a multi-byte UTF-8 sequence, so scanning bytes is exact. Returns the offset where the depth
 * first exceeds `limit`, or -1.
 */
function depthExceededAt(bytes: Uint8Array, start: number, limit: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === 0x5c) i++;
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x5b || b === 0x7b) {
      if (++depth > limit) return i;
    } else if (b === 0x5d || b === 0x7d) depth--;
  }
  return -1;
}

function decodeError(
  code: DecodeErrorCode,
  message: string,
  field?: string,
): { ok: false; error: DecodeError } {
  return { ok: false, error: field === undefined ? { code, message } : { code, message, field } };
}

function checkMaxBytes(maxBytes: number): void {
  if (!(Number.isSafeInteger(maxBytes) && maxBytes > 0)) {
    throw new ProtocolError('badOptions', `maxBytes must be a positive integer, got ${String(maxBytes)}`);
  }
}

/**
 * Decodes one payload into a v1 message. Never throws for any bytes; throws
 * {@link ProtocolError} `badOptions` only for a bad `maxBytes` or a non-byte argument.
 * Errors: see {@link DecodeError}. Duplicate JSON keys: the last one wins, as in `JSON.parse`.
 *
 * @example
 * decodeMessage(bytes);             // { ok: true, value: { v: 1, type: 'telemetry', boot: 3, seq: 41, … } }
 * decodeMessage(utf8('[[[[…'));      // { ok: false, error: { code: 'tooDeep', … } }
 * decodeMessage(utf8('{"v":1,"type":"telemetry","boot":3,"seq":1,"ts":0,"values":{"t":1e309}}'));
 *                                    // { ok: false, error: { code: 'badField', field: 'values.t', … } }
 */
export function decodeMessage(bytes: Uint8Array, options: DecodeOptions = {}): Result<Message, DecodeError> {
  if (!(bytes instanceof Uint8Array))
    throw new ProtocolError('badOptions', 'decodeMessage needs a Uint8Array');
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  checkMaxBytes(maxBytes);
  if (bytes.length === 0) return decodeError('empty', 'payload is empty');
  if (bytes.length > maxBytes) {
    return decodeError('tooLarge', `payload has ${bytes.length} bytes; at most ${maxBytes}`);
  }
  // Most payloads are telemetry as encodeMessage writes it: read straight from the bytes.
  const telemetry = readCanonicalTelemetry(bytes);
  if (telemetry !== undefined) return { ok: true, value: telemetry };
  const start = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  const deepAt = depthExceededAt(bytes, start, MAX_DEPTH);
  if (deepAt !== -1) {
    return decodeError('tooDeep', `payload nests deeper than ${MAX_DEPTH} levels (at byte ${deepAt})`);
  }
  let text: string;
  try {
    text = utf8.decode(start === 0 ? bytes : bytes.subarray(start));
  } catch {
    return decodeError('notUtf8', 'payload is not well-formed UTF-8 (protocol v1 payloads are UTF-8 JSON)');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return decodeError('notJson', `payload is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!isObject(parsed))
    return decodeError('badEnvelope', `payload must be a JSON object, got ${show(parsed)}`);
  const v = own(parsed, 'v');
  if (typeof v !== 'number')
    return decodeError('badEnvelope', `'v' must be the protocol version number, got ${show(v)}`, 'v');
  if (v !== PROTOCOL_VERSION) {
    return decodeError(
      'unsupportedVersion',
      `protocol version ${show(v)} is not supported; this host speaks 1`,
      'v',
    );
  }
  const type = own(parsed, 'type');
  if (typeof type !== 'string')
    return decodeError('badEnvelope', `'type' must be a string, got ${show(type)}`, 'type');
  if (!isMessageType(type))
    return decodeError('unknownType', `${show(type)} is not a v1 message type`, 'type');
  try {
    return { ok: true, value: readFields(type, parsed) };
  } catch (err) {
    if (err instanceof BadField) return decodeError('badField', `${type}: ${err.message}`, err.field);
    throw err;
  }
}

/**
 * Encodes a message as UTF-8 JSON (no BOM, no whitespace). Whatever it returns decodes back to an
 * equal message; a message that would not (a bad field, NaN, over `maxBytes`) throws
 * {@link ProtocolError} naming the code and field, since building one is a bug in the caller.
 *
 * @example
 * encodeMessage({ v: 1, type: 'cmd', cmdId: '01JD3X…', action: 'setPoint', args: { celsius: 21 } });
 */
export function encodeMessage(msg: Message, options: DecodeOptions = {}): Uint8Array {
  let text: string;
  let check: Message = msg;
  try {
    if (msg.type === 'fw.chunk') {
      // The chunk's bytes are ours, so their base64 is valid by construction: check their size
      // here and every other field on a copy with a tiny placeholder, instead of decoding 8 KiB
      // of base64 back (that re-check cost ~10× the encoding).
      const size = msg.data instanceof Uint8Array ? msg.data.byteLength : -1;
      if (!(size >= 1 && size <= LIMITS.chunkBytes))
        throw new ProtocolError(
          'badField',
          `encodeMessage: data must be 1…${LIMITS.chunkBytes} bytes, got ${size}`,
          'data',
        );
      text = JSON.stringify({ ...msg, data: toBase64(msg.data) });
      check = { ...msg, data: new Uint8Array(1) };
    } else text = JSON.stringify(msg);
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError('notJson', `encodeMessage: ${err instanceof Error ? err.message : String(err)}`);
  }
  const bytes = utf8Encoder.encode(text);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  if (bytes.length > maxBytes)
    throw new ProtocolError(
      'tooLarge',
      `encodeMessage: ${bytes.length} bytes, over the limit of ${maxBytes}`,
    );
  const checked =
    check === msg
      ? decodeMessage(bytes, options)
      : decodeMessage(utf8Encoder.encode(JSON.stringify({ ...check, data: 'AA==' })), options);
  if (!checked.ok)
    throw new ProtocolError(
      checked.error.code,
      `encodeMessage: ${checked.error.message}`,
      checked.error.field,
    );
  return bytes;
}

export type PublishErrorCode = TopicErrorCode | DecodeErrorCode | 'wrongChannel' | 'deviceMismatch';

export interface PublishError {
  readonly code: PublishErrorCode;
  readonly message: string;
  readonly field?: string;
}

export interface DevicePublish {
  readonly deviceId: DeviceId;
  readonly channel: Channel;
  readonly message: Message;
}

// A fleet publishes on a fixed set of topics: remember the parse of the recent ones (valid or not).
const TOPIC_CACHE_SIZE = 20_000;
const topicCache = new Map<string, Result<DeviceTopic, TopicError>>();
function parseTopicCached(topic: string): Result<DeviceTopic, TopicError> {
  let r = topicCache.get(topic);
  if (r === undefined) {
    r = parseTopic(topic);
    if (topicCache.size >= TOPIC_CACHE_SIZE) topicCache.clear();
    topicCache.set(topic, r);
  }
  return r;
}

/**
 * Decodes one received MQTT publish: the topic, the payload, that the message type belongs on
 * that channel (`wrongChannel`), and that a `hello` names the device whose topic it came on
 * (`deviceMismatch`). Topic codes are those of {@link parseTopic}, payload codes those of
 * {@link decodeMessage}; an `empty` payload on `/hello` or `/status` is a cleared retained message.
 *
 * @example
 * client.on('message', (topic, payload) => {
 *   const r = decodePublish(topic, payload);
 *   if (r.ok) deviceMailbox(r.value.deviceId).send(r.value.message);
 * });
 */
export function decodePublish(
  topic: string,
  payload: Uint8Array,
  options: DecodeOptions = {},
): Result<DevicePublish, PublishError> {
  const t = parseTopicCached(topic);
  if (!t.ok) return { ok: false, error: { code: t.error.code, message: t.error.message } };
  const m = decodeMessage(payload, options);
  if (!m.ok) return m;
  const { deviceId, channel } = t.value;
  const message = m.value;
  if (!CHANNELS[channel].types.includes(message.type)) {
    return {
      ok: false,
      error: { code: 'wrongChannel', message: `a '${message.type}' message does not belong on /${channel}` },
    };
  }
  if (message.type === 'hello' && message.deviceId !== deviceId) {
    return {
      ok: false,
      error: {
        code: 'deviceMismatch',
        message: `hello names '${message.deviceId}' but came on the topic of '${deviceId}'`,
        field: 'deviceId',
      },
    };
  }
  return { ok: true, value: { deviceId, channel, message } };
}

/**
 * Device protocol v1, the wire layer: message types, device ids, the JSON codec and the MQTT topic map.
 *
 * Pure code, no I/O. The same bytes travel over both links: as an MQTT payload on
 * `fleetvisor/v1/<deviceId>/<channel>`, or as the payload of one serial frame (see framing.ts).
 * docs/protocol.md is the firmware author's version of this file; keep the two in step.
 *
 * Decoding is hardened for hostile input and never throws for any bytes: size is checked before
 * anything else, nesting depth is checked by a flat scan before `JSON.parse`, keys `__proto__`,
 * `constructor` and `prototype` are dropped wherever they appear, every number must be finite,
 * every known string is length-capped, and unknown extra fields are ignored (so v1 can grow
 * optional fields without breaking older readers). A single leading UTF-8 byte order mark is
 * ignored (RFC 8259 §8.1 allows it); any other encoding is `notUtf8`.
 *
 * @example
 * const r = decodeMessage(payload, { maxBytes: 16 * 1024 });
 * if (!r.ok) return log.warn('bad payload', r.error); // { code: 'badField', field: 'seq', message: … }
 * if (r.value.type === 'telemetry') store(r.value.boot, r.value.seq, r.value.values);
 *
 * const id = parseDeviceId('pump-7');
 * if (id.ok) client.publish(topicFor(id.value, 'cmd'), encodeMessage(cmd), { qos: 1 });
 */

import { randomBytes } from 'node:crypto';
import type { DeviceId, DeviceIdError, DeviceIdErrorCode } from '../devices/device-id.js';
import { describeChar, ID_MAX_CHARS, isIdChar, parseDeviceId } from '../devices/device-id.js';
import type { JsonObject, JsonValue } from '../lib/json.js';
import type { Result } from '../lib/result.js';

/** The protocol version carried as `v` in every message. */
export const PROTOCOL_VERSION = 1;

/** Default cap on one encoded message, in bytes: 16 KiB. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 16 * 1024;

/** Maximum nesting of arrays and objects in a payload (the envelope itself is depth 1). */
export const MAX_DEPTH = 32;

/** Length limits of protocol v1 (characters, entries, bytes). */
export const LIMITS = {
  /** deviceId, cmdId, transferId: `[A-Za-z0-9_-]`. */
  idChars: ID_MAX_CHARS,
  /** kind, action, capability, metric, event name, error code: `[A-Za-z0-9_.-]`. */
  nameChars: 64,
  /** Firmware versions: printable ASCII without spaces. */
  versionChars: 64,
  /** Human-readable text (error messages). */
  textChars: 1024,
  capabilities: 64,
  metrics: 256,
  /** Largest `fw.chunk` data, in bytes (before base64). */
  chunkBytes: 8192,
  /** Longest topic parseTopic looks at; every valid v1 topic is far shorter. */
  topicChars: 128,
} as const;

// ---------------------------------------------------------------------------------------------
// Results and errors

export type { Result };

/** An error as a device sends it in a `reply` or `fw.ack`: a stable code and a sentence. */
export interface WireError {
  readonly code: string;
  readonly message: string;
}

export type DecodeErrorCode =
  | 'empty'
  | 'tooLarge'
  | 'notUtf8'
  | 'notJson'
  | 'tooDeep'
  | 'badEnvelope'
  | 'unsupportedVersion'
  | 'unknownType'
  | 'badField';

/**
 * Why bytes are not a v1 message.
 * - `empty`: zero bytes (over MQTT: a retained message being cleared).
 * - `tooLarge`: more than `maxBytes`; nothing was parsed.
 * - `notUtf8`: ill-formed UTF-8 (overlong forms, surrogates, truncated sequences, UTF-16).
 * - `notJson`: not one JSON value.
 * - `tooDeep`: arrays/objects nested deeper than {@link MAX_DEPTH}.
 * - `badEnvelope`: not an object with a numeric `v` and a string `type`.
 * - `unsupportedVersion`: `v` is not 1.
 * - `unknownType`: `type` is not a v1 message type.
 * - `badField`: a field is missing or invalid; `field` names it (`values.temp`, `firmware.slots.A`).
 */
export interface DecodeError {
  readonly code: DecodeErrorCode;
  readonly message: string;
  readonly field?: string;
}

/** Misuse of the codec by the host's own code (an invalid message to encode, bad options). */
export class ProtocolError extends Error {
  readonly code: DecodeErrorCode | 'badOptions';
  readonly field?: string;
  constructor(code: DecodeErrorCode | 'badOptions', message: string, field?: string) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
    if (field !== undefined) this.field = field;
  }
}

// ---------------------------------------------------------------------------------------------
// Device ids

export type { DeviceId, DeviceIdError, DeviceIdErrorCode };
export { parseDeviceId };

function isNameChar(c: number): boolean {
  return isIdChar(c) || c === 0x2e; // .
}

// ---------------------------------------------------------------------------------------------
// Messages

export type { JsonObject, JsonValue };

export type Slot = 'A' | 'B';

export interface FirmwareInfo {
  /** Version running now; equals `slots[slot]`. */
  readonly version: string;
  /** Slot the device booted from. */
  readonly slot: Slot;
  /** `false` while a freshly applied image runs on trial (until `fw.confirm`). */
  readonly confirmed: boolean;
  /** Version held in each slot, `null` if the slot is empty or invalid. */
  readonly slots: { readonly A: string | null; readonly B: string | null };
}

/** Device → host, first message of every connection (MQTT: retained on `/hello`). */
export interface HelloMessage {
  readonly v: 1;
  readonly type: 'hello';
  readonly deviceId: DeviceId;
  readonly kind: string;
  /** Differs on every boot (a persisted counter, or random); `seq` restarts with it. */
  readonly boot: number;
  readonly firmware: FirmwareInfo;
  /** Actions and features the device supports, e.g. `['reboot', 'setPoint', 'fw']`. */
  readonly capabilities: readonly string[];
}

/** Device → host, MQTT only: `online` after connecting, `offline` as the last will (retained). */
export interface StatusMessage {
  readonly v: 1;
  readonly type: 'status';
  readonly state: 'online' | 'offline';
  readonly boot: number;
  /** Connection counter within this boot: orders a late last will against a newer `online`. */
  readonly conn: number;
}

export interface TelemetryMessage {
  readonly v: 1;
  readonly type: 'telemetry';
  readonly boot: number;
  /** uint32, one counter per boot shared with `event`; wraps 2³²−1 → 0. */
  readonly seq: number;
  /** Device clock, ms since the Unix epoch (may be wrong: never used for ordering). */
  readonly ts: number;
  /** Metric name → finite number. */
  readonly values: Readonly<Record<string, number>>;
}

export interface HeartbeatMessage {
  readonly v: 1;
  readonly type: 'heartbeat';
  readonly boot: number;
  readonly uptimeMs: number;
}

export type Severity = 'info' | 'warning' | 'error';

export interface EventMessage {
  readonly v: 1;
  readonly type: 'event';
  readonly boot: number;
  readonly seq: number;
  readonly ts: number;
  readonly name: string;
  readonly severity?: Severity;
  readonly data?: JsonObject;
}

/** Host → device (MQTT: `/cmd`, QoS 1, never retained). Executed at most once per `cmdId`. */
export interface CommandMessage {
  readonly v: 1;
  readonly type: 'cmd';
  readonly cmdId: string;
  readonly action: string;
  readonly args?: JsonObject;
  /** Host wall clock, ms since the Unix epoch: past it, the device must not execute the command. */
  readonly expiresAt?: number;
}

/** Device → host, the answer to one `cmd`; a repeated `cmdId` gets the same reply again. */
export type ReplyMessage =
  | {
      readonly v: 1;
      readonly type: 'reply';
      readonly cmdId: string;
      readonly ok: true;
      readonly result?: JsonValue;
    }
  | {
      readonly v: 1;
      readonly type: 'reply';
      readonly cmdId: string;
      readonly ok: false;
      readonly error: WireError;
    };

/** Host → device: start (or resume) a firmware transfer into the inactive slot. */
export interface FwBeginMessage {
  readonly v: 1;
  readonly type: 'fw.begin';
  readonly transferId: string;
  readonly version: string;
  /** Image size in bytes. */
  readonly size: number;
  /** SHA-256 of the whole image, 64 lowercase hex digits. */
  readonly sha256: string;
  /** Size of every `fw.chunk` but the last, 1–{@link LIMITS.chunkBytes}. */
  readonly chunkBytes: number;
}

/** Host → device: image bytes at `offset` (base64 on the wire, bytes here). */
export interface FwChunkMessage {
  readonly v: 1;
  readonly type: 'fw.chunk';
  readonly transferId: string;
  readonly offset: number;
  readonly data: Uint8Array;
}

/** Host → device: check the received image against `size` and `sha256`. */
export interface FwVerifyMessage {
  readonly v: 1;
  readonly type: 'fw.verify';
  readonly transferId: string;
}

/** Host → device: reboot into the new slot (on trial until `fw.confirm`). */
export interface FwApplyMessage {
  readonly v: 1;
  readonly type: 'fw.apply';
  readonly transferId: string;
}

/** Host → device: the new image is healthy; make it permanent. */
export interface FwConfirmMessage {
  readonly v: 1;
  readonly type: 'fw.confirm';
  readonly transferId: string;
}

/** Host → device: go back to the previous slot and reboot. */
export interface FwRollbackMessage {
  readonly v: 1;
  readonly type: 'fw.rollback';
  readonly transferId: string;
}

export type FwStep = 'begin' | 'chunk' | 'verify' | 'apply' | 'confirm' | 'rollback';

/**
 * Device → host: the answer to every `fw.*` message. `offset` is how many bytes of the image
 * the device holds contiguously from 0, i.e. where the host continues; `error` says why a step failed.
 */
export interface FwAckMessage {
  readonly v: 1;
  readonly type: 'fw.ack';
  readonly transferId: string;
  readonly step: FwStep;
  readonly offset: number;
  readonly error?: WireError;
}

export type Message =
  | HelloMessage
  | StatusMessage
  | TelemetryMessage
  | HeartbeatMessage
  | EventMessage
  | CommandMessage
  | ReplyMessage
  | FwBeginMessage
  | FwChunkMessage
  | FwVerifyMessage
  | FwApplyMessage
  | FwConfirmMessage
  | FwRollbackMessage
  | FwAckMessage;

export type MessageType = Message['type'];

// ---------------------------------------------------------------------------------------------
// Channels (MQTT topics)

export type Channel =
  | 'hello'
  | 'status'
  | 'telemetry'
  | 'heartbeat'
  | 'event'
  | 'cmd'
  | 'reply'
  | 'fw'
  | 'fw-ack';
export type Direction = 'toHost' | 'toDevice';

export interface ChannelSpec {
  readonly direction: Direction;
  /** QoS to publish with. */
  readonly qos: 0 | 1;
  readonly retain: boolean;
  readonly types: readonly MessageType[];
}

/** The MQTT mapping: `fleetvisor/v1/<deviceId>/<channel>`, who publishes, QoS, retain, and what travels there. */
export const CHANNELS: { readonly [C in Channel]: ChannelSpec } = {
  hello: { direction: 'toHost', qos: 1, retain: true, types: ['hello'] },
  status: { direction: 'toHost', qos: 1, retain: true, types: ['status'] },
  telemetry: { direction: 'toHost', qos: 1, retain: false, types: ['telemetry'] },
  heartbeat: { direction: 'toHost', qos: 0, retain: false, types: ['heartbeat'] },
  event: { direction: 'toHost', qos: 1, retain: false, types: ['event'] },
  cmd: { direction: 'toDevice', qos: 1, retain: false, types: ['cmd'] },
  reply: { direction: 'toHost', qos: 1, retain: false, types: ['reply'] },
  fw: {
    direction: 'toDevice',
    qos: 1,
    retain: false,
    types: ['fw.begin', 'fw.chunk', 'fw.verify', 'fw.apply', 'fw.confirm', 'fw.rollback'],
  },
  'fw-ack': { direction: 'toHost', qos: 1, retain: false, types: ['fw.ack'] },
};

const CHANNEL_OF: { readonly [T in MessageType]: Channel } = {
  hello: 'hello',
  status: 'status',
  telemetry: 'telemetry',
  heartbeat: 'heartbeat',
  event: 'event',
  cmd: 'cmd',
  reply: 'reply',
  'fw.begin': 'fw',
  'fw.chunk': 'fw',
  'fw.verify': 'fw',
  'fw.apply': 'fw',
  'fw.confirm': 'fw',
  'fw.rollback': 'fw',
  'fw.ack': 'fw-ack',
};

/**
 * The channel a message type travels on.
 *
 * @example
 * client.publish(topicFor(id, channelFor(msg.type)), encodeMessage(msg), { qos: CHANNELS[channelFor(msg.type)].qos });
 */
export function channelFor(type: MessageType): Channel {
  return CHANNEL_OF[type];
}

/**
 * Who sends a message type: `toHost` (device → host) or `toDevice`. A serial link has no topics,
 * so the host checks this on every message it receives there.
 *
 * @example
 * if (directionOf(msg.type) !== 'toHost') return reject('a device cannot send ' + msg.type);
 */
export function directionOf(type: MessageType): Direction {
  return CHANNELS[CHANNEL_OF[type]].direction;
}

const TOPIC_ROOT = 'fleetvisor';
const TOPIC_VERSION = `v${PROTOCOL_VERSION}`;

/**
 * The topic of one device's channel. Both parts are validated types, so the result never
 * contains a wildcard, an empty level or a `$` prefix.
 *
 * @example
 * topicFor(id, 'telemetry'); // 'fleetvisor/v1/pump-7/telemetry'
 */
export function topicFor(deviceId: DeviceId, channel: Channel): string {
  return `${TOPIC_ROOT}/${TOPIC_VERSION}/${deviceId}/${channel}`;
}

/**
 * The subscription filter for one channel of every device (the host subscribes to the
 * `toHost` channels this way).
 *
 * @example
 * topicFilterFor('telemetry'); // 'fleetvisor/v1/+/telemetry'
 */
export function topicFilterFor(channel: Channel): string {
  return `${TOPIC_ROOT}/${TOPIC_VERSION}/+/${channel}`;
}

export type TopicErrorCode =
  | 'empty'
  | 'tooLong'
  | 'badCharacter'
  | 'wildcard'
  | 'reserved'
  | 'emptyLevel'
  | 'foreign'
  | 'unsupportedVersion'
  | 'badShape'
  | 'badDeviceId'
  | 'unknownChannel';

/**
 * Why a string is not a v1 device topic.
 * - `tooLong`: over {@link LIMITS.topicChars} characters (checked before anything else is looked at).
 * - `badCharacter`: U+0000, a control character or anything outside printable ASCII.
 * - `wildcard`: `+` or `#`, which a topic name must never hold.
 * - `reserved`: starts with `$` (`$SYS`, `$share`): the broker's, never a device's.
 * - `emptyLevel`: a leading, trailing or doubled `/`.
 * - `foreign`: not under `fleetvisor/`; `unsupportedVersion`: `fleetvisor/v2/…`.
 * - `badShape`: not exactly `fleetvisor/v1/<deviceId>/<channel>`.
 * - `badDeviceId`, `unknownChannel`: the third or fourth level is not valid.
 */
export interface TopicError {
  readonly code: TopicErrorCode;
  readonly message: string;
  readonly position?: number;
}

export interface DeviceTopic {
  readonly deviceId: DeviceId;
  readonly channel: Channel;
}

function topicError(
  code: TopicErrorCode,
  message: string,
  position?: number,
): { ok: false; error: TopicError } {
  return { ok: false, error: position === undefined ? { code, message } : { code, message, position } };
}

function isChannel(s: string): s is Channel {
  return Object.hasOwn(CHANNELS, s);
}

/**
 * Splits a received topic into device id and channel, rejecting anything that is not exactly
 * `fleetvisor/v1/<deviceId>/<channel>`.
 *
 * @example
 * parseTopic('fleetvisor/v1/pump-7/reply'); // { ok: true, value: { deviceId: 'pump-7', channel: 'reply' } }
 * parseTopic('fleetvisor/v1/+/reply');      // { ok: false, error: { code: 'wildcard', position: 14, … } }
 */
export function parseTopic(topic: string): Result<DeviceTopic, TopicError> {
  if (typeof topic !== 'string' || topic.length === 0) return topicError('empty', 'topic is empty');
  if (topic.length > LIMITS.topicChars) {
    return topicError('tooLong', `topic has ${topic.length} characters; at most ${LIMITS.topicChars}`);
  }
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === 0x2b || c === 0x23) {
      return topicError('wildcard', `topic has the wildcard '${topic[i]}' at position ${i}`, i);
    }
    if (c <= 0x20 || c >= 0x7f) {
      return topicError('badCharacter', `topic has ${describeChar(topic, i).text} at position ${i}`, i);
    }
  }
  if (topic.charCodeAt(0) === 0x24)
    return topicError('reserved', "topics starting with '$' belong to the broker", 0);
  const levels = topic.split('/');
  const emptyAt = levels.indexOf('');
  if (emptyAt !== -1) return topicError('emptyLevel', `topic level ${emptyAt} is empty`);
  if (levels[0] !== TOPIC_ROOT) return topicError('foreign', `topic is not under '${TOPIC_ROOT}/'`);
  const version = levels[1] ?? '';
  if (version !== TOPIC_VERSION) {
    return /^v\d{1,9}$/.test(version)
      ? topicError(
          'unsupportedVersion',
          `protocol ${version} is not supported; this host speaks ${TOPIC_VERSION}`,
        )
      : topicError('foreign', `'${version}' is not a protocol version level`);
  }
  if (levels.length !== 4) {
    return topicError(
      'badShape',
      `expected ${TOPIC_ROOT}/${TOPIC_VERSION}/<deviceId>/<channel>, got ${levels.length} levels`,
    );
  }
  const id = parseDeviceId(levels[2]!);
  if (!id.ok) return topicError('badDeviceId', id.error.message);
  const channel = levels[3]!;
  if (!isChannel(channel)) return topicError('unknownChannel', `'${channel}' is not a v1 channel`);
  return { ok: true, value: { deviceId: id.value, channel } };
}

// ---------------------------------------------------------------------------------------------
// Sequence numbers

/**
 * Signed distance from `from` to `to` on the uint32 circle (RFC 1982 serial arithmetic):
 * positive when `to` is newer. Correct across the wrap as long as the two are within 2³¹.
 *
 * @example
 * seqDelta(4294967295, 0); // 1
 * seqDelta(10, 7);         // -3 (a late or duplicate message)
 */
export function seqDelta(from: number, to: number): number {
  return (to - from) | 0;
}

/**
 * The seq after `seq`, wrapping 2³²−1 → 0 (what a device, or the simulator, sends next).
 *
 * @example
 * nextSeq(4294967295); // 0
 */
export function nextSeq(seq: number): number {
  return (seq + 1) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Decoding

export interface DecodeOptions {
  /** Largest payload accepted, in bytes; default {@link DEFAULT_MAX_PAYLOAD_BYTES}. */
  readonly maxBytes?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

const SEVERITIES: readonly Severity[] = ['info', 'warning', 'error'];
const FW_STEPS: readonly FwStep[] = ['begin', 'chunk', 'verify', 'apply', 'confirm', 'rollback'];

const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Internal: a field failed validation. Caught in {@link decodeMessage}; never escapes. */
class BadField {
  constructor(
    readonly field: string,
    readonly message: string,
  ) {}
}

type Obj = Readonly<Record<string, unknown>>;

function isObject(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Own properties only, so a polluted Object.prototype can never supply a field. */
function own(o: Obj, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

function show(x: unknown): string {
  if (typeof x === 'string') return JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}…` : x);
  if (Array.isArray(x)) return 'an array';
  if (x === null) return 'null';
  return typeof x === 'object' ? 'an object' : String(x);
}

function path(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

function reqUint32(o: Obj, key: string, at: string): number {
  const x = own(o, key);
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 0xffffffff) {
    throw new BadField(path(at, key), `${path(at, key)} must be an integer 0…4294967295, got ${show(x)}`);
  }
  return x + 0; // -0 → 0
}

/** A wall-clock instant or a duration in ms: a non-negative safe integer. */
function reqMs(o: Obj, key: string, at: string): number {
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

function reqId(o: Obj, key: string, at: string): string {
  const x = own(o, key);
  checkChars(x, path(at, key), ID_MAX_CHARS, isIdChar, 'A-Z a-z 0-9 _ -');
  return x;
}

function checkName(x: unknown, field: string): asserts x is string {
  checkChars(x, field, LIMITS.nameChars, isNameChar, 'A-Z a-z 0-9 _ - .');
}

function reqName(o: Obj, key: string, at: string): string {
  const x = own(o, key);
  checkName(x, path(at, key));
  return x;
}

function checkVersion(x: unknown, field: string): asserts x is string {
  checkChars(x, field, LIMITS.versionChars, (c) => c > 0x20 && c < 0x7f, 'printable ASCII without spaces');
}

/** Text shown to people: no control characters but tab and newline, no bidi overrides. */
function isTextChar(c: number): boolean {
  if (c === 0x09 || c === 0x0a) return true;
  if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return false;
  return !((c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069));
}

function reqWireError(o: Obj, key: string, at: string): WireError {
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

function oneOf<T extends string>(o: Obj, key: string, at: string, allowed: readonly T[]): T {
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
function cleanJson(x: unknown, field: string): JsonValue {
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

function optObject(o: Obj, key: string, at: string): JsonObject | undefined {
  const x = own(o, key);
  if (x === undefined) return undefined;
  if (!isObject(x)) throw new BadField(path(at, key), `${path(at, key)} must be an object, got ${show(x)}`);
  return cleanObject(x, path(at, key));
}

function slotVersion(o: Obj, key: Slot, at: string): string | null {
  const x = own(o, key);
  if (x === null) return null;
  checkVersion(x, path(at, key));
  return x;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

// Node's Buffer codec: ~10× faster than atob/btoa over a char loop for 4–8 KiB chunks. The
// regex above has already checked the alphabet and padding, so nothing is silently skipped.
function fromBase64(s: string): Uint8Array {
  const b = Buffer.from(s, 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function readHello(o: Obj): HelloMessage {
  const rawId = own(o, 'deviceId');
  if (typeof rawId !== 'string')
    throw new BadField('deviceId', `deviceId must be a string, got ${show(rawId)}`);
  const id = parseDeviceId(rawId);
  if (!id.ok) throw new BadField('deviceId', id.error.message);
  const kind = reqName(o, 'kind', '');
  const boot = reqUint32(o, 'boot', '');
  const fw = own(o, 'firmware');
  if (!isObject(fw)) throw new BadField('firmware', `firmware must be an object, got ${show(fw)}`);
  const version = own(fw, 'version');
  checkVersion(version, 'firmware.version');
  const slot = oneOf<Slot>(fw, 'slot', 'firmware', ['A', 'B']);
  const confirmed = own(fw, 'confirmed');
  if (typeof confirmed !== 'boolean') {
    throw new BadField(
      'firmware.confirmed',
      `firmware.confirmed must be true or false, got ${show(confirmed)}`,
    );
  }
  const slots = own(fw, 'slots');
  if (!isObject(slots)) throw new BadField('firmware.slots', `firmware.slots must be an object { A, B }`);
  const A = slotVersion(slots, 'A', 'firmware.slots');
  const B = slotVersion(slots, 'B', 'firmware.slots');
  if ((slot === 'A' ? A : B) !== version) {
    throw new BadField(
      `firmware.slots.${slot}`,
      `firmware.slots.${slot} must equal firmware.version (the running image)`,
    );
  }
  const caps = own(o, 'capabilities');
  if (!Array.isArray(caps))
    throw new BadField('capabilities', `capabilities must be an array, got ${show(caps)}`);
  if (caps.length > LIMITS.capabilities) {
    throw new BadField('capabilities', `capabilities must have at most ${LIMITS.capabilities} entries`);
  }
  const capabilities: string[] = [];
  for (let i = 0; i < caps.length; i++) {
    const c: unknown = caps[i];
    checkName(c, `capabilities[${i}]`);
    capabilities.push(c);
  }
  return {
    v: 1,
    type: 'hello',
    deviceId: id.value,
    kind,
    boot,
    firmware: { version, slot, confirmed, slots: { A, B } },
    capabilities,
  };
}

function readValues(o: Obj): Record<string, number> {
  const raw = own(o, 'values');
  if (!isObject(raw))
    throw new BadField('values', `values must be an object of metric → number, got ${show(raw)}`);
  // The parsed object itself is kept when it is already clean (the common case: one object less
  // per message); a forbidden key or a -0 makes a clean copy.
  let clean = true;
  let count = 0;
  for (const key in raw) {
    if (!Object.hasOwn(raw, key)) continue;
    if (FORBIDDEN_KEYS.has(key)) {
      clean = false;
      continue;
    }
    checkName(key, `values[${JSON.stringify(key.slice(0, 40))}]`);
    const x = raw[key];
    if (typeof x !== 'number' || !Number.isFinite(x)) {
      throw new BadField(`values.${key}`, `values.${key} must be a finite number, got ${show(x)}`);
    }
    if (++count > LIMITS.metrics)
      throw new BadField('values', `values must have at most ${LIMITS.metrics} metrics`);
    if (Object.is(x, -0)) clean = false;
  }
  if (clean && Object.getPrototypeOf(raw) === Object.prototype) return raw as Record<string, number>;
  const out: Record<string, number> = {};
  for (const key of Object.keys(raw)) if (!FORBIDDEN_KEYS.has(key)) out[key] = (raw[key] as number) + 0;
  return out;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

// Plain object literals, not spreads: this is the hot path of every telemetry message.
function readFields(type: MessageType, o: Obj): Message {
  switch (type) {
    case 'hello':
      return readHello(o);
    case 'status':
      return {
        v: 1,
        type,
        state: oneOf(o, 'state', '', ['online', 'offline'] as const),
        boot: reqUint32(o, 'boot', ''),
        conn: reqUint32(o, 'conn', ''),
      };
    case 'telemetry':
      return {
        v: 1,
        type,
        boot: reqUint32(o, 'boot', ''),
        seq: reqUint32(o, 'seq', ''),
        ts: reqMs(o, 'ts', ''),
        values: readValues(o),
      };
    case 'heartbeat':
      return { v: 1, type, boot: reqUint32(o, 'boot', ''), uptimeMs: reqMs(o, 'uptimeMs', '') };
    case 'event': {
      const msg: Mutable<EventMessage> = {
        v: 1,
        type,
        boot: reqUint32(o, 'boot', ''),
        seq: reqUint32(o, 'seq', ''),
        ts: reqMs(o, 'ts', ''),
        name: reqName(o, 'name', ''),
      };
      if (own(o, 'severity') !== undefined) msg.severity = oneOf(o, 'severity', '', SEVERITIES);
      const data = optObject(o, 'data', '');
      if (data !== undefined) msg.data = data;
      return msg;
    }
    case 'cmd': {
      const msg: Mutable<CommandMessage> = {
        v: 1,
        type,
        cmdId: reqId(o, 'cmdId', ''),
        action: reqName(o, 'action', ''),
      };
      const args = optObject(o, 'args', '');
      if (args !== undefined) msg.args = args;
      if (own(o, 'expiresAt') !== undefined) msg.expiresAt = reqMs(o, 'expiresAt', '');
      return msg;
    }
    case 'reply': {
      const cmdId = reqId(o, 'cmdId', '');
      const ok = own(o, 'ok');
      if (ok === true) {
        const result = own(o, 'result');
        return result === undefined
          ? { v: 1, type, cmdId, ok }
          : { v: 1, type, cmdId, ok, result: cleanJson(result, 'result') };
      }
      if (ok === false) return { v: 1, type, cmdId, ok, error: reqWireError(o, 'error', '') };
      throw new BadField('ok', `ok must be true or false, got ${show(ok)}`);
    }
    case 'fw.begin': {
      const transferId = reqId(o, 'transferId', '');
      const version = own(o, 'version');
      checkVersion(version, 'version');
      const size = reqUint32(o, 'size', '');
      if (size === 0) throw new BadField('size', 'size must be at least 1 byte');
      const sha256 = own(o, 'sha256');
      if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) {
        throw new BadField('sha256', `sha256 must be 64 lowercase hex digits, got ${show(sha256)}`);
      }
      const chunkBytes = reqUint32(o, 'chunkBytes', '');
      if (chunkBytes === 0 || chunkBytes > LIMITS.chunkBytes) {
        throw new BadField('chunkBytes', `chunkBytes must be 1…${LIMITS.chunkBytes}, got ${chunkBytes}`);
      }
      return { v: 1, type, transferId, version, size, sha256, chunkBytes };
    }
    case 'fw.chunk': {
      const transferId = reqId(o, 'transferId', '');
      const offset = reqUint32(o, 'offset', '');
      const raw = own(o, 'data');
      const maxChars = Math.ceil(LIMITS.chunkBytes / 3) * 4;
      const data =
        typeof raw === 'string' && raw.length <= maxChars && BASE64.test(raw) ? fromBase64(raw) : undefined;
      if (data === undefined || data.length === 0 || data.length > LIMITS.chunkBytes) {
        throw new BadField('data', `data must be padded base64 of 1…${LIMITS.chunkBytes} bytes`);
      }
      return { v: 1, type, transferId, offset, data };
    }
    case 'fw.verify':
    case 'fw.apply':
    case 'fw.confirm':
    case 'fw.rollback':
      return { v: 1, type, transferId: reqId(o, 'transferId', '') };
    case 'fw.ack': {
      const msg: Mutable<FwAckMessage> = {
        v: 1,
        type,
        transferId: reqId(o, 'transferId', ''),
        step: oneOf(o, 'step', '', FW_STEPS),
        offset: reqUint32(o, 'offset', ''),
      };
      if (own(o, 'error') !== undefined) msg.error = reqWireError(o, 'error', '');
      return msg;
    }
  }
}

function isMessageType(s: string): s is MessageType {
  return Object.hasOwn(CHANNEL_OF, s);
}

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

/**
 * A fresh command id (`[A-Za-z0-9_-]`) for the host's own presence commands (`hello`, `ping`):
 * random, not a counter, because a device caches replies by `cmdId` and would answer a restarted
 * host's `hello-1` from its cache instead of saying hello.
 */
export function newCommandId(action: string): string {
  return `${action}-${randomBytes(9).toString('base64url')}`;
}

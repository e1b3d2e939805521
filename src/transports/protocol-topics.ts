/**
 * Device protocol v1, the MQTT topic map: channels, who publishes on each, and the topic of every
 * device's channel (`fleetvisor/v1/<deviceId>/<channel>`), built and parsed.
 *
 * Pure code, no I/O; protocol.ts is the public entry.
 *
 * @example
 * topicFor(id, 'telemetry');           // 'fleetvisor/v1/pump-7/telemetry'
 * parseTopic('fleetvisor/v1/+/reply'); // { ok: false, error: { code: 'wildcard', position: 14, … } }
 */

import type { DeviceId } from '../devices/device-id.js';
import { describeChar, parseDeviceId } from '../devices/device-id.js';
import type { Result } from '../lib/result.js';
import type { MessageType } from './protocol-types.js';
import { LIMITS, PROTOCOL_VERSION } from './protocol-types.js';

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

/** Whether a string is a v1 message type (the envelope's `type`). */
export function isMessageType(s: string): s is MessageType {
  return Object.hasOwn(CHANNEL_OF, s);
}

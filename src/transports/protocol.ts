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
 * The parts, one concern each: protocol-types.ts (version, limits, messages, errors),
 * protocol-topics.ts (channels and topics), protocol-codec.ts (decode/encode), with
 * protocol-validate.ts and protocol-fields.ts behind it, protocol-seq.ts (seq and command ids).
 * Import from this file, not from the parts.
 *
 * @example
 * const r = decodeMessage(payload, { maxBytes: 16 * 1024 });
 * if (!r.ok) return log.warn('bad payload', r.error); // { code: 'badField', field: 'seq', message: … }
 * if (r.value.type === 'telemetry') store(r.value.boot, r.value.seq, r.value.values);
 *
 * const id = parseDeviceId('pump-7');
 * if (id.ok) client.publish(topicFor(id.value, 'cmd'), encodeMessage(cmd), { qos: 1 });
 */

export type { DeviceId, DeviceIdError, DeviceIdErrorCode } from '../devices/device-id.js';
export { parseDeviceId } from '../devices/device-id.js';
export type { JsonObject, JsonValue } from '../lib/json.js';
export type { Result } from '../lib/result.js';
export type { DevicePublish, PublishError, PublishErrorCode } from './protocol-codec.js';
export { decodeMessage, decodePublish, encodeMessage } from './protocol-codec.js';
export { newCommandId, nextSeq, seqDelta } from './protocol-seq.js';
export type {
  Channel,
  ChannelSpec,
  DeviceTopic,
  Direction,
  TopicError,
  TopicErrorCode,
} from './protocol-topics.js';
export {
  CHANNELS,
  channelFor,
  directionOf,
  parseTopic,
  topicFilterFor,
  topicFor,
} from './protocol-topics.js';
export type {
  CommandMessage,
  DecodeError,
  DecodeErrorCode,
  DecodeOptions,
  EventMessage,
  FirmwareInfo,
  FwAckMessage,
  FwApplyMessage,
  FwBeginMessage,
  FwChunkMessage,
  FwConfirmMessage,
  FwRollbackMessage,
  FwStep,
  FwVerifyMessage,
  HeartbeatMessage,
  HelloMessage,
  Message,
  MessageType,
  ReplyMessage,
  Severity,
  Slot,
  StatusMessage,
  TelemetryMessage,
  WireError,
} from './protocol-types.js';
export {
  DEFAULT_MAX_PAYLOAD_BYTES,
  LIMITS,
  MAX_DEPTH,
  PROTOCOL_VERSION,
  ProtocolError,
} from './protocol-types.js';

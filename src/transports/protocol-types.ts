/**
 * Device protocol v1, the vocabulary: version and limits, the message types, and the codec's errors.
 *
 * Types and constants only (and {@link ProtocolError}); protocol.ts is the public entry.
 *
 * @example
 * const cmd: CommandMessage = { v: PROTOCOL_VERSION, type: 'cmd', cmdId: 'c-1', action: 'reboot' };
 * if (name.length > LIMITS.nameChars) throw new ProtocolError('badField', 'name too long', 'name');
 */

import type { DeviceId } from '../devices/device-id.js';
import { ID_MAX_CHARS } from '../devices/device-id.js';
import type { JsonObject, JsonValue } from '../lib/json.js';

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
// Errors

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
// Messages

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

export interface DecodeOptions {
  /** Largest payload accepted, in bytes; default {@link DEFAULT_MAX_PAYLOAD_BYTES}. */
  readonly maxBytes?: number;
}

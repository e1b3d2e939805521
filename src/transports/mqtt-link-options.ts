/**
 * The MQTT link's options (src/transports/mqtt-link.ts): what a host's link is given, and their
 * schema, checked once at the boundary by `startMqttLink` (a RangeError naming the field).
 *
 * @example
 * checkOptions('startMqttLink', mqttLinkOptionsSchema, { url: 'mqtt://127.0.0.1:1883', clientId: 'host', onMessage, onDeviceError });
 */
import { z } from 'zod';
import { callback, nonEmptyString, positiveInt } from '../lib/options.js';
import type { BrokerSettings } from './mqtt-connection.js';
import { MqttTopicHandlers } from './mqtt-topic-handlers.js';
import type { Channel, DeviceId, Message, PublishErrorCode } from './protocol.js';
import { DEFAULT_MAX_PAYLOAD_BYTES } from './protocol.js';
import type { ReconnectOptions } from './reconnect.js';
import { reconnectSchema } from './reconnect.js';

export type MqttLinkState = 'connecting' | 'connected' | 'backoff' | 'closed';

/** A publish a device sent that the host cannot use. `code` is that of `decodePublish` (protocol.ts). */
export interface LinkDeviceError {
  readonly code: PublishErrorCode;
  readonly message: string;
  /** The topic it came on, as received. */
  readonly topic: string;
  readonly field?: string;
}

export interface MqttLinkOptions extends BrokerSettings {
  readonly clientId: string;
  /** Process name; default `mqtt-link:<clientId>`. */
  readonly name?: string;
  /** Most messages kept while disconnected; the oldest is dropped past it. Default 1000. */
  readonly maxOutbox?: number;
  /** Most unacknowledged publishes on the wire at once (mqtt.js slows down with thousands). Default 100. */
  readonly maxInflight?: number;
  /** Largest payload decoded; default {@link DEFAULT_MAX_PAYLOAD_BYTES}. */
  readonly maxPayloadBytes?: number;
  /** Time allowed for TCP connect + CONNACK; default 10 000. */
  readonly connectTimeoutMs?: number;
  /** MQTT keepalive; default 30 000 (sent to the broker in whole seconds). */
  readonly keepaliveMs?: number;
  /** How long a graceful stop waits for in-flight acks before closing the socket; default 2000. */
  readonly closeTimeoutMs?: number;
  readonly reconnect?: Partial<ReconnectOptions>;
  /** Source of jitter, [0, 1); default Math.random. */
  readonly random?: () => number;
  /** Other handlers on this connection (Homie): their filters subscribed, their publishes routed. */
  readonly handlers?: MqttTopicHandlers;
  /**
   * Backpressure: at this many delivered messages whose store write (the promise `onMessage`
   * returned) has not settled, the link stops reading from the broker socket — TCP pushes back
   * to the broker — and reads again once half of them settled. Default 50 000: big enough that
   * store batches grow with the load (a pause lets a broker's per-client queue overflow: Mosquitto
   * drops past `max_queued_messages`), small enough that 50 000 messages of a few metrics stay
   * within the SQLite store's default write buffer (200 000 points).
   */
  readonly maxPendingIngest?: number;
  /**
   * Hold each QoS 1 PUBACK until the message's store write settles (not only while paused).
   * Default false: with a clean session an unacknowledged message dies with the connection
   * anyway, and a broker that caps in-flight messages per client (Mosquitto: 20) then passes
   * only that many per store commit.
   */
  readonly ackAfterCommit?: boolean;
  /**
   * A valid message from a device. Runs synchronously on the link; a throw is reported, not
   * fatal. May return the message's store write: the link counts it toward `maxPendingIngest`,
   * and a write that answers `{ ok: false, error: { code } }` (or rejects) is counted as lost.
   */
  onMessage(deviceId: DeviceId, message: Message, channel: Channel): unknown;
  /** A publish that could not be used; `deviceId` is set when the topic itself was valid. */
  onDeviceError(deviceId: DeviceId | undefined, error: LinkDeviceError): void;
  /** Every change of the connection state (`connected` means subscribed and receiving). */
  onStateChange?(
    state: MqttLinkState,
    detail: { readonly error?: string; readonly retryInMs?: number },
  ): void;
}

const BROKER_PROTOCOLS = ['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:'];

function isBrokerUrl(url: string): boolean {
  try {
    return BROKER_PROTOCOLS.includes(new URL(url).protocol);
  } catch {
    return false;
  }
}

/** What {@link startMqttLink} accepts; the link fills the defaults itself. */
export const mqttLinkOptionsSchema = z.object({
  url: z
    .string({ error: 'must be a broker URL' })
    .refine(isBrokerUrl, { error: 'must be an mqtt://, mqtts://, ws:// or wss:// URL' }),
  clientId: nonEmptyString,
  maxOutbox: positiveInt.optional(),
  maxInflight: positiveInt.optional(),
  maxPayloadBytes: positiveInt.optional(),
  connectTimeoutMs: positiveInt.optional(),
  keepaliveMs: positiveInt.optional(),
  closeTimeoutMs: positiveInt.optional(),
  maxPendingIngest: positiveInt.optional(),
  ackAfterCommit: z.boolean({ error: 'must be true or false' }).optional(),
  handlers: z.instanceof(MqttTopicHandlers, { error: 'must be an MqttTopicHandlers' }).optional(),
  reconnect: reconnectSchema.optional(),
  onMessage: callback,
  onDeviceError: callback,
  onStateChange: callback.optional(),
});

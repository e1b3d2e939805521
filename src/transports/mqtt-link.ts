/**
 * The host's MQTT link: one broker connection as a supervised process, with its own jittered
 * reconnect backoff, a bounded outbox while disconnected, and every received publish decoded.
 *
 * Connection states are explicit: `connecting` → `connected` → (drop) → `backoff` → `connecting`
 * …, and `closed` once the process stops; the connection itself (fresh client per attempt,
 * SUBACK check, backoff) is the {@link MqttConnection} every host-side MQTT client shares. The
 * link adds the protocol: decoding, the outbox, backpressure and the keepalive decision.
 *
 * It is the host's one broker connection for every convention that needs no session of its own
 * (issue 11 §2): with `handlers`, the Homie bridge's filters are subscribed with the link's and
 * its publishes routed to it (src/transports/mqtt-topic-handlers.ts). Those wait behind the
 * backpressure below too: a paused socket delays Homie messages as it delays our protocol's.
 *
 * Backpressure (issue 12 §0): `onMessage` may return the message's store write. At
 * `maxPendingIngest` unsettled writes the link stops reading the broker socket (mqtt.js reads the
 * next packet only when its `handleMessage` calls back), so a flood waits in TCP and at the broker
 * instead of being dropped inside the host; a write that still fails is counted in
 * `stats().lost` by cause. With `ackAfterCommit`, a QoS 1 PUBACK waits for its write.
 *
 * Keepalive (issue 16/12): the PINGRESP comes in the same socket, behind the publishes the link
 * has not read yet, so mqtt.js's own check (no PINGRESP 1.5 keepalives after its last reschedule
 * → "Keepalive timeout", connection dropped) misread a backpressure pause, or a backlog being
 * read, as a dead broker. The link decides instead: see `MqttIngest.onKeepaliveTimeout` (mqtt-ingest.ts).
 *
 * @example
 * const link = startMqttLink(rt, {
 *   url: 'mqtt://127.0.0.1:1883',
 *   clientId: 'fleetvisor-host',
 *   onMessage: (deviceId, message) => fleet.deliver(deviceId, message),
 *   onDeviceError: (deviceId, error) => rt.logger.warn(error.message, { deviceId, code: error.code }),
 * });
 * const r = link.publish('pump-7', { v: 1, type: 'cmd', cmdId: 'c1', action: 'reboot' });
 * if (!r.ok) rt.logger.warn(r.error.message); // code: 'badDeviceId' | 'wrongDirection' | 'badMessage' | 'closed'
 * link.stats(); // { connected: true, state: 'connected', reconnects: 0, outboxLength: 0, … }
 */
import type { MqttClient } from 'mqtt';
import { checkOptions } from '../lib/options.js';
import type { ExitReason } from '../runtime/exit-reason.js';
import { ProcessBase } from '../runtime/process.js';
import type { Runtime } from '../runtime/runtime.js';
import { MqttConnection } from './mqtt-connection.js';
import { MqttIngest } from './mqtt-ingest.js';
import type { LinkDeviceError, MqttLinkOptions, MqttLinkState } from './mqtt-link-options.js';
import { mqttLinkOptionsSchema } from './mqtt-link-options.js';
import type { MqttTopicHandlers, TopicHandlersLink } from './mqtt-topic-handlers.js';
import type { Channel, Message, Result } from './protocol.js';
import {
  CHANNELS,
  channelFor,
  DEFAULT_MAX_PAYLOAD_BYTES,
  decodePublish,
  encodeMessage,
  ProtocolError,
  parseDeviceId,
  parseTopic,
  topicFilterFor,
  topicFor,
} from './protocol.js';
import type { ReconnectOptions } from './reconnect.js';
import { ReconnectSchedule, resolveReconnect } from './reconnect.js';
import { encodeFwChunkPayload } from './serial-fw-frame.js';

/**
 * Why {@link MqttLink.publish} refused a message:
 * - `badDeviceId`: not a valid device id (it would make an invalid or wildcard topic);
 * - `wrongDirection`: a device → host message type (the host only sends `cmd` and `fw.*`);
 * - `badMessage`: the message does not encode to valid protocol v1;
 * - `closed`: the link is stopping or has exited.
 */
export type LinkPublishErrorCode = 'badDeviceId' | 'wrongDirection' | 'badMessage' | 'closed';

export interface LinkPublishError {
  readonly code: LinkPublishErrorCode;
  readonly message: string;
}

export interface MqttLinkStats {
  readonly connected: boolean;
  readonly state: MqttLinkState;
  /** Connection attempts after the first one. */
  readonly reconnects: number;
  /** Messages waiting to be sent (not yet handed to the broker connection). */
  readonly outboxLength: number;
  /** Messages sent on the current connection and not yet acknowledged. */
  readonly inflight: number;
  /** Messages dropped, oldest first, because the outbox was full. */
  readonly dropped: number;
  /** Valid publishes delivered to `onMessage`. */
  readonly received: number;
  /** Publishes refused (bad topic or payload) and reported to `onDeviceError`. */
  readonly malformed: number;
  /** Delivered messages whose store write has not settled yet (see `maxPendingIngest`). */
  readonly pendingIngest: number;
  /** Whether reading from the broker is paused until the store catches up. */
  readonly paused: boolean;
  /** Times reading was paused. */
  readonly pauses: number;
  /**
   * Keepalive timeouts of mqtt.js not acted on: the link was paused for backpressure, or had read
   * publishes since its PINGREQ (the PINGRESP waits behind them). A PINGREQ went out at each.
   */
  readonly keepalivesExcused: number;
  /** QoS 1 PUBACKs held until their store write settles (`ackAfterCommit`). */
  readonly heldAcks: number;
  /**
   * Messages received but lost on the way to the store, by cause: the code the store write
   * answered with (`stopped` for a full write buffer or a closed store, …) or `error` (it threw).
   */
  readonly lost: Readonly<Record<string, number>>;
}

export type { BrokerSettings } from './mqtt-connection.js';
export { hostClientOptions } from './mqtt-connection.js';
export type { LinkDeviceError, MqttLinkOptions, MqttLinkState } from './mqtt-link-options.js';
export { mqttLinkOptionsSchema } from './mqtt-link-options.js';

interface Outgoing {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1;
}

const HOST_BOUND_CHANNELS: readonly Channel[] = (Object.keys(CHANNELS) as Channel[]).filter(
  (c) => CHANNELS[c].direction === 'toHost',
);

const MAX_TOPIC_SHOWN = 140;
/** Our protocol's topics; any other publish is a handler's. */
const NATIVE_PREFIX = topicFilterFor('hello').slice(0, topicFilterFor('hello').indexOf('+'));

/** The link process. Made by {@link startMqttLink}. */
export class MqttLink extends ProcessBase {
  private readonly options: MqttLinkOptions;
  private readonly reconnectOptions: ReconnectOptions;
  private readonly reconnect: ReconnectSchedule;
  private readonly maxOutbox: number;
  private readonly maxInflight: number;
  private readonly maxPayloadBytes: number;
  private readonly connection: MqttConnection;
  private outbox: Outgoing[] = [];
  // Insertion-ordered, so a drop puts unacknowledged messages back in the order they were sent.
  private readonly inflight = new Set<Outgoing>();
  private counters = {
    dropped: 0,
    received: 0,
    malformed: 0,
  };
  /** Backpressure, held PUBACKs, lost writes and the keepalive decision (mqtt-ingest.ts). */
  private readonly ingest: MqttIngest;
  private droppingSinceConnect = false;
  private readonly handlers: MqttTopicHandlers | undefined;
  private readonly binding: TopicHandlersLink;

  constructor(runtime: Runtime, options: MqttLinkOptions) {
    super(runtime, 'server', options.name ?? `mqtt-link:${options.clientId}`);
    this.options = options;
    this.reconnectOptions = resolveReconnect(options.reconnect);
    this.reconnect = new ReconnectSchedule(
      this.runtime,
      this.pid,
      this.reconnectOptions,
      options.random,
      'mqtt',
    );
    this.maxOutbox = options.maxOutbox ?? 1000;
    this.maxInflight = options.maxInflight ?? 100;
    this.maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    this.ingest = new MqttIngest({
      runtime: this.runtime,
      pid: this.pid,
      name: this.name,
      maxPendingIngest: options.maxPendingIngest ?? 50_000,
      ackAfterCommit: options.ackAfterCommit ?? false,
      client: () => this.connection.client,
      isRunning: () => this.status === 'running',
    });
    const filters: Record<string, { qos: 0 | 1 }> = {};
    for (const channel of HOST_BOUND_CHANNELS)
      filters[topicFilterFor(channel)] = { qos: CHANNELS[channel].qos };
    const handlers = options.handlers;
    this.handlers = handlers;
    this.connection = new MqttConnection({
      runtime: this.runtime,
      owner: this.pid,
      label: `MQTT link ${this.name}`,
      fields: { link: this.name },
      words: {
        connected: 'MQTT link connected',
        reconnected: 'MQTT link reconnected',
        lost: 'MQTT link lost its connection',
        couldNotConnect: 'MQTT link could not connect',
        subscribeFailed: 'MQTT subscribe failed',
        clientError: 'MQTT client error',
      },
      broker: options,
      clientId: options.clientId,
      connectTimeoutMs: options.connectTimeoutMs,
      keepaliveMs: options.keepaliveMs,
      reconnect: this.reconnect,
      isRunning: () => this.status === 'running',
      hooks: {
        subscriptions: () => (handlers ? { ...filters, ...handlers.filters() } : filters),
        prepare: (client, isCurrent) => this.ingest.prepare(client, isCurrent),
        onMessage: (topic, payload, packet) => {
          // A handler's publish goes through the same ingest step (and pause) as ours.
          if (handlers && !topic.startsWith(NATIVE_PREFIX)) {
            this.ingest.startPublish();
            handlers.route(topic, payload, packet);
          } else this.onPublish(topic, payload);
        },
        onReady: (client) => {
          this.droppingSinceConnect = false;
          this.notify('connected', {});
          this.pump();
          handlers?.ready(client);
        },
        onDropped: () => {
          this.onDropped();
          handlers?.dropped();
        },
        dropFields: () => ({ outboxLength: this.outbox.length }),
        onBackoff: (error, retryInMs) => this.notify('backoff', { error, retryInMs }),
      },
    });
    this.binding = { connection: this.connection, runtime: this.runtime, owner: this.pid };
  }

  /** Starts the first connection attempt; called once by {@link startMqttLink}. */
  begin(): void {
    this.started();
    this.handlers?.bind(this.binding);
    this.connection.open();
  }

  /**
   * Sends a host → device message (`cmd`, `fw.*`) to `fleetvisor/v1/<deviceId>/<channel>` with
   * the channel's QoS, never retained. While disconnected it waits in the outbox.
   *
   * @example
   * link.publish('pump-7', { v: 1, type: 'cmd', cmdId: 'c1', action: 'reboot' }); // { ok: true, value: undefined }
   * link.publish('+', cmd); // { ok: false, error: { code: 'badDeviceId', message: … } }
   * link.publish('pump-7', chunk, { binaryChunk: true }); // the binary payload of docs/protocol.md §7.1
   */
  publish(
    deviceId: string,
    message: Message,
    options: { readonly binaryChunk?: boolean } = {},
  ): Result<void, LinkPublishError> {
    if (this.status !== 'running') {
      return fail('closed', `link ${this.name} is ${this.status}; message to '${String(deviceId)}' not sent`);
    }
    const id = parseDeviceId(deviceId);
    if (!id.ok)
      return fail('badDeviceId', `cannot publish to device id ${show(deviceId)}: ${id.error.message}`);
    const channel = channelFor(message.type);
    const spec = CHANNELS[channel];
    if (spec.direction !== 'toDevice') {
      return fail('wrongDirection', `'${message.type}' is a device → host message; the host cannot send it`);
    }
    let bytes: Uint8Array;
    try {
      // A device that lists `fw.binary` takes its chunks as the binary payload (no base64, no JSON).
      bytes =
        message.type === 'fw.chunk' && options.binaryChunk === true
          ? encodeFwChunkPayload(message, { maxBytes: this.maxPayloadBytes })
          : encodeMessage(message, { maxBytes: this.maxPayloadBytes });
    } catch (error) {
      if (error instanceof ProtocolError) return fail('badMessage', error.message);
      throw error;
    }
    this.outbox.push({
      topic: topicFor(id.value, channel),
      payload: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      qos: spec.qos,
    });
    this.trimOutbox();
    this.pump();
    return { ok: true, value: undefined };
  }

  /**
   * Counters and the connection state, for health checks and the UI.
   *
   * @example
   * const { connected, outboxLength, dropped } = link.stats();
   */
  stats(): MqttLinkStats {
    return {
      connected: this.state === 'connected',
      state: this.state,
      reconnects: this.connection.reconnects,
      outboxLength: this.outbox.length,
      inflight: this.inflight.size,
      dropped: this.counters.dropped,
      received: this.counters.received,
      malformed: this.counters.malformed,
      ...this.ingest.stats(),
    };
  }

  protected async terminate(_reason: ExitReason): Promise<void> {
    const unsent = this.outbox.length + this.inflight.size;
    if (unsent > 0)
      this.runtime.logger.warn('MQTT link stopping with unsent messages', { link: this.name, unsent });
    this.handlers?.unbind(this.binding);
    await this.connection.end(this.options.closeTimeoutMs ?? 2000);
  }

  protected override release(): void {
    this.handlers?.unbind(this.binding);
    this.connection.kill();
  }

  /** The connection's client, or undefined while in backoff or closed. */
  private get client(): MqttClient | undefined {
    return this.connection.client;
  }

  private get state(): MqttLinkState {
    return this.connection.state;
  }

  private onDropped(): void {
    this.ingest.dropped();
    // Unacknowledged messages go back first, in order: QoS 1 is at-least-once, so a duplicate
    // is allowed and a loss is not.
    if (this.inflight.size > 0) {
      this.outbox.unshift(...this.inflight);
      this.inflight.clear();
      this.trimOutbox();
    }
  }

  private notify(state: MqttLinkState, detail: { error?: string; retryInMs?: number }): void {
    try {
      this.options.onStateChange?.(state, detail);
    } catch (error) {
      this.runtime.report(`MQTT link ${this.name}: onStateChange threw`, error, this.pid);
    }
  }

  private onPublish(topic: string, payload: Buffer): void {
    this.ingest.startPublish();
    const r = decodePublish(topic, payload, { maxBytes: this.maxPayloadBytes });
    if (r.ok) {
      this.counters.received++;
      try {
        const write = this.options.onMessage(r.value.deviceId, r.value.message, r.value.channel);
        this.ingest.delivered(write);
      } catch (error) {
        this.runtime.report(`MQTT link ${this.name}: onMessage threw`, error, this.pid);
      }
      return;
    }
    const t = parseTopic(topic);
    // An empty retained publish on hello/status is an operator clearing a retained message.
    if (r.error.code === 'empty' && t.ok && CHANNELS[t.value.channel].retain) {
      this.runtime.logger.debug('retained message cleared', { link: this.name, topic });
      return;
    }
    this.counters.malformed++;
    const base = {
      code: r.error.code,
      message: `refused publish on ${show(topic)}: ${r.error.message}`,
      topic,
    };
    const error: LinkDeviceError = r.error.field === undefined ? base : { ...base, field: r.error.field };
    try {
      this.options.onDeviceError(t.ok ? t.value.deviceId : undefined, error);
    } catch (thrown) {
      this.runtime.report(`MQTT link ${this.name}: onDeviceError threw`, thrown, this.pid);
    }
  }

  /** Hands queued messages to the connection, at most `maxInflight` unacknowledged at once. */
  private pump(): void {
    const client = this.client;
    if (!client || this.state !== 'connected') return;
    while (this.inflight.size < this.maxInflight && this.outbox.length > 0) {
      const item = this.outbox.shift()!;
      this.inflight.add(item);
      client.publish(item.topic, item.payload, { qos: item.qos, retain: false }, (error) => {
        if (client !== this.client || !this.inflight.delete(item)) return;
        if (error) {
          // Back to the head of the queue; a drop (if that is what this was) resends it.
          this.outbox.unshift(item);
          this.runtime.logger.warn('MQTT publish failed', {
            link: this.name,
            topic: item.topic,
            error: error.message,
          });
          return;
        }
        this.pump();
      });
    }
  }

  private trimOutbox(): void {
    const excess = this.outbox.length - this.maxOutbox;
    if (excess <= 0) return;
    this.outbox.splice(0, excess);
    this.counters.dropped += excess;
    if (!this.droppingSinceConnect) {
      this.droppingSinceConnect = true;
      this.runtime.logger.warn('MQTT link outbox full: dropping the oldest messages', {
        link: this.name,
        maxOutbox: this.maxOutbox,
        dropped: this.counters.dropped,
      });
    }
  }
}

/**
 * Starts an MQTT link process (kind `server`) that connects at once and keeps reconnecting with
 * backoff until stopped. Throws `RangeError` for bad options, naming the field.
 *
 * @example
 * const link = startMqttLink(rt, { url: broker.url, clientId: 'host', onMessage, onDeviceError });
 * await link.stop(); // ends the client cleanly
 */
export function startMqttLink(runtime: Runtime, options: MqttLinkOptions): MqttLink {
  checkOptions('startMqttLink', mqttLinkOptionsSchema, options);
  const link = new MqttLink(runtime, options);
  link.begin();
  return link;
}

function fail(code: LinkPublishErrorCode, message: string): { ok: false; error: LinkPublishError } {
  return { ok: false, error: { code, message } };
}

/** A received string made safe to log: quoted, control characters escaped, length capped. */
function show(s: unknown): string {
  const text = String(s);
  return JSON.stringify(text.length > MAX_TOPIC_SHOWN ? `${text.slice(0, MAX_TOPIC_SHOWN)}…` : text);
}

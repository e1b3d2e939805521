/**
 * One host-side broker connection, the piece every MQTT client of the host shares (the MQTT
 * link, the Homie bridge, the Sparkplug Primary Host): a fresh mqtt.js client per attempt with
 * mqtt.js's own reconnect off, events of an abandoned client ignored, the subscriptions made
 * after each CONNACK with the SUBACK checked (a refused filter is reported), "connected" only
 * once the SUBACK is in, a drop logged and retried on the owner's {@link ReconnectSchedule}, and
 * a graceful end that cannot hang on a dead socket. The owning process keeps what is its own —
 * what a message means, what a drop does to its devices, a will — through the hooks.
 *
 * @example
 * const connection = new MqttConnection({
 *   runtime, owner: this.pid, label: 'Homie bridge', fields: { bridge: this.name },
 *   broker, clientId: 'fleetvisor-homie', reconnect: this.reconnect, isRunning: () => this.status === 'running',
 *   hooks: {
 *     subscriptions: () => ({ 'homie/+/#': { qos: 1 } }),
 *     onMessage: (topic, payload, packet) => this.onPublish(topic, payload, packet.retain),
 *     onReady: () => {},
 *     onDropped: () => this.markDevicesDown(),
 *   },
 * });
 * connection.open();
 * connection.state; // 'connecting' → 'connected' → (drop) 'backoff' → …
 * await connection.end(2000);
 */
import type { IClientOptions, IPublishPacket, MqttClient } from 'mqtt';
import { connect } from 'mqtt';
import type { Pid } from '../runtime/process.js';
import type { Runtime } from '../runtime/runtime.js';
import type { ReconnectSchedule } from './reconnect.js';

/** Where and how a host-side MQTT client reaches its broker (the link, the convention bridges). */
export interface BrokerSettings {
  /** Broker URL: `mqtt://host:port`, `mqtts://…`, `ws://…`, `wss://…`. */
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  /** TLS for `mqtts://` and `wss://`: CA certificate(s) (PEM) to trust instead of the system's. */
  readonly ca?: string | Buffer;
  /** TLS client certificate and key (PEM), for brokers that authenticate clients by certificate. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** Default true. Turning it off accepts any server certificate: for a lab broker only. */
  readonly rejectUnauthorized?: boolean;
}

/**
 * mqtt.js options for a host-side client: MQTT 3.1.1 (aedes speaks only that), a clean session,
 * and mqtt.js's own reconnect off — each caller runs its own jittered backoff on fresh clients.
 */
export function hostClientOptions(
  broker: BrokerSettings,
  o: { readonly clientId: string; readonly connectTimeoutMs?: number; readonly keepaliveMs?: number },
): IClientOptions {
  const options: IClientOptions = {
    clientId: o.clientId,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    resubscribe: false,
    connectTimeout: o.connectTimeoutMs ?? 10_000,
    keepalive: Math.max(1, Math.ceil((o.keepaliveMs ?? 30_000) / 1000)),
    // mqtt.js logs every packet through the `debug` package unless given a logger: with logging
    // off that is still a call and an `enabled` lookup per packet (2 % of the ingest path's CPU).
    log: noLog,
  };
  if (broker.username !== undefined) options.username = broker.username;
  if (broker.password !== undefined) options.password = broker.password;
  if (broker.ca !== undefined) options.ca = broker.ca;
  if (broker.cert !== undefined) options.cert = broker.cert;
  if (broker.key !== undefined) options.key = broker.key;
  if (broker.rejectUnauthorized !== undefined) options.rejectUnauthorized = broker.rejectUnauthorized;
  return options;
}

export type MqttConnectionState = 'connecting' | 'connected' | 'backoff' | 'closed';

/** What the owning process does at each point of the connection's life. */
export interface MqttConnectionHooks {
  /** The filters subscribed after each CONNACK (a clean session forgets them). */
  subscriptions(): Record<string, { qos: 0 | 1 }>;
  /** Options added to each new client's (a will that carries this connection's timestamp). */
  clientOptions?(): Partial<IClientOptions>;
  /** A new client was made: install per-client hooks (mqtt.js's handleMessage, keepalive). */
  prepare?(client: MqttClient, isCurrent: () => boolean): void;
  /** A publish on the current client; a throw is reported, not fatal. */
  onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void;
  /** The SUBACK is in: the connection receives. `state` is already `connected`. */
  onReady(client: MqttClient): void;
  /**
   * The current client closed (not by us). Runs before the drop is logged and the retry
   * scheduled, so what it changes (an outbox refilled) shows in the log line.
   */
  onDropped(wasConnected: boolean): void;
  /** After the drop was logged: the retry comes in `retryInMs`. */
  onBackoff?(error: string, retryInMs: number): void;
  /** Fields added to the drop's log line (the outbox's length). */
  dropFields?(): Record<string, unknown>;
}

/** The words of the connection's INFO and WARN lines, so each owner's log reads as before. */
export interface MqttConnectionWords {
  readonly connected: string;
  readonly reconnected: string;
  readonly lost: string;
  readonly couldNotConnect: string;
  readonly subscribeFailed: string;
  readonly clientError: string;
}

export interface MqttConnectionOptions {
  readonly runtime: Runtime;
  /** The owning process: its timers, and the pid a report names. */
  readonly owner: Pid;
  /** What the owner calls itself in a report ("Homie bridge homie"). */
  readonly label: string;
  /** Fields every log line carries (`{ link: name }`, `{ bridge: name }`). */
  readonly fields: Readonly<Record<string, unknown>>;
  readonly words: MqttConnectionWords;
  readonly broker: BrokerSettings;
  readonly clientId: string;
  readonly connectTimeoutMs?: number;
  readonly keepaliveMs?: number;
  readonly reconnect: ReconnectSchedule;
  /** Whether the owner still runs: a stopped owner ignores its client's late events. */
  isRunning(): boolean;
  readonly hooks: MqttConnectionHooks;
}

/** Made and owned by a process; see the module's example. */
export class MqttConnection {
  private readonly o: MqttConnectionOptions;
  private current: MqttClient | undefined;
  private connectionState: MqttConnectionState = 'connecting';
  private everConnected = false;
  private error: Error | undefined;
  private attempts = 0;

  constructor(options: MqttConnectionOptions) {
    this.o = options;
  }

  /** The client of the current attempt (connected or not); undefined in backoff and once closed. */
  get client(): MqttClient | undefined {
    return this.current;
  }

  get state(): MqttConnectionState {
    return this.connectionState;
  }

  /** The last error of the current or the failed attempt; cleared when a connection is ready. */
  get lastError(): Error | undefined {
    return this.error;
  }

  /** Connection attempts after the first. */
  get reconnects(): number {
    return this.attempts;
  }

  /**
   * Starts an attempt with a fresh client. Throws when mqtt.js refuses the URL itself (a
   * malformed URL: retrying cannot help, and the supervisor should see it).
   */
  open(): void {
    const { o } = this;
    this.connectionState = 'connecting';
    const clientOptions: IClientOptions = {
      ...hostClientOptions(o.broker, o),
      ...o.hooks.clientOptions?.(),
    };
    let client: MqttClient;
    try {
      client = connect(o.broker.url, clientOptions);
    } catch (error) {
      throw new Error(
        `${o.label}: cannot connect to ${JSON.stringify(o.broker.url)}: ${(error as Error).message}`,
      );
    }
    this.current = client;
    const isCurrent = () => client === this.current && o.isRunning();
    o.hooks.prepare?.(client, isCurrent);
    client.on('connect', () => {
      noDelay(client);
      if (isCurrent()) this.subscribe();
    });
    client.on('message', (topic, payload, packet) => {
      if (!isCurrent()) return;
      try {
        o.hooks.onMessage(topic, payload, packet);
      } catch (error) {
        o.runtime.report(`${o.label}: handling ${JSON.stringify(topic.slice(0, 140))} threw`, error, o.owner);
      }
    });
    client.on('error', (error) => {
      if (!isCurrent()) return;
      this.error = error;
      o.runtime.logger.debug(o.words.clientError, { ...o.fields, error: error.message });
    });
    client.on('close', () => {
      if (isCurrent()) this.dropped(client);
    });
  }

  /**
   * Subscribes on the current client (again: a subscription replays the retained messages);
   * the connection counts as `connected` once the first SUBACK is in.
   */
  subscribe(): void {
    const client = this.current;
    if (!client) return;
    const { o } = this;
    const filters = o.hooks.subscriptions();
    client.subscribe(filters, (error, _granted, suback) => {
      if (client !== this.current || !o.isRunning()) return;
      const outcome = subackOutcome(filters, error, suback);
      if (outcome.failed) {
        // The connection is going down (a 'close' follows) or the broker refused the packet.
        this.error = outcome.failed;
        o.runtime.logger.warn(o.words.subscribeFailed, { ...o.fields, error: outcome.failed.message });
        return;
      }
      if (outcome.refused.length > 0)
        o.runtime.report(`${o.label}: broker refused subscriptions ${outcome.refused.join(', ')}`);
      if (this.connectionState !== 'connected') this.ready(client);
    });
  }

  /**
   * Ends the connection gracefully: `before` may publish a goodbye and must call its `done`; the
   * DISCONNECT waits for in-flight acks, and is forced after `timeoutMs` (a dead socket would
   * make it wait forever).
   */
  async end(timeoutMs: number, before?: (client: MqttClient, done: () => void) => void): Promise<void> {
    this.connectionState = 'closed';
    this.o.reconnect.cancel();
    const client = this.current;
    this.current = undefined;
    if (!client) return;
    const { runtime, owner } = this.o;
    await new Promise<void>((resolve) => {
      const force = runtime.timers.schedule(timeoutMs, () => client.end(true, {}, () => resolve()), {
        owner,
        label: 'mqtt.close',
      });
      const end = () =>
        client.end(false, {}, () => {
          runtime.timers.cancel(force);
          resolve();
        });
      if (before) before(client, end);
      else end();
    });
  }

  /** Closes at once (the owner was killed): no goodbye, no waiting. */
  kill(): void {
    this.connectionState = 'closed';
    this.o.reconnect.cancel();
    const client = this.current;
    this.current = undefined;
    client?.end(true);
  }

  private ready(client: MqttClient): void {
    const { o } = this;
    this.connectionState = 'connected';
    this.error = undefined;
    o.runtime.logger.info(this.everConnected ? o.words.reconnected : o.words.connected, {
      ...o.fields,
      url: o.broker.url,
      reconnects: this.attempts,
    });
    this.everConnected = true;
    o.reconnect.connected();
    o.hooks.onReady(client);
  }

  private dropped(client: MqttClient): void {
    const { o } = this;
    const wasConnected = this.connectionState === 'connected';
    this.current = undefined;
    client.end(true);
    o.reconnect.cancel();
    o.hooks.onDropped(wasConnected);
    const delayMs = o.reconnect.nextDelay();
    this.connectionState = 'backoff';
    o.runtime.logger.warn(wasConnected ? o.words.lost : o.words.couldNotConnect, {
      ...o.fields,
      url: o.broker.url,
      error: this.error?.message,
      retryInMs: delayMs,
      ...o.hooks.dropFields?.(),
    });
    o.hooks.onBackoff?.(this.error?.message ?? 'connection closed', delayMs);
    o.reconnect.retryIn(delayMs, () => {
      if (!o.isRunning()) return;
      this.attempts++;
      this.open();
    });
  }
}

/**
 * What a SUBACK says: `failed` when the SUBSCRIBE itself failed (the connection is going down, or
 * the broker refused the packet), else the filters the broker `refused` (return code 0x80).
 * mqtt.js 5 answers a SUBACK that refuses any filter with an error too, the packet attached: that
 * is a refusal to report, not a failed subscribe (which left a connection 'connecting' for ever,
 * receiving what the broker did allow).
 */
export function subackOutcome(
  filters: Record<string, unknown>,
  error: Error | null | undefined,
  suback: { readonly granted?: readonly unknown[] } | undefined,
): { readonly failed?: Error; readonly refused: readonly string[] } {
  const codes = suback?.granted;
  if (error && !Array.isArray(codes)) return { failed: error, refused: [] };
  return { refused: Object.keys(filters).filter((_, i) => (Number(codes?.[i] ?? 0) & 0x80) !== 0) };
}

function noLog(): void {}

/**
 * Turns Nagle's algorithm off on a client's socket (TCP or TLS; a WebSocket stream has no such
 * switch and is left alone). mqtt.js leaves it on, and a small publish (an ack, a command) then
 * waits for the peer's delayed ACK, up to 40 ms, whenever earlier bytes are unacknowledged:
 * the firmware bench's transfers ran 20 % faster without it.
 *
 * @example
 * client.on('connect', () => noDelay(client));
 */
export function noDelay(client: MqttClient): void {
  (client.stream as { setNoDelay?: (on: boolean) => unknown } | undefined)?.setNoDelay?.(true);
}

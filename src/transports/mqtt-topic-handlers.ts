/**
 * The host's one broker connection, shared by topic filter (issue 11 §2, "one bridge kit"): the
 * MQTT link's connection carries our protocol and, as handlers, the conventions that need no
 * session of their own (Homie). A handler names its filters; the link subscribes them with its own
 * after each CONNACK (and at once when a handler joins a link that is connected), hands each
 * publish on a handler's filter to that handler, and tells every handler when the connection drops
 * or the link process stops, so it marks its devices down as it would on a connection of its own.
 * A handler publishes (Homie's `…/set`) through the same client.
 *
 * What sharing means for a handler:
 * - Backpressure: the link stops reading the socket while the store is behind (mqtt-ingest.ts),
 *   so a handler's messages wait in TCP and at the broker too, in order with the link's.
 * - Its own connection options (client id, keepalive, connect timeout, reconnect backoff) do not
 *   apply: the link's do. Its `reconnects` counts the times it was subscribed again after a drop.
 * - A convention that needs a session of its own keeps one (Sparkplug: its Primary Host STATE is
 *   the will of its own connection), and so does a handler configured for another broker, URL or
 *   account than the link's ({@link MqttTopicHandlers.carries}): it uses an {@link MqttConnection}
 *   of its own, the same {@link BrokerSession} shape.
 *
 * One table per links layer, across the link's restarts: each new link process binds to it, and a
 * link that stops unbinds (its handlers see a drop). A handler's filters must not overlap our
 * protocol's (`fleetvisor/v1/…`): those publishes go to the link.
 *
 * @example
 * const handlers = new MqttTopicHandlers(broker);          // made by createLinks, given to the link
 * if (handlers.carries(context.broker)) {
 *   const session = handlers.share({ label: 'Homie bridge', hooks: {
 *     subscriptions: () => ({ 'homie/+/#': { qos: 1 } }),
 *     onMessage: (topic, payload, packet) => model.receive(topic, payload, packet.retain),
 *     onReady: () => {},
 *     onDropped: () => model.brokerLost(),
 *   } });
 *   session.open();                   // subscribed now, or with the link's next CONNACK
 *   session.client?.publish('homie/boiler/heater/target/set', '21', { qos: 1 });
 *   await session.end(2000);          // unsubscribed; the link's connection stays
 * }
 */
import type { IPublishPacket, MqttClient } from 'mqtt';
import type { Pid } from '../runtime/process.js';
import type { Runtime } from '../runtime/runtime.js';
import type {
  BrokerSettings,
  MqttConnection,
  MqttConnectionHooks,
  MqttConnectionState,
} from './mqtt-connection.js';
import { subackOutcome } from './mqtt-connection.js';

/** What a handler does at each point of the shared connection's life (a throw is reported). */
export type TopicHandlerHooks = Pick<
  MqttConnectionHooks,
  'subscriptions' | 'onMessage' | 'onReady' | 'onDropped'
>;

/**
 * What a process holds of a broker connection: an {@link MqttConnection} of its own, or its share
 * of the host's ({@link MqttTopicHandlers.share}). `state` is `connected` once its own filters'
 * SUBACK is in; `client` is the client to publish on.
 */
export interface BrokerSession {
  readonly state: MqttConnectionState;
  readonly client: MqttClient | undefined;
  readonly reconnects: number;
  /** Connects, or joins the shared connection. */
  open(): void;
  /** Subscribes its filters again (a broker replays the retained messages). */
  subscribe(): void;
  /** Ends it, or leaves the shared connection (its filters unsubscribed). */
  end(timeoutMs: number): Promise<void>;
  kill(): void;
}

/** The link process bound to the table: its connection, and where to report. */
export interface TopicHandlersLink {
  readonly connection: MqttConnection;
  readonly runtime: Runtime;
  readonly owner: Pid;
}

type Filters = Record<string, { qos: 0 | 1 }>;

/** See the module comment. Made by createLinks (src/transports/links.ts), one per links layer. */
export class MqttTopicHandlers {
  /** Where the link connects: a handler configured for the same broker can share it. */
  readonly broker: BrokerSettings;
  private readonly shares = new Set<HandlerShare>();
  private link: TopicHandlersLink | undefined;
  private unclaimedCount = 0;
  /** UNSUBSCRIBEs of a handler that left, on the current client, whose UNSUBACK is not in. */
  private unsubscribing = 0;
  /** Handlers whose SUBSCRIBE waits for those UNSUBACKs (see `subscribeShare`). */
  private readonly waiting = new Set<HandlerShare>();

  constructor(broker: BrokerSettings) {
    this.broker = broker;
  }

  /** Whether a process configured for `broker` can ride on this connection: same URL, account, TLS. */
  carries(broker: BrokerSettings | undefined): boolean {
    if (!broker) return false;
    const a = this.broker;
    return (
      a.url === broker.url &&
      a.username === broker.username &&
      a.password === broker.password &&
      a.ca === broker.ca &&
      a.cert === broker.cert &&
      a.key === broker.key &&
      (a.rejectUnauthorized ?? true) === (broker.rejectUnauthorized ?? true)
    );
  }

  /** A handler's share of the connection: `open()` joins, `end()` / `kill()` leave. */
  share(o: { readonly label: string; readonly hooks: TopicHandlerHooks }): BrokerSession {
    return new HandlerShare(this, o.label, o.hooks);
  }

  /** Handlers joined now. */
  get size(): number {
    return this.shares.size;
  }

  /** Publishes no handler took: they came on a handler's filter after it left (before its UNSUBACK). */
  get unclaimed(): number {
    return this.unclaimedCount;
  }

  // ---- the link's side ----

  /** A link process starts on this table (a restarted link replaces the one before). */
  bind(link: TopicHandlersLink): void {
    if (this.link && this.link !== link) this.dropped();
    this.link = link;
  }

  /** The link stops: no connection until the next one binds; every handler hears a drop. */
  unbind(link: TopicHandlersLink): void {
    if (this.link !== link) return;
    this.dropped();
    this.link = undefined;
  }

  /** The handlers' filters, added to the link's SUBSCRIBE after a CONNACK. */
  filters(): Filters {
    const all: Filters = {};
    for (const share of this.shares) {
      share.included = true;
      Object.assign(all, share.filters);
    }
    return all;
  }

  /** A publish not on our protocol's topics: to the handler whose filter matches; false if none. */
  route(topic: string, payload: Buffer, packet: IPublishPacket): boolean {
    for (const share of this.shares) {
      if (!share.matches(topic)) continue;
      try {
        share.hooks.onMessage(topic, payload, packet);
      } catch (error) {
        this.report(`${share.label}: handling ${JSON.stringify(topic.slice(0, 140))} threw`, error);
      }
      return true;
    }
    this.unclaimedCount++;
    return false;
  }

  /** The link's SUBACK is in: the handlers it included receive; one that joined since subscribes. */
  ready(client: MqttClient): void {
    for (const share of this.shares) {
      if (share.included) this.shareReady(share, client);
      else this.subscribeShare(share);
    }
  }

  /** The link's connection dropped: each handler hears it (before the link's retry is scheduled). */
  dropped(): void {
    this.unsubscribing = 0;
    this.waiting.clear();
    for (const share of this.shares) {
      const wasReady = share.ready;
      share.ready = false;
      share.included = false;
      try {
        share.hooks.onDropped(wasReady);
      } catch (error) {
        this.report(`${share.label}: onDropped threw`, error);
      }
    }
  }

  // ---- the handlers' side (HandlerShare) ----

  /** @internal */
  connection(): MqttConnection | undefined {
    return this.link?.connection;
  }

  /** @internal */
  join(share: HandlerShare): void {
    if (share.left || this.shares.has(share)) return;
    this.shares.add(share);
    this.subscribeShare(share);
  }

  /** @internal Subscribes one handler's filters on the connected client; else its turn comes at the next CONNACK. */
  subscribeShare(share: HandlerShare): void {
    const connection = this.link?.connection;
    const client = connection?.client;
    if (!client || connection.state !== 'connected' || !this.shares.has(share)) return;
    // aedes handles the packets of one read concurrently: a SUBSCRIBE sent right after the
    // UNSUBSCRIBE of a handler that left (a bridge restarted from the tree) could be undone by it.
    if (this.unsubscribing > 0) {
      this.waiting.add(share);
      return;
    }
    share.included = true;
    const filters = share.filters;
    client.subscribe(filters, (error, _granted, suback) => {
      if (client !== this.link?.connection.client || !this.shares.has(share)) return;
      const outcome = subackOutcome(filters, error, suback);
      if (outcome.failed) {
        this.link?.runtime.logger.warn(`${share.label}: subscribe on the host's MQTT connection failed`, {
          error: outcome.failed.message,
        });
        return;
      }
      if (outcome.refused.length > 0)
        this.report(`${share.label}: broker refused subscriptions ${outcome.refused.join(', ')}`);
      // A subscribe again (a resync) replays retained messages; the handler is ready already.
      if (!share.ready) this.shareReady(share, client);
    });
  }

  /** @internal Leaves: its filters that no other handler reads are unsubscribed. */
  leave(share: HandlerShare): void {
    share.left = true;
    this.waiting.delete(share);
    if (!this.shares.delete(share)) return;
    const client = this.link?.connection.client;
    const wasSubscribed = share.included;
    share.ready = false;
    share.included = false;
    if (!client || !wasSubscribed) return;
    const kept = new Set<string>();
    for (const other of this.shares) for (const f of Object.keys(other.filters)) kept.add(f);
    const gone = Object.keys(share.filters).filter((f) => !kept.has(f));
    if (gone.length === 0) return;
    this.unsubscribing++;
    client.unsubscribe(gone, () => {
      if (client !== this.link?.connection.client || this.unsubscribing === 0) return;
      if (--this.unsubscribing > 0) return;
      const next = [...this.waiting];
      this.waiting.clear();
      for (const s of next) this.subscribeShare(s);
    });
  }

  private shareReady(share: HandlerShare, client: MqttClient): void {
    const first = share.readies === 0;
    share.ready = true;
    share.readies++;
    this.link?.runtime.logger.info(
      `${share.label} ${first ? 'receives' : 'receives again'} on the host's MQTT connection`,
      { filters: Object.keys(share.filters) },
    );
    try {
      share.hooks.onReady(client);
    } catch (error) {
      this.report(`${share.label}: onReady threw`, error);
    }
  }

  private report(message: string, error?: unknown): void {
    this.link?.runtime.report(message, error, this.link.owner);
  }
}

/** One handler's share; its state follows the link's connection and its own SUBACK. */
class HandlerShare implements BrokerSession {
  /** Its filters, read once when it is made (a clean session re-subscribes the same ones). */
  readonly filters: Filters;
  private readonly levels: readonly (readonly string[])[];
  /** In the SUBSCRIBE the link or the table sent on the current connection. */
  included = false;
  /** Its SUBACK is in on the current connection. */
  ready = false;
  readies = 0;
  left = false;

  constructor(
    private readonly table: MqttTopicHandlers,
    readonly label: string,
    readonly hooks: TopicHandlerHooks,
  ) {
    this.filters = hooks.subscriptions();
    this.levels = Object.keys(this.filters).map((f) => f.split('/'));
  }

  get state(): MqttConnectionState {
    if (this.left) return 'closed';
    const connection = this.table.connection();
    if (!connection) return 'backoff';
    if (connection.state === 'connected') return this.ready ? 'connected' : 'connecting';
    return connection.state;
  }

  get client(): MqttClient | undefined {
    return this.ready ? this.table.connection()?.client : undefined;
  }

  get reconnects(): number {
    return Math.max(0, this.readies - 1);
  }

  open(): void {
    this.table.join(this);
  }

  subscribe(): void {
    this.table.subscribeShare(this);
  }

  async end(_timeoutMs: number): Promise<void> {
    this.table.leave(this);
  }

  kill(): void {
    this.table.leave(this);
  }

  matches(topic: string): boolean {
    const t = topic.split('/');
    return this.levels.some((f) => topicMatches(f, t));
  }
}

/** MQTT topic matching: `+` one level, `#` the rest; a wildcard first level never matches `$…`. */
function topicMatches(filter: readonly string[], topic: readonly string[]): boolean {
  if ((filter[0] === '+' || filter[0] === '#') && topic[0]?.startsWith('$')) return false;
  for (let i = 0; i < filter.length; i++) {
    const f = filter[i];
    if (f === '#') return true;
    if (i >= topic.length) return false;
    if (f !== '+' && f !== topic[i]) return false;
  }
  return filter.length === topic.length;
}

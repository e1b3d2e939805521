/**
 * The Sparkplug B convention: the host as a Sparkplug 3.0 Primary Host Application, with edge
 * nodes and their devices as fleet devices (kinds `sparkplug.node` and `sparkplug.device`).
 *
 * One supervised process (kind `server`, under `links`) holds one mqtt.js connection with its own
 * jittered reconnect (as the MQTT link: `reconnectPeriod: 0`, a fresh client per attempt). On each
 * connection it subscribes to its own `spBv1.0/STATE/<hostId>` and to `spBv1.0/+/#` (or one
 * filter per configured group), then publishes STATE `{"online":true,"timestamp":t}` retained at
 * QoS 1; the connection's will is `{"online":false,"timestamp":t}` with the same `t`, and a
 * graceful stop publishes it too. A retained `online:false` of our own host id seen while
 * connected (a late will of an earlier connection) is answered by publishing online again.
 *
 * How messages become fleet facts (per edge node in arrival order, never a crash):
 * - NBIRTH → the node is adopted (`adopt: 'auto'`; with `'manual'` it waits in `discovered()`),
 *   `linkUp` (via `sparkplug`), its status (group, node, bdSeq, the metric definitions: name,
 *   datatype, alias, properties, value) and telemetry for its numeric and boolean metrics. Devices
 *   born under the previous birth go `stale` until their new DBIRTH.
 * - DBIRTH → the same for the device, with `parent: <node id>` in its status and the tags
 *   `sparkplug`, `node:<node id>`.
 * - NDATA/DDATA → telemetry (`deviceTs`: the metric's timestamp, else the payload's); metrics
 *   given by alias are resolved from that node's or device's birth. The status's metric list
 *   shows each metric's last value (written at most every 250 ms per node or device).
 * - Identity: a name acts only on the fleet id it holds (in the fleet with this kind and these
 *   names). A name whose id is too long or held by another device (a Homie device, or another
 *   Sparkplug name that differs only in characters outside [A-Za-z0-9_-]) is refused, written
 *   once as `sparkplug.refused`, and owns nothing: its deaths, data, events and its devices never
 *   touch that id, and no rebirth is asked of it (its births would be refused again). A refused
 *   device's messages still count in its node's seq.
 * - NDEATH whose bdSeq matches the birth (or carries none) → the node and all its devices
 *   `linkDown`; one with another bdSeq is a late will of an older session and is ignored.
 *   DDEATH → that device.
 * - seq: 0…255 per edge node across NBIRTH/DBIRTH/NDATA/DDATA/DDEATH. A gap, or data (or a
 *   DBIRTH) before its birth, makes the host publish NCMD `Node Control/Rebirth = true` (at most
 *   once per `rebirthMinIntervalMs` while unanswered, and at most `maxRebirthsPerMinute` per node,
 *   answered or not); the node and its devices go `stale` until
 *   the NBIRTH. Data of a node or device whose birth was seen but not adopted (`manual`) asks no
 *   rebirth (adopting does). Gaps and requests are counted and logged; data before birth is
 *   counted, and written as `sparkplug.dataBeforeBirth` at most `maxErrorEventsPerMinute` times
 *   per node or device, the rest summed up in one `device.eventsSuppressed`.
 * - A payload that does not decode, an unknown alias, a datatype unlike the birth's, a birth
 *   metric without name or datatype → a `device.badMessage` event on that node or device
 *   (at most `maxErrorEventsPerMinute` each; all counted) and the rest of the message is used.
 * - Losing the broker: every node and device goes `linkDown` (deaths may be missed meanwhile);
 *   after reconnecting, every known node is asked for a rebirth (`rebirthOnConnect`).
 *
 * Commands (the kinds' `command` actions) go through the fleet's command tracker with the
 * Sparkplug carrier (src/conventions/sparkplug/sparkplug-carrier.ts): `write { metric, value }`
 * is checked against the metric's datatype from the birth (`badArgs`, naming the datatype),
 * audited, and published as NCMD/DCMD at QoS 0. Sparkplug has no reply, so the command
 * `succeeded` when the new value comes back in a DATA (or birth) message within
 * `commandTimeoutMs`, else `timedOut` with the reason; a death meanwhile makes it `failed`
 * (`linkLost`). `rebirth` succeeds with the NBIRTH. Commands are not queued for an offline node
 * (QoS 0, and its birth may change the metrics): they are refused with `offline`.
 *
 * Tahu's Node.js edge client quirks are tolerated: it keeps bdSeq at 0 (so its NDEATH always
 * matches its birth) and publishes NDEATH, births and data at QoS 0.
 *
 * The parts: this process (the MQTT session; it hands each message to the model) · the session
 * model, pure, testable without a broker (sparkplug-model.ts, with sparkplug-names.ts,
 * sparkplug-rebirths.ts, sparkplug-metrics.ts, sparkplug-session.ts) · what the model asks of the
 * fleet, carried out (sparkplug-fleet-writer.ts) · the NCMD/DCMD messages (sparkplug-commands.ts)
 * · the carrier (sparkplug-carrier.ts).
 *
 * @example
 * const app = await startApp({ …, conventions: [sparkplugConvention({ hostId: 'scada', groups: ['Plant1'] })] });
 * await app.fleet.act('Plant1-Line4-Press2', 'write', { metric: 'setpoint', value: 42 }, 'ana');
 * // commandStatus 'sent'; the audit ends 'succeeded' once DDATA reports setpoint = 42
 */
import type { MqttClient } from 'mqtt';
import type { Fleet } from '../../devices/fleet.js';
import type { ExitReason } from '../../runtime/exit-reason.js';
import { ProcessBase } from '../../runtime/process.js';
import type { Runtime } from '../../runtime/runtime.js';
import { MqttConnection } from '../../transports/mqtt-connection.js';
import { DEFAULT_RECONNECT, ReconnectSchedule } from '../../transports/reconnect.js';
import type { Convention, ConventionContext } from '../convention.js';
import type { SparkplugCarrier, SparkplugCommandTarget } from './sparkplug-carrier.js';
import { createSparkplugCarrier } from './sparkplug-carrier.js';
import type { Datatype, ScalarValue } from './sparkplug-codec.js';
import { encodeStatePayload, SPARKPLUG_NAMESPACE, stateTopic } from './sparkplug-codec.js';
import { COMMAND_PUBLISH, commandAddress, commandMessage, rebirthMessage } from './sparkplug-commands.js';
import type { SparkplugEffect } from './sparkplug-effects.js';
import { SparkplugFleetWriter } from './sparkplug-fleet-writer.js';
import {
  SPARKPLUG_DEVICE_KIND,
  SPARKPLUG_NODE_KIND,
  sparkplugDeviceKind,
  sparkplugNodeKind,
} from './sparkplug-kind.js';
import { SparkplugModel } from './sparkplug-model.js';
import type { DiscoveredSparkplug } from './sparkplug-names.js';
import { sparkplugAnnouncements } from './sparkplug-names.js';
import type { SparkplugOptions } from './sparkplug-options.js';
import { validateSparkplugOptions } from './sparkplug-options.js';
import type { SparkplugNodeView } from './sparkplug-session.js';

export type { DiscoveredSparkplug } from './sparkplug-names.js';
export type { SparkplugOptions } from './sparkplug-options.js';
export type { SparkplugNodeView } from './sparkplug-session.js';

export type SparkplugBridgeState = 'connecting' | 'connected' | 'backoff' | 'closed' | 'noBroker';

export interface SparkplugBridgeStats {
  readonly state: SparkplugBridgeState;
  readonly connected: boolean;
  readonly reconnects: number;
  /** Sparkplug messages received (all types, ours included). */
  readonly received: number;
  readonly births: number;
  readonly deaths: number;
  /** Deaths ignored: their bdSeq is not the birth's (a late will of an older session). */
  readonly staleDeaths: number;
  readonly gaps: number;
  readonly dataBeforeBirth: number;
  readonly rebirthsRequested: number;
  /** Rebirth requests not sent: one is still unanswered and recent. */
  readonly rebirthsSuppressed: number;
  readonly badMessages: number;
  /** Topics in the namespace that are not Sparkplug B. */
  readonly badTopics: number;
  /** Names refused: the fleet id would be too long, or taken by another node or device. */
  readonly refused: number;
  readonly commands: {
    readonly sent: number;
    readonly succeeded: number;
    readonly timedOut: number;
    readonly failed: number;
  };
  /** Edge nodes with a current birth. */
  readonly nodesOnline: number;
  /** Other host applications' STATE as last seen (3.0 JSON or the older ONLINE/OFFLINE text). */
  readonly hosts: Readonly<Record<string, { online: boolean; timestamp: number | null }>>;
}

/** The bridge process. Made by {@link sparkplugConvention}'s `start`. */
export class SparkplugBridge extends ProcessBase implements SparkplugCommandTarget {
  private readonly fleet: Fleet;
  private readonly context: ConventionContext;
  /** Unregisters from the host's Discovered view. */
  private leaveDiscovery: (() => void) | undefined;
  private leaveOwnership: (() => void) | undefined;
  private readonly hostId: string;
  private readonly rebirthOnConnect: boolean;
  private readonly options: SparkplugOptions;
  private readonly model: SparkplugModel;
  private readonly carrier: SparkplugCarrier;
  private readonly writer: SparkplugFleetWriter;

  constructor(runtime: Runtime, context: ConventionContext, options: SparkplugOptions) {
    const hostId = options.hostId ?? 'fleetvisor';
    super(runtime, 'server', `sparkplug:${hostId}`);
    this.fleet = context.fleet;
    this.context = context;
    this.broker = context.broker;
    this.options = options;
    this.hostId = hostId;
    this.groups = options.groups && options.groups.length > 0 ? [...options.groups] : undefined;
    const commandTimeoutMs = options.commandTimeoutMs ?? 10_000;
    this.carrier = createSparkplugCarrier({
      fleet: this.fleet,
      target: this,
      replyTimeoutMs: commandTimeoutMs,
    });
    this.rebirthOnConnect = options.rebirthOnConnect ?? true;
    this.writer = new SparkplugFleetWriter({
      runtime,
      fleet: this.fleet,
      store: context.store,
      carrier: this.carrier,
      pid: this.pid,
      name: this.name,
      maxErrorEventsPerMinute: options.maxErrorEventsPerMinute ?? 10,
    });
    this.model = new SparkplugModel(
      {
        fleet: this.fleet,
        now: () => this.runtime.clock.wallNow(),
        connected: () => this.state === 'connected' && this.client !== undefined,
        emit: (effect) => this.perform(effect),
        announcements: sparkplugAnnouncements(runtime.clock, (effect) => this.perform(effect)),
        ...(context.pin ? { pin: context.pin } : {}),
      },
      {
        hostId,
        groups: this.groups,
        adopt: options.adopt ?? context.adopt ?? 'auto',
        rebirthMinIntervalMs: options.rebirthMinIntervalMs ?? 5000,
        maxRebirthsPerMinute: options.maxRebirthsPerMinute ?? 6,
        maxPayloadBytes: options.maxPayloadBytes ?? 1024 * 1024,
        maxDiscovered: options.maxDiscovered ?? 10_000,
      },
    );
    const reconnect = new ReconnectSchedule(
      runtime,
      this.pid,
      { ...DEFAULT_RECONNECT, ...options.reconnect },
      options.random,
      'sparkplug',
    );
    this.connection = this.broker ? this.connect(this.broker, reconnect) : undefined;
  }

  /** Registers the command ports and connects; called once by the convention's `start`. */
  begin(): void {
    for (const kind of [SPARKPLUG_NODE_KIND, SPARKPLUG_DEVICE_KIND])
      if (!this.fleet.kinds.has(kind))
        throw new Error(
          `the fleet does not know the kind ${kind}: register the Sparkplug convention's kinds`,
        );
    this.fleet.setCarrier(SPARKPLUG_NODE_KIND, this.carrier);
    this.fleet.setCarrier(SPARKPLUG_DEVICE_KIND, this.carrier);
    this.started();
    this.leaveDiscovery = this.context.discovery?.register('sparkplug', {
      discovered: () =>
        this.discovered().map((d) => ({
          id: d.id,
          kind: d.kind,
          firmware: '',
          via: viaOf(d.attributes),
          firstSeen: d.firstSeen,
          lastSeen: d.lastSeen,
          reason: d.reason,
        })),
      adopt: (id) => this.adopt(id),
    });
    this.leaveOwnership = this.context.ownership?.onGained((owns) => {
      const asked = this.model.ownershipGained(owns);
      if (asked > 0)
        this.runtime.logger.info('Sparkplug: shards gained; nodes with refused births asked for a rebirth', {
          bridge: this.name,
          nodes: asked,
        });
    });
    if (!this.connection) {
      this.runtime.logger.warn('Sparkplug bridge idle: the app runs without an MQTT broker', {
        bridge: this.name,
      });
      return;
    }
    this.connection.open();
  }

  // ---- the public face ----

  stats(): SparkplugBridgeStats {
    const c = this.model.counters;
    return {
      state: this.state,
      connected: this.state === 'connected',
      reconnects: this.reconnects,
      received: c.received,
      births: c.births,
      deaths: c.deaths,
      staleDeaths: c.staleDeaths,
      gaps: c.gaps,
      dataBeforeBirth: c.dataBeforeBirth,
      rebirthsRequested: c.rebirthsRequested,
      rebirthsSuppressed: c.rebirthsSuppressed,
      badMessages: c.badMessages,
      badTopics: c.badTopics,
      refused: c.refused,
      commands: this.carrier.counts(),
      nodesOnline: this.model.nodesOnline(),
      hosts: this.model.hosts(),
    };
  }

  /** The session of one edge node, by fleet id. */
  node(id: string): SparkplugNodeView | undefined {
    return this.model.node(id);
  }

  /** Nodes and devices seen with `adopt: 'manual'` (or that could not be added). */
  discovered(): DiscoveredSparkplug[] {
    return this.model.discovered();
  }

  /** Adds a discovered node or device to the fleet and asks its node for a rebirth. */
  adopt(id: string): Promise<{ ok: true } | { ok: false; error: { code: string; message: string } }> {
    return this.model.adopt(id);
  }

  /** Asks an edge node (by fleet id) for its births now; false when not connected or not known. */
  rebirth(nodeId: string, reason = 'asked for'): boolean {
    return this.model.rebirth(nodeId, reason);
  }

  /** Resolves when the messages received so far are handled and their store writes are done. */
  async flush(): Promise<void> {
    await this.model.idle();
    await this.writer.flush();
    await this.fleet.commands.flush(); // the outcomes of its commands
  }

  // ---- commands (the carrier's wire) ----

  /** The carrier's view: a node or device born now, with its birth's metrics. */
  born(deviceId: string): ReturnType<SparkplugCommandTarget['born']> {
    return this.model.born(deviceId);
  }

  /** The carrier's wire: NCMD/DCMD at QoS 0 (Sparkplug). */
  publishCommand(
    deviceId: string,
    metrics: readonly { readonly name: string; readonly datatype: Datatype; readonly value: ScalarValue }[],
    rebirth: boolean,
  ): boolean {
    const v = this.fleet.device(deviceId);
    const client = this.client;
    if (!v || !client || this.state !== 'connected' || this.status !== 'running') return false;
    const to = commandAddress(v);
    const now = this.runtime.clock.wallNow();
    const m = commandMessage(to, metrics, now);
    client.publish(m.topic, m.payload, COMMAND_PUBLISH);
    if (rebirth) this.model.rebirthSent(to.group, to.node, now);
    return true;
  }

  // ---- what the session model asks ----

  /** On the broker: here; on the fleet, the carrier, the event log and the logger: the writer. */
  private perform(e: SparkplugEffect): void {
    switch (e.type) {
      case 'rebirthRequest': {
        const m = rebirthMessage(e.group, e.node, e.at);
        this.client?.publish(m.topic, m.payload, COMMAND_PUBLISH);
        return;
      }
      case 'publishOnline':
        if (this.client) this.publishOnline(this.client);
        return;
      case 'threw':
        this.runtime.report(`Sparkplug bridge ${this.name}: ${e.what} threw`, e.error, this.pid);
        return;
      default:
        this.writer.apply(e);
    }
  }

  // ---- the broker connection (the shared MqttConnection; what is Sparkplug's is the STATE) ----

  private readonly broker: ConventionContext['broker'];
  /** The groups subscribed to; undefined: all (`spBv1.0/+/#`). */
  private readonly groups: readonly string[] | undefined;
  /** Made in the constructor (it needs the options); undefined when the app has no broker. */
  private readonly connection: MqttConnection | undefined;
  /** The STATE timestamp of the current connection (its birth and its will carry it). */
  private stateTimestamp = 0;

  private get state(): SparkplugBridgeState {
    return this.connection?.state ?? 'noBroker';
  }

  private get client(): MqttClient | undefined {
    return this.connection?.client;
  }

  private get reconnects(): number {
    return this.connection?.reconnects ?? 0;
  }

  private connect(
    broker: NonNullable<ConventionContext['broker']>,
    reconnect: ReconnectSchedule,
  ): MqttConnection {
    const o = this.options;
    return new MqttConnection({
      runtime: this.runtime,
      owner: this.pid,
      label: `Sparkplug bridge ${this.name}`,
      fields: { bridge: this.name, hostId: this.hostId },
      words: {
        connected: 'Sparkplug host online',
        reconnected: 'Sparkplug host reconnected',
        lost: 'Sparkplug host lost the broker',
        couldNotConnect: 'Sparkplug host could not connect',
        subscribeFailed: 'Sparkplug subscribe failed',
        clientError: 'Sparkplug MQTT client error',
      },
      broker,
      clientId: o.clientId ?? `${this.hostId}-sparkplug-host`,
      connectTimeoutMs: o.connectTimeoutMs,
      keepaliveMs: o.keepaliveMs,
      reconnect,
      isRunning: () => this.status === 'running',
      hooks: {
        // Our STATE topic and the namespace first, then our STATE birth (Sparkplug 3.0 §host).
        subscriptions: () => {
          const filters: Record<string, { qos: 0 | 1 }> = { [stateTopic(this.hostId)]: { qos: 1 } };
          for (const g of this.groups ?? ['+']) filters[`${SPARKPLUG_NAMESPACE}/${g}/#`] = { qos: 1 };
          return filters;
        },
        // Each connection's will carries its own timestamp, as its STATE birth will.
        clientOptions: () => {
          this.stateTimestamp = this.runtime.clock.wallNow();
          return {
            will: {
              topic: stateTopic(this.hostId),
              payload: encodeStatePayload(false, this.stateTimestamp),
              qos: 1,
              retain: true,
            },
          };
        },
        onMessage: (topic, payload) => this.model.receive(topic, payload),
        onReady: (client) => {
          this.publishOnline(client);
          this.model.hostConnected(this.rebirthOnConnect);
        },
        onDropped: (wasConnected) => {
          if (wasConnected) this.model.dropAll('the host lost the broker connection');
        },
      },
    });
  }

  protected async terminate(_reason: ExitReason): Promise<void> {
    this.leaveDiscovery?.();
    this.leaveOwnership?.();
    const wasConnected = this.state === 'connected';
    // A graceful goodbye: our STATE death, retained, before the DISCONNECT (which drops the will).
    const ended = this.connection?.end(2000, (client, done) => {
      if (!wasConnected) return done();
      client.publish(
        stateTopic(this.hostId),
        encodeStatePayload(false, this.stateTimestamp),
        { qos: 1, retain: true },
        done,
      );
    });
    this.model.dropAll('the Sparkplug bridge stopped');
    this.carrier.close();
    await ended;
    await this.flush().catch(() => {});
    await this.writer.close(); // the rate-limited events' summaries
  }

  protected override release(): void {
    this.leaveDiscovery?.();
    this.connection?.kill();
    this.writer.release();
    // Killed: its open commands stay with the tracker and end by their reply time.
    this.carrier.close();
  }

  private publishOnline(client: MqttClient): void {
    client.publish(stateTopic(this.hostId), encodeStatePayload(true, this.stateTimestamp), {
      qos: 1,
      retain: true,
    });
  }
}

/**
 * The Sparkplug B convention: kinds `sparkplug.node` and `sparkplug.device`, and a bridge acting
 * as the Primary Host Application `hostId`. Throws `RangeError` for bad options, naming the field.
 *
 * @example
 * const sparkplug = sparkplugConvention({ hostId: 'fleetvisor', groups: ['Plant1'], adopt: 'auto' });
 * const bridge = (await sparkplug.start({ runtime, fleet, store, broker: { url } })) as SparkplugBridge;
 * bridge.stats(); // { connected: true, births: 3, gaps: 0, rebirthsRequested: 0, … }
 */
export function sparkplugConvention(options: SparkplugOptions = {}): Convention {
  validateSparkplugOptions(options);
  return {
    name: 'sparkplug',
    kinds: [sparkplugNodeKind, sparkplugDeviceKind],
    start(context) {
      const bridge = new SparkplugBridge(context.runtime, context, options);
      bridge.begin();
      return bridge;
    },
  };
}

/** Where a discovered node or device was heard: `sparkplug:<group>/<node>`. */
function viaOf(attributes: Readonly<Record<string, unknown>>): string {
  const { group, node } = attributes;
  return typeof group === 'string' && typeof node === 'string' ? `sparkplug:${group}/${node}` : 'sparkplug';
}

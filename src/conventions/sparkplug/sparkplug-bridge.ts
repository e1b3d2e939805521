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
 * @example
 * const app = await startApp({ …, conventions: [sparkplugConvention({ hostId: 'scada', groups: ['Plant1'] })] });
 * await app.fleet.act('Plant1-Line4-Press2', 'write', { metric: 'setpoint', value: 42 }, 'ana');
 * // commandStatus 'sent'; the audit ends 'succeeded' once DDATA reports setpoint = 42
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import { connect } from 'mqtt';
import type { DeviceEventLog } from '../../devices/device-event-log.js';
import { createDeviceEventLog } from '../../devices/device-event-log.js';
import type { DeviceView, Fleet } from '../../devices/fleet.js';
import type { ExitReason } from '../../runtime/exit-reason.js';
import { ProcessBase } from '../../runtime/process.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { TimerRef } from '../../runtime/timers.js';
import type { JsonObject, JsonValue, Store } from '../../store/store.js';
import { hostClientOptions } from '../../transports/mqtt-link.js';
import type { ReconnectOptions } from '../../transports/reconnect.js';
import { DEFAULT_RECONNECT, ReconnectSchedule } from '../../transports/reconnect.js';
import type { Convention, ConventionContext } from '../convention.js';
import type { SparkplugCarrier, SparkplugCommandTarget } from './sparkplug-carrier.js';
import { createSparkplugCarrier } from './sparkplug-carrier.js';
import type { Datatype, ScalarValue, SparkplugMetric, SparkplugPayload } from './sparkplug-codec.js';
import {
  BDSEQ_METRIC,
  commandTopic,
  decodeSparkplugPayload,
  encodeSparkplugCommand,
  encodeStatePayload,
  parseSparkplugTopic,
  parseStatePayload,
  REBIRTH_METRIC,
  SPARKPLUG_NAMESPACE,
  scalarJson,
  stateTopic,
  telemetryValue,
  topicLevelProblem,
  valueAs,
} from './sparkplug-codec.js';
import type { SparkplugEvent } from './sparkplug-kind.js';
import {
  SPARKPLUG_DEVICE_KIND,
  SPARKPLUG_NODE_KIND,
  safeIdPart,
  sparkplugDeviceKind,
  sparkplugFleetId,
  sparkplugNodeKind,
} from './sparkplug-kind.js';

export interface SparkplugOptions {
  /** The Primary Host id: the STATE topic `spBv1.0/STATE/<hostId>`; default `fleetvisor`. */
  readonly hostId?: string;
  /** Sparkplug groups to follow; default all (`spBv1.0/+/#`). */
  readonly groups?: readonly string[];
  /**
   * An edge node or device the fleet does not know, on its birth: `auto` (default) adds it;
   * `manual` lists it in {@link SparkplugBridge.discovered} until {@link SparkplugBridge.adopt}.
   */
  readonly adopt?: 'auto' | 'manual';
  /** MQTT client id; default `<hostId>-sparkplug-host`. */
  readonly clientId?: string;
  /** How long a write waits for its value to come back; default 10 000 ms. */
  readonly commandTimeoutMs?: number;
  /** Least time between two unanswered rebirth requests to one node; default 5000 ms. */
  readonly rebirthMinIntervalMs?: number;
  /**
   * Rebirth requests the host makes on its own (gaps, data before birth, unreadable births) per
   * node per minute; default 6. Answered births do not reset it, so a node whose every answer
   * brings a new gap is not asked in a loop. An operator's `rebirth` and an adoption are not counted.
   */
  readonly maxRebirthsPerMinute?: number;
  /** Ask every known node for a rebirth on each (re)connection; default true. */
  readonly rebirthOnConnect?: boolean;
  /** Largest payload decoded (also after inflating a compressed one); default 1 MiB. */
  readonly maxPayloadBytes?: number;
  /** `device.badMessage` events per node or device per minute; default 10 (all are counted). */
  readonly maxErrorEventsPerMinute?: number;
  /** MQTT keepalive; default 30 000 ms. */
  readonly keepaliveMs?: number;
  /** TCP connect + CONNACK; default 10 000 ms. */
  readonly connectTimeoutMs?: number;
  readonly reconnect?: Partial<ReconnectOptions>;
  /** Source of jitter, [0, 1); default Math.random. */
  readonly random?: () => number;
}

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

export interface SparkplugNodeView {
  readonly id: string | undefined;
  readonly group: string;
  readonly node: string;
  readonly born: boolean;
  readonly bdSeq: number | null;
  /** The last seq seen. */
  readonly seq: number | null;
  readonly gaps: number;
  readonly rebirthsRequested: number;
  readonly devices: readonly {
    readonly id: string | undefined;
    readonly device: string;
    readonly born: boolean;
  }[];
}

export interface DiscoveredSparkplug {
  readonly id: string;
  readonly kind: string;
  readonly attributes: JsonObject;
  readonly firstSeen: number;
  readonly lastSeen: number;
  /** `manual` (waits for the operator) or `addFailed: …`. */
  readonly reason: string;
}

/** Telemetry is not made of these (they are control, not measurements). */
const CONTROL_PREFIXES = ['Node Control/', 'Device Control/'];
const FIRMWARE_NAME = /(^|\/)((firmware|fw)([ _]?version)?|(software|sw)[ _]?version)$/i;
const VIA = 'sparkplug';
const MAX_STATUS_METRICS = 2000;

interface MetricDef {
  readonly name: string;
  readonly datatype: Datatype;
  readonly alias: number | null;
}

interface MetricTable {
  readonly byName: Map<string, MetricDef>;
  readonly byAlias: Map<number, MetricDef>;
}

const emptyTable = (): MetricTable => ({ byName: new Map(), byAlias: new Map() });

/** One entry of `status.metrics`: name, datatype, alias, properties and the last value seen. */
type StatusMetric = { [key: string]: JsonValue };

/** Least time between two status writes carrying metric values of one node or device. */
const SHOWN_VALUES_INTERVAL_MS = 250;

interface DeviceSession {
  readonly device: string;
  /** The fleet id its name maps to; it acts on it only while {@link SparkplugBridge} finds it its own. */
  readonly id: string | undefined;
  /** Why the name is refused (id too long, or taken by another device); it then owns nothing. */
  refusal: string | undefined;
  /** Its last birth was seen but not adopted (`manual`, or the add failed): data asks no rebirth. */
  waiting: boolean;
  born: boolean;
  metrics: MetricTable;
  /** The status's metric list, values updated by DATA. */
  shown: StatusMetric[];
}

interface NodeSession {
  readonly group: string;
  readonly node: string;
  /** The fleet id its name maps to; it acts on it only while it is its own (see `owns`). */
  readonly id: string | undefined;
  /** Why the name is refused (id too long, or taken by another device): it and its devices own nothing. */
  refusal: string | undefined;
  /** Its last birth was seen but not adopted (`manual`, or the add failed): data asks no rebirth. */
  waiting: boolean;
  born: boolean;
  /** The status's metric list, values updated by DATA. */
  shown: StatusMetric[];
  bdSeq: number | null;
  seq: number | null;
  metrics: MetricTable;
  readonly devices: Map<string, DeviceSession>;
  /** When the last unanswered rebirth request went out. */
  rebirthAskedAt: number | null;
  /** The host's own rebirth requests in the current minute (births do not reset it). */
  readonly rebirthWindow: { start: number; count: number; noted: boolean };
  gaps: number;
  rebirths: number;
  /** Messages of this node, handled one after another. */
  queue: Promise<void>;
}

/** The bridge process. Made by {@link sparkplugConvention}'s `start`. */
export class SparkplugBridge extends ProcessBase implements SparkplugCommandTarget {
  private readonly fleet: Fleet;
  private readonly store: Store;
  private readonly broker: ConventionContext['broker'];
  private readonly hostId: string;
  private readonly groups: readonly string[] | undefined;
  private readonly adoptMode: 'auto' | 'manual';
  private readonly commandTimeoutMs: number;
  private readonly rebirthMinIntervalMs: number;
  private readonly maxRebirthsPerMinute: number;
  private readonly rebirthOnConnect: boolean;
  private readonly maxPayloadBytes: number;
  private readonly maxErrorEvents: number;
  private readonly reconnectOptions: ReconnectOptions;
  private readonly reconnect: ReconnectSchedule;
  private readonly options: SparkplugOptions;

  private state: SparkplugBridgeState = 'connecting';
  private client: MqttClient | undefined;
  /** The STATE timestamp of the current connection (its birth and its will carry it). */
  private stateTimestamp = 0;
  private everConnected = false;
  private lastError: Error | undefined;

  private readonly sessions = new Map<string, NodeSession>();
  private readonly carrier: SparkplugCarrier;
  private readonly eventLog: DeviceEventLog;
  /** Metric values to show, per fleet id, written at most every SHOWN_VALUES_INTERVAL_MS. */
  private readonly shownPending = new Map<string, StatusMetric[]>();
  private shownTimer: TimerRef | undefined;
  private readonly refusedKeys = new Set<string>();
  private readonly discoveredMap = new Map<string, DiscoveredSparkplug>();
  private readonly hostStates = new Map<string, { online: boolean; timestamp: number | null }>();
  private readonly storeWrites = new Set<Promise<unknown>>();
  private lastBadTopicLog = 0;
  private counters = {
    reconnects: 0,
    received: 0,
    births: 0,
    deaths: 0,
    staleDeaths: 0,
    gaps: 0,
    dataBeforeBirth: 0,
    rebirthsRequested: 0,
    rebirthsSuppressed: 0,
    badMessages: 0,
    badTopics: 0,
    refused: 0,
  };

  constructor(runtime: Runtime, context: ConventionContext, options: SparkplugOptions) {
    const hostId = options.hostId ?? 'fleetvisor';
    super(runtime, 'server', `sparkplug:${hostId}`);
    this.fleet = context.fleet;
    this.store = context.store;
    this.broker = context.broker;
    this.options = options;
    this.hostId = hostId;
    this.groups = options.groups && options.groups.length > 0 ? [...options.groups] : undefined;
    this.adoptMode = options.adopt ?? 'auto';
    this.commandTimeoutMs = options.commandTimeoutMs ?? 10_000;
    this.carrier = createSparkplugCarrier({
      fleet: this.fleet,
      target: this,
      replyTimeoutMs: this.commandTimeoutMs,
    });
    this.rebirthMinIntervalMs = options.rebirthMinIntervalMs ?? 5000;
    this.maxRebirthsPerMinute = options.maxRebirthsPerMinute ?? 6;
    this.rebirthOnConnect = options.rebirthOnConnect ?? true;
    this.maxPayloadBytes = options.maxPayloadBytes ?? 1024 * 1024;
    this.maxErrorEvents = options.maxErrorEventsPerMinute ?? 10;
    this.eventLog = createDeviceEventLog({
      runtime,
      store: this.store,
      maxPerWindow: this.maxErrorEvents,
      windowMs: 60_000,
    });
    this.reconnectOptions = { ...DEFAULT_RECONNECT, ...options.reconnect };
    this.reconnect = new ReconnectSchedule(
      runtime,
      this.pid,
      this.reconnectOptions,
      options.random,
      'sparkplug',
    );
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
    if (!this.broker) {
      this.state = 'noBroker';
      this.runtime.logger.warn('Sparkplug bridge idle: the app runs without an MQTT broker', {
        bridge: this.name,
      });
      return;
    }
    this.openClient();
  }

  // ---- the public face ----

  stats(): SparkplugBridgeStats {
    const c = this.counters;
    let nodesOnline = 0;
    for (const s of this.sessions.values()) if (s.born) nodesOnline++;
    return {
      state: this.state,
      connected: this.state === 'connected',
      reconnects: c.reconnects,
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
      nodesOnline,
      hosts: Object.fromEntries(this.hostStates),
    };
  }

  /** The session of one edge node, by fleet id. */
  node(id: string): SparkplugNodeView | undefined {
    for (const s of this.sessions.values()) {
      if (s.id !== id || s.refusal !== undefined) continue; // a refused name owns nothing
      return {
        id: s.id,
        group: s.group,
        node: s.node,
        born: s.born,
        bdSeq: s.bdSeq,
        seq: s.seq,
        gaps: s.gaps,
        rebirthsRequested: s.rebirths,
        devices: [...s.devices.values()].map((d) => ({ id: d.id, device: d.device, born: d.born })),
      };
    }
    return undefined;
  }

  /** Nodes and devices seen with `adopt: 'manual'` (or that could not be added). */
  discovered(): DiscoveredSparkplug[] {
    return [...this.discoveredMap.values()];
  }

  /** Adds a discovered node or device to the fleet and asks its node for a rebirth. */
  async adopt(id: string): Promise<{ ok: true } | { ok: false; error: { code: string; message: string } }> {
    const d = this.discoveredMap.get(id);
    if (!d)
      return {
        ok: false,
        error: { code: 'notFound', message: `no discovered Sparkplug device '${id.slice(0, 80)}'` },
      };
    const r = await this.fleet.addDevice(this.addInput(d.kind, id, d.attributes));
    if (!r.ok && r.error.code !== 'alreadyExists') return { ok: false, error: r.error };
    this.discoveredMap.delete(id);
    const s = this.sessions.get(this.key(String(d.attributes.group), String(d.attributes.node)));
    if (s) {
      s.rebirthAskedAt = null;
      this.requestRebirth(s, 'adopted: its birth is needed', false);
    }
    return { ok: true };
  }

  /** Asks an edge node (by fleet id) for its births now; false when not connected or not known. */
  rebirth(nodeId: string, reason = 'asked for'): boolean {
    const s = this.sessionOfFleetNode(nodeId);
    if (!s) return false;
    s.rebirthAskedAt = null;
    return this.requestRebirth(s, reason, false);
  }

  /** Resolves when the messages received so far are handled and their store writes are done. */
  async flush(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((s) => s.queue));
    this.writeShownValues();
    while (this.storeWrites.size > 0) await Promise.all([...this.storeWrites]);
    await this.eventLog.flush();
    await this.fleet.commands.flush(); // the outcomes of its commands
  }

  // ---- process lifecycle ----

  protected async terminate(_reason: ExitReason): Promise<void> {
    const client = this.client;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    this.cancelTimers();
    this.client = undefined;
    this.dropSessions('the Sparkplug bridge stopped');
    this.carrier.close();
    if (client) {
      await new Promise<void>((resolve) => {
        const force = this.runtime.timers.schedule(2000, () => client.end(true, {}, () => resolve()), {
          owner: this.pid,
          label: 'sparkplug.close',
        });
        const end = () =>
          client.end(false, {}, () => {
            this.runtime.timers.cancel(force);
            resolve();
          });
        // A graceful goodbye: our STATE death, retained, before the DISCONNECT (which drops the will).
        if (wasConnected)
          client.publish(
            stateTopic(this.hostId),
            encodeStatePayload(false, this.stateTimestamp),
            { qos: 1, retain: true },
            end,
          );
        else end();
      });
    }
    await this.flush().catch(() => {});
    await this.eventLog.close(); // the rate-limited events' summaries
  }

  protected override release(): void {
    this.state = 'closed';
    this.cancelTimers();
    if (this.shownTimer) this.runtime.timers.cancel(this.shownTimer);
    this.shownTimer = undefined;
    void this.eventLog.close();
    // Killed: its open commands stay with the tracker and end by their reply time.
    this.carrier.close();
    const client = this.client;
    this.client = undefined;
    client?.end(true);
  }

  // ---- the connection ----

  private openClient(): void {
    const broker = this.broker!;
    this.state = 'connecting';
    this.stateTimestamp = this.runtime.clock.wallNow();
    const o = this.options;
    const clientOptions: IClientOptions = {
      ...hostClientOptions(broker, {
        clientId: o.clientId ?? `${this.hostId}-sparkplug-host`,
        connectTimeoutMs: o.connectTimeoutMs,
        keepaliveMs: o.keepaliveMs,
      }),
      will: {
        topic: stateTopic(this.hostId),
        payload: encodeStatePayload(false, this.stateTimestamp),
        qos: 1,
        retain: true,
      },
    };
    const client = connect(broker.url, clientOptions);
    this.client = client;
    const current = () => client === this.client && this.status === 'running';
    client.on('connect', () => {
      if (current()) this.onConnected(client);
    });
    client.on('message', (topic, payload) => {
      if (!current()) return;
      try {
        this.onPublish(topic, payload);
      } catch (error) {
        this.runtime.report(
          `Sparkplug bridge ${this.name}: handling ${topic.slice(0, 140)} threw`,
          error,
          this.pid,
        );
      }
    });
    client.on('error', (error) => {
      if (!current()) return;
      this.lastError = error;
      this.runtime.logger.debug('Sparkplug MQTT client error', { bridge: this.name, error: error.message });
    });
    client.on('close', () => {
      if (current()) this.onDropped(client);
    });
  }

  /** CONNACK: our STATE topic and the namespace first, then our STATE birth (Sparkplug 3.0 §host). */
  private onConnected(client: MqttClient): void {
    const filters: Record<string, { qos: 0 | 1 }> = { [stateTopic(this.hostId)]: { qos: 1 } };
    for (const g of this.groups ?? ['+']) filters[`${SPARKPLUG_NAMESPACE}/${g}/#`] = { qos: 1 };
    client.subscribe(filters, (error, granted) => {
      if (client !== this.client || this.status !== 'running') return;
      if (error) {
        this.lastError = error;
        this.runtime.logger.warn('Sparkplug subscribe failed', { bridge: this.name, error: error.message });
        return;
      }
      const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
      if (refused.length > 0)
        this.runtime.report(
          `Sparkplug bridge ${this.name}: broker refused subscriptions ${refused.join(', ')}`,
        );
      this.publishOnline(client);
      this.onReady();
    });
  }

  private publishOnline(client: MqttClient): void {
    client.publish(stateTopic(this.hostId), encodeStatePayload(true, this.stateTimestamp), {
      qos: 1,
      retain: true,
    });
  }

  private onReady(): void {
    this.state = 'connected';
    this.lastError = undefined;
    this.runtime.logger.info(this.everConnected ? 'Sparkplug host reconnected' : 'Sparkplug host online', {
      bridge: this.name,
      url: this.broker?.url,
      hostId: this.hostId,
      reconnects: this.counters.reconnects,
    });
    this.everConnected = true;
    this.reconnect.connected();
    // What the fleet remembers (a restored `connected`) is not a birth of this session.
    const nodes: DeviceView[] = [];
    for (const d of this.fleet.list()) {
      if (d.kind !== SPARKPLUG_NODE_KIND && d.kind !== SPARKPLUG_DEVICE_KIND) continue;
      const group = d.attributes.group;
      const node = d.attributes.node;
      if (typeof group !== 'string' || typeof node !== 'string' || !this.followsGroup(group)) continue;
      const s = this.sessions.get(this.key(group, node));
      const device = d.attributes.device;
      const born =
        d.kind === SPARKPLUG_NODE_KIND
          ? s?.born
          : typeof device === 'string' && s?.born && s.devices.get(device)?.born;
      if (!born && (d.link.up || d.link.since === null))
        this.fleet.linkDown(d.id, 'no birth yet since the host connected');
      if (d.kind === SPARKPLUG_NODE_KIND && !s?.born) nodes.push(d);
    }
    if (this.rebirthOnConnect)
      for (const d of nodes) {
        const s = this.session(String(d.attributes.group), String(d.attributes.node));
        this.requestRebirth(s, 'the host (re)connected');
      }
  }

  private onDropped(client: MqttClient): void {
    const wasConnected = this.state === 'connected';
    this.client = undefined;
    client.end(true);
    this.cancelTimers();
    if (wasConnected) this.dropSessions('the host lost the broker connection');
    const delayMs = this.reconnect.nextDelay();
    this.state = 'backoff';
    this.runtime.logger.warn(
      wasConnected ? 'Sparkplug host lost the broker' : 'Sparkplug host could not connect',
      { bridge: this.name, url: this.broker?.url, error: this.lastError?.message, retryInMs: delayMs },
    );
    this.reconnect.retryIn(delayMs, () => {
      if (this.status !== 'running') return;
      this.counters.reconnects++;
      this.openClient();
    });
  }

  private cancelTimers(): void {
    this.reconnect.cancel();
  }

  /** Every birth is void: deaths may pass unseen while we are away. */
  private dropSessions(reason: string): void {
    for (const s of this.sessions.values()) {
      const wasBorn = s.born;
      s.born = false;
      s.seq = null;
      s.rebirthAskedAt = null;
      for (const d of s.devices.values()) {
        if (d.born && d.id) this.fleet.linkDown(d.id, reason);
        d.born = false;
      }
      if (wasBorn && s.id) this.fleet.linkDown(s.id, reason);
    }
  }

  // ---- messages ----

  private onPublish(topic: string, payload: Buffer): void {
    this.counters.received++;
    const t = parseSparkplugTopic(topic);
    if (!t.ok) {
      this.counters.badTopics++;
      const now = this.runtime.clock.wallNow();
      if (now - this.lastBadTopicLog >= 60_000) {
        this.lastBadTopicLog = now;
        this.runtime.logger.warn('not a Sparkplug B topic', {
          bridge: this.name,
          topic: topic.slice(0, 140),
          error: t.error,
        });
      }
      return;
    }
    const m = t.value;
    if (m.kind === 'state') {
      this.onState(m.hostId, payload);
      return;
    }
    if (m.type === 'NCMD' || m.type === 'DCMD') return; // commands: ours, or another host's
    if (!this.followsGroup(m.group)) return;
    const s = this.session(m.group, m.node);
    const decoded = decodeSparkplugPayload(payload, { maxBytes: this.maxPayloadBytes });
    const run = (): void | Promise<void> => {
      switch (m.type) {
        case 'NBIRTH':
          return this.onNodeBirth(s, decoded);
        case 'NDEATH':
          return this.onNodeDeath(s, decoded);
        case 'NDATA':
          return this.onData(s, undefined, decoded, m.type);
        case 'DBIRTH':
          return this.onDeviceBirth(s, this.deviceSession(s, m.device), decoded);
        case 'DDEATH':
          return this.onDeviceDeath(s, this.deviceSession(s, m.device), decoded);
        case 'DDATA':
          return this.onData(s, this.deviceSession(s, m.device), decoded, m.type);
      }
    };
    s.queue = s.queue.then(run).catch((error: unknown) => {
      this.runtime.report(
        `Sparkplug bridge ${this.name}: ${m.type} of ${m.group}/${m.node} threw`,
        error,
        this.pid,
      );
    });
  }

  private onState(hostId: string, payload: Buffer): void {
    const st = parseStatePayload(payload);
    if (!st) return; // a cleared retain, or a host speaking something else: not ours to judge
    if (hostId !== this.hostId) {
      this.hostStates.set(hostId, st);
      return;
    }
    // Our own id offline while we are connected: a late will (or a twin). Say we are here.
    if (!st.online && this.state === 'connected' && this.client) {
      this.runtime.logger.info('our STATE read offline while connected: publishing online again', {
        bridge: this.name,
        hostId,
      });
      this.publishOnline(this.client);
    }
  }

  private async onNodeBirth(s: NodeSession, decoded: Decoded): Promise<void> {
    if (!s.id) {
      this.refuseName(s.group, s.node, undefined, s.refusal!);
      return;
    }
    // Each birth asks again: the device that held the id may have been removed since.
    s.refusal = undefined;
    const held = this.claim(SPARKPLUG_NODE_KIND, s.id, { group: s.group, node: s.node });
    if (held !== 'mine' && held !== 'free') {
      this.refuseNode(s, held.taken);
      return;
    }
    if (!decoded.ok) {
      if (held === 'mine') this.badMessage(s.id, decoded.error.code, `NBIRTH: ${decoded.error.message}`);
      this.requestRebirth(s, 'its NBIRTH could not be read');
      return;
    }
    const p = decoded.value;
    const ensured = await this.ensure(SPARKPLUG_NODE_KIND, s.id, { group: s.group, node: s.node });
    if (ensured !== 'mine') {
      if (ensured === 'waiting') s.waiting = true;
      else this.refuseNode(s, ensured.refused);
      return;
    }
    s.waiting = false;
    if (this.state !== 'connected') return;
    this.counters.births++;
    const table = this.birthTable(s.id, 'NBIRTH', p.metrics);
    const bdSeqMetric = p.metrics.find((m) => m.name === BDSEQ_METRIC);
    s.born = true;
    s.bdSeq = bdSeqMetric ? (numberOrUndefined(bdSeqMetric.value) ?? null) : null;
    s.seq = p.seq ?? null;
    if (p.seq === undefined) this.badMessage(s.id, 'noSeq', 'NBIRTH without seq');
    s.metrics = table;
    s.rebirthAskedAt = null;
    for (const d of s.devices.values()) {
      if (!d.born) continue;
      d.born = false;
      if (d.id)
        this.sendMachine(d.id, { type: 'STALE', reason: 'its edge node was reborn; waiting for its DBIRTH' });
    }
    const firmware = firmwareOf(p.metrics);
    s.shown = statusMetrics(table, p.metrics);
    this.fleet.linkUp(s.id, { via: VIA, firmware: firmware ?? '' });
    this.reportStatus(s.id, {
      convention: 'sparkplug',
      group: s.group,
      node: s.node,
      hostId: this.hostId,
      bdSeq: s.bdSeq,
      birthAt: p.timestamp ?? this.runtime.clock.wallNow(),
      firmware,
      metrics: s.shown.map((m) => ({ ...m })),
    });
    this.applyValues(s.id, table, p, 'NBIRTH');
    this.carrier.nodeBorn(s.id, p.seq ?? null);
    this.runtime.logger.debug('Sparkplug edge node born', { bridge: this.name, id: s.id, bdSeq: s.bdSeq });
  }

  private async onDeviceBirth(s: NodeSession, d: DeviceSession, decoded: Decoded): Promise<void> {
    if (s.refusal !== undefined) {
      this.counters.refused++; // its node's refusal, written once, says it
      return;
    }
    if (!d.id) {
      this.keepSeq(s, decoded, 'DBIRTH');
      this.refuseName(s.group, s.node, d.device, d.refusal!);
      return;
    }
    d.refusal = undefined;
    const attributes = { group: s.group, node: s.node, device: d.device };
    const held = this.claim(SPARKPLUG_DEVICE_KIND, d.id, attributes);
    if (held !== 'mine' && held !== 'free') {
      this.keepSeq(s, decoded, 'DBIRTH');
      this.refuseDevice(s, d, held.taken);
      return;
    }
    if (!decoded.ok) {
      if (held === 'mine') this.badMessage(d.id, decoded.error.code, `DBIRTH: ${decoded.error.message}`);
      this.requestRebirth(s, `the DBIRTH of ${d.device} could not be read`);
      return;
    }
    const p = decoded.value;
    if (!s.born) {
      if (!s.waiting) this.beforeBirth(s, d, `DBIRTH of ${d.device} before the NBIRTH`);
      return;
    }
    this.checkSeq(s, p.seq, 'DBIRTH');
    const ensured = await this.ensure(SPARKPLUG_DEVICE_KIND, d.id, attributes);
    if (ensured !== 'mine') {
      // Its seq was counted above: the node's stream goes on.
      if (ensured === 'waiting') d.waiting = true;
      else this.refuseDevice(s, d, ensured.refused);
      return;
    }
    d.waiting = false;
    if (this.state !== 'connected') return;
    this.counters.births++;
    const table = this.birthTable(d.id, 'DBIRTH', p.metrics);
    d.born = true;
    d.metrics = table;
    const firmware = firmwareOf(p.metrics);
    d.shown = statusMetrics(table, p.metrics);
    this.fleet.linkUp(d.id, { via: VIA, firmware: firmware ?? '' });
    this.reportStatus(d.id, {
      convention: 'sparkplug',
      group: s.group,
      node: s.node,
      device: d.device,
      parent: s.id ?? null,
      birthAt: p.timestamp ?? this.runtime.clock.wallNow(),
      firmware,
      metrics: d.shown.map((m) => ({ ...m })),
    });
    this.applyValues(d.id, table, p, 'DBIRTH');
  }

  private onData(
    s: NodeSession,
    d: DeviceSession | undefined,
    decoded: Decoded,
    type: 'NDATA' | 'DDATA',
  ): void {
    const id = d ? d.id : s.id;
    // A refused name owns nothing and asks for nothing: no events, no rebirth.
    const refusal = s.refusal ?? d?.refusal;
    if (refusal !== undefined || !id) {
      this.keepSeq(s, decoded, type);
      const device = s.refusal !== undefined ? undefined : d?.device;
      this.refuseName(s.group, s.node, device, refusal ?? 'no fleet id');
      return;
    }
    if (!decoded.ok) {
      const own = d ? this.ownDevice(s, d) : this.ownNode(s);
      if (own) this.badMessage(own, decoded.error.code, `${type}: ${decoded.error.message}`);
      return;
    }
    const p = decoded.value;
    if (!s.born) {
      // A birth seen but waiting for the operator (or a failed add) asks no rebirth: adopt does.
      this.beforeBirth(s, d, `${type} before the NBIRTH${d ? ` (device ${d.device})` : ''}`, !s.waiting);
      return;
    }
    this.checkSeq(s, p.seq, type);
    if (d && !d.born) {
      this.beforeBirth(s, d, `DDATA of ${d.device} before its DBIRTH`, !d.waiting);
      return;
    }
    if (!this.fleet.has(id)) {
      // Removed from the fleet meanwhile (or never adopted): its birth brings it back.
      if (this.adoptMode === 'auto') this.requestRebirth(s, `${id} is not in the fleet`);
      return;
    }
    this.applyValues(id, d ? d.metrics : s.metrics, p, type, d ? d.shown : s.shown);
  }

  private onNodeDeath(s: NodeSession, decoded: Decoded): void {
    // Only the node that holds the id may take it down: a refused name's death is not its.
    const own = this.ownNode(s);
    if (!own || !s.id) {
      if (s.refusal !== undefined) this.counters.refused++;
      s.born = false;
      s.seq = null;
      return;
    }
    let bdSeq: number | undefined;
    if (decoded.ok) {
      const m = decoded.value.metrics.find((x) => x.name === BDSEQ_METRIC);
      bdSeq = m ? numberOrUndefined(m.value) : undefined;
    } else this.badMessage(s.id, decoded.error.code, `NDEATH: ${decoded.error.message} (taken as a death)`);
    if (s.born && s.bdSeq !== null && bdSeq !== undefined && bdSeq !== s.bdSeq) {
      this.counters.staleDeaths++;
      this.runtime.logger.debug('stale NDEATH ignored', {
        bridge: this.name,
        id: s.id,
        bdSeq,
        current: s.bdSeq,
      });
      return;
    }
    this.counters.deaths++;
    const reason = `NDEATH${bdSeq !== undefined ? ` (bdSeq ${bdSeq})` : ''}`;
    s.born = false;
    s.seq = null;
    s.rebirthAskedAt = null;
    for (const d of s.devices.values()) d.born = false;
    this.fleet.linkDown(s.id, reason); // its sent commands end `linkLost` (the tracker)
    // Every device of the node, also those born before this bridge started.
    for (const v of this.fleet.list())
      if (
        v.kind === SPARKPLUG_DEVICE_KIND &&
        v.attributes.group === s.group &&
        v.attributes.node === s.node
      ) {
        this.fleet.linkDown(v.id, `its edge node died (${reason})`);
      }
    this.runtime.logger.debug('Sparkplug edge node died', { bridge: this.name, id: s.id, reason });
  }

  private onDeviceDeath(s: NodeSession, d: DeviceSession, decoded: Decoded): void {
    const own = this.ownDevice(s, d);
    if (!own || !d.id) {
      this.keepSeq(s, decoded, 'DDEATH');
      if (s.refusal !== undefined || d.refusal !== undefined) this.counters.refused++;
      d.born = false;
      return;
    }
    if (decoded.ok && s.born) this.checkSeq(s, decoded.value.seq, 'DDEATH');
    else if (!decoded.ok)
      this.badMessage(d.id, decoded.error.code, `DDEATH: ${decoded.error.message} (taken as a death)`);
    this.counters.deaths++;
    d.born = false;
    if (this.fleet.has(d.id)) this.fleet.linkDown(d.id, 'DDEATH');
  }

  /**
   * A refused (or not adopted) device's message is still one of its node's seq: counted, so that
   * refusing a device makes no gap (and no rebirth) on an accepted node.
   */
  private keepSeq(s: NodeSession, decoded: Decoded, type: string): void {
    if (s.refusal === undefined && s.born && decoded.ok) this.checkSeq(s, decoded.value.seq, type);
  }

  private checkSeq(s: NodeSession, seq: number | undefined, type: string): void {
    if (seq === undefined) {
      const own = this.ownNode(s);
      if (own) this.badMessage(own, 'noSeq', `${type} without seq`);
      return;
    }
    if (s.seq === null) {
      s.seq = seq;
      return;
    }
    const expected = (s.seq + 1) % 256;
    s.seq = seq;
    if (seq === expected) return;
    s.gaps++;
    this.counters.gaps++;
    this.runtime.logger.warn('Sparkplug seq gap', { bridge: this.name, id: s.id, type, expected, got: seq });
    this.requestRebirth(s, `seq gap: expected ${expected}, got ${seq} (${type})`);
  }

  /**
   * Counted always; written as a `sparkplug.dataBeforeBirth` event (and a log line) at most
   * `maxErrorEventsPerMinute` times per node or device, the rest summed up when the window closes.
   */
  private beforeBirth(s: NodeSession, d: DeviceSession | undefined, what: string, askRebirth = true): void {
    this.counters.dataBeforeBirth++;
    const own = d ? this.ownDevice(s, d) : this.ownNode(s);
    const data = { group: s.group, node: s.node, device: d?.device ?? null, what };
    if (this.eventLog.limited('sparkplug.dataBeforeBirth', own, data))
      this.runtime.logger.info('Sparkplug data before birth', {
        bridge: this.name,
        node: `${s.group}/${s.node}`,
        what,
        total: this.counters.dataBeforeBirth,
      });
    if (askRebirth) this.requestRebirth(s, what);
  }

  /**
   * NCMD `Node Control/Rebirth = true` at QoS 0, unless one is unanswered and recent. The node
   * and its born devices go `stale` until the NBIRTH.
   */
  private requestRebirth(s: NodeSession, reason: string, automatic = true): boolean {
    const client = this.client;
    if (!client || this.state !== 'connected') return false;
    if (s.refusal !== undefined) return false; // its births would be refused again: never loop
    const now = this.runtime.clock.wallNow();
    if (s.rebirthAskedAt !== null && now - s.rebirthAskedAt < this.rebirthMinIntervalMs) {
      this.counters.rebirthsSuppressed++;
      return false;
    }
    if (automatic && !this.rebirthBudget(s, reason, now)) return false;
    s.rebirthAskedAt = now;
    s.rebirths++;
    this.counters.rebirthsRequested++;
    client.publish(
      commandTopic(s.group, s.node),
      Buffer.from(encodeSparkplugCommand([{ name: REBIRTH_METRIC, datatype: 'Boolean', value: true }], now)),
      { qos: 0, retain: false },
    );
    this.runtime.logger.warn('Sparkplug rebirth requested', {
      bridge: this.name,
      node: `${s.group}/${s.node}`,
      reason,
    });
    const own = this.ownNode(s);
    if (own) {
      this.logEvent('device.rebirthRequested', own, { reason });
      if (s.born) {
        this.sendMachine(own, { type: 'STALE', reason: `rebirth requested: ${reason}` });
        for (const d of s.devices.values())
          if (d.born && d.id)
            this.sendMachine(d.id, { type: 'STALE', reason: `rebirth of its node requested: ${reason}` });
      }
    }
    return true;
  }

  /** The host's own requests to one node: at most `maxRebirthsPerMinute`, noted once per minute past it. */
  private rebirthBudget(s: NodeSession, reason: string, now: number): boolean {
    const w = s.rebirthWindow;
    if (now - w.start >= 60_000) {
      w.start = now;
      w.count = 0;
      w.noted = false;
    }
    if (w.count < this.maxRebirthsPerMinute) {
      w.count++;
      return true;
    }
    this.counters.rebirthsSuppressed++;
    if (!w.noted) {
      w.noted = true;
      const data = {
        group: s.group,
        node: s.node,
        limit: this.maxRebirthsPerMinute,
        windowMs: 60_000,
        reason,
      };
      this.logEvent('sparkplug.rebirthsThrottled', this.ownNode(s), data);
      this.runtime.logger.warn('Sparkplug rebirth requests throttled', { bridge: this.name, ...data });
    }
    return false;
  }

  /** Telemetry, the values shown in the status (`shown`), and the writes whose value came back. */
  private applyValues(
    id: string,
    table: MetricTable,
    p: SparkplugPayload,
    type: string,
    shown?: StatusMetric[],
  ): void {
    const byTs = new Map<number | null, Record<string, number>>();
    let shownChanged = false;
    for (const m of p.metrics) {
      const def = this.resolve(id, table, m, type);
      if (!def) continue;
      if (m.name === BDSEQ_METRIC && type === 'NBIRTH') continue;
      const value = valueAs(m, def.datatype);
      if (value === null) continue;
      if (shown) {
        const json = scalarJson(def.datatype, value);
        const entry = shown.find((e) => e.name === def.name);
        if (entry && json !== undefined && entry.value !== json) {
          entry.value = json;
          shownChanged = true;
        }
      }
      this.carrier.valueReported(id, def.name, def.datatype, value, type);
      if (CONTROL_PREFIXES.some((prefix) => def.name.startsWith(prefix))) continue;
      const n = telemetryValue(def.datatype, value);
      if (n === undefined) continue;
      const ts = m.timestamp ?? p.timestamp ?? null;
      let values = byTs.get(ts);
      if (!values) {
        values = {};
        byTs.set(ts, values);
      }
      values[def.name] = n;
    }
    if (shown && shownChanged) this.showValues(id, shown);
    for (const [ts, values] of byTs)
      void this.fleet.ingestTelemetry(id, values, ts).then((r) => {
        if (!r.ok)
          this.runtime.logger.warn('Sparkplug telemetry not stored', {
            bridge: this.name,
            id,
            error: r.error.message,
          });
      });
  }

  /** The birth's definition of a metric (by alias or name); a bad one is reported and skipped. */
  private resolve(id: string, table: MetricTable, m: SparkplugMetric, type: string): MetricDef | undefined {
    let def: MetricDef | undefined;
    if (m.name !== undefined) {
      def = table.byName.get(m.name);
      if (!def) {
        this.badMessage(id, 'unknownMetric', `${type}: metric '${m.name.slice(0, 100)}' is not in the birth`);
        return undefined;
      }
    } else if (m.alias !== undefined) {
      def = table.byAlias.get(m.alias);
      if (!def) {
        this.badMessage(id, 'unknownAlias', `${type}: alias ${m.alias} is not in the birth`);
        return undefined;
      }
    } else {
      this.badMessage(id, 'noName', `${type}: a metric with neither name nor alias`);
      return undefined;
    }
    if (m.datatype !== undefined && m.datatype !== def.datatype) {
      this.badMessage(
        id,
        'wrongDatatype',
        `${type}: metric '${def.name.slice(0, 100)}' is ${def.datatype} in the birth, ${m.datatype} here`,
      );
      return undefined;
    }
    return def;
  }

  private birthTable(id: string, type: string, metrics: readonly SparkplugMetric[]): MetricTable {
    const table = emptyTable();
    for (const m of metrics) {
      if (m.name === undefined || m.datatype === undefined) {
        this.badMessage(
          id,
          'badBirth',
          `${type}: a metric without ${m.name === undefined ? 'name' : `datatype ('${m.name.slice(0, 100)}')`}`,
        );
        continue;
      }
      const def: MetricDef = { name: m.name, datatype: m.datatype, alias: m.alias ?? null };
      table.byName.set(m.name, def);
      if (m.alias !== undefined) {
        const other = table.byAlias.get(m.alias);
        if (other && other.name !== m.name)
          this.badMessage(
            id,
            'duplicateAlias',
            `${type}: alias ${m.alias} names both '${other.name}' and '${m.name}'`,
          );
        table.byAlias.set(m.alias, def);
      }
    }
    return table;
  }

  // ---- the fleet ----

  private key(group: string, node: string): string {
    return `${group}\u0000${node}`;
  }

  private followsGroup(group: string): boolean {
    return this.groups === undefined || this.groups.includes(group);
  }

  private session(group: string, node: string): NodeSession {
    const key = this.key(group, node);
    let s = this.sessions.get(key);
    if (!s) {
      const id = sparkplugFleetId(group, node);
      s = {
        group,
        node,
        id: id.ok ? id.value : undefined,
        refusal: id.ok ? undefined : id.error,
        waiting: false,
        born: false,
        shown: [],
        bdSeq: null,
        seq: null,
        metrics: emptyTable(),
        devices: new Map(),
        rebirthAskedAt: null,
        rebirthWindow: { start: 0, count: 0, noted: false },
        gaps: 0,
        rebirths: 0,
        queue: Promise.resolve(),
      };
      this.sessions.set(key, s);
    }
    return s;
  }

  private deviceSession(s: NodeSession, device: string): DeviceSession {
    let d = s.devices.get(device);
    if (!d) {
      const id = sparkplugFleetId(s.group, s.node, device);
      d = {
        device,
        id: id.ok ? id.value : undefined,
        refusal: id.ok ? undefined : id.error,
        waiting: false,
        born: false,
        metrics: emptyTable(),
        shown: [],
      };
      s.devices.set(device, d);
    }
    return d;
  }

  private sessionOfFleetNode(nodeId: string): NodeSession | undefined {
    const v = this.fleet.device(nodeId);
    if (!v || v.kind !== SPARKPLUG_NODE_KIND) return undefined;
    const { group, node } = v.attributes;
    if (typeof group !== 'string' || typeof node !== 'string') return undefined;
    return this.session(group, node);
  }

  private addInput(kind: string, id: string, attributes: JsonObject) {
    const group = String(attributes.group);
    const node = String(attributes.node);
    if (kind === SPARKPLUG_NODE_KIND)
      return {
        id,
        kind,
        name: `${group}/${node}`,
        tags: ['sparkplug', `group:${safeIdPart(group)}`],
        attributes,
      };
    // A device id is longer than its node's, so the node's id is valid too.
    const parent = sparkplugFleetId(group, node);
    return {
      id,
      kind,
      name: `${group}/${node}/${String(attributes.device)}`,
      tags: ['sparkplug', `node:${parent.ok ? parent.value : ''}`],
      attributes,
    };
  }

  /**
   * Who holds a name's fleet id: `mine` (the fleet has it, of this kind and these names), `free`
   * (nobody: it may be adopted), or why another device holds it. Only `mine` lets a message act.
   */
  private claim(kind: string, id: string, attributes: JsonObject): 'mine' | 'free' | { taken: string } {
    const v = this.fleet.device(id);
    if (!v) return 'free';
    if (
      v.kind === kind &&
      v.attributes.group === attributes.group &&
      v.attributes.node === attributes.node &&
      v.attributes.device === attributes.device
    )
      return 'mine';
    const mine = `${attributes.group}/${attributes.node}${attributes.device !== undefined ? `/${attributes.device}` : ''}`;
    const theirs =
      v.kind === SPARKPLUG_NODE_KIND || v.kind === SPARKPLUG_DEVICE_KIND
        ? `Sparkplug ${[v.attributes.group, v.attributes.node, v.attributes.device].filter((x) => x !== undefined).join('/')}`
        : `a ${v.kind} device`;
    return {
      taken: `fleet id '${id}' of ${mine} is already taken by ${theirs} (names differing only in characters outside [A-Za-z0-9_-] map to the same id)`,
    };
  }

  /** The node's fleet id when the fleet holds it as this node; a refused name owns nothing. */
  private ownNode(s: NodeSession): string | undefined {
    if (!s.id || s.refusal !== undefined) return undefined;
    return this.claim(SPARKPLUG_NODE_KIND, s.id, { group: s.group, node: s.node }) === 'mine'
      ? s.id
      : undefined;
  }

  /** The device's fleet id when the fleet holds it as this device (and its node is not refused). */
  private ownDevice(s: NodeSession, d: DeviceSession): string | undefined {
    if (!d.id || d.refusal !== undefined || s.refusal !== undefined) return undefined;
    const attributes = { group: s.group, node: s.node, device: d.device };
    return this.claim(SPARKPLUG_DEVICE_KIND, d.id, attributes) === 'mine' ? d.id : undefined;
  }

  /**
   * The node or device is in the fleet (adopted now if `auto`): `mine`; `waiting` (manual, or the
   * add failed); or refused, its id held by another device (written once as `sparkplug.refused`).
   */
  private async ensure(
    kind: string,
    id: string,
    attributes: JsonObject,
  ): Promise<'mine' | 'waiting' | { refused: string }> {
    const held = this.claim(kind, id, attributes);
    if (held === 'mine') {
      this.refusedKeys.delete(this.refusedKey(attributes)); // a later refusal is said again
      return 'mine';
    }
    if (held !== 'free') {
      this.refuseName(
        String(attributes.group),
        String(attributes.node),
        attributes.device as string | undefined,
        held.taken,
      );
      return { refused: held.taken };
    }
    const now = this.runtime.clock.wallNow();
    const prev = this.discoveredMap.get(id);
    if (this.adoptMode === 'manual') {
      if (!prev) {
        this.runtime.logger.info('Sparkplug device waits for adoption', { bridge: this.name, id, kind });
        this.logEvent('device.discovered', id, { kind, via: VIA, reason: 'manual', ...attributes });
      }
      this.discoveredMap.set(id, {
        id,
        kind,
        attributes,
        firstSeen: prev?.firstSeen ?? now,
        lastSeen: now,
        reason: 'manual',
      });
      return 'waiting';
    }
    const r = await this.fleet.addDevice(this.addInput(kind, id, attributes));
    if (!r.ok && r.error.code === 'alreadyExists') {
      // Added meanwhile: by this name's own earlier birth, or by another device (then refused).
      const now = this.claim(kind, id, attributes);
      if (now !== 'mine' && now !== 'free') {
        this.refuseName(
          String(attributes.group),
          String(attributes.node),
          attributes.device as string | undefined,
          now.taken,
        );
        return { refused: now.taken };
      }
    }
    if (!r.ok && r.error.code !== 'alreadyExists') {
      this.discoveredMap.set(id, {
        id,
        kind,
        attributes,
        firstSeen: prev?.firstSeen ?? now,
        lastSeen: now,
        reason: `addFailed: ${r.error.message}`,
      });
      this.runtime.logger.warn('Sparkplug device could not be adopted', {
        bridge: this.name,
        id,
        error: r.error.message,
      });
      return 'waiting';
    }
    this.discoveredMap.delete(id);
    this.refusedKeys.delete(this.refusedKey(attributes));
    this.runtime.logger.debug('Sparkplug device adopted', { bridge: this.name, id, kind });
    return 'mine';
  }

  /** The node's name is refused: it and its devices own nothing (their births come back refused). */
  private refuseNode(s: NodeSession, reason: string): void {
    s.refusal = reason;
    s.born = false;
    s.seq = null;
    s.waiting = false;
    for (const d of s.devices.values()) d.born = false;
    this.refuseName(s.group, s.node, undefined, reason);
  }

  private refuseDevice(s: NodeSession, d: DeviceSession, reason: string): void {
    d.refusal = reason;
    d.born = false;
    d.waiting = false;
    this.refuseName(s.group, s.node, d.device, reason);
  }

  private refusedKey(attributes: JsonObject): string {
    return `${String(attributes.group)}\u0000${String(attributes.node)}\u0000${attributes.device === undefined ? '' : String(attributes.device)}`;
  }

  /** Counted each time; written once per name (a `sparkplug.refused` event and a log line). */
  private refuseName(group: string, node: string, device: string | undefined, reason: string): void {
    this.counters.refused++;
    const key = this.refusedKey({ group, node, ...(device !== undefined ? { device } : {}) });
    if (this.refusedKeys.has(key)) return;
    this.refusedKeys.add(key);
    this.runtime.logger.warn('Sparkplug name refused', { bridge: this.name, reason });
    this.logEvent('sparkplug.refused', undefined, { group, node, device: device ?? null, reason });
  }

  private sendMachine(id: string, event: SparkplugEvent): void {
    const p = this.fleet.machineOf(id);
    if (p?.alive) p.send(event as never);
  }

  private reportStatus(id: string, status: JsonObject): void {
    this.track(
      this.fleet.reportStatus(id, status).then((r) => {
        if (!r.ok)
          this.runtime.logger.warn('Sparkplug status not stored', {
            bridge: this.name,
            id,
            error: r.error.message,
          });
      }),
    );
  }

  private badMessage(id: string, code: string, message: string): void {
    this.counters.badMessages++;
    const data = { code, message: message.slice(0, 300), via: VIA };
    if (this.eventLog.limited('device.badMessage', id, data))
      this.runtime.logger.warn('bad Sparkplug message', { bridge: this.name, deviceId: id, code, message });
  }

  private logEvent(kind: string, deviceId: string | undefined, data: JsonValue): void {
    this.eventLog.append(kind, deviceId, data);
  }

  /** The status shows the metric's last value: written at most every SHOWN_VALUES_INTERVAL_MS. */
  private showValues(id: string, shown: StatusMetric[]): void {
    this.shownPending.set(id, shown);
    this.shownTimer ??= this.runtime.timers.schedule(
      SHOWN_VALUES_INTERVAL_MS,
      () => {
        this.shownTimer = undefined;
        this.writeShownValues();
      },
      { owner: this.pid, label: 'sparkplug.shownValues' },
    );
  }

  private writeShownValues(): void {
    if (this.shownTimer) this.runtime.timers.cancel(this.shownTimer);
    this.shownTimer = undefined;
    for (const [id, shown] of this.shownPending)
      if (this.fleet.has(id)) this.reportStatus(id, { metrics: shown.map((m) => ({ ...m })) });
    this.shownPending.clear();
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch((error: unknown) =>
      this.runtime.report(`Sparkplug bridge ${this.name}: a store write failed`, error),
    );
    this.storeWrites.add(q);
    void q.finally(() => this.storeWrites.delete(q));
  }

  // ---- commands (the carrier's wire) ----

  /** The carrier's view: a node or device born now, with its birth's metrics. */
  born(deviceId: string): ReturnType<SparkplugCommandTarget['born']> {
    const v = this.fleet.device(deviceId);
    if (!v || (v.kind !== SPARKPLUG_NODE_KIND && v.kind !== SPARKPLUG_DEVICE_KIND)) return undefined;
    const s = this.sessions.get(this.key(String(v.attributes.group), String(v.attributes.node)));
    if (!s?.born || s.id === undefined) return undefined;
    if (v.kind === SPARKPLUG_NODE_KIND)
      return s.id === v.id ? { node: true, metrics: s.metrics.byName } : undefined;
    const d = s.devices.get(String(v.attributes.device));
    return d?.born && d.id === v.id ? { node: false, metrics: d.metrics.byName } : undefined;
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
    const group = String(v.attributes.group);
    const node = String(v.attributes.node);
    const device = v.kind === SPARKPLUG_DEVICE_KIND ? String(v.attributes.device) : undefined;
    const now = this.runtime.clock.wallNow();
    client.publish(
      commandTopic(group, node, device),
      Buffer.from(encodeSparkplugCommand([...metrics], now)),
      {
        qos: 0, // Sparkplug: NCMD/DCMD at QoS 0
        retain: false,
      },
    );
    if (rebirth) {
      const s = this.sessions.get(this.key(group, node));
      if (s) s.rebirthAskedAt = now;
    }
    return true;
  }
}

type Decoded = ReturnType<typeof decodeSparkplugPayload>;

function numberOrUndefined(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

function firmwareOf(metrics: readonly SparkplugMetric[]): string | null {
  const m = metrics.find(
    (x) =>
      x.name !== undefined && FIRMWARE_NAME.test(x.name) && typeof x.value === 'string' && x.value !== '',
  );
  return m ? (m.value as string).slice(0, 64) : null;
}

/** The birth's metric definitions for the status: name, datatype, alias, properties, value. */
function statusMetrics(table: MetricTable, metrics: readonly SparkplugMetric[]): StatusMetric[] {
  const out: StatusMetric[] = [];
  for (const m of metrics) {
    if (out.length >= MAX_STATUS_METRICS) break;
    const def = m.name !== undefined ? table.byName.get(m.name) : undefined;
    if (!def) continue;
    const value = scalarJson(def.datatype, m.value);
    out.push({
      name: def.name,
      datatype: def.datatype,
      alias: def.alias,
      ...(m.properties ? { properties: m.properties } : {}),
      ...(value !== undefined ? { value } : {}),
    });
  }
  return out;
}

function validateOptions(o: SparkplugOptions): void {
  const hostProblem = topicLevelProblem(o.hostId ?? 'fleetvisor');
  if (hostProblem) throw new RangeError(`sparkplugConvention: hostId ${hostProblem}`);
  if (o.groups !== undefined) {
    if (!Array.isArray(o.groups))
      throw new RangeError('sparkplugConvention: groups must be an array of group ids');
    for (const g of o.groups) {
      const p = topicLevelProblem(g);
      if (p) throw new RangeError(`sparkplugConvention: group ${p}`);
      if (g === 'STATE') throw new RangeError("sparkplugConvention: 'STATE' is reserved, not a group");
    }
  }
  if (o.adopt !== undefined && o.adopt !== 'auto' && o.adopt !== 'manual')
    throw new RangeError(`sparkplugConvention: adopt must be 'auto' or 'manual', got ${String(o.adopt)}`);
  const positive: [string, number | undefined][] = [
    ['commandTimeoutMs', o.commandTimeoutMs],
    ['maxPayloadBytes', o.maxPayloadBytes],
    ['keepaliveMs', o.keepaliveMs],
    ['connectTimeoutMs', o.connectTimeoutMs],
  ];
  for (const [field, value] of positive)
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0))
      throw new RangeError(`sparkplugConvention: ${field} must be a positive integer, got ${String(value)}`);
  for (const [field, value] of [
    ['rebirthMinIntervalMs', o.rebirthMinIntervalMs],
    ['maxRebirthsPerMinute', o.maxRebirthsPerMinute],
    ['maxErrorEventsPerMinute', o.maxErrorEventsPerMinute],
  ] as const)
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0))
      throw new RangeError(
        `sparkplugConvention: ${field} must be a non-negative integer, got ${String(value)}`,
      );
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
  validateOptions(options);
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

/**
 * The Homie convention: Homie devices (v3.0.1, v4) on the app's MQTT broker joining the fleet as
 * `homie.device`. Its bridge is one supervised process (kind `server`) with one mqtt.js client
 * (clean session, MQTT 3.1.1, its own jittered reconnect) subscribed to `<base>/+/#`:
 *
 * - Discovery: a `<base>/<id>/$homie` with a version (3.x, 4.x) and a valid id (a Homie id
 *   `[a-z0-9-]`, which is also a Fleetvisor id, checked with `parseDeviceId`) is a device. It is
 *   added to the fleet (kind `homie.device`, same id) on first sight with `adopt: 'auto'` (the
 *   default); with `manual` it waits in {@link HomieBridge.discovered} for {@link HomieBridge.adopt}.
 *   Everything the device says before it is adopted is kept and applied when it is.
 * - Lifecycle: each `$state` becomes a `HOMIE_STATE` event for the device's machine and the
 *   fleet's link presence (`init`, `ready`, `alert`: up; `sleeping`, `disconnected`, `lost`:
 *   down); see src/conventions/homie/homie-kind.ts for the table. `$fw/version` (v3) is
 *   `status.firmware` and the HELLO firmware.
 * - Data: property values of `integer` / `float` become telemetry (metric `node/prop`), `boolean`
 *   0/1, `enum` the value's index in `$format`; `string`, `color`, `datetime`, `duration` (and
 *   the enum's label) are reported as `status.values['node/prop']`. A retained value the bridge
 *   already saw (a replay after a reconnect) is not stored again.
 * - Descriptions: `$name`, `$nodes`, `<node>/$properties`, and each property's `$name`,
 *   `$datatype`, `$format`, `$unit`, `$settable`, `$retained` make `status.properties` — the
 *   per-device schema of the `set` action (see `homieSetForms`).
 * - Commands: `set { node, property, value }` goes through the fleet's command tracker with the
 *   Homie carrier (src/conventions/homie/homie-carrier.ts): checked against the property
 *   (settable, datatype, format: a bad one is refused as `badArgs` naming the property), audited,
 *   published to `<node>/<prop>/set` (QoS 1, not retained) once the device is `ready`/`alert` (it
 *   waits meanwhile, also across an app restart), and `succeeded` when the device publishes the
 *   new value on the property topic within `setTimeoutMs`, else `timedOut`.
 * - Bad input (a value that is not of its datatype or outside its format, an unknown `$state`, a
 *   malformed attribute) is a `device.badMessage` event on that device (at most
 *   `maxErrorEventsPerMinute` per device; all counted), never a crash. Topics with a bad device id
 *   or a wildcard are refused and counted.
 * - The broker connection lost: every device that was up goes down (`broker unreachable`) until
 *   its retained `$state` comes back after the reconnect.
 * - aedes (the embedded broker) may drop retained publishes forwarded live when a device sends
 *   them in a burst with non-retained ones (its per-client dedupe by broker counter races its
 *   retained store). A device whose description is incomplete after live traffic makes the
 *   bridge re-subscribe once (retained messages are replayed on subscribe), a few times at most.
 *
 * @example
 * const app = await startApp({ …, conventions: [homieConvention({ baseTopic: 'homie', adopt: 'auto' })] });
 * await app.fleet.act('boiler', 'set', { node: 'heater', property: 'target', value: 21.5 }, 'ana');
 * // or on its own, under any supervisor:
 * const bridge = startHomieBridge({ runtime, fleet, store, broker: { url } }, { baseTopic: 'homie' });
 * bridge.stats(); // { state: 'connected', devices: 3, adopted: 3, malformed: 0, … }
 */

import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { connect } from 'mqtt';
import type { Fleet, FleetResult } from '../../devices/fleet.js';
import type { ExitReason } from '../../runtime/exit-reason.js';
import { ProcessBase } from '../../runtime/process.js';
import type { TimerRef } from '../../runtime/timers.js';
import type { EventInput, JsonObject, JsonValue, Store } from '../../store/store.js';
import { hostClientOptions } from '../../transports/mqtt-link.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, parseDeviceId } from '../../transports/protocol.js';
import type { ReconnectOptions } from '../../transports/reconnect.js';
import { DEFAULT_RECONNECT, ReconnectSchedule } from '../../transports/reconnect.js';
import type { BrokerSettings, Convention, ConventionContext } from '../convention.js';
import type { HomieCarrier, HomieSetProperty, HomieSetTarget } from './homie-carrier.js';
import { createHomieCarrier } from './homie-carrier.js';
import type { HomiePropertyStatus, HomieState } from './homie-kind.js';
import { HOMIE_KIND, homieDevice, isHomieState } from './homie-kind.js';
import type { HomieDatatype, ValueSpec } from './homie-values.js';
import { BASE_TOPIC, isHomieDatatype, isHomieId, parseFormat, parseValue, quote } from './homie-values.js';

export interface HomieConventionOptions {
  /** Default `homie`; a trailing `/` (homie-device's `homie/`) is dropped. */
  readonly baseTopic?: string;
  /** A new device: `auto` (default) adds it to the fleet, `manual` lists it for the operator. */
  readonly adopt?: 'auto' | 'manual';
  /** Default `fleetvisor-homie-<random>`. */
  readonly clientId?: string;
  /** How long a `set` waits for the device to publish the new value; default 10 000 ms. */
  readonly setTimeoutMs?: number;
  /** Most open `set` commands per device; default 20. */
  readonly maxOpenSetsPerDevice?: number;
  /** MQTT keepalive; default 30 000 (whole seconds on the wire). */
  readonly keepaliveMs?: number;
  /** TCP connect + CONNACK; default 10 000. */
  readonly connectTimeoutMs?: number;
  readonly reconnect?: Partial<ReconnectOptions>;
  /** Source of jitter, [0, 1); default Math.random. */
  readonly random?: () => number;
  /** Most devices tracked (adopted or not); more are refused. Default 10 000. */
  readonly maxDevices?: number;
  /** Most properties tracked per device; default 1000. */
  readonly maxPropertiesPerDevice?: number;
  /** Largest payload read; default 16 KiB. */
  readonly maxPayloadBytes?: number;
  /** `device.badMessage` events written per device per minute; default 10 (all are counted). */
  readonly maxErrorEventsPerMinute?: number;
  /** Status changes are coalesced this long before one write; default 100 ms. */
  readonly statusDelayMs?: number;
  /** Wait after live traffic from an incomplete device before re-subscribing; default 500 ms. */
  readonly resyncDelayMs?: number;
}

export type HomieBridgeState = 'idle' | 'connecting' | 'connected' | 'backoff' | 'closed';

export interface HomieBridgeStats {
  readonly state: HomieBridgeState;
  readonly connected: boolean;
  readonly reconnects: number;
  /** Publishes received under the base topic. */
  readonly received: number;
  /** Topics refused: a bad device id, a wildcard, past `maxDevices`. */
  readonly refused: number;
  /** Bad input from known topics (all `device.badMessage`, written or not). */
  readonly malformed: number;
  /** Re-subscriptions to recover retained messages a broker did not forward. */
  readonly resyncs: number;
  readonly devices: number;
  readonly adopted: number;
  readonly openSets: number;
}

/** A Homie device seen on the broker and not (yet) in the fleet. */
export interface DiscoveredHomieDevice {
  readonly id: string;
  readonly name: string | null;
  readonly homie: string;
  readonly state: HomieState | null;
  readonly firmware: string | null;
  readonly firstSeen: number;
  readonly lastSeen: number;
  /** `manual` (waits for the operator), or why it could not be adopted. */
  readonly reason: string;
}

/** What the bridge knows of one device, for diagnostics and tests. */
export interface HomieDeviceView {
  readonly id: string;
  readonly homie: string | null;
  readonly state: HomieState | null;
  readonly adopted: boolean;
  readonly complete: boolean;
  readonly errors: Readonly<Record<string, number>>;
  readonly values: Readonly<Record<string, string>>;
}

interface PropertyInfo {
  readonly node: string;
  readonly property: string;
  name: string | null;
  datatype: HomieDatatype | undefined;
  format: string | null;
  unit: string | null;
  settable: boolean | undefined;
  retained: boolean | undefined;
  /** Any `$…` attribute arrived (the description is not missing). */
  described: boolean;
  /** The last value payload. */
  raw: string | undefined;
  /** The datatype `raw` was last applied with (undefined: the default, string). */
  appliedAs: HomieDatatype | undefined;
}

interface NodeInfo {
  name: string | null;
  type: string | null;
  properties: string[] | undefined;
  array: string | null;
}

interface Session {
  readonly id: string;
  homie: string | undefined;
  state: HomieState | undefined;
  name: string | null;
  firmware: string | null;
  firmwareName: string | null;
  implementation: string | null;
  nodeList: string[] | undefined;
  readonly nodes: Map<string, NodeInfo>;
  readonly properties: Map<string, PropertyInfo>;
  /** Text values (status.values). */
  readonly values: Map<string, string>;
  /** In the fleet as a `homie.device` of this base. */
  adopted: boolean;
  adding: boolean;
  /** Why it is not adopted (`manual`, a conflict, an add failure). */
  notAdopted: string | undefined;
  readonly firstSeen: number;
  lastSeen: number;
  errors: Record<string, number>;
  errorEvents: number;
  errorWindowStart: number;
  statusTimer: TimerRef | undefined;
  lastStatus: string | undefined;
  resyncAttempts: number;
  /** The `$state` before the last one. */
  previousState: HomieState | undefined;
  /** A live `init` was seen since the device was last ready. */
  sawInit: boolean;
  /** Re-subscribe even though the description looks complete (a `ready` with no `init` before it). */
  forceResync: boolean;
  tooManyProperties: boolean;
}

const MAX_TEXT = 1024;
const MAX_SHOWN = 140;
const HOMIE_VERSION = /^([34])\.\d+(?:\.\d+)?$/;

const fail = (code: string, message: string) => ({ ok: false as const, error: { code, message } });

/** The bridges of one fleet, by base topic, and the one carrier of the kind they share. */
const bridgesByFleet = new WeakMap<Fleet, { bridges: Map<string, HomieBridge>; carrier: HomieCarrier }>();

function registerBridge(fleet: Fleet, bridge: HomieBridge): HomieCarrier {
  let entry = bridgesByFleet.get(fleet);
  if (!entry) {
    const bridges = new Map<string, HomieBridge>();
    const route = (deviceId: string) => {
      const base = fleet.device(deviceId)?.attributes.baseTopic;
      return bridges.get(typeof base === 'string' ? base : 'homie');
    };
    // The first bridge's reply time and bound serve the kind (one carrier per kind and fleet).
    const carrier = createHomieCarrier({
      fleet,
      route,
      ...(bridge.options.setTimeoutMs !== undefined ? { replyTimeoutMs: bridge.options.setTimeoutMs } : {}),
      ...(bridge.options.maxOpenSetsPerDevice !== undefined
        ? { maxOpenPerDevice: bridge.options.maxOpenSetsPerDevice }
        : {}),
    });
    entry = { bridges, carrier };
    bridgesByFleet.set(fleet, entry);
    fleet.setCarrier(HOMIE_KIND, carrier);
  }
  entry.bridges.set(bridge.baseTopic, bridge);
  return entry.carrier;
}

function unregisterBridge(fleet: Fleet, bridge: HomieBridge): void {
  const bridges = bridgesByFleet.get(fleet)?.bridges;
  if (bridges?.get(bridge.baseTopic) === bridge) bridges.delete(bridge.baseTopic);
}

/** `homie/` → `homie`; throws RangeError for a base that is not a plain topic. */
function normalizeBase(base: string | undefined): string {
  const b = (base ?? 'homie').replace(/\/$/, '');
  if (!BASE_TOPIC.test(b))
    throw new RangeError(`homie: baseTopic ${quote(String(base))} must be topic levels without wildcards`);
  return b;
}

/**
 * The Homie convention for the app: its kind and its bridge. Throws RangeError for bad options.
 *
 * @example
 * startApp({ …, conventions: [homieConvention()] });
 */
export function homieConvention(options: HomieConventionOptions = {}): Convention {
  normalizeBase(options.baseTopic);
  validateOptions(options);
  return {
    name: 'homie',
    kinds: [homieDevice],
    start: (context) => startHomieBridge(context, options),
  };
}

/**
 * Starts a bridge process: it connects at once and keeps reconnecting with backoff until stopped.
 * Without a broker (`context.broker` undefined) it stays idle, and `set` answers `noLink`.
 */
export function startHomieBridge(
  context: ConventionContext,
  options: HomieConventionOptions = {},
): HomieBridge {
  validateOptions(options);
  const bridge = new HomieBridge(context, options);
  bridge.begin();
  return bridge;
}

function validateOptions(o: HomieConventionOptions): void {
  if (o.adopt !== undefined && o.adopt !== 'auto' && o.adopt !== 'manual')
    throw new RangeError(`homie: adopt must be 'auto' or 'manual', got ${quote(String(o.adopt))}`);
  const positive: [string, number | undefined][] = [
    ['setTimeoutMs', o.setTimeoutMs],
    ['maxOpenSetsPerDevice', o.maxOpenSetsPerDevice],
    ['keepaliveMs', o.keepaliveMs],
    ['connectTimeoutMs', o.connectTimeoutMs],
    ['maxDevices', o.maxDevices],
    ['maxPropertiesPerDevice', o.maxPropertiesPerDevice],
    ['maxPayloadBytes', o.maxPayloadBytes],
    ['reconnect.initialMs', o.reconnect?.initialMs],
    ['reconnect.maxMs', o.reconnect?.maxMs],
    ['reconnect.stableMs', o.reconnect?.stableMs],
  ];
  for (const [field, value] of positive)
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0))
      throw new RangeError(`homie: ${field} must be a positive integer, got ${String(value)}`);
  const nonNegative: [string, number | undefined][] = [
    ['maxErrorEventsPerMinute', o.maxErrorEventsPerMinute],
    ['statusDelayMs', o.statusDelayMs],
    ['resyncDelayMs', o.resyncDelayMs],
  ];
  for (const [field, value] of nonNegative)
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0))
      throw new RangeError(`homie: ${field} must be a non-negative integer, got ${String(value)}`);
  const jitter = o.reconnect?.jitter;
  if (jitter !== undefined && !(jitter >= 0 && jitter <= 1))
    throw new RangeError(`homie: reconnect.jitter must be within 0…1, got ${String(jitter)}`);
}

/** The bridge process. Made by {@link startHomieBridge}. */
export class HomieBridge extends ProcessBase implements HomieSetTarget {
  readonly baseTopic: string;
  /** How the fleet shows the link: `mqtt:<base>`. */
  readonly via: string;
  private readonly fleet: Fleet;
  private readonly store: Store;
  private readonly broker: BrokerSettings | undefined;
  readonly options: HomieConventionOptions;
  private readonly reconnectOptions: ReconnectOptions;
  private readonly reconnect: ReconnectSchedule;
  private readonly adoptMode: 'auto' | 'manual';
  private readonly clientId: string;
  private state: HomieBridgeState = 'connecting';
  private client: MqttClient | undefined;
  private everConnected = false;
  private lastError: Error | undefined;
  private resyncTimer: TimerRef | undefined;
  private readonly sessions = new Map<string, Session>();
  private carrier: HomieCarrier | undefined;
  private counters = { reconnects: 0, received: 0, refused: 0, malformed: 0, resyncs: 0 };
  private refusedLogged = 0;
  private refusedWindowStart = 0;
  private events: EventInput[] = [];
  private writingEvents: Promise<void> | undefined;
  private readonly writes = new Set<Promise<unknown>>();

  constructor(context: ConventionContext, options: HomieConventionOptions) {
    const base = normalizeBase(options.baseTopic);
    super(context.runtime, 'server', `homie-bridge:${base}`);
    this.baseTopic = base;
    this.via = `mqtt:${base}`;
    this.fleet = context.fleet;
    this.store = context.store;
    this.broker = context.broker;
    this.options = options;
    this.reconnectOptions = { ...DEFAULT_RECONNECT, ...options.reconnect };
    this.reconnect = new ReconnectSchedule(
      this.runtime,
      this.pid,
      this.reconnectOptions,
      options.random,
      'homie',
    );
    this.adoptMode = options.adopt ?? 'auto';
    this.clientId = options.clientId ?? `fleetvisor-homie-${randomBytes(4).toString('hex')}`;
  }

  /** Registers the command port and starts the first connection; called once by {@link startHomieBridge}. */
  begin(): void {
    this.started();
    this.carrier = registerBridge(this.fleet, this);
    if (!this.broker) {
      this.state = 'idle';
      this.runtime.logger.warn('Homie bridge has no MQTT broker: it stays idle', { bridge: this.name });
      return;
    }
    this.openClient();
  }

  // ---- the public face ----

  stats(): HomieBridgeStats {
    let adopted = 0;
    for (const s of this.sessions.values()) if (s.adopted) adopted++;
    return {
      state: this.state,
      connected: this.state === 'connected',
      reconnects: this.counters.reconnects,
      received: this.counters.received,
      refused: this.counters.refused,
      malformed: this.counters.malformed,
      resyncs: this.counters.resyncs,
      devices: this.sessions.size,
      adopted,
      openSets: this.fleet.commands
        .open()
        .filter((c) => c.carrier === 'homie' && this.sessions.get(c.deviceId)?.adopted).length,
    };
  }

  /** Homie devices seen and not in the fleet (manual adoption, or a conflict). */
  discovered(): DiscoveredHomieDevice[] {
    const out: DiscoveredHomieDevice[] = [];
    for (const s of this.sessions.values()) {
      if (s.adopted || s.homie === undefined) continue;
      out.push({
        id: s.id,
        name: s.name,
        homie: s.homie,
        state: s.state ?? null,
        firmware: s.firmware,
        firstSeen: s.firstSeen,
        lastSeen: s.lastSeen,
        reason: s.notAdopted ?? (s.adding ? 'adding' : 'manual'),
      });
    }
    return out;
  }

  /** Adds a discovered device to the fleet (manual adoption). */
  async adopt(id: string): Promise<{ ok: true } | { ok: false; error: { code: string; message: string } }> {
    const s = this.sessions.get(id);
    if (!s || s.homie === undefined)
      return fail('notFound', `no Homie device '${String(id).slice(0, 80)}' seen on ${this.baseTopic}/`);
    if (s.adopted) return { ok: true };
    const r = await this.add(s);
    return r.ok ? { ok: true } : r;
  }

  /** What the bridge knows of a device. */
  device(id: string): HomieDeviceView | undefined {
    const s = this.sessions.get(id);
    if (!s) return undefined;
    return {
      id: s.id,
      homie: s.homie ?? null,
      state: s.state ?? null,
      adopted: s.adopted,
      complete: this.complete(s),
      errors: { ...s.errors },
      values: Object.fromEntries(s.values),
    };
  }

  /** Resolves when every store write so far (events, status, command outcomes) is done. */
  async flush(): Promise<void> {
    for (const s of this.sessions.values()) if (s.statusTimer) this.reportStatusNow(s);
    while (this.writingEvents || this.writes.size > 0)
      await Promise.allSettled([this.writingEvents, ...this.writes]);
  }

  /** The carrier's view of a device's settable properties (declared ones only); undefined: not seen. */
  describe(deviceId: string): ReadonlyMap<string, HomieSetProperty> | undefined {
    const s = this.sessions.get(deviceId);
    if (!s || s.homie === undefined) return undefined;
    const out = new Map<string, HomieSetProperty>();
    for (const [key, p] of s.properties)
      if (this.declared(s, p))
        out.set(key, {
          node: p.node,
          property: p.property,
          spec: specOf(p),
          settable: p.settable ?? null,
        });
    return out;
  }

  /** The carrier's wire: a set goes out only to a `ready`/`alert` device (a set is not retained). */
  publishSet(
    deviceId: string,
    set: { readonly node: string; readonly property: string; readonly payload: string },
    failed: (message: string) => void,
  ): 'sent' | 'notReachable' {
    const client = this.client;
    const s = this.sessions.get(deviceId);
    if (this.status !== 'running' || !client || this.state !== 'connected') return 'notReachable';
    if (!s || (s.state !== 'ready' && s.state !== 'alert')) return 'notReachable';
    client.publish(
      `${this.baseTopic}/${deviceId}/${set.node}/${set.property}/set`,
      set.payload,
      { qos: 1, retain: false },
      (error) => {
        if (error) failed(`the broker refused the set: ${error.message}`);
      },
    );
    this.runtime.logger.info('Homie set sent', {
      deviceId,
      property: `${set.node}/${set.property}`,
      value: set.payload,
    });
    return 'sent';
  }

  // ---- process lifecycle ----

  protected async terminate(_reason: ExitReason): Promise<void> {
    this.shutdown('the Homie bridge stopped');
    const client = this.client;
    this.client = undefined;
    if (client)
      await new Promise<void>((resolve) => {
        const force = this.runtime.timers.schedule(2000, () => client.end(true, {}, () => resolve()), {
          owner: this.pid,
          label: 'homie.close',
        });
        client.end(false, {}, () => {
          this.runtime.timers.cancel(force);
          resolve();
        });
      });
    await this.flush();
  }

  protected override release(): void {
    this.shutdown('the Homie bridge was killed');
    const client = this.client;
    this.client = undefined;
    client?.end(true);
  }

  /** Common to stop and kill: nobody watches the devices any more. */
  private shutdown(reason: string): void {
    this.state = 'closed';
    this.cancelTimers();
    unregisterBridge(this.fleet, this);
    for (const s of this.sessions.values()) {
      if (s.statusTimer) this.reportStatusNow(s);
      if (s.adopted) this.fleet.linkDown(s.id, reason);
    }
  }

  // ---- the connection ----

  private openClient(): void {
    const b = this.broker!;
    this.state = 'connecting';
    const clientOptions = hostClientOptions(b, {
      clientId: this.clientId,
      connectTimeoutMs: this.options.connectTimeoutMs,
      keepaliveMs: this.options.keepaliveMs,
    });
    let client: MqttClient;
    try {
      client = connect(b.url, clientOptions);
    } catch (error) {
      // A malformed URL: retrying cannot help, and the supervisor should see it.
      throw new Error(`Homie bridge: cannot connect to ${quote(b.url)}: ${(error as Error).message}`);
    }
    this.client = client;
    const current = () => client === this.client && this.status === 'running';
    client.on('connect', () => {
      if (current()) this.subscribe(client);
    });
    client.on('message', (topic, payload, packet) => {
      if (!current()) return;
      try {
        this.onPublish(topic, payload, packet.retain === true);
      } catch (error) {
        this.runtime.report(
          `Homie bridge ${this.name}: handling ${quote(topic, MAX_SHOWN)} threw`,
          error,
          this.pid,
        );
      }
    });
    client.on('error', (error) => {
      if (!current()) return;
      this.lastError = error;
      this.runtime.logger.debug('Homie bridge MQTT error', { bridge: this.name, error: error.message });
    });
    client.on('close', () => {
      if (current()) this.onDropped(client);
    });
  }

  /** Subscribes (again: a subscription replays the retained messages); `connected` once the SUBACK is in. */
  private subscribe(client: MqttClient): void {
    client.subscribe(`${this.baseTopic}/+/#`, { qos: 1 }, (error, granted) => {
      if (client !== this.client || this.status !== 'running') return;
      if (error) {
        this.lastError = error;
        this.runtime.logger.warn('Homie bridge subscribe failed', {
          bridge: this.name,
          error: error.message,
        });
        return;
      }
      if ((granted ?? []).some((g) => g.qos === 128))
        this.runtime.report(`Homie bridge ${this.name}: the broker refused ${this.baseTopic}/+/#`);
      if (this.state !== 'connected') this.onReady();
    });
  }

  private onReady(): void {
    this.state = 'connected';
    this.lastError = undefined;
    this.runtime.logger.info(this.everConnected ? 'Homie bridge reconnected' : 'Homie bridge connected', {
      bridge: this.name,
      url: this.broker?.url,
      reconnects: this.counters.reconnects,
    });
    this.everConnected = true;
    this.reconnect.connected();
  }

  private onDropped(client: MqttClient): void {
    const wasConnected = this.state === 'connected';
    this.client = undefined;
    client.end(true);
    this.cancelTimers();
    // Nobody can tell now: every device waits for its retained $state after the reconnect.
    for (const s of this.sessions.values()) {
      s.state = undefined;
      s.resyncAttempts = 0;
      if (s.adopted) this.fleetCall(s, this.fleet.linkDown(s.id, 'broker unreachable'));
    }
    const delayMs = this.reconnect.nextDelay();
    this.state = 'backoff';
    this.runtime.logger.warn(
      wasConnected ? 'Homie bridge lost its broker connection' : 'Homie bridge could not connect',
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
    if (this.resyncTimer) this.runtime.timers.cancel(this.resyncTimer);
    this.resyncTimer = undefined;
  }

  // ---- what devices say ----

  private onPublish(topic: string, payload: Buffer, retained: boolean): undefined {
    this.counters.received++;
    const prefix = `${this.baseTopic}/`;
    if (!topic.startsWith(prefix)) return this.refuse(topic, 'not under the base topic');
    const levels = topic.slice(prefix.length).split('/');
    const id = levels[0]!;
    if (id.startsWith('$')) return; // $broadcast (v3) and other base-level topics: not a device
    if (levels.some((l) => l.includes('+') || l.includes('#')))
      return this.refuse(topic, 'a wildcard in a topic name');
    if (!isHomieId(id) || !parseDeviceId(id).ok)
      return this.refuse(topic, `${quote(id)} is not a Homie device id`);
    let s = this.sessions.get(id);
    if (!s) {
      if (payload.length === 0) return; // a retained message being cleared, of a device we never knew
      if (this.sessions.size >= (this.options.maxDevices ?? 10_000))
        return this.refuse(topic, `more than ${this.options.maxDevices ?? 10_000} Homie devices`);
      s = newSession(id, this.runtime.clock.wallNow());
      this.sessions.set(id, s);
    }
    s.lastSeen = this.runtime.clock.wallNow();
    const max = this.options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    if (payload.length > max)
      return this.bad(
        s,
        'tooLarge',
        `${payload.length} bytes on ${topic.slice(prefix.length)}; at most ${max}`,
        topic,
      );
    if (!isUtf8(payload))
      return this.bad(s, 'notUtf8', `the payload on ${topic.slice(prefix.length)} is not UTF-8`, topic);
    this.handle(s, levels.slice(1), payload.toString('utf8'), retained, topic);
    if (!retained && levels.length === 2 && levels[1] === '$state') this.liveState(s);
    if (!retained) this.noteLive(s);
  }

  private handle(s: Session, path: string[], text: string, retained: boolean, topic: string): undefined {
    const [a, b, c] = path;
    if (a === undefined) return;
    if (a.startsWith('$')) return this.deviceAttribute(s, path, text, topic);
    if (!isHomieId(a)) {
      // v3 array nodes (`node_3/prop`) are not supported; other bad ids are the device's fault.
      if (/^[a-z0-9-]+_\d+$/.test(a)) return;
      return this.bad(s, 'badTopic', `${quote(a)} is not a Homie node id`, topic);
    }
    if (b === undefined) return;
    if (path.length === 2) {
      if (b.startsWith('$')) return this.nodeAttribute(s, a, b, text, topic);
      if (!isHomieId(b)) return this.bad(s, 'badTopic', `${quote(b)} is not a Homie property id`, topic);
      return this.propertyValue(s, a, b, text, retained, topic);
    }
    if (path.length === 3 && c !== undefined) {
      if (!isHomieId(b)) return this.bad(s, 'badTopic', `${quote(b)} is not a Homie property id`, topic);
      if (c === 'set') return; // a command (ours or another controller's), not a value
      if (c.startsWith('$')) return this.propertyAttribute(s, a, b, c, text, topic);
    }
    // Deeper topics (extensions) are not read.
  }

  private deviceAttribute(s: Session, path: string[], text: string, topic: string): undefined {
    const attr = path.join('/');
    if (text === '') return; // cleared (an empty retained publish)
    switch (attr) {
      case '$homie': {
        if (!HOMIE_VERSION.test(text))
          return this.bad(
            s,
            'badVersion',
            `$homie ${quote(text)} is not a supported Homie version (3.x, 4.x)`,
            topic,
          );
        const first = s.homie === undefined;
        s.homie = text;
        if (first || !s.adopted) this.discover(s);
        else this.scheduleStatus(s);
        return;
      }
      case '$state': {
        if (!isHomieState(text))
          return this.bad(
            s,
            'badState',
            `$state ${quote(text)} is not one of init, ready, disconnected, sleeping, alert, lost`,
            topic,
          );
        const previous = s.state;
        s.previousState = previous;
        s.state = text;
        if (text !== 'ready' && text !== 'alert') s.resyncAttempts = 0;
        if (previous !== text)
          this.runtime.logger.debug('Homie device state', {
            deviceId: s.id,
            from: previous ?? null,
            to: text,
          });
        this.applyState(s);
        this.scheduleStatus(s);
        return;
      }
      case '$name':
        s.name = text.slice(0, MAX_TEXT);
        break;
      case '$nodes':
        s.nodeList = this.idList(s, text, '$nodes', topic, true);
        break;
      case '$fw/version': {
        const changed = s.firmware !== text;
        s.firmware = text.slice(0, 64);
        if (changed && s.adopted && (s.state === 'ready' || s.state === 'alert'))
          this.fleetCall(s, this.fleet.linkUp(s.id, { via: this.via, firmware: s.firmware }));
        break;
      }
      case '$fw/name':
        s.firmwareName = text.slice(0, MAX_TEXT);
        break;
      case '$implementation':
        s.implementation = text.slice(0, MAX_TEXT);
        break;
      case '$stats/uptime':
        if (s.adopted) this.fleetCall(s, this.fleet.touch(s.id));
        return;
      default:
        return; // $stats/*, $mac, $localip, $extensions …: not used
    }
    this.scheduleStatus(s);
  }

  /** A comma list of ids (`$nodes`, `$properties`); v3 array nodes (`name[]`) keep their name. */
  private idList(s: Session, text: string, what: string, topic: string, nodes: boolean): string[] {
    const out: string[] = [];
    for (const item of text.split(',')) {
      const id = nodes && item.endsWith('[]') ? item.slice(0, -2) : item;
      if (isHomieId(id)) out.push(id);
      else this.bad(s, 'badAttribute', `${what} lists ${quote(item)}, not a Homie id`, topic);
    }
    return out;
  }

  private nodeAttribute(s: Session, node: string, attr: string, text: string, topic: string): undefined {
    if (text === '') return;
    let n = s.nodes.get(node);
    if (!n) {
      n = { name: null, type: null, properties: undefined, array: null };
      s.nodes.set(node, n);
    }
    switch (attr) {
      case '$name':
        n.name = text.slice(0, MAX_TEXT);
        break;
      case '$type':
        n.type = text.slice(0, MAX_TEXT);
        break;
      case '$properties':
        n.properties = this.idList(s, text, `${node}/$properties`, topic, false);
        break;
      case '$array':
        n.array = text.slice(0, 64);
        break;
      default:
        return;
    }
    this.scheduleStatus(s);
  }

  private property(s: Session, node: string, property: string, topic: string): PropertyInfo | undefined {
    const key = `${node}/${property}`;
    let p = s.properties.get(key);
    if (p) return p;
    const max = this.options.maxPropertiesPerDevice ?? 1000;
    if (s.properties.size >= max) {
      if (!s.tooManyProperties) {
        s.tooManyProperties = true;
        this.bad(
          s,
          'tooManyProperties',
          `more than ${max} properties; ${key} and later ones are ignored`,
          topic,
        );
      }
      return undefined;
    }
    p = {
      node,
      property,
      name: null,
      datatype: undefined,
      format: null,
      unit: null,
      settable: undefined,
      retained: undefined,
      described: false,
      raw: undefined,
      appliedAs: undefined,
    };
    s.properties.set(key, p);
    return p;
  }

  private propertyAttribute(
    s: Session,
    node: string,
    property: string,
    attr: string,
    text: string,
    topic: string,
  ): undefined {
    const p = this.property(s, node, property, topic);
    if (!p) return;
    const key = `${node}/${property}`;
    if (text === '' && attr !== '$format' && attr !== '$unit' && attr !== '$name') return;
    const flag = (v: string) => {
      if (v === 'true' || v === 'false') return v === 'true';
      this.bad(s, 'badAttribute', `${key}/${attr} ${quote(v)} is not true or false`, topic);
      return undefined;
    };
    switch (attr) {
      case '$name':
        p.name = text.slice(0, MAX_TEXT) || null;
        break;
      case '$datatype':
        if (!isHomieDatatype(text)) {
          this.bad(s, 'badAttribute', `${key}/$datatype ${quote(text)} is not a Homie datatype`, topic);
          return;
        }
        p.datatype = text;
        this.checkFormat(s, p, topic);
        break;
      case '$format':
        p.format = text === '' ? null : text.slice(0, MAX_TEXT);
        this.checkFormat(s, p, topic);
        break;
      case '$unit':
        p.unit = text.slice(0, 64) || null;
        break;
      case '$settable':
        p.settable = flag(text) ?? p.settable;
        break;
      case '$retained':
        p.retained = flag(text) ?? p.retained;
        break;
      default:
        return;
    }
    p.described = true;
    // A value that came before its datatype was taken as a string: take it as what it is now.
    if (p.raw !== undefined && p.datatype !== undefined && p.appliedAs !== p.datatype)
      this.applyValue(s, p, topic, false);
    this.scheduleStatus(s);
  }

  private checkFormat(s: Session, p: PropertyInfo, topic: string): void {
    if (p.datatype === undefined || p.format === null) return;
    const f = parseFormat(p.datatype, p.format);
    if (!f.ok) this.bad(s, 'badAttribute', `${p.node}/${p.property}: ${f.message}`, topic);
  }

  private propertyValue(
    s: Session,
    node: string,
    property: string,
    text: string,
    retained: boolean,
    topic: string,
  ): undefined {
    const p = this.property(s, node, property, topic);
    if (!p) return;
    const replay = retained && p.raw === text && p.appliedAs === p.datatype;
    p.raw = text;
    this.echo(s, p, text);
    if (replay) return; // the retained value again (a resubscription): already stored
    this.applyValue(s, p, topic, true);
  }

  /** Interprets `p.raw` with what is known of the property: telemetry, a text value, or bad. */
  private applyValue(s: Session, p: PropertyInfo, topic: string, report: boolean): void {
    const raw = p.raw;
    if (raw === undefined) return;
    const key = `${p.node}/${p.property}`;
    const spec = specOf(p);
    p.appliedAs = p.datatype;
    if (raw === '' && spec.datatype !== 'string') return; // cleared
    const r = parseValue(spec, raw);
    if (!r.ok) {
      if (report) this.bad(s, 'badValue', `${key} (${describeSpec(spec)}): ${r.message}`, topic);
      return;
    }
    const textual = spec.datatype !== 'integer' && spec.datatype !== 'float' && spec.datatype !== 'boolean';
    const before = s.values.get(key);
    if (textual) {
      const v = raw.slice(0, MAX_TEXT);
      if (before !== v) {
        s.values.set(key, v);
        this.scheduleStatus(s);
      }
    } else if (before !== undefined) {
      s.values.delete(key); // it was taken as text before its datatype arrived
      this.scheduleStatus(s);
    }
    if (r.number !== null && s.adopted) {
      const id = s.id;
      this.track(this.fleet.ingestTelemetry(id, { [key]: r.number }, null)).then(
        (res) => this.fleetCall(s, res),
        (error: unknown) =>
          this.runtime.report(`Homie bridge: telemetry of ${id} not stored`, error, this.pid),
      );
    }
  }

  // ---- lifecycle and adoption ----

  private applyState(s: Session): undefined {
    const state = s.state;
    if (!s.adopted || state === undefined) return;
    const machine = this.fleet.machineOf(s.id);
    if (machine?.alive) machine.send({ type: 'HOMIE_STATE', state } as never);
    const f = this.fleet;
    switch (state) {
      case 'init':
        // No firmware: the fleet sends CONNECT only, so the machine waits in `connecting`.
        return this.fleetCall(s, f.linkUp(s.id, { via: this.via, firmware: null }));
      case 'ready':
      case 'alert':
        return this.fleetCall(s, f.linkUp(s.id, { via: this.via, firmware: s.firmware ?? '' }));
      case 'sleeping':
        return this.fleetCall(s, f.linkDown(s.id, 'sleeping'));
      case 'disconnected':
        return this.fleetCall(s, f.linkDown(s.id, 'disconnected'));
      case 'lost':
        return this.fleetCall(s, f.linkDown(s.id, 'lost (last will)'));
    }
  }

  /** A fleet call refused with `notFound`: the operator removed the device; it is discovered again. */
  private fleetCall(s: Session, r: FleetResult<unknown>): undefined {
    if (r.ok || r.error.code !== 'notFound' || !s.adopted) return;
    s.adopted = false;
    s.notAdopted = 'removed from the fleet';
    this.runtime.logger.debug('Homie device removed from the fleet', { deviceId: s.id });
  }

  /** `$homie` seen: is it in the fleet, and if not, does it join? */
  private discover(s: Session): void {
    if (s.adding) return;
    const d = this.fleet.device(s.id);
    if (d) {
      const base = d.attributes.baseTopic ?? 'homie';
      if (d.kind === HOMIE_KIND && base === this.baseTopic) {
        s.notAdopted = undefined;
        this.applyAll(s);
        return;
      }
      const why =
        d.kind !== HOMIE_KIND
          ? `the fleet has a ${d.kind} device '${s.id}'`
          : `the fleet's '${s.id}' lives under ${String(base)}/`;
      if (s.notAdopted !== why)
        this.runtime.logger.warn('Homie device not adopted', { deviceId: s.id, reason: why });
      s.notAdopted = why;
      return;
    }
    if (s.notAdopted === 'removed from the fleet') return; // until the operator adopts it again
    if (this.adoptMode === 'manual') {
      if (s.notAdopted !== 'manual') {
        s.notAdopted = 'manual';
        this.runtime.logger.info('Homie device waits for adoption', { deviceId: s.id, via: this.via });
        this.logEvent('device.discovered', s.id, { kind: HOMIE_KIND, via: this.via, reason: 'manual' });
      }
      return;
    }
    void this.add(s);
  }

  private async add(
    s: Session,
  ): Promise<{ ok: true } | { ok: false; error: { code: string; message: string } }> {
    if (s.adding) return fail('busy', `device ${s.id} is being added`);
    s.adding = true;
    const r = await this.fleet
      .addDevice({
        id: s.id,
        kind: HOMIE_KIND,
        name: s.name ?? s.id,
        attributes: { baseTopic: this.baseTopic },
      })
      .finally(() => {
        s.adding = false;
      });
    if (this.status !== 'running') return fail('stopped', 'the Homie bridge stopped');
    if (!r.ok && r.error.code !== 'alreadyExists') {
      s.notAdopted = `addFailed: ${r.error.message}`;
      this.runtime.logger.warn('Homie device could not be adopted', {
        deviceId: s.id,
        error: r.error.message,
      });
      return r;
    }
    if (!r.ok) {
      // Added meanwhile by someone else: the same checks as on discovery.
      s.notAdopted = undefined;
      this.discover(s);
      return s.adopted ? { ok: true } : fail('conflict', s.notAdopted ?? 'not adopted');
    }
    this.runtime.logger.debug('Homie device adopted', { deviceId: s.id, via: this.via });
    s.notAdopted = undefined;
    this.applyAll(s);
    return { ok: true };
  }

  /** A device joins (or is found in) the fleet: everything known of it so far, at once. */
  private applyAll(s: Session): void {
    s.adopted = true;
    s.lastStatus = undefined;
    this.scheduleStatus(s);
    this.applyState(s);
    const topic = `${this.baseTopic}/${s.id}`;
    for (const p of s.properties.values()) if (p.raw !== undefined) this.applyValue(s, p, topic, false);
  }

  // ---- set commands ----

  private echo(s: Session, p: PropertyInfo, text: string): void {
    if (s.adopted) this.carrier?.echo(s.id, p.node, p.property, specOf(p), text);
  }

  // ---- status ----

  private scheduleStatus(s: Session): void {
    if (!s.adopted || s.statusTimer || this.state === 'closed') return;
    s.statusTimer = this.runtime.timers.schedule(
      this.options.statusDelayMs ?? 100,
      () => this.reportStatusNow(s),
      {
        owner: this.pid,
        label: 'homie.status',
      },
    );
  }

  private reportStatusNow(s: Session): void {
    if (s.statusTimer) this.runtime.timers.cancel(s.statusTimer);
    s.statusTimer = undefined;
    if (!s.adopted) return;
    const status = this.statusOf(s);
    const json = JSON.stringify(status);
    if (json === s.lastStatus) return;
    s.lastStatus = json;
    this.track(this.fleet.reportStatus(s.id, status)).then(
      (r) => this.fleetCall(s, r),
      (error: unknown) => this.runtime.report(`Homie bridge: status of ${s.id} not stored`, error, this.pid),
    );
  }

  private declared(s: Session, p: PropertyInfo): boolean {
    if (s.nodeList && !s.nodeList.includes(p.node)) return false;
    const list = s.nodes.get(p.node)?.properties;
    return !list || list.includes(p.property);
  }

  private statusOf(s: Session): JsonObject {
    const nodes: Record<string, JsonValue> = {};
    for (const [id, n] of s.nodes)
      if (!s.nodeList || s.nodeList.includes(id))
        nodes[id] = { name: n.name, type: n.type, properties: n.properties ?? null, array: n.array };
    const properties: Record<string, JsonValue> = {};
    for (const [key, p] of s.properties) {
      if (!this.declared(s, p)) continue;
      const entry: HomiePropertyStatus = {
        node: p.node,
        property: p.property,
        name: p.name,
        datatype: p.datatype ?? 'string',
        format: p.format,
        unit: p.unit,
        settable: p.settable === true,
        retained: p.retained !== false,
      };
      properties[key] = entry as unknown as JsonObject;
    }
    const values: Record<string, JsonValue> = {};
    for (const [key, v] of s.values) {
      const p = s.properties.get(key);
      if (p && this.declared(s, p)) values[key] = v;
    }
    return {
      homie: s.homie ?? null,
      name: s.name,
      homieState: s.state ?? null,
      firmware: s.firmware,
      firmwareName: s.firmwareName,
      implementation: s.implementation,
      via: this.via,
      nodes,
      properties,
      values,
    };
  }

  // ---- resync (retained messages a broker did not forward) ----

  /** Everything a device announces on connect has arrived. */
  private complete(s: Session): boolean {
    if (s.homie === undefined || s.state === undefined || s.nodeList === undefined) return false;
    for (const node of s.nodeList) {
      const props = s.nodes.get(node)?.properties;
      if (props === undefined) return false;
      for (const prop of props) if (!s.properties.get(`${node}/${prop}`)?.described) return false;
    }
    return true;
  }

  /**
   * A live `$state`. Every connection of a Homie device goes `init` → `ready`, announcing its
   * description in between; a `ready` (not back from `alert`) with no `init` before it means the
   * broker did not forward what came between (aedes), so the description may be stale.
   */
  private liveState(s: Session): void {
    if (s.state === 'init') s.sawInit = true;
    else if (s.state === 'ready') {
      if (!s.sawInit && s.previousState !== 'ready' && s.previousState !== 'alert') s.forceResync = true;
      s.sawInit = false;
    }
  }

  /** Live traffic from a device: if its description has gaps, re-subscribe soon (a few times at most). */
  private noteLive(s: Session): void {
    if (this.resyncTimer || s.resyncAttempts >= 3 || this.state !== 'connected') return;
    if (!s.forceResync && this.complete(s)) return;
    this.resyncTimer = this.runtime.timers.schedule(
      this.options.resyncDelayMs ?? 500,
      () => {
        this.resyncTimer = undefined;
        const client = this.client;
        if (!client || this.state !== 'connected') return;
        const gaps: string[] = [];
        for (const x of this.sessions.values())
          if (x.resyncAttempts < 3 && (x.forceResync || !this.complete(x))) {
            x.resyncAttempts++;
            x.forceResync = false;
            gaps.push(x.id);
          }
        if (gaps.length === 0) return;
        this.counters.resyncs++;
        this.runtime.logger.info('Homie bridge re-subscribes for missing retained messages', {
          bridge: this.name,
          devices: gaps.slice(0, 10),
        });
        this.subscribe(client);
      },
      { owner: this.pid, label: 'homie.resync' },
    );
  }

  // ---- bad input ----

  private refuse(topic: string, why: string): undefined {
    this.counters.refused++;
    const t = this.runtime.clock.wallNow();
    if (t - this.refusedWindowStart >= 60_000) {
      this.refusedWindowStart = t;
      this.refusedLogged = 0;
    }
    if (this.refusedLogged++ < 10)
      this.runtime.logger.warn('Homie bridge refused a topic', {
        bridge: this.name,
        topic: quote(topic, MAX_SHOWN),
        why,
      });
  }

  private bad(s: Session, code: string, message: string, topic: string): undefined {
    this.counters.malformed++;
    s.errors[code] = (s.errors[code] ?? 0) + 1;
    const t = this.runtime.clock.wallNow();
    if (t - s.errorWindowStart >= 60_000) {
      s.errorWindowStart = t;
      s.errorEvents = 0;
    }
    if (s.errorEvents >= (this.options.maxErrorEventsPerMinute ?? 10)) return;
    s.errorEvents++;
    this.logEvent('device.badMessage', s.id, {
      code,
      message: message.slice(0, 300),
      topic: topic.slice(0, MAX_SHOWN),
      via: this.via,
    });
    this.runtime.logger.warn('bad message from Homie device', { deviceId: s.id, code, message });
  }

  private logEvent(kind: string, deviceId: string, data: JsonValue): void {
    this.events.push({ at: this.runtime.clock.wallNow(), kind, deviceId, data });
    this.writingEvents ??= this.writeEvents();
  }

  private async writeEvents(): Promise<void> {
    await Promise.resolve(); // gather this turn's events into one write
    try {
      while (this.events.length > 0) {
        const batch = this.events;
        this.events = [];
        await this.store.appendEvents(batch, { durability: 'normal' }).catch((error: unknown) =>
          this.runtime.logger.error('Homie device events could not be stored', {
            count: batch.length,
            error: (error as Error).message,
          }),
        );
      }
    } finally {
      this.writingEvents = undefined;
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.writes.add(p);
    const done = () => this.writes.delete(p);
    p.then(done, done);
    return p;
  }
}

function newSession(id: string, now: number): Session {
  return {
    id,
    homie: undefined,
    state: undefined,
    name: null,
    firmware: null,
    firmwareName: null,
    implementation: null,
    nodeList: undefined,
    nodes: new Map(),
    properties: new Map(),
    values: new Map(),
    adopted: false,
    adding: false,
    notAdopted: undefined,
    firstSeen: now,
    lastSeen: now,
    errors: {},
    errorEvents: 0,
    errorWindowStart: 0,
    statusTimer: undefined,
    lastStatus: undefined,
    resyncAttempts: 0,
    previousState: undefined,
    sawInit: false,
    forceResync: false,
    tooManyProperties: false,
  };
}

function specOf(p: PropertyInfo): ValueSpec {
  return { datatype: p.datatype ?? 'string', format: p.format };
}

function describeSpec(spec: ValueSpec): string {
  return spec.format ? `${spec.datatype} ${spec.format}` : spec.datatype;
}

/**
 * The Homie convention: Homie devices (v3.0.1, v4) on the app's MQTT broker joining the fleet as
 * `homie.device`. Its bridge is one supervised process (kind `server`) subscribed to `<base>/+/#`
 * on the host's own broker connection — the MQTT link's, as a topic-filter handler
 * (src/transports/mqtt-topic-handlers.ts: its messages routed to it, its sets published on the
 * same client, the link's drops and reconnects told to it) — when the app gives it one
 * (`context.hostMqtt`) that goes to the same broker with the same account. Otherwise (no host
 * connection, or one to another broker URL or account) it keeps a client of its own (clean
 * session, MQTT 3.1.1, its own jittered reconnect, `clientId`). Either way:
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
 * This file is the process (the MQTT session, the public face) and the convention's entry point.
 * What a publish does to a device is the pure session model (homie-model.ts over the records of
 * homie-session.ts, testable without a broker); what that asks of the fleet and the store is
 * carried out by homie-fleet-sync.ts; options are homie-options.ts, the carrier's routing
 * homie-registry.ts.
 *
 * @example
 * const app = await startApp({ …, conventions: [homieConvention({ baseTopic: 'homie', adopt: 'auto' })] });
 * await app.fleet.act('boiler', 'set', { node: 'heater', property: 'target', value: 21.5 }, 'ana');
 * // or on its own, under any supervisor:
 * const bridge = startHomieBridge({ runtime, fleet, store, broker: { url } }, { baseTopic: 'homie' });
 * bridge.stats(); // { state: 'connected', devices: 3, adopted: 3, malformed: 0, … }
 */

import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import type { Fleet } from '../../devices/fleet.js';
import { err } from '../../lib/result.js';
import type { ExitReason } from '../../runtime/exit-reason.js';
import { ProcessBase } from '../../runtime/process.js';
import type { TimerRef } from '../../runtime/timers.js';
import { MqttConnection } from '../../transports/mqtt-connection.js';
import type { BrokerSession, TopicHandlerHooks } from '../../transports/mqtt-topic-handlers.js';
import type { ReconnectOptions } from '../../transports/reconnect.js';
import { DEFAULT_RECONNECT, ReconnectSchedule } from '../../transports/reconnect.js';
import type { BrokerSettings, Convention, ConventionContext } from '../convention.js';
import type { HomieSetProperty, HomieSetTarget } from './homie-carrier.js';
import { HomieFleetSync } from './homie-fleet-sync.js';
import { HOMIE_KIND, homieDevice } from './homie-kind.js';
import { HomieModel } from './homie-model.js';
import type { HomieConventionOptions } from './homie-options.js';
import { normalizeBase, validateOptions } from './homie-options.js';
import { registerBridge, unregisterBridge } from './homie-registry.js';
import type { DiscoveredHomieDevice, HomieDeviceView, Session } from './homie-session.js';
import { discoveredOf, isComplete, setPropertiesOf, viewOf } from './homie-session.js';

export type { HomieConventionOptions } from './homie-options.js';
export type { DiscoveredHomieDevice, HomieDeviceView } from './homie-session.js';

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

/** The bridge process. Made by {@link startHomieBridge}. */
export class HomieBridge extends ProcessBase implements HomieSetTarget {
  readonly baseTopic: string;
  /** How the fleet shows the link: `mqtt:<base>`. */
  readonly via: string;
  private readonly fleet: Fleet;
  private readonly broker: BrokerSettings | undefined;
  readonly options: HomieConventionOptions;
  private readonly reconnectOptions: ReconnectOptions;
  private readonly reconnect: ReconnectSchedule;
  private readonly clientId: string;
  /** Its own, or its share of the host's; undefined when the app runs without a broker (idle). */
  private readonly connection: BrokerSession | undefined;
  private stopping = false;
  private readonly context: ConventionContext;
  /** Unregisters from the host's Discovered view. */
  private leaveDiscovery: (() => void) | undefined;
  private resyncTimer: TimerRef | undefined;
  /** The devices' sessions and what each publish does to them. */
  private readonly model: HomieModel;
  /** What the model asks of the fleet and the store, carried out. */
  private readonly sync: HomieFleetSync;
  private counters = { resyncs: 0 };

  constructor(context: ConventionContext, options: HomieConventionOptions) {
    const base = normalizeBase(options.baseTopic);
    super(context.runtime, 'server', `homie-bridge:${base}`);
    this.baseTopic = base;
    this.via = `mqtt:${base}`;
    this.fleet = context.fleet;
    this.context = context;
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
    this.clientId = options.clientId ?? `fleetvisor-homie-${randomBytes(4).toString('hex')}`;
    this.connection = this.broker ? this.connect(this.broker) : undefined;
    this.model = new HomieModel(
      {
        baseTopic: base,
        now: () => this.runtime.clock.wallNow(),
        maxDevices: options.maxDevices,
        maxPropertiesPerDevice: options.maxPropertiesPerDevice,
        maxPayloadBytes: options.maxPayloadBytes,
        maxErrorEventsPerMinute: options.maxErrorEventsPerMinute,
      },
      (effect) => this.sync.carryOut(effect),
    );
    this.sync = new HomieFleetSync({
      runtime: this.runtime,
      pid: this.pid,
      name: this.name,
      fleet: this.fleet,
      store: context.store,
      model: this.model,
      baseTopic: base,
      via: this.via,
      adopt: options.adopt ?? context.adopt ?? 'auto',
      statusDelayMs: options.statusDelayMs ?? 100,
      running: () => this.status === 'running',
      closed: () => this.state === 'closed',
      live: (s) => this.noteLive(s),
    });
  }

  /** Registers the command port and starts the first connection; called once by {@link startHomieBridge}. */
  begin(): void {
    this.started();
    this.sync.carrier = registerBridge(this.fleet, this);
    this.leaveDiscovery = this.context.discovery?.register('homie', {
      discovered: () =>
        this.discovered().map((d) => ({
          id: d.id,
          kind: HOMIE_KIND,
          firmware: d.firmware ?? '',
          via: this.via,
          firstSeen: d.firstSeen,
          lastSeen: d.lastSeen,
          reason: d.reason,
        })),
      adopt: (id) => this.adopt(id),
    });
    if (!this.connection) {
      this.runtime.logger.warn('Homie bridge has no MQTT broker: it stays idle', { bridge: this.name });
      return;
    }
    this.connection.open();
  }

  // ---- the public face ----

  stats(): HomieBridgeStats {
    const sessions = this.model.sessions;
    let adopted = 0;
    for (const s of sessions.values()) if (s.adopted) adopted++;
    return {
      state: this.state,
      connected: this.state === 'connected',
      reconnects: this.connection?.reconnects ?? 0,
      received: this.model.counters.received,
      refused: this.model.counters.refused,
      malformed: this.model.counters.malformed,
      resyncs: this.counters.resyncs,
      devices: sessions.size,
      adopted,
      openSets: this.fleet.commands
        .open()
        .filter((c) => c.carrier === 'homie' && sessions.get(c.deviceId)?.adopted).length,
    };
  }

  /** Homie devices seen and not in the fleet (manual adoption, or a conflict). */
  discovered(): DiscoveredHomieDevice[] {
    const out: DiscoveredHomieDevice[] = [];
    for (const s of this.model.sessions.values()) {
      const d = discoveredOf(s);
      if (d) out.push(d);
    }
    return out;
  }

  /** Adds a discovered device to the fleet (manual adoption). */
  async adopt(id: string): Promise<{ ok: true } | { ok: false; error: { code: string; message: string } }> {
    const s = this.model.sessions.get(id);
    if (!s || s.homie === undefined)
      return err('notFound', `no Homie device '${String(id).slice(0, 80)}' seen on ${this.baseTopic}/`);
    if (s.adopted) return { ok: true };
    const r = await this.sync.add(s);
    return r.ok ? { ok: true } : r;
  }

  /** What the bridge knows of a device. */
  device(id: string): HomieDeviceView | undefined {
    const s = this.model.sessions.get(id);
    return s ? viewOf(s) : undefined;
  }

  /** Resolves when every store write so far (events, status, command outcomes) is done. */
  flush(): Promise<void> {
    return this.sync.flush();
  }

  /** The carrier's view of a device's settable properties (declared ones only); undefined: not seen. */
  describe(deviceId: string): ReadonlyMap<string, HomieSetProperty> | undefined {
    return setPropertiesOf(this.model.sessions.get(deviceId));
  }

  /** The carrier's wire: a set goes out only to a `ready`/`alert` device (a set is not retained). */
  publishSet(
    deviceId: string,
    set: { readonly node: string; readonly property: string; readonly payload: string },
    failed: (message: string) => void,
  ): 'sent' | 'notReachable' {
    const client = this.client;
    const s = this.model.sessions.get(deviceId);
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

  // ---- process stop, the broker connection, resync ----
  // The connection is the MqttConnection every host-side client shares. What is Homie's: each
  // publish goes to the model (`this.model.receive`), a lost broker is told to it
  // (`this.model.brokerLost`), devices with gaps are resynced by subscribing again
  // (`this.model.takeResyncGaps`), and the fleet side hears when nobody watches the devices
  // any more (`this.sync.release`).

  protected async terminate(_reason: ExitReason): Promise<void> {
    this.shutdown('the Homie bridge stopped');
    await this.connection?.end(2000);
    await this.flush();
  }

  protected override release(): void {
    this.shutdown('the Homie bridge was killed');
    this.connection?.kill();
  }

  /** Common to stop and kill: nobody watches the devices any more. */
  private shutdown(reason: string): void {
    this.stopping = true;
    this.cancelTimers();
    unregisterBridge(this.fleet, this);
    this.leaveDiscovery?.();
    this.sync.release(reason);
  }

  // ---- the connection (a share of the host's, or an MqttConnection of its own) ----

  private get state(): HomieBridgeState {
    if (this.stopping) return 'closed';
    return this.connection?.state ?? 'idle';
  }

  private get client(): MqttClient | undefined {
    return this.connection?.client;
  }

  private connect(broker: BrokerSettings): BrokerSession {
    const hooks: TopicHandlerHooks = {
      subscriptions: () => ({ [`${this.baseTopic}/+/#`]: { qos: 1 } }),
      onMessage: (topic, payload, packet) => this.model.receive(topic, payload, packet.retain === true),
      onReady: () => {},
      onDropped: () => {
        this.cancelTimers();
        this.model.brokerLost(); // every device waits for its retained $state after the reconnect
      },
    };
    const host = this.context.hostMqtt;
    if (host?.carries(broker)) return host.share({ label: `Homie bridge ${this.name}`, hooks });
    return new MqttConnection({
      runtime: this.runtime,
      owner: this.pid,
      label: `Homie bridge ${this.name}`,
      fields: { bridge: this.name },
      words: {
        connected: 'Homie bridge connected',
        reconnected: 'Homie bridge reconnected',
        lost: 'Homie bridge lost its broker connection',
        couldNotConnect: 'Homie bridge could not connect',
        subscribeFailed: 'Homie bridge subscribe failed',
        clientError: 'Homie bridge MQTT error',
      },
      broker,
      clientId: this.clientId,
      connectTimeoutMs: this.options.connectTimeoutMs,
      keepaliveMs: this.options.keepaliveMs,
      reconnect: this.reconnect,
      isRunning: () => this.status === 'running',
      hooks,
    });
  }

  // ---- resync (retained messages a broker did not forward) ----

  /** Live traffic from a device: if its description has gaps, re-subscribe soon (a few times at most). */
  private noteLive(s: Session): void {
    if (this.resyncTimer || s.resyncAttempts >= 3 || this.state !== 'connected') return;
    if (!s.forceResync && isComplete(s)) return;
    this.resyncTimer = this.runtime.timers.schedule(
      this.options.resyncDelayMs ?? 500,
      () => {
        this.resyncTimer = undefined;
        if (!this.client || this.state !== 'connected') return;
        const gaps = this.model.takeResyncGaps();
        if (gaps.length === 0) return;
        this.counters.resyncs++;
        this.runtime.logger.info('Homie bridge re-subscribes for missing retained messages', {
          bridge: this.name,
          devices: gaps.slice(0, 10),
        });
        // A subscription again replays the retained messages.
        this.connection?.subscribe();
      },
      { owner: this.pid, label: 'homie.resync' },
    );
  }

  private cancelTimers(): void {
    this.reconnect.cancel();
    if (this.resyncTimer) this.runtime.timers.cancel(this.resyncTimer);
    this.resyncTimer = undefined;
  }
}

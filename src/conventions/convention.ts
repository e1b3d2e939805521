/**
 * A convention: devices we did not write (Homie, Sparkplug B, Modbus RTU), mapped onto the same
 * fleet — the same device lifecycle, tree and views as Fleetvisor's own protocol.
 *
 * A convention brings its device kinds (registered with the fleet) and a bridge: one supervised
 * process under the `links` supervisor that talks to the devices (an MQTT connection, a serial
 * bus) and tells the fleet what happens, with the same calls the link hub uses:
 * `fleet.addDevice` (discovery), `fleet.linkUp` / `fleet.linkDown` (lifecycle),
 * `fleet.ingestTelemetry`, `fleet.reportStatus`, and `fleet.setCarrier(kind, carrier)` for its
 * kinds' `command` actions (writes to the device: a `CommandCarrier` of
 * src/devices/command-tracker.ts — `prepare`, `dispatch`, and a matcher that calls
 * `fleet.commands.settle`; see src/conventions/homie/homie-carrier.ts). Bad input from a device becomes an event on
 * that device (`store.appendEvents`, kind `device.badMessage`), never a crash of the bridge.
 *
 * @example
 * const app = await startApp({ …, conventions: [homieConvention({ baseTopic: 'homie' })] });
 */
import type { DeviceKind } from '../devices/define-device.js';
import type { Fleet } from '../devices/fleet.js';
import type { Process } from '../runtime/process.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Store } from '../store/store.js';
import type { BrokerSettings } from '../transports/mqtt-link.js';
import type { MqttTopicHandlers } from '../transports/mqtt-topic-handlers.js';
import type { DiscoverySources } from './discovery-sources.js';

/** How a bridge reaches the MQTT broker the app uses (the embedded one, or the operator's). */
export type { BrokerSettings };

export interface ConventionContext {
  readonly runtime: Runtime;
  readonly fleet: Fleet;
  readonly store: Store;
  /** The app's broker; undefined when the app runs without MQTT. */
  readonly broker: BrokerSettings | undefined;
  /**
   * The host's own broker connection (the MQTT link's), for a bridge that needs no session of its
   * own: it joins as a topic-filter handler (`hostMqtt.share`) when `hostMqtt.carries(broker)`,
   * else it opens its own connection. Undefined: every bridge connects on its own.
   */
  readonly hostMqtt?: MqttTopicHandlers;
  /**
   * The app's adoption policy (`--adopt`), one for every convention: `manual` lists a new device
   * for the operator, `auto` adds it. A convention's own `adopt` option overrides it; without
   * either a bridge adopts automatically.
   */
  readonly adopt?: 'auto' | 'manual';
  /** Where a bridge lists the devices it discovered, for the host's one Discovered view. */
  readonly discovery?: DiscoverySources;
  /**
   * In a cluster: this instance gained shards (docs/scale-out.md). A bridge that refused a device
   * earlier because another instance owned it (`notOwner`) may ask for it again now, as the
   * Sparkplug bridge does with a rebirth of its node. Undefined outside a cluster.
   */
  readonly ownership?: OwnershipEvents;
  /**
   * In a cluster: pins the device to this instance whatever its shard (src/cluster/pins.ts),
   * resolved once it runs here (started from the store if another instance ran it): true, or false
   * when the pin could not be taken. A Sparkplug device born under a node this instance holds is
   * pinned so: node and device run on one instance. Undefined outside a cluster.
   */
  readonly pin?: (deviceId: string) => Promise<boolean>;
}

/** Shards this instance gained, told to whoever listens; `owns` says which devices are its now. */
export interface OwnershipEvents {
  /** Calls `listener` after each gain (the devices already restored); returns the unsubscribe. */
  onGained(listener: (owns: (deviceId: string) => boolean) => void): () => void;
}

export interface Convention {
  /** `homie`, `sparkplug`, `modbus`: shown in the fleet table's convention column. */
  readonly name: string;
  /** Its device kinds; the app registers them with the fleet. */
  readonly kinds: readonly DeviceKind[];
  /** Starts the bridge process; the app puts it under the `links` supervisor (restarted there). */
  start(context: ConventionContext): Process | Promise<Process>;
}

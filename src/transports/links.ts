/**
 * The links layer, assembled: a `links` supervisor holding the MQTT link (one broker connection
 * for the whole fleet, which also carries the conventions that ride on it as topic-filter
 * handlers: {@link Links.mqttHandlers}) and the serial manager (one process per port), both
 * handing what devices say to the link hub, and the protocol carrier sending commands through the
 * hub to whichever link each device is on now.
 *
 * The fleet gets the carrier as its default one (its command tracker, `fleet.commands`, dispatches
 * through it); create the links first, then the fleet with `carrier: links.carrier`, then
 * {@link Links.attach}.
 *
 * @example
 * const links = createLinks({ runtime, store, mqtt: { url: broker.url }, serial: { ports: ['/dev/ttyUSB0'] } });
 * const fleet = createFleet({ runtime, store, kinds: [genericDevice], carrier: links.carrier });
 * await fleet.start();
 * await links.attach(fleet, { adopt: 'auto' });
 * // … later
 * await links.stop();
 */

import type { CommandCarrier } from '../devices/command-tracker.js';
import type { Fleet } from '../devices/fleet.js';
import type { ChildSpec } from '../runtime/child-spec.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Supervisor } from '../runtime/supervisor.js';
import { startSupervisor } from '../runtime/supervisor.js';
import type { Store } from '../store/store.js';
import type { LinkHandle, LinkHub, LinkHubOptions } from './link-hub.js';
import { createLinkHub } from './link-hub.js';
import type { MqttLink, MqttLinkOptions } from './mqtt-link.js';
import { startMqttLink } from './mqtt-link.js';
import { MqttTopicHandlers } from './mqtt-topic-handlers.js';
import type { DeviceId, Message } from './protocol.js';
import type { ProtocolCarrierOptions } from './protocol-carrier.js';
import { createProtocolCarrier } from './protocol-carrier.js';
import { FW_BINARY_CAPABILITY } from './serial-fw-frame.js';
import type { SerialLink } from './serial-link.js';
import type { SerialManager, SerialManagerOptions } from './serial-manager.js';
import { startSerialManager } from './serial-manager.js';

export interface MqttSettings
  extends Omit<
    MqttLinkOptions,
    'onMessage' | 'onDeviceError' | 'onStateChange' | 'clientId' | 'name' | 'handlers'
  > {
  /** Default `fleetvisor-host-<random>`: two hosts on one broker must not share a client id. */
  readonly clientId?: string;
}

export type SerialSettings = Omit<SerialManagerOptions, 'onMessage' | 'onError' | 'onPortUp' | 'onPortDown'>;

export interface LinksOptions {
  readonly runtime: Runtime;
  readonly store: Store;
  readonly mqtt?: MqttSettings;
  readonly serial?: SerialSettings;
  /** The protocol carrier's reply timeout, default time to live and size limit. */
  readonly commands?: Omit<ProtocolCarrierOptions, 'send'>;
}

export interface Links {
  /** Carries our protocol's commands over the links (the fleet's default carrier). */
  readonly carrier: CommandCarrier;
  /** Set by {@link Links.attach}. */
  readonly hub: LinkHub | undefined;
  readonly supervisor: Supervisor | undefined;
  readonly mqtt: MqttLink | undefined;
  /**
   * The MQTT link's connection for other handlers (Homie): one table across the link's restarts;
   * undefined without MQTT. See src/transports/mqtt-topic-handlers.ts.
   */
  readonly mqttHandlers: MqttTopicHandlers | undefined;
  readonly serial: SerialManager | undefined;
  /** Starts the links for a started fleet (which has loaded its waiting commands): connects. */
  attach(
    fleet: Fleet,
    hub?: Omit<LinkHubOptions, 'runtime' | 'fleet' | 'store'>,
    /** More link processes to supervise beside MQTT and serial (the conventions' bridges). */
    extraChildren?: readonly ChildSpec[],
  ): Promise<void>;
  stop(): Promise<void>;
}

export function createLinks(options: LinksOptions): Links {
  const { runtime, store } = options;
  let hub: LinkHub | undefined;
  let supervisor: Supervisor | undefined;
  // The current incarnation of each child (a restart replaces it).
  let mqttLink: MqttLink | undefined;
  let serialManager: SerialManager | undefined;
  let attached: Fleet | undefined;
  const mqttHandlers = options.mqtt ? new MqttTopicHandlers(options.mqtt) : undefined;
  const carrier = createProtocolCarrier({
    ...options.commands,
    send: (deviceId, command) => hub?.send(deviceId, command) ?? false,
  });

  const links: Links = {
    carrier,
    get hub() {
      return hub;
    },
    get supervisor() {
      return supervisor;
    },
    get mqtt() {
      return mqttLink;
    },
    mqttHandlers,
    get serial() {
      return serialManager;
    },

    async attach(fleet, hubOptions = {}, extraChildren = []) {
      if (hub) throw new Error('links: attach() was called twice');
      const h = createLinkHub({ ...hubOptions, runtime, fleet, store });
      hub = h;
      attached = fleet;
      const children: ChildSpec[] = [];
      if (options.mqtt)
        children.push(
          mqttLinkChild(runtime, options.mqtt, mqttHandlers, h, {
            current: () => mqttLink,
            started: (link) => {
              mqttLink = link;
            },
          }),
        );
      if (options.serial)
        children.push(
          serialManagerChild(runtime, options.serial, h, (manager) => {
            serialManager = manager;
          }),
        );
      children.push(...extraChildren);
      const res = await startSupervisor(runtime, {
        name: 'links',
        strategy: 'oneForOne',
        maxRestarts: 5,
        periodMs: 60_000,
        children,
      });
      if (!res.ok) throw new Error(`links could not start: ${res.error.message}`);
      supervisor = res.value;
    },

    async stop() {
      // Commands stay open across a shutdown: the links going down must not end them.
      await attached?.commands.stop();
      if (supervisor?.alive) await supervisor.stop();
      await hub?.flush();
    },
  };
  return links;
}

/**
 * The `mqtt` child: one broker connection for the whole fleet, handing what devices say to the
 * hub (and what the conventions on `handlers` read to them); a lost broker connection is a whole
 * link down. Each (re)start makes a new MqttLink on the same `handlers`; the hub's handle sends on
 * whichever is current.
 */
function mqttLinkChild(
  runtime: Runtime,
  mqtt: MqttSettings,
  handlers: MqttTopicHandlers | undefined,
  h: LinkHub,
  incarnation: { current(): MqttLink | undefined; started(link: MqttLink): void },
): ChildSpec {
  const handle: LinkHandle = {
    via: 'mqtt',
    presence: 'status',
    // Chunks go binary to a device whose latest hello lists `fw.binary` (docs/protocol.md §7.1).
    send: (deviceId, message) => {
      const binaryChunk =
        message.type === 'fw.chunk' &&
        h.device(deviceId)?.hello?.capabilities.includes(FW_BINARY_CAPABILITY) === true;
      return incarnation.current()?.publish(deviceId, message, { binaryChunk }).ok ?? false;
    },
  };
  return {
    id: 'mqtt',
    start: () => {
      const link = startMqttLink(runtime, {
        ...mqtt,
        clientId: mqtt.clientId ?? `fleetvisor-host-${Math.random().toString(36).slice(2, 10)}`,
        name: 'mqtt-link',
        ...(handlers ? { handlers } : {}),
        onMessage: (deviceId, message) => h.deliver(deviceId, message, handle),
        onDeviceError: (deviceId, error) => h.linkError(deviceId, error, 'mqtt'),
        onStateChange: (state, detail) => {
          if (state === 'backoff')
            h.linkDown(
              'mqtt',
              `the host lost its broker connection (broker unreachable: ${detail.error ?? 'connection lost'})`,
            );
        },
      });
      incarnation.started(link);
      return link;
    },
  };
}

/**
 * The `serial` child: the serial manager (one process per port); a port's device is known by its
 * hello, and a vanished port takes its device's link with it.
 */
function serialManagerChild(
  runtime: Runtime,
  serial: SerialSettings,
  h: LinkHub,
  started: (manager: SerialManager) => void,
): ChildSpec {
  const handles = new Map<SerialLink, LinkHandle>();
  const handleOf = (link: SerialLink): LinkHandle => {
    let handle = handles.get(link);
    if (!handle) {
      handle = {
        via: `serial:${link.path}`,
        presence: 'hello',
        send: (_deviceId: string, message: Message) => link.send(message).ok,
      };
      handles.set(link, handle);
    }
    return handle;
  };
  return {
    id: 'serial',
    start: () => {
      const manager = startSerialManager(runtime, {
        ...serial,
        onMessage: (message, link) => {
          const id = link.deviceId;
          if (id !== undefined) h.deliver(id, message, handleOf(link));
          else
            h.linkError(
              undefined,
              { code: 'noHello', message: `${message.type} before hello` },
              `serial:${link.path}`,
            );
        },
        onError: (error, link) => h.linkError(link.deviceId, error, `serial:${link.path}`),
        onPortDown: (path, deviceId, reason) => {
          for (const [link] of handles) if (link.path === path) handles.delete(link);
          if (deviceId !== undefined) h.linkLost(deviceId as DeviceId, `serial:${path}`, reason);
        },
      });
      started(manager);
      return manager;
    },
  };
}

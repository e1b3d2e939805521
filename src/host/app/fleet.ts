/**
 * The fleet and its links: the links (MQTT link hub, serial manager) and the fleet built over
 * them with every convention's device kinds; then the root's `devices` child (the fleet's own
 * supervisor), the devices declared in the config, and the root's `links` child (the links
 * attached to the fleet, with the conventions' bridges under them).
 *
 * @example
 * const { fleet, links, conventions } = createFleetAndLinks(setup, { store, mqtt, serialPorts });
 * await startDevices(setup, root, fleet);
 * await startLinks(setup, root, { fleet, links, conventions, store, mqtt, demo, updates, attached, stopping });
 */

import type { Convention } from '../../conventions/convention.js';
import type { DiscoverySources } from '../../conventions/discovery-sources.js';
import { homieConvention } from '../../conventions/homie/homie-bridge.js';
import { modbusConvention } from '../../conventions/modbus/modbus-bridge.js';
import { sparkplugConvention } from '../../conventions/sparkplug/sparkplug-bridge.js';
import type { Fleet } from '../../devices/fleet.js';
import { createFleet } from '../../devices/fleet.js';
import { genericDevice } from '../../devices/generic-device.js';
import type { FirmwareUpdates } from '../../firmware/firmware-updates.js';
import type { Logger, Runtime } from '../../runtime/runtime.js';
import { serviceSupervisor } from '../../runtime/service-supervisor.js';
import type { Store } from '../../store/store.js';
import type { BrokerAccounts } from '../../transports/broker-accounts.js';
import type { Links, MqttSettings } from '../../transports/links.js';
import { createLinks } from '../../transports/links.js';
import type { AppOptions } from '../app.js';
import { reconcileDeclaredDevices } from '../declared-devices.js';
import type { AppRoot } from './root.js';
import type { AppSetup } from './setup.js';

/** Every convention Fleetvisor knows, with its defaults. */
export function defaultConventions(): Convention[] {
  return [homieConvention(), sparkplugConvention(), modbusConvention()];
}

export interface FleetAndLinks {
  readonly links: Links;
  readonly conventions: readonly Convention[];
  readonly fleet: Fleet;
}

/** Built only: the fleet starts with {@link startDevices}, the links with {@link startLinks}. */
export function createFleetAndLinks(
  setup: AppSetup,
  parts: {
    readonly store: Store;
    readonly mqtt: MqttSettings;
    readonly serialPorts: AppOptions['serialPorts'];
    /** A cluster instance's shards: only their devices run here. */
    readonly owns?: (deviceId: string) => boolean;
  },
): FleetAndLinks {
  const { runtime, options } = setup;
  const { store, mqtt, serialPorts, owns } = parts;
  const links = createLinks({
    runtime,
    store,
    mqtt,
    ...(serialPorts !== undefined && (serialPorts === 'auto' || serialPorts.length > 0)
      ? { serial: { ports: serialPorts } }
      : {}),
  });
  const conventions = options.conventions ?? defaultConventions();
  const fleet = createFleet({
    runtime,
    store,
    kinds: [genericDevice, ...conventions.flatMap((c) => c.kinds)],
    carrier: links.carrier,
    ...(options.commandRate ? { fleetRate: options.commandRate } : {}),
    ...(owns ? { owns } : {}),
  });
  return { links, conventions, fleet };
}

/** The root's `devices` child: the fleet's devices loaded from the store and started. */
export async function startDevices(setup: AppSetup, root: AppRoot, fleet: Fleet): Promise<void> {
  const { runtime, log } = setup;
  await root.startChild({
    id: 'devices',
    type: 'supervisor',
    restart: 'temporary',
    significant: true,
    shutdown: 'infinity',
    start: async () => {
      const started = await fleet.start();
      log.info('fleet loaded', { devices: started.started, failed: started.failed.length });
      for (const f of started.failed) log.warn('device could not start', f);
      return serviceSupervisor(runtime, fleet.supervisor, () => fleet.stop());
    },
  });
  setup.stops.push(async () => {
    await root.supervisor.terminateChild('devices');
  });
}

/** The config's devices added, updated or removed, each change in the audit log; a removal revokes its account. */
export async function reconcileConfigDevices(
  setup: AppSetup,
  parts: { readonly fleet: Fleet; readonly store: Store; readonly accounts: BrokerAccounts | undefined },
): Promise<void> {
  const { options, runtime, log } = setup;
  const { fleet, store, accounts } = parts;
  if (!options.devices) return;
  const declared = await reconcileDeclaredDevices(fleet, options.devices, async (deviceId, action, data) => {
    if (action === 'remove') accounts?.revokeDevice(deviceId);
    await store.appendEvents(
      [
        {
          at: runtime.clock.wallNow(),
          deviceId,
          kind: 'device.audit',
          data: { action, actor: 'config', ...data },
        },
      ],
      { durability: 'full' },
    );
  });
  log.info('declared devices reconciled', {
    added: declared.added.length,
    updated: declared.updated.length,
    removed: declared.removed.length,
    unchanged: declared.unchanged.length,
    failed: declared.failed.length,
  });
  for (const f of declared.failed) log.warn(`declared device ${f.id} not applied: ${f.code}: ${f.message}`);
}

/**
 * One adoption policy for our own protocol and every convention (a convention's own option wins).
 * The demo adopts on the embedded broker only: an external one may carry other instances' devices.
 */
export function adoptPolicy(options: AppOptions, demo: boolean): 'auto' | 'manual' {
  return options.adopt ?? (demo && options.mqtt === undefined ? 'auto' : 'manual');
}

/**
 * The root's `links` child: the links attached to the fleet with the conventions' bridges, then
 * `attached` (what needs the links up: firmware jobs, rollouts). Its stop step runs `stopping`
 * first, then terminates the child.
 */
export async function startLinks(
  setup: AppSetup,
  root: AppRoot,
  parts: FleetAndLinks & {
    readonly store: Store;
    readonly mqtt: MqttSettings;
    readonly demo: boolean;
    readonly owns?: (deviceId: string) => boolean;
    /** A cluster instance pins the devices of its serial ports (LinkHubOptions.heardOnPort). */
    readonly heardOnPort?: (deviceId: string, hello: boolean) => void;
    readonly updates: FirmwareUpdates;
    /** Where the conventions' bridges list what they discovered. */
    readonly discovery: DiscoverySources;
    readonly attached: () => Promise<void>;
    readonly stopping: () => void;
  },
): Promise<void> {
  const { runtime, options } = setup;
  const {
    links,
    fleet,
    conventions,
    store,
    mqtt: brokerSettings,
    demo,
    owns,
    updates,
    discovery,
    heardOnPort,
  } = parts;
  const adopt = adoptPolicy(options, demo);
  await root.startChild({
    id: 'links',
    type: 'supervisor',
    restart: 'temporary',
    significant: true,
    shutdown: 'infinity',
    start: async () => {
      await links.attach(
        fleet,
        {
          adopt,
          ...(owns ? { owns } : {}),
          ...(heardOnPort ? { heardOnPort } : {}),
          onFirmwareAck: (id, ack) => updates.ack(id, ack),
          onDeviceHello: (id, hello) => updates.hello(id, hello),
        },
        conventions.map((c) => ({
          id: c.name,
          start: () =>
            c.start({
              runtime,
              fleet,
              store,
              broker: brokerSettings,
              ...(links.mqttHandlers ? { hostMqtt: links.mqttHandlers } : {}),
              adopt,
              discovery,
            }),
        })),
      );
      if (!links.supervisor) throw new Error('links: attach() left no supervisor');
      await parts.attached();
      return serviceSupervisor(runtime, links.supervisor, () => links.stop());
    },
  });
  setup.stops.push(async () => {
    parts.stopping();
    await root.supervisor.terminateChild('links');
  });
}

/** Each device's lifecycle at debug; at INFO the fleet's summary counts it (src/devices/lifecycle-summary.ts). */
export function logDeviceLifecycle(runtime: Runtime, fleet: Fleet, log: Logger): () => void {
  return runtime.events.subscribe((e) => {
    if (e.type !== 'state.transition' || !fleet.device(e.name)) return;
    const top = (s: string) => s.split('.')[0];
    if (top(e.from) !== top(e.to))
      log.debug('device state', { deviceId: e.name, from: e.from, to: e.to, on: e.event });
  });
}

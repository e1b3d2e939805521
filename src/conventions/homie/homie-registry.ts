/**
 * The Homie bridges of one fleet, by base topic, and the one carrier of the `homie.device` kind
 * they share: a `set` is routed to the bridge serving the device's base topic.
 *
 * @example
 * const carrier = registerBridge(fleet, bridge); // on start
 * unregisterBridge(fleet, bridge); // on stop
 */

import type { Fleet } from '../../devices/fleet.js';
import type { HomieCarrier, HomieSetTarget } from './homie-carrier.js';
import { createHomieCarrier } from './homie-carrier.js';
import { HOMIE_KIND } from './homie-kind.js';
import type { HomieConventionOptions } from './homie-options.js';

/** What the registry needs of a bridge. */
export interface RegisteredBridge extends HomieSetTarget {
  readonly options: HomieConventionOptions;
}

const bridgesByFleet = new WeakMap<
  Fleet,
  { bridges: Map<string, RegisteredBridge>; carrier: HomieCarrier }
>();

export function registerBridge(fleet: Fleet, bridge: RegisteredBridge): HomieCarrier {
  let entry = bridgesByFleet.get(fleet);
  if (!entry) {
    const bridges = new Map<string, RegisteredBridge>();
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

export function unregisterBridge(fleet: Fleet, bridge: RegisteredBridge): void {
  const bridges = bridgesByFleet.get(fleet)?.bridges;
  if (bridges?.get(bridge.baseTopic) === bridge) bridges.delete(bridge.baseTopic);
}

/**
 * Links and shards coming and going, over the hub's whole table: a device's link lost (its serial
 * port vanished), a whole link down (the host's broker connection dropped: every device on it is
 * offline), and a cluster instance taking devices over (`resync`: those whose kept hello and
 * status say connected are online at once) or handing them on (`release`).
 *
 * @example
 * const links = createHubLinkEvents({ runtime, fleet, sessions, presence, discovery });
 * links.linkDown('mqtt', 'the host lost its broker connection'); // fleet.linkDown for each device on it
 */
import type { Fleet } from '../devices/fleet.js';
import type { Runtime } from '../runtime/runtime.js';
import type { HubDiscovery } from './hub-discovery.js';
import type { LinkPresence } from './link-presence.js';
import { isConnected, wentDownWithLink } from './link-presence-rules.js';
import type { Session } from './link-session.js';
import type { DeviceId } from './protocol.js';

export interface HubLinkEventsOptions {
  readonly runtime: Runtime;
  readonly fleet: Fleet;
  readonly sessions: ReadonlyMap<string, Session>;
  readonly presence: Pick<LinkPresence, 'goOnline' | 'goOffline'>;
  readonly discovery: Pick<HubDiscovery, 'discovered' | 'unknownDevice'>;
}

export interface HubLinkEvents {
  linkLost(deviceId: DeviceId, via: string, reason: string): void;
  linkDown(via: string, reason: string): void;
  resync(which: (deviceId: string) => boolean): number;
  release(which: (deviceId: string) => boolean): void;
}

export function createHubLinkEvents(options: HubLinkEventsOptions): HubLinkEvents {
  const { runtime, fleet, sessions } = options;
  const { goOnline, goOffline } = options.presence;
  const { discovered, unknownDevice } = options.discovery;
  return {
    linkLost(deviceId, via, reason) {
      const s = sessions.get(deviceId);
      if (!s || s.link?.via !== via) return;
      if (fleet.has(deviceId)) goOffline(deviceId, s, reason);
      else s.link = undefined;
    },

    linkDown(via, reason) {
      const t = runtime.clock.wallNow();
      for (const [id, s] of sessions) {
        // Wills a broker sends as it shuts down arrive just before the host's own connection drops:
        // the host's drop is the reason, not the devices' wills.
        if (wentDownWithLink(s, via, t)) {
          s.status = undefined;
          if (fleet.has(id)) fleet.linkDown(id, reason, { restate: true });
          continue;
        }
        if (s.link?.via !== via) continue;
        s.status = undefined; // the broker will tell again (retained) when we are back
        if (fleet.has(id)) goOffline(id, s, reason);
        else s.link = undefined;
      }
    },

    resync(which) {
      let online = 0;
      for (const [id, s] of sessions) {
        if (!which(id) || !s.link || !s.hello) continue;
        if (!fleet.has(id)) {
          // New to the fleet, heard while another instance owned its shard: adopt or list it now.
          if (!discovered.has(id) && !s.pending) unknownDevice(id as DeviceId, s.hello, s.link);
          continue;
        }
        if (isConnected(s.link.presence, s.status, s.hello.boot)) {
          s.online = false;
          goOnline(id, s, s.link);
          online++;
        }
      }
      return online;
    },

    release(which) {
      for (const [id, s] of sessions) if (which(id)) s.online = false;
    },
  };
}

/**
 * The link hub: where every link (the MQTT connection, each serial port) hands over what devices
 * say, and where the host finds a device's link to answer. It turns protocol messages into fleet
 * facts:
 *
 * - `hello` → the device's reported status (firmware, slots, capabilities) and, once the device is
 *   known to be connected, {@link Fleet.linkUp} (the fleet's command tracker then sends what waits).
 *   Over MQTT "connected" is the retained `status: online` of the same `boot` (a retained hello of
 *   a device that died long ago is not a connection); over serial, the hello itself.
 * - `status: offline` (the last will, or a clean goodbye) of the current `(boot, conn)` → linkDown.
 *   A will of an older connection, arriving late, is ignored (docs/protocol.md §3 status).
 * - `telemetry` → deduplicated by `(boot, seq)` in a window of the last 1024 seqs → the fleet
 *   (store + liveness); `heartbeat` → liveness; `event` → the event log (deduplicated the same way,
 *   and kept at most once per (device, boot, seq) by the store, as telemetry is);
 *   `reply` → the command tracker (`fleet.commands`, src/transports/protocol-carrier.ts); `fw.ack` → the firmware seam (`onFirmwareAck`).
 * - A device the fleet does not know is adopted (`adopt: 'auto'`, its hello names a known kind)
 *   or listed as discovered for the operator (`adopt: 'manual'`, the default): an unknown device
 *   never reaches the store by itself.
 * - Link errors (malformed payloads, bad frames) are counted per device and written to the event
 *   log at most `maxErrorEventsPerMinute` per device, so a babbling device cannot fill the disk.
 *
 * @example
 * const hub = createLinkHub({ runtime, fleet, store, adopt: 'auto' });
 * const mqtt = startMqttLink(runtime, { url, clientId: 'fleetvisor', onMessage: (id, m) => hub.deliver(id, m, mqttHandle), … });
 */

import { createDeviceEventLog } from '../devices/device-event-log.js';
import type { Fleet } from '../devices/fleet.js';
import type { Runtime } from '../runtime/runtime.js';
import type { DeviceMessageId, JsonValue, Store } from '../store/store.js';
import { createBadMessageCounter } from './bad-messages.js';
import type { DiscoveredDevice } from './hub-discovery.js';
import { createHubDiscovery } from './hub-discovery.js';
import { createHubDelivery } from './link-hub-delivery.js';
import { createHubDispatch } from './link-hub-dispatch.js';
import { createHubLinkEvents } from './link-hub-links.js';
import type { DeviceLinkStats } from './link-hub-sessions.js';
import { createHubSessions, linkStatsOf } from './link-hub-sessions.js';
import { createLinkPresence } from './link-presence.js';
import type { LinkHandle } from './link-session.js';
import type { DeviceId, FwAckMessage, HelloMessage, Message } from './protocol.js';

export type { DiscoveredDevice } from './hub-discovery.js';
export type { DeviceLinkStats } from './link-hub-sessions.js';
export { HELLO_ASK_EVERY_MS } from './link-presence.js';
export type { LinkHandle } from './link-session.js';

export interface LinkHubOptions {
  readonly runtime: Runtime;
  readonly fleet: Fleet;
  readonly store: Store;
  /** What happens to a device the fleet does not know when it says hello; default `manual`. */
  readonly adopt?: 'auto' | 'manual';
  /**
   * A cluster instance's share (docs/scale-out.md): messages of other devices are another
   * instance's to handle; only their hello and status are kept here, so that a device whose shard
   * moves to this instance is known connected at once ({@link LinkHub.resync}). Default: all.
   */
  readonly owns?: (deviceId: string) => boolean;
  /**
   * Told of every message that comes on a link whose hello is the connection (a serial port),
   * whoever owns the device (`hello`: the message is a hello). A cluster instance pins such a
   * device to itself (src/cluster/pins.ts): `owns` is true for it from then on.
   */
  readonly heardOnPort?: (deviceId: string, hello: boolean) => void;
  /**
   * Most devices listed as discovered; default 10 000 (past it the oldest is dropped, counted): a
   * real fleet waiting for adoption fits, a flood of invented ids does not grow without bound.
   */
  readonly maxDiscovered?: number;
  /**
   * Automatic adoption at a bounded rate: past this many new devices in a minute, automatic
   * adoption pauses until the minute ends (an alarm is logged and written once), and the rest wait
   * in the discovered list (`adoptionPaused`) for an operator; default 200.
   */
  readonly autoAdoptPerMinute?: number;
  /** New discovered devices logged and written as events one by one per minute; default 20 (the rest: one summary). */
  readonly discoveredAnnouncementsPerMinute?: number;
  /** Link errors written to the event log per device per minute; default 10 (all are counted). */
  readonly maxErrorEventsPerMinute?: number;
  /**
   * Link errors written one by one per minute across all devices (a flood of strangers, a
   * thousand misconfigured devices); default 100 events, of which 20 also as log lines. The rest
   * are counted and written as one summary (by code, how many devices) when the minute ends.
   */
  readonly maxErrorEventsPerMinuteAll?: number;
  /** Firmware transfer acks (the firmware layer plugs in here). */
  onFirmwareAck?(deviceId: DeviceId, ack: FwAckMessage): void;
  /** Every hello of a fleet device (a firmware job waits for the one after a reboot). */
  onDeviceHello?(deviceId: DeviceId, hello: HelloMessage): void;
}

export interface LinkHub {
  /**
   * A valid message from a device, on a link. Never throws. For telemetry, returns the store
   * write (settles once committed, or with why not: `overloaded` as `stopped`), so a link can
   * apply backpressure (mqtt-link.ts `maxPendingIngest`) and count what was lost.
   */
  deliver(deviceId: DeviceId, message: Message, link: LinkHandle): Promise<unknown> | undefined;
  /** Something a device sent that could not be used (the link already refused it). */
  linkError(
    deviceId: DeviceId | undefined,
    error: { readonly code: string; readonly message: string },
    via: string,
  ): void;
  /** A device's link went away (its serial port vanished, …). */
  linkLost(deviceId: DeviceId, via: string, reason: string): void;
  /** A whole link went away (the broker connection dropped): every device on it is offline. */
  linkDown(via: string, reason: string): void;
  /** Sends on the device's current link; false when it has none. */
  send(deviceId: string, message: Message): boolean;
  /** The device's last hello and whether it is online now (firmware jobs start from it). */
  device(
    deviceId: string,
  ): { readonly hello: HelloMessage | undefined; readonly online: boolean } | undefined;
  discovered(): DiscoveredDevice[];
  /**
   * The discovered list's bounds at work: how many are listed, how many were dropped because the
   * list was full (oldest first), how many new devices were not written one by one to the log
   * and the event log (past the per-minute budget; each window's count is written as one summary).
   */
  discoveryStats(): { readonly listed: number; readonly dropped: number; readonly unannounced: number };
  /**
   * The fleet took these devices over (a cluster instance claimed their shards): each whose kept
   * hello and status say connected is brought online now; the others at their next message.
   */
  resync(which: (deviceId: string) => boolean): number;
  /** These devices went to another instance: no longer online here (nothing told to the fleet). */
  release(which: (deviceId: string) => boolean): void;
  /** Adopts a discovered device into the fleet (manual adoption). */
  adopt(id: string): Promise<{ ok: true } | { ok: false; error: { code: string; message: string } }>;
  stats(id: string): DeviceLinkStats | undefined;
  /** Every accepted message (after dedupe), for live views; the returned function stops it. */
  observe(listener: (deviceId: string, message: Message) => void): () => void;
  /** Messages accepted from devices since the start, all devices together. */
  readonly received: number;
  /** Resolves when every store write so far is done. */
  flush(): Promise<void>;
}

/**
 * The hub, composed of its parts: the session table (src/transports/link-hub-sessions.ts), the
 * event log and its bad-message counter (bad-messages.ts), presence (link-presence.ts), the
 * dispatch by message type (link-hub-dispatch.ts), discovery (hub-discovery.ts), the first
 * routing of a message (link-hub-delivery.ts) and links coming and going (link-hub-links.ts).
 */
export function createLinkHub(options: LinkHubOptions): LinkHub {
  const { runtime, fleet, store } = options;
  const table = createHubSessions(runtime);
  const { sessions, session } = table;

  // The one device event log writer (batched per turn); the hub's own limits are its bad-message counter's.
  const eventLog = createDeviceEventLog({ runtime, store });
  const logEvent = (kind: string, deviceId: string | undefined, data: JsonValue, message?: DeviceMessageId) =>
    eventLog.append(kind, deviceId, data, 'normal', message);
  const countError = createBadMessageCounter({
    runtime,
    logEvent,
    maxPerDevice: options.maxErrorEventsPerMinute ?? 10,
    maxAll: options.maxErrorEventsPerMinuteAll ?? 100,
  }).count;

  const presence = createLinkPresence({ runtime, fleet, logEvent, onDeviceHello: options.onDeviceHello });
  const handle = createHubDispatch({
    fleet,
    session,
    notify: table.notify,
    presence,
    countError,
    logEvent,
    onFirmwareAck: options.onFirmwareAck,
  });
  const discovery = createHubDiscovery({
    runtime,
    fleet,
    adopt: options.adopt ?? 'manual',
    maxDiscovered: options.maxDiscovered ?? 10_000,
    announcementsPerMinute: options.discoveredAnnouncementsPerMinute ?? 20,
    autoAdoptPerMinute: options.autoAdoptPerMinute ?? 200,
    session,
    forget: (id) => sessions.delete(id),
    logEvent,
    countError,
    handle,
    presence,
  });
  const deliver = createHubDelivery({
    runtime,
    fleet,
    sessions,
    session,
    owns: options.owns,
    heardOnPort: options.heardOnPort,
    discovery,
    handle,
  });
  const linkEvents = createHubLinkEvents({ runtime, fleet, sessions, presence, discovery });

  return {
    deliver,

    linkError(deviceId, error, via) {
      if (deviceId === undefined) {
        runtime.logger.warn('bad message on a link', { via, code: error.code, message: error.message });
        return;
      }
      countError(deviceId, session(deviceId), error, via);
    },

    linkLost: linkEvents.linkLost,
    linkDown: linkEvents.linkDown,
    resync: linkEvents.resync,
    release: linkEvents.release,

    send(deviceId, message) {
      const s = sessions.get(deviceId);
      if (!s?.online || !s.link) return false;
      return s.link.send(deviceId, message);
    },

    device(deviceId) {
      const s = sessions.get(deviceId);
      return s ? { hello: s.hello, online: s.online } : undefined;
    },

    discovered: () => discovery.list(),
    discoveryStats: () => discovery.stats(),
    adopt: (id) => discovery.adopt(id),

    stats(id) {
      const s = sessions.get(id);
      return s ? linkStatsOf(id, s) : undefined;
    },

    observe: table.observe,

    get received() {
      return table.received;
    },

    flush: () => eventLog.flush(),
  };
}

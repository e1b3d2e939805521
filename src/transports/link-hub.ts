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
 *   (store + liveness); `heartbeat` → liveness; `event` → the event log (deduplicated the same way);
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
import type { JsonValue, Store } from '../store/store.js';
import { createBadMessageCounter } from './bad-messages.js';
import type { DiscoveredDevice } from './hub-discovery.js';
import { createHubDiscovery } from './hub-discovery.js';
import { createLinkPresence } from './link-presence.js';
import type { LinkHandle, Session } from './link-session.js';
import { firstTime, newSession } from './link-session.js';
import type { DeviceId, FwAckMessage, HelloMessage, Message } from './protocol.js';
import { settleReply } from './protocol-carrier.js';

export type { DiscoveredDevice } from './hub-discovery.js';
export { HELLO_ASK_EVERY_MS } from './link-presence.js';
export type { LinkHandle } from './link-session.js';

export interface DeviceLinkStats {
  readonly id: string;
  readonly online: boolean;
  readonly via: string | null;
  readonly boot: number | null;
  readonly received: number;
  readonly duplicates: number;
  readonly gaps: number;
  readonly errors: Readonly<Record<string, number>>;
}

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

/** How long before the host's own broker drop a device's offline status counts as part of it. */
const RESTATE_WINDOW_MS = 5000;

export function createLinkHub(options: LinkHubOptions): LinkHub {
  const { runtime, fleet, store } = options;
  const log = runtime.logger;
  const sessions = new Map<string, Session>();
  const observers = new Set<(deviceId: string, message: Message) => void>();
  let totalReceived = 0;
  const notify = (id: string, m: Message) => {
    totalReceived++;
    for (const o of observers) {
      try {
        o(id, m);
      } catch (error) {
        runtime.report('link hub: an observer threw', error);
      }
    }
  };

  const now = () => runtime.clock.wallNow();
  const session = (id: string): Session => {
    let s = sessions.get(id);
    if (!s) {
      s = newSession();
      sessions.set(id, s);
    }
    return s;
  };

  // The one device event log writer (batched per turn); the hub's own limits are its bad-message counter's.
  const eventLog = createDeviceEventLog({ runtime, store });
  const logEvent = (kind: string, deviceId: string | undefined, data: JsonValue) =>
    eventLog.append(kind, deviceId, data, 'normal');
  const badMessages = createBadMessageCounter({
    runtime,
    logEvent,
    maxPerDevice: options.maxErrorEventsPerMinute ?? 10,
    maxAll: options.maxErrorEventsPerMinuteAll ?? 100,
  });
  const countError = badMessages.count;

  const presence = createLinkPresence({ runtime, fleet, logEvent, onDeviceHello: options.onDeviceHello });
  const { goOnline, goOffline, onHello, onStatus, aliveOn } = presence;

  /** The store write of the telemetry `handle` just passed on (read by `deliver`). */
  let lastIngest: ReturnType<Fleet['ingestTelemetry']> | undefined;

  function handle(id: DeviceId, m: Message, link: LinkHandle): void {
    const s = session(id);
    s.received++;
    if ((m.type !== 'telemetry' && m.type !== 'event') || firstTime(s, m.boot, m.seq)) notify(id, m);
    else {
      s.duplicates++;
      return;
    }
    switch (m.type) {
      case 'hello':
        onHello(id, s, m, link);
        return;
      case 'status':
        onStatus(id, s, m, link);
        return;
      case 'telemetry':
        aliveOn(id, s, link, m.boot, m.type);
        lastIngest = fleet.ingestTelemetry(id, m.values, m.ts, { boot: m.boot, seq: m.seq });
        void lastIngest.then((r) => {
          if (!r.ok) countError(id, s, { code: r.error.code, message: r.error.message }, link.via);
        });
        return;
      case 'heartbeat':
        aliveOn(id, s, link, m.boot, m.type);
        fleet.touch(id);
        return;
      case 'event':
        aliveOn(id, s, link, m.boot, m.type);
        fleet.touch(id);
        logEvent(`device.event.${m.name}`, id, {
          severity: m.severity ?? 'info',
          seq: m.seq,
          deviceTs: m.ts,
          ...(m.data !== undefined ? { data: m.data as JsonValue } : {}),
        });
        return;
      case 'reply': {
        if (presence.ownReply(m.cmdId)) return; // its fresh hello came before this reply
        const outcome = settleReply(fleet.commands, id, m);
        if (outcome !== 'unknownCommand') {
          // A reply to a command of ours is a sign of life too (serial replies included).
          aliveOn(id, s, link, undefined, m.type);
          fleet.touch(id);
        } else
          countError(
            id,
            s,
            { code: 'unknownCommand', message: `reply for command ${m.cmdId}, never sent to ${id}` },
            link.via,
          );
        return;
      }
      case 'fw.ack':
        fleet.touch(id);
        options.onFirmwareAck?.(id, m);
        return;
      default:
        // Host → device types never arrive here: the links refuse them (wrongChannel / direction).
        countError(
          id,
          s,
          { code: 'wrongDirection', message: `'${m.type}' is a host → device message` },
          link.via,
        );
    }
  }

  const owns = options.owns;

  /** Another instance's device: its presence is kept, nothing else (see {@link LinkHubOptions.owns}). */
  function shadow(id: DeviceId, m: Message, link: LinkHandle): void {
    if (m.type !== 'hello' && m.type !== 'status') return;
    const s = session(id);
    s.link = link;
    if (m.type === 'hello') s.hello = m;
    else s.status = { state: m.state, boot: m.boot, conn: m.conn };
  }

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
  });
  const { discovered, unknownDevice } = discovery;

  return {
    deliver(deviceId, message, link) {
      try {
        const s = sessions.get(deviceId);
        if (s?.pending) {
          // Behind an adoption in progress: keep the order, lose nothing.
          s.pending = s.pending.then(() => {
            this.deliver(deviceId, message, link);
          });
          return s.pending;
        }
        if (owns && !owns(deviceId)) {
          shadow(deviceId, message, link);
          return undefined;
        }
        if (!fleet.has(deviceId)) {
          if (owns && message.type !== 'hello' && s?.hello && s.link && !discovered.has(deviceId)) {
            // Its hello came while another instance owned its shard: that hello first, then this.
            unknownDevice(deviceId, s.hello, s.link);
            const adopting = s.pending;
            if (adopting) {
              s.pending = adopting.then(() => {
                this.deliver(deviceId, message, link);
              });
              return s.pending;
            }
          }
          unknownDevice(deviceId, message, link);
          return undefined;
        }
        lastIngest = undefined;
        handle(deviceId, message, link);
        return lastIngest;
      } catch (error) {
        runtime.report(`link hub: handling ${message.type} from ${deviceId} threw`, error);
        return undefined;
      }
    },

    linkError(deviceId, error, via) {
      if (deviceId === undefined) {
        log.warn('bad message on a link', { via, code: error.code, message: error.message });
        return;
      }
      countError(deviceId, session(deviceId), error, via);
    },

    linkLost(deviceId, via, reason) {
      const s = sessions.get(deviceId);
      if (!s || s.link?.via !== via) return;
      if (fleet.has(deviceId)) goOffline(deviceId, s, reason);
      else s.link = undefined;
    },

    linkDown(via, reason) {
      const t = now();
      for (const [id, s] of sessions) {
        // Wills a broker sends as it shuts down arrive just before the host's own connection drops:
        // the host's drop is the reason, not the devices' wills.
        if (!s.online && s.down?.byStatus && s.down.via === via && t - s.down.at <= RESTATE_WINDOW_MS) {
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

    send(deviceId, message) {
      const s = sessions.get(deviceId);
      if (!s?.online || !s.link) return false;
      return s.link.send(deviceId, message);
    },

    device(deviceId) {
      const s = sessions.get(deviceId);
      return s ? { hello: s.hello, online: s.online } : undefined;
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
        if (s.link.presence === 'hello' || (s.status?.state === 'online' && s.status.boot === s.hello.boot)) {
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

    discovered: () => discovery.list(),
    discoveryStats: () => discovery.stats(),
    adopt: (id) => discovery.adopt(id),

    stats(id) {
      const s = sessions.get(id);
      if (!s) return undefined;
      return {
        id,
        online: s.online,
        via: s.link?.via ?? null,
        boot: s.hello?.boot ?? null,
        received: s.received,
        duplicates: s.duplicates,
        gaps: s.gaps,
        errors: { ...s.errors },
      };
    },

    observe(listener) {
      observers.add(listener);
      return () => observers.delete(listener);
    },

    get received() {
      return totalReceived;
    },

    flush: () => eventLog.flush(),
  };
}

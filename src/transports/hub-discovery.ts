/**
 * The link hub's devices that the fleet does not know: the discovered list (bounded, oldest
 * dropped and counted), the adoption policy (`manual` waits for the operator; `auto` adopts a
 * known kind at a bounded rate per minute, the rest wait as `adoptionPaused`), and new devices
 * announced one by one up to a budget per minute, the rest summed up. An unknown device never
 * reaches the store by itself. One that sends without a hello this host got (its retained hello
 * dropped by the broker) is asked for it, within a budget per minute. The list and its announcements are src/transports/discovered-list.ts
 * (Sparkplug lists its names in it too; Homie announces through it); the budgets are
 * src/transports/minute-budget.ts.
 *
 * @example
 * const discovery = createHubDiscovery({ runtime, fleet, adopt: 'manual', …, session, forget, logEvent, countError, handle });
 * discovery.unknownDevice('pump-9', hello, link); // listed, 'new device waits for adoption'
 * await discovery.adopt('pump-9'); // { ok: true }: in the fleet, its hello handled
 */
import type { Fleet } from '../devices/fleet.js';
import type { AdoptOutcome, Sighting } from '../devices/sighting.js';
import type { JsonValue } from '../lib/json.js';
import type { Runtime } from '../runtime/runtime.js';
import type { DiscoveredList, ReadonlyDiscoveredList } from './discovered-list.js';
import { createAnnouncements, createDiscoveredList } from './discovered-list.js';
import type { LinkPresence } from './link-presence.js';
import type { LinkHandle, Session } from './link-session.js';
import { createMinuteBudget, MINUTE_MS } from './minute-budget.js';
import type { DeviceId, HelloMessage, Message } from './protocol.js';

/** A device that said hello and is not in the fleet. */
export type DiscoveredDevice = Sighting;
export type AdoptResult = AdoptOutcome;

export interface HubDiscoveryOptions {
  readonly runtime: Runtime;
  readonly fleet: Fleet;
  readonly adopt: 'auto' | 'manual';
  readonly maxDiscovered: number;
  readonly announcementsPerMinute: number;
  readonly autoAdoptPerMinute: number;
  /** The hub's session of a device (made when missing). */
  session(id: string): Session;
  /** Drops the hub's session of a device the fleet does not know. */
  forget(id: string): void;
  logEvent(kind: string, deviceId: string | undefined, data: JsonValue): void;
  countError(id: string, s: Session, error: { code: string; message: string }, via: string): void;
  /** Hands a message of a device now in the fleet to the hub. */
  handle(id: DeviceId, m: Message, link: LinkHandle): void;
  /** Asks a device for its hello, and knows the replies to those asks. */
  readonly presence: Pick<LinkPresence, 'askHello' | 'ownReply'>;
}

/**
 * Devices the fleet does not know, asked for their hello in a minute: the burst of a host starting
 * under a fleet waiting for adoption, whose retained hellos the broker dropped, is asked within a
 * minute or two; a flood of invented ids costs at most this many commands a minute.
 */
export const UNKNOWN_HELLO_ASKS_PER_MINUTE = 6_000;

export interface HubDiscovery {
  /** The list itself (the hub reads it to keep a message's order behind an adoption). */
  readonly discovered: ReadonlyDiscoveredList<DiscoveredDevice>;
  /** A message of a device the fleet does not know. */
  unknownDevice(id: DeviceId, m: Message, link: LinkHandle): void;
  list(): DiscoveredDevice[];
  stats(): { readonly listed: number; readonly dropped: number; readonly unannounced: number };
  /** Adopts a discovered device into the fleet (manual adoption). */
  adopt(id: string): Promise<AdoptResult>;
}

export function createHubDiscovery(options: HubDiscoveryOptions): HubDiscovery {
  const { runtime, fleet, session, logEvent, countError, handle } = options;
  const log = runtime.logger;
  const adoptMode = options.adopt;
  const now = () => runtime.clock.wallNow();
  const listed = hubDiscoveredList(options);
  const { discovered } = listed;
  const autoAdoptions = autoAdoptionBudget(runtime, logEvent, options.autoAdoptPerMinute);
  const askBudget = createMinuteBudget({
    clock: runtime.clock,
    perMinute: UNKNOWN_HELLO_ASKS_PER_MINUTE,
    ended: (refused) => {
      if (refused > 0)
        log.warn('more devices not in the fleet sent without a hello than were asked for one', {
          refused,
          windowMs: MINUTE_MS,
        });
    },
  });

  function unknownDevice(id: DeviceId, m: Message, link: LinkHandle): void {
    if (m.type === 'status') {
      // Kept for when it is adopted: over MQTT the status says whether it is connected.
      const s = session(id);
      s.status = { state: m.state, boot: m.boot, conn: m.conn };
      s.link = link;
      return;
    }
    if (m.type !== 'hello') {
      const d = discovered.get(id);
      if (d) discovered.set(id, { ...d, lastSeen: now() });
      else if (m.type !== 'reply' || !options.presence.ownReply(m.cmdId)) {
        // Its retained hello may have been dropped by the broker (Mosquitto's queue limit, with
        // thousands waiting): ask for it, or it would never be listed until it reconnects.
        options.presence.askHello(id, link, askBudget.take);
        countError(
          id,
          session(id),
          { code: 'unknownDevice', message: `device ${id} is not in the fleet and has not said hello` },
          link.via,
        );
      }
      return;
    }
    const known = fleet.kinds.has(m.kind);
    const prev = discovered.get(id);
    const paused =
      known && adoptMode === 'auto' && (prev ? prev.reason === 'adoptionPaused' : !autoAdoptions.take());
    const entry: DiscoveredDevice = {
      id,
      kind: m.kind,
      firmware: m.firmware.version,
      via: link.via,
      firstSeen: prev?.firstSeen ?? now(),
      lastSeen: now(),
      reason: !known ? 'unknownKind' : paused ? 'adoptionPaused' : 'manual',
    };
    if (!known || adoptMode === 'manual' || paused) {
      if (discovered.add(id, entry)) listed.announce(entry);
      const s = session(id);
      s.hello = m;
      s.link = link;
      return;
    }
    adoptNow(id, m, link, entry);
  }

  /** Automatic adoption: the device's messages wait behind it (`pending`), its hello goes first. */
  function adoptNow(id: DeviceId, m: HelloMessage, link: LinkHandle, entry: DiscoveredDevice): void {
    const s = session(id);
    s.pending = fleet
      .addDevice({ id, kind: m.kind, name: id })
      .then((r) => {
        if (!r.ok) {
          discovered.set(id, { ...entry, reason: `addFailed: ${r.error.message}` });
          log.warn('device could not be adopted', { deviceId: id, error: r.error.message });
          return;
        }
        log.debug('device adopted', { deviceId: id, kind: m.kind, via: link.via });
        discovered.delete(id);
        handle(id, m, link);
      })
      .finally(() => {
        s.pending = undefined;
      });
  }

  return {
    discovered,
    unknownDevice,
    list: () => [...discovered.values()],
    stats: () => ({ ...discovered.stats(), unannounced: listed.unannounced }),
    async adopt(id: string): Promise<AdoptResult> {
      const d = discovered.get(id);
      if (!d)
        return {
          ok: false,
          error: { code: 'notFound', message: `no discovered device '${id.slice(0, 80)}'` },
        };
      const r = await fleet.addDevice({ id, kind: d.kind, name: id });
      if (!r.ok) return { ok: false, error: r.error };
      discovered.delete(id);
      const s = session(id);
      if (s.hello && s.link) handle(id as DeviceId, s.hello, s.link);
      return { ok: true };
    },
  };
}

/**
 * The hub's list, bounded by `maxDiscovered` (a dropped device's session goes too, unless the
 * fleet knows it), and its announcements: new devices one by one up to `announcementsPerMinute`,
 * the rest summed up.
 */
function hubDiscoveredList(options: HubDiscoveryOptions): {
  discovered: DiscoveredList<DiscoveredDevice>;
  announce(d: DiscoveredDevice): void;
  readonly unannounced: number;
} {
  const { runtime, fleet, forget, logEvent } = options;
  const log = runtime.logger;
  const discovered = createDiscoveredList<DiscoveredDevice>({
    max: options.maxDiscovered,
    // Past the list's bound the oldest entry goes, with its session: the fleet does not know it.
    dropped: (id) => {
      if (!fleet.has(id)) forget(id);
    },
  });
  const announcements = createAnnouncements({
    clock: runtime.clock,
    perMinute: options.announcementsPerMinute,
    summarize: (count) => {
      log.warn('more new devices were discovered than announced one by one', {
        count,
        windowMs: MINUTE_MS,
        listed: discovered.size,
        dropped: discovered.stats().dropped,
      });
      logEvent('device.discoveredSummary', undefined, { count, windowMs: MINUTE_MS });
    },
  });
  return {
    discovered,
    /** A new device: announced within the minute's budget. */
    announce(d) {
      if (!announcements.take()) return;
      log.info(
        d.reason === 'unknownKind' ? 'new device of an unknown kind' : 'new device waits for adoption',
        {
          deviceId: d.id,
          kind: d.kind,
          via: d.via,
        },
      );
      logEvent('device.discovered', d.id, { kind: d.kind, via: d.via, reason: d.reason });
    },
    get unannounced() {
      return announcements.unannounced;
    },
  };
}

/**
 * Automatic adoption at a bounded rate: past `perMinute` new devices in a minute it pauses until
 * the minute ends (one alarm, logged and written), and the rest wait for an operator.
 */
function autoAdoptionBudget(
  runtime: Runtime,
  logEvent: HubDiscoveryOptions['logEvent'],
  perMinute: number,
): { take(): boolean } {
  const log = runtime.logger;
  return createMinuteBudget({
    clock: runtime.clock,
    perMinute,
    exceeded: () => {
      log.warn(`adoption paused: ${perMinute} new devices in 60 s; the rest wait for an operator`, {
        budget: perMinute,
        windowMs: MINUTE_MS,
      });
      logEvent('fleet.adoptionPaused', undefined, { newDevices: perMinute, windowMs: MINUTE_MS });
    },
    ended: (paused) => {
      if (paused > 0)
        log.warn('automatic adoption resumes', { waitingForOperator: paused, windowMs: MINUTE_MS });
    },
  });
}

/**
 * The link hub's devices that the fleet does not know: the discovered list (bounded, oldest
 * dropped and counted), the adoption policy (`manual` waits for the operator; `auto` adopts a
 * known kind at a bounded rate per minute, the rest wait as `adoptionPaused`), and new devices
 * announced one by one up to a budget per minute, the rest summed up. An unknown device never
 * reaches the store by itself.
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
import type { LinkHandle, Session } from './link-session.js';
import type { DeviceId, Message } from './protocol.js';

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
}

export interface HubDiscovery {
  /** The list itself (the hub reads it to keep a message's order behind an adoption). */
  readonly discovered: ReadonlyMap<string, DiscoveredDevice>;
  /** A message of a device the fleet does not know. */
  unknownDevice(id: DeviceId, m: Message, link: LinkHandle): void;
  list(): DiscoveredDevice[];
  stats(): { readonly listed: number; readonly dropped: number; readonly unannounced: number };
  /** Adopts a discovered device into the fleet (manual adoption). */
  adopt(id: string): Promise<AdoptResult>;
}

export function createHubDiscovery(options: HubDiscoveryOptions): HubDiscovery {
  const { runtime, fleet, session, forget, logEvent, countError, handle } = options;
  const log = runtime.logger;
  const adoptMode = options.adopt;
  const maxDiscovered = options.maxDiscovered;
  const announceBudget = options.announcementsPerMinute;
  const autoAdoptPerMinute = options.autoAdoptPerMinute;
  const discovered = new Map<string, DiscoveredDevice>();
  let discoveredDropped = 0;
  let unannounced = 0;
  let announceWindow: { announced: number; suppressed: number } | undefined;
  let adoptWindow: { adopted: number; paused: number } | undefined;
  const now = () => runtime.clock.wallNow();

  /** Past the list's bound the oldest entry goes (with its session: the fleet does not know it). */
  function makeRoomInDiscovered(): void {
    while (discovered.size >= maxDiscovered) {
      const oldest = discovered.keys().next().value;
      if (oldest === undefined) return;
      discovered.delete(oldest);
      if (!fleet.has(oldest)) forget(oldest);
      discoveredDropped++;
    }
  }

  /** Whether one more device may be adopted automatically this minute; past the budget, one alarm. */
  function mayAutoAdopt(): boolean {
    if (!adoptWindow) {
      const w = { adopted: 0, paused: 0 };
      adoptWindow = w;
      runtime.clock.setTimeout(() => {
        adoptWindow = undefined;
        if (w.paused > 0)
          log.warn('automatic adoption resumes', { waitingForOperator: w.paused, windowMs: 60_000 });
      }, 60_000);
    }
    if (adoptWindow.adopted < autoAdoptPerMinute) {
      adoptWindow.adopted++;
      return true;
    }
    if (adoptWindow.paused++ === 0) {
      log.warn(`adoption paused: ${autoAdoptPerMinute} new devices in 60 s; the rest wait for an operator`, {
        budget: autoAdoptPerMinute,
        windowMs: 60_000,
      });
      logEvent('fleet.adoptionPaused', undefined, { newDevices: autoAdoptPerMinute, windowMs: 60_000 });
    }
    return false;
  }

  /** Whether one more new device may be announced this minute; the rest are summed up when it ends. */
  function mayAnnounce(): boolean {
    if (!announceWindow) {
      const w = { announced: 0, suppressed: 0 };
      announceWindow = w;
      runtime.clock.setTimeout(() => {
        announceWindow = undefined;
        if (w.suppressed === 0) return;
        log.warn('more new devices were discovered than announced one by one', {
          count: w.suppressed,
          windowMs: 60_000,
          listed: discovered.size,
          dropped: discoveredDropped,
        });
        logEvent('device.discoveredSummary', undefined, { count: w.suppressed, windowMs: 60_000 });
      }, 60_000);
    }
    if (announceWindow.announced < announceBudget) {
      announceWindow.announced++;
      return true;
    }
    announceWindow.suppressed++;
    unannounced++;
    return false;
  }

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
      else
        countError(
          id,
          session(id),
          { code: 'unknownDevice', message: `device ${id} is not in the fleet and has not said hello` },
          link.via,
        );
      return;
    }
    const known = fleet.kinds.has(m.kind);
    const prev = discovered.get(id);
    const paused =
      known && adoptMode === 'auto' && (prev ? prev.reason === 'adoptionPaused' : !mayAutoAdopt());
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
      if (!prev) {
        makeRoomInDiscovered();
        if (mayAnnounce()) {
          log.info(known ? 'new device waits for adoption' : 'new device of an unknown kind', {
            deviceId: id,
            kind: m.kind,
            via: link.via,
          });
          logEvent('device.discovered', id, { kind: m.kind, via: link.via, reason: entry.reason });
        }
      }
      discovered.set(id, entry);
      const s = session(id);
      s.hello = m;
      s.link = link;
      return;
    }
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
    stats: () => ({ listed: discovered.size, dropped: discoveredDropped, unannounced }),
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

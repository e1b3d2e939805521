/**
 * The list of devices heard from that the fleet does not know, waiting for the operator (the rows
 * they show are src/devices/sighting.ts), as our protocol's link hub and the Sparkplug bridge keep
 * it. Bounded under a flood of invented ids: past `max` the oldest listed is dropped (counted, and
 * its owner told, so that it forgets the rest it keeps of the device). A real fleet waiting for
 * adoption fits.
 *
 * Beside it, {@link createAnnouncements}: new devices are announced (a log line, a
 * `device.discovered` event) one by one up to a budget per minute; the rest are counted and summed
 * up once when the minute ends. The link hub, Sparkplug and Homie announce through it. The two are
 * apart because not every listing is announced (a device on its way into the fleet, a refused
 * one), and Homie's discovered devices are its sessions, bounded by its `maxDevices` instead: a
 * dropped session would lose its resync attempts (homie-bridge.ts), so it is not dropped.
 *
 * @example
 * const list = createDiscoveredList<Sighting>({ max: 10_000, dropped: (id) => sessions.delete(id) });
 * const announcements = createAnnouncements({ clock: runtime.clock, perMinute: 20,
 *   summarize: (count) => log.warn('more new devices were discovered than announced one by one', { count }) });
 * if (list.add('pump-9', sighting) && announcements.take()) log.info('new device waits for adoption', { deviceId: 'pump-9' });
 * list.stats(); // { listed: 1, dropped: 0 }
 */
import type { Clock } from '../runtime/clock.js';
import { createMinuteBudget } from './minute-budget.js';

export interface DiscoveredListStats {
  /** Devices listed now. */
  readonly listed: number;
  /** Dropped because the list was full (oldest first), since the start. */
  readonly dropped: number;
}

export interface DiscoveredListOptions<V> {
  /** Most devices listed; past it the oldest listed is dropped. */
  readonly max: number;
  /** A device dropped to make room (the owner forgets what else it keeps of it). */
  readonly dropped?: (id: string, value: V) => void;
}

/** What readers of a list (not its owner) may ask. */
export interface ReadonlyDiscoveredList<V> {
  readonly size: number;
  has(id: string): boolean;
  get(id: string): V | undefined;
  /** In the order they were first listed. */
  values(): IterableIterator<V>;
  stats(): DiscoveredListStats;
}

export interface DiscoveredList<V> extends ReadonlyDiscoveredList<V> {
  /**
   * Lists a device: a new one first makes room (the oldest dropped); one listed already is
   * replaced in its place (first listed stays first). True when it is new.
   */
  add(id: string, value: V): boolean;
  /**
   * Replaces a device's entry, or lists it without making room (a device that was let in already:
   * on its way into the fleet and not added, or refused; these are few and bounded by the fleet).
   */
  set(id: string, value: V): void;
  delete(id: string): boolean;
}

export function createDiscoveredList<V>(options: DiscoveredListOptions<V>): DiscoveredList<V> {
  const { max } = options;
  const entries = new Map<string, V>();
  let dropped = 0;

  // The oldest entry is the next one a live iterator yields: a Map keeps insertion order and its
  // iterators skip deleted entries. A fresh `entries().next()` per drop would step over every
  // entry deleted since the Map last rehashed (V8), which made a flood cost quadratic time.
  let byAge = entries.entries();
  function oldest(): [string, V] | undefined {
    let next = byAge.next();
    if (next.done) {
      byAge = entries.entries();
      next = byAge.next();
    }
    return next.value;
  }

  /** Past the bound the oldest entry goes. */
  function makeRoom(): void {
    while (entries.size >= max) {
      const entry = oldest();
      if (entry === undefined) return;
      entries.delete(entry[0]);
      dropped++;
      options.dropped?.(entry[0], entry[1]);
    }
  }

  return {
    get size() {
      return entries.size;
    },
    has: (id) => entries.has(id),
    get: (id) => entries.get(id),
    values: () => entries.values(),
    stats: () => ({ listed: entries.size, dropped }),
    add(id, value) {
      const isNew = !entries.has(id);
      if (isNew) makeRoom();
      entries.set(id, value);
      return isNew;
    },
    set(id, value) {
      entries.set(id, value);
    },
    delete: (id) => entries.delete(id),
  };
}

export interface AnnouncementsOptions {
  readonly clock: Pick<Clock, 'setTimeout'>;
  /** New devices announced one by one per minute. */
  readonly perMinute: number;
  /** A minute ended with `count` (> 0) new devices not announced one by one. */
  readonly summarize: (count: number) => void;
}

export interface Announcements {
  /** True: announce this new device now; false: counted, summed up when the minute ends. */
  take(): boolean;
  /** New devices not announced one by one, since the start. */
  readonly unannounced: number;
}

export function createAnnouncements(options: AnnouncementsOptions): Announcements {
  let unannounced = 0;
  const budget = createMinuteBudget({
    clock: options.clock,
    perMinute: options.perMinute,
    ended: (refused) => {
      if (refused > 0) options.summarize(refused);
    },
  });
  return {
    take() {
      if (budget.take()) return true;
      unannounced++;
      return false;
    },
    get unannounced() {
      return unannounced;
    },
  };
}

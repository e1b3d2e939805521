/**
 * The list of devices heard from that the fleet does not know, waiting for the operator: the one
 * implementation behind every convention's Discovered rows (our protocol's link hub, Homie,
 * Sparkplug; the rows themselves are src/devices/sighting.ts). Bounded under a flood of invented
 * ids: past `max` the oldest listed is dropped (counted, and its owner told so it forgets the
 * rest of the device); new devices are announced one by one up to a budget per minute and the
 * rest are summed up in one summary when the minute ends. A real fleet waiting for adoption fits.
 *
 * @example
 * const list = createDiscoveredList<Sighting>({
 *   clock: runtime.clock, max: 10_000, announcementsPerMinute: 20,
 *   dropped: (id) => sessions.delete(id),
 *   announce: (id, d) => log.info('new device waits for adoption', { deviceId: id, kind: d.kind }),
 *   summarize: (count) => log.warn('more new devices were discovered than announced one by one', { count }),
 * });
 * list.add('pump-9', sighting); // listed and announced
 * list.stats(); // { listed: 1, dropped: 0, unannounced: 0 }
 */
import type { Clock } from '../runtime/clock.js';
import { createMinuteBudget } from './minute-budget.js';

export interface DiscoveredListStats {
  /** Devices listed now. */
  readonly listed: number;
  /** Dropped because the list was full (oldest first), since the start. */
  readonly dropped: number;
  /** New devices not announced one by one (past the per-minute budget), since the start. */
  readonly unannounced: number;
}

export interface DiscoveredListOptions<V> {
  readonly clock: Pick<Clock, 'setTimeout'>;
  /** Most devices listed; past it the oldest listed is dropped. */
  readonly max: number;
  /** New devices announced one by one per minute; the rest are summed up when the minute ends. */
  readonly announcementsPerMinute: number;
  /** A device dropped to make room (the owner forgets what else it keeps of it). */
  readonly dropped?: (id: string, value: V) => void;
  /** A new device within the minute's budget (a log line, a `device.discovered` event). */
  readonly announce: (id: string, value: V) => void;
  /** A minute ended with `count` (> 0) new devices not announced one by one. */
  readonly summarize: (count: number, stats: DiscoveredListStats) => void;
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
   * Lists a device. A new one first makes room (the oldest dropped) and is announced within the
   * budget; one listed already is replaced in its place (first listed stays first).
   */
  add(id: string, value: V): void;
  /**
   * Replaces a device's entry, or lists it without making room or announcing it (a device that was
   * on its way into the fleet and could not be added: it was let in already).
   */
  set(id: string, value: V): void;
  delete(id: string): boolean;
}

export function createDiscoveredList<V>(options: DiscoveredListOptions<V>): DiscoveredList<V> {
  const { max } = options;
  const entries = new Map<string, V>();
  let dropped = 0;
  let unannounced = 0;
  const stats = (): DiscoveredListStats => ({ listed: entries.size, dropped, unannounced });
  const announcements = createMinuteBudget({
    clock: options.clock,
    perMinute: options.announcementsPerMinute,
    ended: (refused) => {
      if (refused > 0) options.summarize(refused, stats());
    },
  });

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
    stats,
    add(id, value) {
      if (!entries.has(id)) {
        makeRoom();
        if (announcements.take()) options.announce(id, value);
        else unannounced++;
      }
      entries.set(id, value);
    },
    set(id, value) {
      entries.set(id, value);
    },
    delete: (id) => entries.delete(id),
  };
}

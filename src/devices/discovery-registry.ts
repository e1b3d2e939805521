/**
 * The discovery registry: {@link Discovery} (src/devices/discovery.ts) implemented once for every
 * convention, bounded under floods (issue 12 §4):
 *
 * - at most `maxDiscovered` entries; a new one past that drops the oldest, and every drop counts;
 * - automatic adoption at most `autoAdoptMaxPerWindow` per `autoAdoptWindowMs`; past it adoption
 *   pauses with one `discovery.adoptionPaused` event and a warning ("adoption paused: N new devices
 *   in T"), newcomers are listed as `adoptionPaused`, and only an operator resumes it (what was
 *   listed meanwhile stays listed, for the operator to adopt or ignore);
 * - `device.discovered` events at most `discoveredEventsPerWindow` per window; the rest are counted
 *   and one `device.discoveredSuppressed` summary names the count when the window closes;
 * - the list is paged, newest first.
 *
 * @example
 * const discovery = createDiscoveryRegistry({ runtime, fleet, events, policy: { adopt: 'auto' } });
 * discovery.register('protocol', { adopted: (d) => hub.replayHello(d.id) });
 * discovery.seen({ id: 'pump-7', convention: 'protocol', kind: 'fleetvisor.generic', via: 'mqtt', summary: {} });
 */
import type { JsonObject } from '../lib/json.js';
import type { Failure, Result } from '../lib/result.js';
import type { Runtime } from '../runtime/runtime.js';
import type { DeviceEventLog } from './device-event-log.js';
import type {
  Adopter,
  AdoptionPolicy,
  DiscoveredDevice,
  Discovery,
  DiscoveryErrorCode,
  DiscoveryStats,
  RefusedIdentity,
} from './discovery.js';
import type { Fleet } from './fleet.js';

export interface DiscoveryRegistryOptions {
  readonly runtime: Pick<Runtime, 'clock' | 'logger'>;
  readonly fleet: Pick<Fleet, 'addDevice' | 'has' | 'kinds'>;
  readonly events: Pick<DeviceEventLog, 'append'>;
  readonly policy: AdoptionPolicy;
  /** `device.discovered` events written per window; default 20 (the rest counted in a summary). */
  readonly discoveredEventsPerWindow?: number;
  /** Refused identities listed; default 1000 (oldest dropped). */
  readonly maxRefused?: number;
}

/** Largest page of {@link Discovery.list}. */
export const MAX_DISCOVERED_PAGE = 1000;

export function createDiscoveryRegistry(options: DiscoveryRegistryOptions): Discovery {
  const { fleet, events, policy } = options;
  const log = options.runtime.logger;
  const now = () => options.runtime.clock.wallNow();
  const maxDiscovered = policy.maxDiscovered ?? 10_000;
  const maxPerWindow = policy.autoAdoptMaxPerWindow ?? 200;
  const windowMs = policy.autoAdoptWindowMs ?? 60_000;
  const eventBudget = options.discoveredEventsPerWindow ?? 20;
  const maxRefused = options.maxRefused ?? 1000;
  for (const [name, v] of [
    ['maxDiscovered', maxDiscovered],
    ['autoAdoptMaxPerWindow', maxPerWindow],
    ['autoAdoptWindowMs', windowMs],
  ] as const)
    if (!(Number.isSafeInteger(v) && v > 0))
      throw new RangeError(`createDiscoveryRegistry: policy.${name} must be a positive integer, got ${v}`);

  const adopters = new Map<string, Adopter>();
  /** Insertion order is age: the first entry is the oldest. */
  const entries = new Map<string, DiscoveredDevice>();
  const refusedList = new Map<string, RefusedIdentity>();
  let dropped = 0;
  let adoptedAuto = 0;
  let adoptedManual = 0;
  let autoAdoptions: number[] = [];
  let paused: DiscoveryStats['paused'];
  let eventWindowStart = 0;
  let eventsInWindow = 0;
  let suppressed = 0;

  const put = (entry: DiscoveredDevice): void => {
    if (!entries.has(entry.id) && entries.size >= maxDiscovered) {
      const oldest = entries.keys().next().value as string;
      entries.delete(oldest);
      dropped++;
    }
    entries.set(entry.id, entry);
  };

  const discoveredEvent = (entry: DiscoveredDevice): void => {
    const t = now();
    if (t - eventWindowStart >= windowMs) {
      if (suppressed > 0)
        events.append('device.discoveredSuppressed', undefined, { count: suppressed, windowMs });
      eventWindowStart = t;
      eventsInWindow = 0;
      suppressed = 0;
    }
    if (eventsInWindow < eventBudget) {
      eventsInWindow++;
      events.append('device.discovered', entry.id, {
        convention: entry.convention,
        kind: entry.kind,
        via: entry.via,
        reason: entry.reason,
      });
    } else suppressed++;
  };

  /** Whether one more automatic adoption fits the window; pauses adoption when it does not. */
  const mayAutoAdopt = (): boolean => {
    if (paused) {
      paused = { ...paused, newDevices: paused.newDevices + 1 };
      return false;
    }
    const t = now();
    autoAdoptions = autoAdoptions.filter((at) => at > t - windowMs);
    if (autoAdoptions.length < maxPerWindow) {
      autoAdoptions.push(t);
      return true;
    }
    paused = { since: t, newDevices: autoAdoptions.length + 1, windowMs };
    const message = `adoption paused: ${autoAdoptions.length + 1} new devices in ${Math.round(windowMs / 1000)} s`;
    log.warn(`${message}; new devices are listed until an operator resumes automatic adoption`);
    events.append('discovery.adoptionPaused', undefined, {
      message,
      newDevices: autoAdoptions.length + 1,
      windowMs,
    });
    return false;
  };

  const addToFleet = async (entry: DiscoveredDevice): Promise<Result<void, Failure<DiscoveryErrorCode>>> => {
    const r = await fleet.addDevice({
      id: entry.id,
      kind: entry.kind,
      name: entry.name ?? entry.id,
      ...(entry.tags ? { tags: entry.tags } : {}),
      ...(entry.attributes ? { attributes: entry.attributes } : {}),
    });
    if (!r.ok) {
      const code: DiscoveryErrorCode =
        r.error.code === 'alreadyExists'
          ? 'alreadyExists'
          : r.error.code === 'unknownKind'
            ? 'unknownKind'
            : 'addFailed';
      return { ok: false, error: { code, message: r.error.message } };
    }
    try {
      await adopters.get(entry.convention)?.adopted(entry);
    } catch (error) {
      log.error('discovery: the convention failed to take over an adopted device', {
        deviceId: entry.id,
        convention: entry.convention,
        error: (error as Error)?.message,
      });
    }
    return { ok: true, value: undefined };
  };

  return {
    register(convention, adopter) {
      adopters.set(convention, adopter);
    },

    seen(sighting) {
      if (fleet.has(sighting.id)) return 'ignored';
      const t = now();
      const prev = entries.get(sighting.id);
      if (prev) {
        entries.set(prev.id, {
          ...prev,
          ...sighting,
          reason: prev.reason,
          lastSeen: t,
          heard: prev.heard + 1,
        });
        return prev.reason === 'ignored' ? 'ignored' : 'listed';
      }
      const known = fleet.kinds.has(sighting.kind);
      const base = { ...sighting, firstSeen: t, lastSeen: t, heard: 1 };
      let entry: DiscoveredDevice;
      if (!known) entry = { ...base, reason: 'unknownKind' };
      else if (policy.adopt === 'manual') entry = { ...base, reason: 'manual' };
      else if (!mayAutoAdopt()) entry = { ...base, reason: 'adoptionPaused' };
      else {
        adoptedAuto++;
        const candidate: DiscoveredDevice = { ...base, reason: 'manual' };
        void addToFleet(candidate).then((r) => {
          if (r.ok) {
            log.info('device adopted', { deviceId: candidate.id, kind: candidate.kind, via: candidate.via });
            events.append('device.adopted', candidate.id, { actor: 'system:auto', via: candidate.via });
            return;
          }
          adoptedAuto--;
          put({ ...candidate, reason: 'addFailed', detail: r.error.message });
          log.warn('device could not be adopted', { deviceId: candidate.id, error: r.error.message });
        });
        return 'adopted';
      }
      put(entry);
      discoveredEvent(entry);
      return 'listed';
    },

    refused(identity) {
      const key = `${identity.convention}\u0000${identity.name}`;
      const prev = refusedList.get(key);
      const t = now();
      if (prev) {
        refusedList.set(key, { ...prev, lastSeen: t, heard: prev.heard + 1 });
        return;
      }
      if (refusedList.size >= maxRefused) refusedList.delete(refusedList.keys().next().value as string);
      refusedList.set(key, { ...identity, firstSeen: t, lastSeen: t, heard: 1 });
      events.append('device.identityRefused', undefined, {
        convention: identity.convention,
        name: identity.name.slice(0, 200),
        code: identity.code,
        ...(identity.id !== undefined ? { id: identity.id } : {}),
        ...(identity.heldBy !== undefined ? { heldBy: identity.heldBy } : {}),
      } as JsonObject);
    },

    list(query = {}) {
      const text = query.text?.toLowerCase();
      const all = [...entries.values()]
        .reverse()
        .filter(
          (d) =>
            (query.convention === undefined || d.convention === query.convention) &&
            (query.kind === undefined || d.kind === query.kind) &&
            (text === undefined ||
              d.id.toLowerCase().includes(text) ||
              (d.name ?? '').toLowerCase().includes(text)),
        );
      const offset = Math.max(0, Math.floor(query.offset ?? 0));
      const limit = Math.min(MAX_DISCOVERED_PAGE, Math.max(1, Math.floor(query.limit ?? 100)));
      return { items: all.slice(offset, offset + limit), total: all.length };
    },

    refusedIdentities: () => [...refusedList.values()].reverse(),

    async adopt(ids, actor) {
      const results: { id: string; result: Result<void, Failure<DiscoveryErrorCode>> }[] = [];
      for (const id of ids) {
        const entry = entries.get(id);
        if (!entry) {
          results.push({
            id,
            result: {
              ok: false,
              error: { code: 'notFound', message: `no discovered device '${id.slice(0, 80)}'` },
            },
          });
          continue;
        }
        if (!fleet.kinds.has(entry.kind)) {
          results.push({
            id,
            result: {
              ok: false,
              error: { code: 'unknownKind', message: `kind '${entry.kind}' is not known` },
            },
          });
          continue;
        }
        const r = await addToFleet(entry);
        if (r.ok) {
          entries.delete(id);
          adoptedManual++;
          events.append('device.adopted', id, { actor, via: entry.via });
        } else put({ ...entry, reason: 'addFailed', detail: r.error.message });
        results.push({ id, result: r });
      }
      return results;
    },

    ignore(ids, actor) {
      for (const id of ids) {
        const entry = entries.get(id);
        if (!entry) continue;
        entries.set(id, { ...entry, reason: 'ignored', detail: `ignored by ${actor}` });
      }
    },

    resumeAutoAdoption(actor) {
      if (!paused) return;
      events.append('discovery.adoptionResumed', undefined, { actor, newDevices: paused.newDevices });
      log.info('automatic adoption resumed', { actor });
      paused = undefined;
      autoAdoptions = [];
    },

    stats: () => ({ listed: entries.size, dropped, adoptedAuto, adoptedManual, paused }),
  };
}

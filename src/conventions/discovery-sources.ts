/**
 * One Discovered list for every convention: each bridge that can hear from devices the fleet does
 * not know (Homie, Sparkplug; our own protocol's link hub is read beside them) registers itself
 * here under its convention's name, and the host's `discovered` and `adopt` read and act through
 * it — so `--adopt manual` shows a waiting Homie device or Sparkplug node in the same view, with
 * the same Adopt button, as a device of our own protocol.
 *
 * A bridge restarted by its supervisor registers again under the same name and replaces its
 * former self; a stopped bridge unregisters.
 *
 * @example
 * const sources = createDiscoverySources();
 * const off = sources.register('homie', { discovered: () => bridge.sightings(), adopt: (id) => bridge.adopt(id) });
 * sources.list(); // [{ convention: 'homie', id: 'boiler', kind: 'homie.device', reason: 'manual', … }]
 * await sources.adopt('boiler'); // { ok: true } — or notFound when no convention lists it
 */
import type { AdoptOutcome, Sighting } from '../devices/sighting.js';

/** A device a convention heard from that is not in the fleet: waiting for the operator, or refused. */
export type ConventionSighting = Sighting;
export type { AdoptOutcome };

/** What a bridge offers the host's Discovered view. */
export interface ConventionDiscovery {
  discovered(): readonly ConventionSighting[];
  adopt(id: string): Promise<AdoptOutcome>;
}

/** Where bridges register (given to each in its {@link ConventionContext}). */
export interface DiscoverySources {
  /** Registers (or replaces) a convention's source; the returned function unregisters it. */
  register(convention: string, source: ConventionDiscovery): () => void;
}

export interface DiscoverySourceList extends DiscoverySources {
  /** Everything every registered convention lists, each row with its convention. */
  list(): (ConventionSighting & { readonly convention: string })[];
  /** Adopts through the convention that lists `id`; `notFound` when none does. */
  adopt(id: string): Promise<AdoptOutcome>;
}

export function createDiscoverySources(): DiscoverySourceList {
  const sources = new Map<string, ConventionDiscovery>();
  return {
    register(convention, source) {
      sources.set(convention, source);
      return () => {
        if (sources.get(convention) === source) sources.delete(convention);
      };
    },
    list() {
      const out: (ConventionSighting & { readonly convention: string })[] = [];
      for (const [convention, source] of sources)
        for (const d of source.discovered()) out.push({ ...d, convention });
      return out;
    },
    async adopt(id) {
      for (const source of sources.values())
        if (source.discovered().some((d) => d.id === id)) return source.adopt(id);
      return {
        ok: false,
        error: { code: 'notFound', message: `no discovered device '${String(id).slice(0, 80)}'` },
      };
    },
  };
}

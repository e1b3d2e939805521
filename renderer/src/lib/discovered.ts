/**
 * Discovered devices on the renderer side: the list the host keeps (`discovered`, polled while the
 * app runs, since no push carries it), the ids this operator chose to ignore (kept in this
 * browser's localStorage: the host has no ignore call yet, so an ignored device is hidden here,
 * not refused by the host), and adopting many at once with a bounded number of calls in flight.
 *
 * @example
 * const list = useDiscovered();            // polled every 2 s, ignored ids filtered out
 * const results = await adoptMany(client, ['pump-1', 'pump-2'], (done) => setProgress(done));
 */
import { useEffect, useSyncExternalStore } from 'react';
import type { DiscoveredView, Envelope, TypedClient } from '../../../src/host/contract.js';
import { useCall } from './hooks.js';

const STORAGE_KEY = 'fleetvisor.ignoredDiscovered';
/** Adoption calls in flight at once: enough to adopt 2,000 in seconds, few enough not to flood. */
const ADOPT_CONCURRENCY = 8;
/** How often the list is asked for. */
export const DISCOVERED_REFRESH_MS = 2_000;

const listeners = new Set<() => void>();
let ignored: ReadonlySet<string> = load();

function load(): ReadonlySet<string> {
  try {
    const raw = typeof localStorage === 'undefined' ? null : localStorage.getItem(STORAGE_KEY);
    const parsed: unknown = raw ? JSON.parse(raw) : [];
    return new Set(Array.isArray(parsed) ? parsed.filter((x): x is string => typeof x === 'string') : []);
  } catch {
    return new Set();
  }
}

function save(next: ReadonlySet<string>) {
  ignored = next;
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify([...next]));
  } catch {
    // storage disabled: ignored for this page only
  }
  for (const listener of [...listeners]) listener();
}

/** Hides these ids (true) or shows them again (false). */
export function setIgnored(ids: readonly string[], on: boolean): void {
  const next = new Set(ignored);
  for (const id of ids) {
    if (on) next.add(id);
    else next.delete(id);
  }
  save(next);
}

export function useIgnored(): ReadonlySet<string> {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => ignored,
  );
}

const reloaders = new Set<() => void>();

/** Asks every mounted list (the view and the nav's count) again, e.g. after an adoption. */
export function refreshDiscovered(): void {
  for (const reload of [...reloaders]) reload();
}

/** The API's largest page of `discovered`. */
const PAGE = 1000;

/**
 * Every discovered device, page after page: a real fleet brings thousands at once (2,000 waiting
 * showed as "1,000 waiting" and "Adopt all 1,000" when only the first page was asked for).
 */
export async function allDiscovered(c: TypedClient): Promise<Envelope<readonly DiscoveredView[]>> {
  const out: DiscoveredView[] = [];
  for (let offset = 0; ; offset += PAGE) {
    const r = await c.call('discovered', { offset, limit: PAGE });
    if (!r.ok) return r;
    out.push(...r.value);
    if (r.value.length < PAGE) return { ok: true, value: out };
  }
}

/** The host's discovered list, refreshed every {@link DISCOVERED_REFRESH_MS} and on {@link refreshDiscovered}. */
export function useDiscoveredList() {
  const list = useCall(allDiscovered, [], { refreshMs: DISCOVERED_REFRESH_MS });
  const { reload } = list;
  useEffect(() => {
    reloaders.add(reload);
    return () => {
      reloaders.delete(reload);
    };
  }, [reload]);
  return list;
}

/** How many discovered devices wait for the operator (ignored ones not counted). */
export function useWaitingCount(): number {
  const list = useDiscoveredList();
  const hidden = useIgnored();
  return (list.value ?? []).filter((d) => !hidden.has(d.id)).length;
}

export interface AdoptOutcome {
  readonly id: string;
  readonly ok: boolean;
  readonly message?: string;
}

/** Adopts each id (at most {@link ADOPT_CONCURRENCY} calls at once); one outcome per id, in order. */
export async function adoptMany(
  client: TypedClient,
  ids: readonly string[],
  onProgress?: (done: number) => void,
): Promise<AdoptOutcome[]> {
  const out: AdoptOutcome[] = new Array(ids.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < ids.length) {
      const i = next++;
      const id = ids[i]!;
      const r = await client.call('adopt', { id });
      out[i] = r.ok ? { id, ok: true } : { id, ok: false, message: `${r.error.code}: ${r.error.message}` };
      onProgress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(ADOPT_CONCURRENCY, ids.length) }, worker));
  return out;
}

export function matchesDiscovered(d: DiscoveredView, text: string): boolean {
  if (!text) return true;
  const q = text.toLowerCase();
  return [d.id, d.convention, d.kind, d.firmware, d.via, d.reason].some((s) => s.toLowerCase().includes(q));
}

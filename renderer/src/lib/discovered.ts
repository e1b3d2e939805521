/**
 * Discovered devices on the renderer side: the list the host keeps (`discovered`, polled while the
 * app runs, since no push carries it), the ids this operator chose to ignore (kept in this
 * browser's localStorage: the host has no ignore call yet, so an ignored device is hidden here,
 * not refused by the host), and the host's bulk adoption (`adoptBulk`): the page starts it and
 * polls its progress, so it goes on when the page is reloaded or closed.
 *
 * @example
 * const list = useDiscoveredList();        // polled every 2 s, one poll for the whole page
 * const job = useAdoptJob();               // the running or last bulk adoption; polled faster while it runs
 * adoptJobSummary(job.value);              // '1,976 adopted, 0 failed'
 */
import { useEffect, useRef, useSyncExternalStore } from 'react';
import type { AdoptBulkView, DiscoveredView, Envelope, TypedClient } from '../../../src/host/contract.js';
import { messageOf } from '../api/client.js';
import { useClient } from '../store/use-live.js';
import type { CallState } from './hooks.js';

const STORAGE_KEY = 'fleetvisor.ignoredDiscovered';
const DISMISSED_KEY = 'fleetvisor.adoptJobDismissed';
/** How often the list is asked for. */
export const DISCOVERED_REFRESH_MS = 2_000;
/** How often a running bulk adoption is asked for; an ended one, every {@link ADOPT_JOB_IDLE_MS}. */
export const ADOPT_JOB_REFRESH_MS = 500;
export const ADOPT_JOB_IDLE_MS = 5_000;

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

/** A call asked again and again, shared by every component that shows its answer. */
interface Poll<T> {
  subscribe(listener: () => void): () => void;
  get(): CallState<T>;
  /** Asks at once; an answer to an earlier ask still on its way is dropped. */
  reload(): void;
  setEvery(everyMs: number): void;
}

/**
 * Asks `run` while anyone listens: now, then `everyMs` after each answer. Never two asks whose
 * answers both count: fixed-rate polling of 2,000 rows overlapped on a busy page and an older
 * answer overwrote a newer one (the count jumped back from 912 to 2,000 waiting mid-adoption).
 */
function createPoll<T>(run: () => Promise<Envelope<T>>, everyMs: number): Poll<T> {
  let state: CallState<T> = { status: 'loading' };
  const listeners = new Set<() => void>();
  let every = everyMs;
  let timer: number | undefined;
  let asked = 0;
  const stopTimer = () => {
    window.clearTimeout(timer);
    timer = undefined;
  };
  const ask = async (): Promise<void> => {
    stopTimer();
    const mine = ++asked;
    const kept = state.value !== undefined ? { value: state.value } : {};
    let next: CallState<T>;
    try {
      const r = await run();
      next = r.ok
        ? { status: 'ok', value: r.value }
        : { status: 'error', code: r.error.code, message: r.error.message, ...kept };
    } catch (error) {
      next = { status: 'error', code: 'unavailable', message: messageOf(error), ...kept };
    }
    if (mine !== asked || listeners.size === 0) return;
    state = next;
    for (const listener of [...listeners]) listener();
    timer = window.setTimeout(() => void ask(), every);
  };
  return {
    subscribe(listener) {
      listeners.add(listener);
      if (listeners.size === 1) void ask();
      return () => {
        listeners.delete(listener);
        if (listeners.size > 0) return;
        stopTimer();
        asked++; // nobody listens: an answer on its way is dropped
      };
    },
    get: () => state,
    reload() {
      if (listeners.size > 0) void ask();
    },
    setEvery(everyMs) {
      if (everyMs === every) return;
      every = everyMs;
      if (timer === undefined) return;
      stopTimer();
      timer = window.setTimeout(() => void ask(), every);
    },
  };
}

/** One poll of each kind per client (a page has one): the nav's count and the view read the same list. */
const listPolls = new Map<TypedClient, Poll<readonly DiscoveredView[]>>();
const jobPolls = new Map<TypedClient, Poll<AdoptBulkView | null>>();

function pollOf<T>(polls: Map<TypedClient, Poll<T>>, client: TypedClient, make: () => Poll<T>): Poll<T> {
  let poll = polls.get(client);
  if (!poll) {
    poll = make();
    polls.set(client, poll);
  }
  return poll;
}

/** Asks every shown list (the view and the nav's count) again, e.g. after an adoption. */
export function refreshDiscovered(): void {
  for (const poll of listPolls.values()) poll.reload();
}

/** The host's discovered list, refreshed every {@link DISCOVERED_REFRESH_MS} and on {@link refreshDiscovered}. */
export function useDiscoveredList(): CallState<readonly DiscoveredView[]> & { reload: () => void } {
  const client = useClient();
  const poll = pollOf(listPolls, client, () =>
    createPoll(() => allDiscovered(client), DISCOVERED_REFRESH_MS),
  );
  const state = useSyncExternalStore(poll.subscribe, poll.get);
  return { ...state, reload: poll.reload };
}

/** How many discovered devices wait for the operator (ignored ones not counted). */
export function useWaitingCount(): number {
  const list = useDiscoveredList();
  const hidden = useIgnored();
  return (list.value ?? []).filter((d) => !hidden.has(d.id)).length;
}

/**
 * The host's running bulk adoption, else its last one (null before the first): asked every
 * {@link ADOPT_JOB_REFRESH_MS} while it runs, else every {@link ADOPT_JOB_IDLE_MS}; when it ends,
 * the discovered lists are asked again.
 */
export function useAdoptJob(): CallState<AdoptBulkView | null> & { reload: () => void } {
  const client = useClient();
  const poll = pollOf(jobPolls, client, () =>
    createPoll(() => client.call('adoptBulkStatus', {}), ADOPT_JOB_IDLE_MS),
  );
  const state = useSyncExternalStore(poll.subscribe, poll.get);
  const running = state.value?.state === 'running';
  const wasRunning = useRef(running);
  useEffect(() => {
    poll.setEvery(running ? ADOPT_JOB_REFRESH_MS : ADOPT_JOB_IDLE_MS);
    if (wasRunning.current && !running) refreshDiscovered();
    wasRunning.current = running;
  }, [poll, running]);
  return { ...state, reload: poll.reload };
}

const n = (x: number) => x.toLocaleString('en-US');

/** A bulk adoption in one line: '1,976 adopted, 0 failed' (skipped ones only when there are some). */
export function adoptJobSummary(job: AdoptBulkView): string {
  return `${n(job.adopted)} adopted, ${n(job.failed)} failed${job.skipped > 0 ? `, ${n(job.skipped)} skipped (no longer waiting)` : ''}`;
}

/** What a bulk adoption was asked to adopt, for its progress line. */
export function adoptJobSelection(job: AdoptBulkView): string {
  const s = job.selection;
  if ('ids' in s) return `${n(s.ids)} selected`;
  return s.text ? `all matching “${s.text}”` : 'all waiting';
}

const dismissedListeners = new Set<() => void>();
let dismissed: string | null = readDismissed();

function readDismissed(): string | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage.getItem(DISMISSED_KEY);
  } catch {
    return null;
  }
}

/** The ended bulk adoption whose result this browser closed (not shown again, also after a reload). */
export function useDismissedJob(): string | null {
  return useSyncExternalStore(
    (listener) => {
      dismissedListeners.add(listener);
      return () => dismissedListeners.delete(listener);
    },
    () => dismissed,
  );
}

export function dismissJob(id: string): void {
  dismissed = id;
  try {
    localStorage.setItem(DISMISSED_KEY, id);
  } catch {
    // storage disabled: dismissed for this page only
  }
  for (const listener of [...dismissedListeners]) listener();
}

export function matchesDiscovered(d: DiscoveredView, text: string): boolean {
  if (!text) return true;
  const q = text.toLowerCase();
  return [d.id, d.convention, d.kind, d.firmware, d.via, d.reason].some((s) => s.toLowerCase().includes(q));
}

/**
 * Commands as the operator sees them: one format for a command id everywhere (`#` and the first 8
 * hex digits; the full id in the tooltip), the outcome in words (status, round trip, the device's
 * reply or the failure's reason), and a hook that follows commands until they end, so a result
 * that said `sent` turns `succeeded` (or `failed`, `timedOut`) without a reload.
 *
 * The host pushes no command updates, so the hook asks `commands` — quickly while answers are
 * due, then slower — and at once when a live event names one of the commands.
 *
 * @example
 * formatCommandId('3f2a9c1e-77b0-4c1e-9f00-1a2b3c4d5e6f'); // '#3f2a9c1e'
 * const outcomes = useCommandOutcomes([{ deviceId: 'pump-7', commandId }]);
 * describeCommand(outcomes.get(commandId)!); // { status: 'succeeded', text: '12 ms · reply {"pong":true}' }
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import type { CommandView, EventView, Json, TypedClient } from '../../../src/host/contract.js';
import { useClient, useLive } from '../store/use-live.js';
import { formatDuration, jsonPreview } from './format.js';

/** Statuses a command never leaves. */
export const FINAL_STATUSES: ReadonlySet<string> = new Set([
  'succeeded',
  'failed',
  'timedOut',
  'cancelled',
  'expired',
]);

export function isFinal(status: string): boolean {
  return FINAL_STATUSES.has(status);
}

/** `#3f2a9c1e`: UUIDs (with or without dashes) and other ids alike. */
export function formatCommandId(id: string): string {
  const hex = id.replace(/-/g, '').toLowerCase();
  if (/^[0-9a-f]{8,}$/.test(hex)) return `#${hex.slice(0, 8)}`;
  return `#${id.slice(0, 12)}`;
}

/** Requested → completed, the round trip the operator waited; null while open. */
export function roundTripMs(c: Pick<CommandView, 'requestedAt' | 'completedAt'>): number | null {
  return c.completedAt === null ? null : Math.max(0, c.completedAt - c.requestedAt);
}

export type CommandTone = 'ok' | 'err' | 'warn' | 'muted';

export function toneOf(status: string): CommandTone {
  if (status === 'succeeded') return 'ok';
  if (status === 'failed' || status === 'timedOut' || status === 'expired') return 'err';
  if (status === 'cancelled') return 'muted';
  return 'warn';
}

const WAITING: Readonly<Record<string, string>> = {
  pending: 'waits until the device is online',
  sent: 'sent, waiting for the answer…',
};

/** The status label and one line of detail: round trip, reply, or why it failed. */
export function describeCommand(c: CommandView): { status: string; text: string } {
  const rtt = roundTripMs(c);
  const took = rtt === null ? '' : rtt < 1_000 ? `${rtt} ms` : formatDuration(rtt);
  if (c.status === 'succeeded') {
    const reply = hasContent(c.result) ? `reply ${jsonPreview(c.result, 120)}` : 'no reply data';
    return { status: c.status, text: [took, reply].filter(Boolean).join(' · ') };
  }
  if (isFinal(c.status)) {
    const why = c.error ? `${c.error.code}: ${c.error.message}` : statusWords(c.status);
    return { status: c.status, text: [took ? `after ${took}` : '', why].filter(Boolean).join(' · ') };
  }
  return { status: c.status, text: WAITING[c.status] ?? c.status };
}

function statusWords(status: string): string {
  if (status === 'timedOut') return 'no answer in time';
  if (status === 'expired') return 'its time to live ran out before it could be sent';
  if (status === 'cancelled') return 'cancelled';
  return status;
}

function hasContent(v: Json): boolean {
  if (v === null) return false;
  if (typeof v === 'object') return Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0;
  return true;
}

export interface CommandRef {
  readonly deviceId: string;
  readonly commandId: string;
}

/** Fast asks while answers are due (ms), for this long after the last change; slower after. */
const FAST_MS = 400;
const FAST_FOR_MS = 15_000;
const SLOW_MS = 3_000;
/** Per-device asks up to this many devices; beyond, pages of the whole command log. */
const PER_DEVICE_UP_TO = 10;
const PAGES = 5;

/** Asks the host for these commands; returns what it found. */
export async function fetchCommands(
  client: TypedClient,
  refs: readonly CommandRef[],
): Promise<Map<string, CommandView>> {
  const wanted = new Set(refs.map((r) => r.commandId));
  const found = new Map<string, CommandView>();
  const keep = (items: readonly CommandView[]) => {
    for (const c of items) if (wanted.has(c.commandId)) found.set(c.commandId, c);
  };
  const devices = [...new Set(refs.map((r) => r.deviceId))];
  if (devices.length <= PER_DEVICE_UP_TO) {
    const pages = await Promise.all(devices.map((id) => client.call('commands', { id, limit: 100 })));
    for (const p of pages) if (p.ok) keep(p.value.items);
    return found;
  }
  let cursor: number | undefined;
  for (let page = 0; page < PAGES && found.size < wanted.size; page++) {
    const p = await client.call('commands', {
      limit: 1000,
      ...(cursor !== undefined ? { cursor } : {}),
    });
    if (!p.ok) break;
    keep(p.value.items);
    if (p.value.next === null) break;
    cursor = p.value.next;
  }
  return found;
}

function mentions(e: EventView, ids: ReadonlySet<string>): boolean {
  const data = e.data;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return false;
  const commandId = (data as { readonly [key: string]: Json }).commandId;
  return typeof commandId === 'string' && ids.has(commandId);
}

/**
 * The latest known view of each command, followed until every one has ended (asked every
 * {@link FAST_MS} while answers are due, every {@link SLOW_MS} after, at once on a live event
 * naming one of them).
 */
export function useCommandOutcomes(refs: readonly CommandRef[]): ReadonlyMap<string, CommandView> {
  const client = useClient();
  const [outcomes, setOutcomes] = useState<ReadonlyMap<string, CommandView>>(new Map());
  const key = refs.map((r) => r.commandId).join(',');
  // biome-ignore lint/correctness/useExhaustiveDependencies: the ids (key) decide, not the array's identity
  const stableRefs = useMemo(() => refs, [key]);
  const ids = useMemo(() => new Set(stableRefs.map((r) => r.commandId)), [stableRefs]);
  const events = useLive((s) => s.events);
  const [nudge, setNudge] = useState(0);
  const seenEvents = useRef(0);

  useEffect(() => {
    const last = events.at(-1)?.seq ?? 0;
    if (last <= seenEvents.current) return;
    const fresh = events.filter((e) => e.seq > seenEvents.current);
    seenEvents.current = last;
    if (fresh.some((e) => mentions(e, ids))) setNudge((n) => n + 1);
  }, [events, ids]);

  // biome-ignore lint/correctness/useExhaustiveDependencies: nudge asks again at once
  useEffect(() => {
    if (stableRefs.length === 0) return;
    let stopped = false;
    let timer = 0;
    let lastChange = Date.now();
    let known = new Map<string, CommandView>();
    const ask = async () => {
      const found = await fetchCommands(client, stableRefs);
      if (stopped) return;
      let changed = false;
      for (const [id, c] of found) {
        const before = known.get(id);
        if (!before || before.status !== c.status || before.completedAt !== c.completedAt) changed = true;
      }
      if (changed) {
        known = new Map([...known, ...found]);
        lastChange = Date.now();
        setOutcomes(known);
      }
      const open = stableRefs.some((r) => {
        const c = known.get(r.commandId);
        return !c || !isFinal(c.status);
      });
      if (!open) return;
      timer = window.setTimeout(ask, Date.now() - lastChange < FAST_FOR_MS ? FAST_MS : SLOW_MS);
    };
    void ask();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [client, stableRefs, nudge]);

  return outcomes;
}

/** An event's data for a one-line preview, with its command id (if any) in the one format. */
export function eventDataForDisplay(data: Json): Json {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return data;
  const record = data as { readonly [key: string]: Json };
  const commandId = record.commandId;
  if (typeof commandId !== 'string') return data;
  return { ...record, commandId: formatCommandId(commandId) };
}

/**
 * The other cluster instances' devices for the fleet table, kept current by the push stream: the
 * host pushes their rows as their owners signal changes (a diff's `remote` and `remoteRemoved`,
 * src/host/api/remote-push.ts), within about a second of a change. The whole set is read with the
 * `devices` query (`scope: 'remote'`, every page, 10,000 rows each) when the stream starts or
 * starts again (its snapshot: pushes may have been missed while it was down) and every
 * {@link REMOTE_POLL_MS} as a safety net, one request at a time. lib/fleet-wide.ts says how the
 * table merges these rows with this instance's own. Alone (the `cluster` query answers null)
 * nothing is read; the host is asked again every minute.
 *
 * Which row wins: a pushed row replaces the one held unless that one was read later (`readAt`,
 * the host's clock); a read of the whole set replaces the map, except for the devices pushed
 * while it was asked (their pushed row, or their removal, is the newer word).
 *
 * The device view of another instance's device follows the same pushes ({@link useRemotePushes}):
 * its detail is read again as soon as the stream pushes the device's row.
 *
 * @example
 * const remote = useRemoteRows();        // { rows: Map id → row, version, error }
 * const devices = mergeRows(liveDevices, remote.rows);
 */
import { useEffect, useState } from 'react';
import type { DeviceRow, Envelope, Page, PushMessage, TypedClient } from '../../../src/host/contract.js';
import { messageOf } from '../api/client.js';
import { useClient } from './use-live.js';

/** How often the table reads every other instance's device again, for a push it may have missed. */
export const REMOTE_POLL_MS = 60_000;
/** How often a single instance is asked again whether it is one of a cluster now. */
const ALONE_POLL_MS = 60_000;
/** The first read when no snapshot comes to ask for it (the stream is not up). */
const FIRST_READ_FALLBACK_MS = 1_000;
/** Rows per request: the contract's most. */
const PAGE = 10_000;

export interface RemoteRows {
  /** Replaced, never mutated, at each read and push. */
  readonly rows: ReadonlyMap<string, DeviceRow>;
  /** Grows at each change of `rows`. */
  readonly version: number;
  /** Why the last read failed; null after one that answered. The rows stay as they were. */
  readonly error: string | null;
}

const NONE: RemoteRows = { rows: new Map(), version: 0, error: null };

/** Every remote row, page after page. */
export async function fetchRemoteRows(client: TypedClient): Promise<Map<string, DeviceRow>> {
  const rows = new Map<string, DeviceRow>();
  let offset: number | null = 0;
  while (offset !== null) {
    const r: Envelope<Page<DeviceRow>> = await client.call('devices', {
      scope: 'remote',
      offset,
      limit: PAGE,
    });
    if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
    for (const row of r.value.items) rows.set(row.id, row);
    offset = r.value.next;
  }
  return rows;
}

const readAtOf = (row: DeviceRow | undefined): number => row?.remote?.readAt ?? Number.NEGATIVE_INFINITY;

/** `current` with a diff's pushed rows and removals applied (a row read later than the pushed one stays). */
export function withPushed(
  current: ReadonlyMap<string, DeviceRow>,
  rows: readonly DeviceRow[],
  removed: readonly string[],
): Map<string, DeviceRow> {
  const next = new Map(current);
  for (const id of removed) next.delete(id);
  for (const row of rows) if (readAtOf(row) >= readAtOf(next.get(row.id))) next.set(row.id, row);
  return next;
}

/**
 * The rows of a whole read, except the devices `pushedMeanwhile` (pushed or removed since the read
 * was asked): for those, what `current` holds (a pushed row, or nothing) unless the read's row is newer.
 */
export function withRead(
  current: ReadonlyMap<string, DeviceRow>,
  read: ReadonlyMap<string, DeviceRow>,
  pushedMeanwhile: ReadonlySet<string>,
): Map<string, DeviceRow> {
  const next = new Map(read);
  for (const id of pushedMeanwhile) {
    const held = current.get(id);
    // Removed since the read was asked: the read may have answered before the removal.
    if (!held) next.delete(id);
    else if (readAtOf(held) >= readAtOf(read.get(id))) next.set(id, held);
  }
  return next;
}

/** The remote rows: read when the stream (re)starts and every minute, pushed in between. */
export function useRemoteRows(): RemoteRows {
  const client = useClient();
  const [state, setState] = useState<RemoteRows>(NONE);

  useEffect(() => {
    let alive = true;
    let inCluster = false;
    let timer = 0;
    let rows: ReadonlyMap<string, DeviceRow> = new Map();
    let reading = false;
    /** Devices pushed since the read in flight was asked; undefined when none is. */
    let pushedMeanwhile: Set<string> | undefined;
    /** A snapshot came while a read was in flight: read again after it. */
    let again = false;
    let version = 0;

    /** Shows `rows`; with `error` when given (null: the read answered), else the error as it was. */
    const show = (error?: string | null) => {
      version++;
      const v = version;
      setState((s) => ({ rows, version: v, error: error === undefined ? s.error : error }));
    };

    const read = async () => {
      window.clearTimeout(timer);
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      let next = REMOTE_POLL_MS;
      try {
        if (!inCluster) {
          const c = await client.call('cluster', {});
          if (!c.ok) throw new Error(`${c.error.code}: ${c.error.message}`);
          inCluster = c.value !== null;
        }
        if (!inCluster) next = ALONE_POLL_MS;
        else {
          pushedMeanwhile = new Set();
          const fetched = await fetchRemoteRows(client);
          if (alive) {
            rows = withRead(rows, fetched, pushedMeanwhile);
            show(null);
          }
        }
      } catch (error) {
        if (alive) setState((s) => ({ ...s, error: messageOf(error) }));
      } finally {
        pushedMeanwhile = undefined;
        reading = false;
      }
      if (!alive) return;
      if (again) {
        again = false;
        void read();
      } else timer = window.setTimeout(() => void read(), next);
    };

    const onPush = (m: PushMessage) => {
      if (!alive) return;
      // A (new) stream: what was pushed while it was down is read again.
      if (m.type === 'snapshot') {
        void read();
        return;
      }
      if (m.type !== 'diff' || (!m.remote && !m.remoteRemoved)) return;
      const pushed = m.remote ?? [];
      const removed = m.remoteRemoved ?? [];
      rows = withPushed(rows, pushed, removed);
      for (const r of pushed) pushedMeanwhile?.add(r.id);
      for (const id of removed) pushedMeanwhile?.add(id);
      show();
    };

    const off = client.subscribe(onPush);
    timer = window.setTimeout(() => void read(), FIRST_READ_FALLBACK_MS);
    return () => {
      alive = false;
      off();
      window.clearTimeout(timer);
    };
  }, [client]);
  return state;
}

/** Whether a pushed message names `id` as another instance's device that changed or left the fleet. */
export function pushNamesRemote(m: PushMessage, id: string): boolean {
  if (m.type !== 'diff') return false;
  return (m.remote?.some((r) => r.id === id) ?? false) || (m.remoteRemoved?.includes(id) ?? false);
}

/**
 * Grows each time the stream pushes `id` as another instance's device (its row changed, or it
 * left the fleet) and each time the stream starts again (pushes may have been missed while it was
 * down): a view of that device reads it again at once. What the stream replays to a late
 * subscriber (the latest snapshot, the diffs since) is not counted: the view has just read it.
 *
 * @example
 * const pushes = useRemotePushes(id);
 * const detail = useCall((c) => c.call('device', { id }), [id, pushes]);
 */
export function useRemotePushes(id: string): number {
  const client = useClient();
  const [count, setCount] = useState(0);
  useEffect(() => {
    let replaying = true;
    const off = client.subscribe((m) => {
      if (replaying) return;
      if (m.type === 'snapshot' || pushNamesRemote(m, id)) setCount((n) => n + 1);
    });
    replaying = false;
    return off;
  }, [client, id]);
  return count;
}

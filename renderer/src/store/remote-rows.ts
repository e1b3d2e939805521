/**
 * The other cluster instances' devices for the fleet table: the push stream carries only this
 * instance's own devices (src/host/api/stream.ts), so the rest is polled from the `devices` query
 * with `scope: 'remote'` (every page, 10,000 rows each) every {@link REMOTE_POLL_MS}, one request
 * at a time, and replaced as a whole: lib/fleet-wide.ts says how the table merges it with the
 * pushed rows. Each row carries its owner and when the host read it from the shared database.
 * Alone (the `cluster` query answers null) nothing is polled; the host is asked again every minute.
 *
 * @example
 * const remote = useRemoteRows();        // { rows: Map id → row, version, error }
 * const devices = mergeRows(liveDevices, remote.rows);
 */
import { useRef, useState } from 'react';
import type { DeviceRow, Envelope, Page, TypedClient } from '../../../src/host/contract.js';
import { messageOf } from '../api/client.js';
import { usePolling } from '../lib/hooks.js';
import { useClient } from './use-live.js';

/** How often the table reads the other instances' devices again (the host reads the database at most every 2 s). */
export const REMOTE_POLL_MS = 5_000;
/** How often a single instance is asked again whether it is one of a cluster now. */
const ALONE_POLL_MS = 60_000;
/** Rows per request: the contract's most. */
const PAGE = 10_000;

export interface RemoteRows {
  /** Replaced, never mutated, at each poll. */
  readonly rows: ReadonlyMap<string, DeviceRow>;
  /** Grows at each poll that answered. */
  readonly version: number;
  /** Why the last poll failed; null after one that answered. The rows stay those of the last answer. */
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

export function useRemoteRows(): RemoteRows {
  const client = useClient();
  const [state, setState] = useState<RemoteRows>(NONE);
  const inCluster = useRef(false);
  usePolling(
    async (alive) => {
      try {
        if (!inCluster.current) {
          const c = await client.call('cluster', {});
          if (!c.ok) throw new Error(`${c.error.code}: ${c.error.message}`);
          if (c.value === null) return ALONE_POLL_MS;
          inCluster.current = true;
        }
        const rows = await fetchRemoteRows(client);
        if (alive()) setState((s) => ({ rows, version: s.version + 1, error: null }));
      } catch (error) {
        if (alive()) setState((s) => ({ ...s, error: messageOf(error) }));
      }
      return REMOTE_POLL_MS;
    },
    [client],
  );
  return state;
}

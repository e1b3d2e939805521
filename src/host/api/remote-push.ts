/**
 * Other instances' devices, pushed on this instance's stream as they change (docs/scale-out.md,
 * "One fleet in every UI"): their owners signal the devices whose rows they committed
 * (src/cluster/fleet-changes.ts); on each signal this instance reads those rows again from the
 * shared database (the fleet-wide read path, src/host/api/fleet-wide.ts, whose rows the `devices`
 * query answers too) and hands the rows that differ from what it last pushed to the stream
 * (src/host/api/stream.ts: `remote` and `remoteRemoved` of the next diff).
 *
 * - A signal naming devices reads only them; `all` (leases moved, or this instance's listening
 *   connection came back after missing signals) reads the whole fleet again, incrementally, and
 *   pushes every row that changed since it was last pushed, and the devices gone.
 * - Signals of this instance's own writes are skipped: its own devices are pushed live already.
 * - Reads run one at a time; signals heard meanwhile are read together afterwards, so a storm
 *   costs a few reads, not one per signal.
 * - The rows pushed are remembered by content (not by when they were read), starting from one
 *   read of the whole fleet when it starts: a row is pushed when it changed, never because it was
 *   read again. A device this instance supervises (a shard it took over) is forgotten: its live
 *   row wins in every UI, and it is pushed again if its shard moves away.
 * - A read that fails is reported once until one succeeds, and the whole fleet read again two
 *   seconds later.
 *
 * @example
 * const push = startRemotePush({ changes: app.cluster.changes, reads: wide, me: 'alpha',
 *   isOwn: (id) => app.fleet.has(id), push: (rows, gone) => stream.remote(rows, gone), report });
 * push.stop();
 */
import type { FleetChange, FleetChanges } from '../../cluster/fleet-changes.js';
import type { DeviceRow } from '../contract.js';

/** After a failed read, the whole fleet is read again this much later. */
export const REMOTE_RETRY_MS = 2000;

/** The reads of the shared database a push needs (src/host/api/fleet-wide.ts). */
export interface RemoteReads {
  /** Reads these devices again now: the rows of those still in the fleet. */
  readDevices(ids: readonly string[]): Promise<readonly DeviceRow[]>;
  /** Reads the whole fleet again now (only what changed, from the database): every row. */
  readAll(): Promise<readonly DeviceRow[]>;
}

export interface RemotePushDeps {
  readonly changes: Pick<FleetChanges, 'subscribe'>;
  readonly reads: RemoteReads;
  /** This instance, as signals name it. */
  readonly me: string;
  /** This instance supervises the device: its row is pushed live, not from the database. */
  readonly isOwn: (id: string) => boolean;
  /** Hands changed rows and devices gone from the fleet to the stream. */
  readonly push: (rows: readonly DeviceRow[], removed: readonly string[]) => void;
  readonly report: (what: string, error: unknown) => void;
}

export interface RemotePushStats {
  /** Reads done for signals (of some devices or all). */
  readonly reads: number;
  /** Rows pushed (changed), and devices pushed as gone. */
  readonly rows: number;
  readonly removed: number;
  readonly failures: number;
}

export interface RemotePush {
  /** Resolves once the first read (what was last pushed, to start with) is done or failed. */
  readonly ready: Promise<void>;
  stop(): void;
  stats(): RemotePushStats;
}

/** A row's content, without when it was read. */
const contentOf = (row: DeviceRow): string =>
  JSON.stringify(row, (key, value: unknown) => (key === 'readAt' ? undefined : value));

/** What was last pushed of each other instance's device (its content), by id. */
type Sent = Map<string, string>;

/** What a read changed: the rows to push, and the devices gone from the fleet. */
interface ReadDiff {
  readonly rows: DeviceRow[];
  readonly removed: string[];
}

/** The row if it changed since it was last pushed (remembered as pushed); undefined otherwise. */
function changedRow(sent: Sent, isOwn: (id: string) => boolean, row: DeviceRow): DeviceRow | undefined {
  if (isOwn(row.id)) {
    sent.delete(row.id);
    return undefined;
  }
  const content = contentOf(row);
  if (sent.get(row.id) === content) return undefined;
  sent.set(row.id, content);
  return row;
}

/** The rows read that changed, and the ids of every row read. */
function changedRows(
  sent: Sent,
  isOwn: (id: string) => boolean,
  read: readonly DeviceRow[],
): { rows: DeviceRow[]; found: Set<string> } {
  const found = new Set<string>();
  const rows: DeviceRow[] = [];
  for (const row of read) {
    found.add(row.id);
    const changed = changedRow(sent, isOwn, row);
    if (changed) rows.push(changed);
  }
  return { rows, found };
}

/** Some devices read again: those of `ids` not read any more are gone (if they were pushed). */
function diffSome(
  sent: Sent,
  isOwn: (id: string) => boolean,
  ids: readonly string[],
  read: readonly DeviceRow[],
): ReadDiff {
  const { rows, found } = changedRows(sent, isOwn, read);
  return { rows, removed: ids.filter((id) => !found.has(id) && sent.delete(id)) };
}

/** The whole fleet read again: every device pushed before and not read now is gone. */
function diffAll(sent: Sent, isOwn: (id: string) => boolean, read: readonly DeviceRow[]): ReadDiff {
  const { rows, found } = changedRows(sent, isOwn, read);
  const removed: string[] = [];
  for (const id of sent.keys()) if (!found.has(id)) removed.push(id);
  for (const id of removed) sent.delete(id);
  return { rows, removed };
}

export function startRemotePush(deps: RemotePushDeps): RemotePush {
  const { reads, isOwn } = deps;
  /** What was last pushed of each other instance's device (its content). */
  const sent: Sent = new Map();
  const pendingIds = new Set<string>();
  let pendingAll = false;
  let draining = false;
  let retry: NodeJS.Timeout | undefined;
  /** A retry is due: signals wait for it. */
  let failing = false;
  /** A failure was reported since the last read that worked. */
  let reported = false;
  let stopped = false;
  const counts = { reads: 0, rows: 0, removed: 0, failures: 0 };

  function pushOut({ rows, removed }: ReadDiff): void {
    if (rows.length === 0 && removed.length === 0) return;
    counts.rows += rows.length;
    counts.removed += removed.length;
    deps.push(rows, removed);
  }

  async function drain(): Promise<void> {
    while (!stopped && (pendingAll || pendingIds.size > 0)) {
      const all = pendingAll;
      const ids = [...pendingIds];
      pendingAll = false;
      pendingIds.clear();
      try {
        counts.reads++;
        if (all) pushOut(diffAll(sent, isOwn, await reads.readAll()));
        else pushOut(diffSome(sent, isOwn, ids, await reads.readDevices(ids)));
        reported = false;
      } catch (error) {
        failed(error);
        return;
      }
    }
  }

  /** Reported once until a read succeeds; the whole fleet is read again a little later. */
  function failed(error: unknown): void {
    counts.failures++;
    if (!reported && !stopped) deps.report('reading changed devices from the shared database failed', error);
    reported = true;
    failing = true;
    clearTimeout(retry);
    retry = setTimeout(() => {
      failing = false;
      pendingAll = true;
      kick();
    }, REMOTE_RETRY_MS);
  }

  function kick(): void {
    if (stopped || draining) return;
    draining = true;
    void drain().finally(() => {
      draining = false;
      if (!stopped && !failing && (pendingAll || pendingIds.size > 0)) kick();
    });
  }

  function hear(change: FleetChange): void {
    if (stopped) return;
    if (change.kind === 'all') pendingAll = true;
    else if (change.from === deps.me) return;
    else for (const id of change.ids) pendingIds.add(id);
    if (pendingAll) pendingIds.clear();
    // While reads fail, the retry reads everything.
    if (!failing) kick();
  }

  // What every UI has to start with: the rows as they are now (the `devices` query answers them).
  const ready = reads.readAll().then(
    (rows) => {
      for (const row of rows) if (!isOwn(row.id)) sent.set(row.id, contentOf(row));
    },
    (error: unknown) => failed(error),
  );
  const off = deps.changes.subscribe((change) => {
    // Signals heard during the first read wait for it: what it reads is what was last pushed.
    void ready.then(() => hear(change));
  });

  return {
    ready,
    stop() {
      stopped = true;
      off();
      clearTimeout(retry);
    },
    stats: () => ({ ...counts }),
  };
}

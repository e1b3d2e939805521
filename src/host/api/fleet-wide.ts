/**
 * The `devices` list of the whole fleet (docs/scale-out.md, "One fleet in every UI"). Alone, an
 * instance lists its fleet. In a cluster it lists its own devices live, as before, and every other
 * device of the fleet from the shared database, each such row marked `remote` with the instance
 * that leases its shard and how old it is (contract: `RemoteRowInfo`).
 *
 * A remote row is what the database holds: the device table (name, kind, tags, reported
 * firmware), the state its owner saved (the snapshot row, rewritten by the owner at every
 * transition as it happens, src/devices/fleet/persistence.ts), its link and failure from the
 * latest `device.online`/`device.offline` and `device.failed`/`device.restarted` events (written by
 * the owner as they happen), and its shard's lease. Health: `failed` when the last health event is
 * a failure since the owner claimed the shard (a new owner restores the device), else `running`
 * while an unexpired lease names an owner, `stopped` while none does.
 *
 * Bounded: the database is read at most once per `refreshMs` (default 2 s), a few queries whatever
 * the fleet's size (src/cluster/fleet-reads.ts): the version of every device's rows, then only the
 * devices written since the last read, the leases, and the events after the last seq. Every call in
 * between filters, sorts and pages the rows kept in memory. A call that finds them older starts one
 * read (calls at once share it) and waits for it up to `maxWaitMs` (80 ms): a row is then at most
 * `refreshMs` old; past the wait (a loaded database) the call answers the rows of the read before
 * and the next call those of this read. Each row's `remote.readAt` says when it was read.
 *
 * Pushed (src/host/api/remote-push.ts): when an owner signals that devices changed, `readDevices`
 * reads those rows at once (and the leases and their latest events), and `readAll` the whole fleet after a
 * missed signal; the rows kept are patched, so a call answers what was pushed. Reads run one at a
 * time, in the order asked.
 *
 * This file reads; src/host/api/fleet-wide-rows.ts turns what it read into rows.
 *
 * @example
 * const wide = fleetWideOf(app);                               // undefined alone
 * await devicesPage(app.fleet, row, wide, { scope: 'all', offset: 0, limit: 100 });
 * // { items: [{ id: 'pump-1', …, remote: { owner: 'beta', readAt, savedAt } }, …], total, next }
 */
import type pg from 'pg';
import type { FleetOwners } from '../../cluster/fleet-reads.js';
import {
  readFleetDevices,
  readFleetOwners,
  readFleetVersions,
  readLatestPresence,
  readPresence,
} from '../../cluster/fleet-reads.js';
import { shardOf } from '../../cluster/shard.js';
import type { DeviceView, Fleet } from '../../devices/fleet.js';
import type { App } from '../app.js';
import type { DeviceRow, Page, ParsedArgsOf } from '../contract.js';
import type { Stored } from './fleet-wide-rows.js';
import { applyPresence, forgetAbsent, newPresence, remoteRowOf, storedOf } from './fleet-wide-rows.js';

/** Rows read from the database are read again when older than this. */
export const FLEET_WIDE_REFRESH_MS = 2000;

/** A call waits this long at most for a read of the database (a loaded database answers later). */
export const FLEET_WIDE_MAX_WAIT_MS = 80;

/** Devices whose rows changed, read again in one query each this many. */
const CHANGED_PER_READ = 5_000;

export interface FleetWideOptions {
  /** The shared database (the store's pool). */
  readonly db: pg.Pool;
  readonly shardCount: number;
  /** The wall clock, ms. */
  readonly now: () => number;
  /** The convention of a kind's devices, as rows say it (absent: our own protocol). */
  readonly conventionOf: (kind: string) => string | undefined;
  /** Default {@link FLEET_WIDE_REFRESH_MS}. */
  readonly refreshMs?: number;
  /**
   * How long a call waits for a read before it answers the rows of the read before (their
   * `readAt` says so); default {@link FLEET_WIDE_MAX_WAIT_MS}. The first call waits for the first read.
   */
  readonly maxWaitMs?: number;
  /** A read that failed (the call answers the rows of the read before; without any, it fails). */
  readonly report: (what: string, error: unknown) => void;
}

export interface FleetWide {
  /** Every device of the fleet as the database says (each row `remote`), ordered by id. */
  rows(): Promise<readonly DeviceRow[]>;
  /**
   * Reads these devices again now, after any read in progress (their owner signalled a change,
   * src/host/api/remote-push.ts): the rows of those still in the fleet. {@link rows} answers them
   * from then on.
   */
  readDevices(ids: readonly string[]): Promise<readonly DeviceRow[]>;
  /** Reads the whole fleet again now, after any read in progress (only what changed): every row. */
  readAll(): Promise<readonly DeviceRow[]>;
}

/** By id, as the API has always ordered the fleet (`localeCompare`), without its per-call cost. */
const byId = new Intl.Collator().compare;

/** The device table as last read. */
interface Mirror {
  /** Each device's rows, parsed (src/host/api/fleet-wide-rows.ts). */
  readonly devices: Map<string, Stored>;
  /** The ids of `devices`, ordered; undefined when the set of ids changed. */
  order: string[] | undefined;
}

/** Reads again the devices whose rows changed since the last read (all of them the first time). */
async function readDevices(db: pg.Pool, m: Mirror): Promise<void> {
  const { devices } = m;
  if (devices.size === 0) {
    for (const d of await readFleetDevices(db)) devices.set(d.id, storedOf(d));
    m.order = undefined;
    return;
  }
  const versions = await readFleetVersions(db);
  const changed: string[] = [];
  const present = new Set<string>();
  for (const v of versions) {
    present.add(v.id);
    if (devices.get(v.id)?.version !== v.version) changed.push(v.id);
  }
  for (const id of devices.keys())
    if (!present.has(id)) {
      devices.delete(id);
      m.order = undefined;
    }
  for (let i = 0; i < changed.length; i += CHANGED_PER_READ)
    for (const d of await readFleetDevices(db, changed.slice(i, i + CHANGED_PER_READ))) {
      if (!devices.has(d.id)) m.order = undefined;
      devices.set(d.id, storedOf(d));
    }
}

/** `rows` (ordered by id) with the devices `gone` left out and `changed` in (replaced or added). */
function patchRows(
  rows: readonly DeviceRow[],
  changed: ReadonlyMap<string, DeviceRow>,
  gone: ReadonlySet<string>,
): DeviceRow[] {
  const added = new Map(changed);
  const out: DeviceRow[] = [];
  for (const r of rows) {
    if (gone.has(r.id)) continue;
    out.push(changed.get(r.id) ?? r);
    added.delete(r.id);
  }
  if (added.size === 0) return out;
  return [...out, ...added.values()].sort((x, y) => byId(x.id, y.id));
}

/** What `reading` answers if it does within `waitMs`; past that, or if it fails, `before`. */
function within<T>(reading: Promise<T>, waitMs: number, before: T): Promise<T> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(before), waitMs);
    reading.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      () => {
        clearTimeout(timer);
        resolve(before);
      },
    );
  });
}

export function createFleetWide(options: FleetWideOptions): FleetWide {
  const { db, shardCount, now, conventionOf, report } = options;
  const refreshMs = options.refreshMs ?? FLEET_WIDE_REFRESH_MS;
  const maxWaitMs = options.maxWaitMs ?? FLEET_WIDE_MAX_WAIT_MS;
  const mirror: Mirror = { devices: new Map(), order: undefined };
  const presence = newPresence();
  /**
   * The highest event seq seen by each of the last reads, newest last. Each read asks for the
   * events after the oldest: a seq is taken at insert, so a transaction that was in flight during
   * one read may commit a lower seq than one already read; it is read the next time, or the one
   * after (a write that takes longer than two refresh periods to commit is read at the device's
   * next event).
   */
  const seqs = [0, 0];
  let kept: { readonly rows: readonly DeviceRow[]; readonly readAt: number } | undefined;
  let reading: Promise<readonly DeviceRow[]> | undefined;
  // One read at a time, in the order asked: each lands in the mirror after the one before.
  let turn: Promise<unknown> = Promise.resolve();
  const inTurn = <T>(job: () => Promise<T>): Promise<T> => {
    const p = turn.then(job, job);
    turn = p.catch(() => {});
    return p;
  };
  const rowOf = (d: Stored, owners: FleetOwners, readAt: number) =>
    remoteRowOf(
      d,
      owners.pins.get(d.id) ?? owners.shards.get(shardOf(d.id, shardCount)),
      presence,
      conventionOf(d.kind),
      readAt,
    );

  async function readEvents(): Promise<void> {
    let last = seqs.at(-1)!;
    for (const e of await readPresence(db, seqs[0]!)) {
      applyPresence(presence, e);
      if (e.seq > last) last = e.seq;
    }
    seqs.shift();
    seqs.push(last);
  }

  async function read(): Promise<readonly DeviceRow[]> {
    // One query at a time, on one connection: the store's pool also carries its writes.
    await readDevices(db, mirror);
    const owners = await readFleetOwners(db);
    await readEvents();
    const { devices } = mirror;
    forgetAbsent(presence, devices);
    mirror.order ??= [...devices.keys()].sort(byId);
    const readAt = now();
    const rows = mirror.order.map((id) => rowOf(devices.get(id)!, owners, readAt));
    kept = { rows, readAt };
    return rows;
  }

  /** Reads `ids` again (and the leases and their latest events); the rows kept answer them from then on. */
  async function readSome(ids: readonly string[]): Promise<readonly DeviceRow[]> {
    const found: Stored[] = [];
    for (let i = 0; i < ids.length; i += CHANGED_PER_READ)
      for (const d of await readFleetDevices(db, ids.slice(i, i + CHANGED_PER_READ))) found.push(storedOf(d));
    const owners = await readFleetOwners(db);
    // Their latest events by device, not the seq window of the full reads: signals come often,
    // and an event committed after a higher seq was read must still be seen.
    for (const e of await readLatestPresence(db, ids)) applyPresence(presence, e);
    const { devices } = mirror;
    for (const d of found) {
      if (!devices.has(d.id)) mirror.order = undefined;
      devices.set(d.id, d);
    }
    const present = new Set(found.map((d) => d.id));
    const gone = new Set(ids.filter((id) => !present.has(id) && devices.delete(id)));
    if (gone.size > 0) mirror.order = undefined;
    forgetAbsent(presence, devices);
    const readAt = now();
    const rows = found.map((d) => rowOf(d, owners, readAt));
    if (kept)
      kept = { rows: patchRows(kept.rows, new Map(rows.map((r) => [r.id, r])), gone), readAt: kept.readAt };
    return rows;
  }

  return {
    rows() {
      const before = kept;
      if (before && now() - before.readAt < refreshMs) return Promise.resolve(before.rows);
      reading ??= inTurn(read)
        .catch((error: unknown) => {
          // Reported once here when calls answer the rows before; without any, each call fails.
          if (kept) report('reading the fleet from the shared database failed', error);
          throw error;
        })
        .finally(() => {
          reading = undefined;
        });
      return before ? within(reading, maxWaitMs, before.rows) : reading;
    },
    readDevices: (ids) => inTurn(() => readSome(ids)),
    readAll: () => inTurn(read),
  };
}

/** The app's fleet-wide rows when it is one instance of a cluster; undefined alone. */
export function fleetWideOf(app: App, refreshMs?: number): FleetWide | undefined {
  const cluster = app.cluster;
  if (!cluster) return undefined;
  return createFleetWide({
    db: cluster.db,
    shardCount: cluster.keeper.shardCount,
    now: () => app.runtime.clock.wallNow(),
    conventionOf: (kind) => app.fleet.kinds.get(kind)?.convention,
    report: (what, error) => app.runtime.report(`api: ${what}`, error),
    ...(refreshMs !== undefined ? { refreshMs } : {}),
  });
}

type Listed = Pick<DeviceRow, 'id' | 'name' | 'kind' | 'state' | 'tags' | 'health'>;

/** The `devices` filters as one predicate, for a live device and a remote row alike. */
function filterOf(a: ParsedArgsOf<'devices'>): (d: Listed) => boolean {
  const text = a.text?.toLowerCase();
  return (d) =>
    (!text || d.id.toLowerCase().includes(text) || d.name.toLowerCase().includes(text)) &&
    (!a.kind || d.kind === a.kind) &&
    (!a.state || d.state === a.state || d.state.startsWith(`${a.state}.`)) &&
    (!a.tag || d.tags.includes(a.tag)) &&
    (!a.health || d.health === a.health);
}

/**
 * One page of the `devices` query: this instance's devices (live, `row` makes their rows) and,
 * in a cluster, the others' from `wide`, filtered alike, ordered by id together, then paged. A
 * device this instance supervises is always its live row, whatever the rows read say.
 */
export async function devicesPage(
  fleet: Fleet,
  row: (d: DeviceView) => DeviceRow,
  wide: FleetWide | undefined,
  a: ParsedArgsOf<'devices'>,
): Promise<Page<DeviceRow>> {
  const keep = filterOf(a);
  const own = a.scope === 'remote' ? [] : fleet.list().filter(keep);
  own.sort((x, y) => byId(x.id, y.id));
  const others =
    a.scope === 'own' || !wide ? [] : (await wide.rows()).filter((r) => !fleet.has(r.id) && keep(r));
  const total = own.length + others.length;
  const items: DeviceRow[] = [];
  // Both are ordered by id: walk them together up to the page's end.
  let i = 0;
  let j = 0;
  for (let n = 0; n < a.offset + a.limit && n < total; n++) {
    const mine = i < own.length && (j >= others.length || byId(own[i]!.id, others[j]!.id) <= 0);
    if (n < a.offset) {
      if (mine) i++;
      else j++;
      continue;
    }
    items.push(mine ? row(own[i++]!) : others[j++]!);
  }
  const end = a.offset + items.length;
  return { items, total, next: end < total ? end : null };
}

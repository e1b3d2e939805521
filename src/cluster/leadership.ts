/**
 * A leader lease: one named role of the cluster (`primary`: the Sparkplug Primary Host) held by
 * one instance at a time, on the same rules as the shards' leases (src/cluster/leases.ts,
 * lease-keeper.ts; table `fleetvisor_leaders`, PostgreSQL migration 7):
 *
 * - times are the database's clock; a claim takes a role that is free or expired and bumps its
 *   epoch, the fencing token ({@link holdsLeadership} checks it in a transaction);
 * - the holder renews every `leaseMs / 3`; a renewal extends only an unexpired lease at the same
 *   epoch, so a lapsed one is lost even if no one took it;
 * - the holder gives the role up itself (`deposed`) `leaseMs / 6` before its last renewal's lease
 *   would end when no renewal came back in time (its monotonic clock, from when the renewal was
 *   sent): a paused or partitioned holder stops acting before anyone else may claim;
 * - a graceful stop runs `deposed` (the role's work stopped) and releases the row at once, telling
 *   the others on a channel (`LISTEN`): one claims it at once (at its next try without a listener).
 *
 * The others try to claim every `leaseMs / 3`: a dead holder's role is taken within one lease and
 * one renewal interval.
 *
 * @example
 * const leader = createLeaderKeeper({ pool, name: 'primary', owner: 'site-a-1', logger,
 *   elected: async (epoch) => startPrimaryHost(), deposed: async (why) => stopPrimaryHost() });
 * await leader.start();
 * leader.holding(); // { epoch: 3 } while this instance leads
 * await leader.stop(); // hands over at once
 */
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { Logger } from '../runtime/runtime.js';
import { leaseTiming, msToDeadline, renewedInTime } from './lease-keeper-plan.js';
import type { RoutingListener } from './routing-listener.js';
import { createRoutingListener } from './routing-listener.js';

type Queryable = pg.Pool | pg.PoolClient;

/** The role that runs the Sparkplug Primary Host bridge (docs/scale-out.md). */
export const PRIMARY_ROLE = 'primary';

/** Where a release is told (its payload: the role's name), so the others claim at once. */
export const LEADERS_CHANNEL = 'fleetvisor_leaders';

/** Claims `name` for `owner` when it is free or expired; its new epoch, or undefined when someone holds it. */
export async function claimLeadership(
  db: Queryable,
  name: string,
  owner: string,
  leaseMs: number,
): Promise<number | undefined> {
  await db.query('INSERT INTO fleetvisor_leaders (name) VALUES ($1) ON CONFLICT DO NOTHING', [name]);
  // Two claims at once: the second waits for the first's row lock, then reads the row again and
  // finds it unexpired (READ COMMITTED re-checks the WHERE on the updated row).
  const r = await db.query<{ epoch: string }>(
    `UPDATE fleetvisor_leaders
     SET owner = $2, epoch = epoch + 1, expires_at = clock_timestamp() + $3 * interval '1 millisecond',
       acquired_at = clock_timestamp()
     WHERE name = $1 AND (owner IS NULL OR expires_at <= clock_timestamp())
     RETURNING epoch`,
    [name, owner, leaseMs],
  );
  const row = r.rows[0];
  return row ? Number(row.epoch) : undefined;
}

/** Extends `owner`'s unexpired lease on `name` at `epoch`; false: it is lost (expired, or taken). */
export async function renewLeadership(
  db: Queryable,
  name: string,
  owner: string,
  epoch: number,
  leaseMs: number,
): Promise<boolean> {
  const r = await db.query(
    `UPDATE fleetvisor_leaders SET expires_at = clock_timestamp() + $4 * interval '1 millisecond'
     WHERE name = $1 AND owner = $2 AND epoch = $3 AND expires_at > clock_timestamp()`,
    [name, owner, epoch, leaseMs],
  );
  return (r.rowCount ?? 0) > 0;
}

/** Frees `name` at once if `owner` holds it (at `epoch` when given), and tells {@link LEADERS_CHANNEL}. */
export async function releaseLeadership(
  db: Queryable,
  name: string,
  owner: string,
  epoch?: number,
): Promise<boolean> {
  const r = await db.query(
    `UPDATE fleetvisor_leaders SET owner = NULL, expires_at = '-infinity'
     WHERE name = $1 AND owner = $2 AND ($3::bigint IS NULL OR epoch = $3)`,
    [name, owner, epoch ?? null],
  );
  const freed = (r.rowCount ?? 0) > 0;
  if (freed) await db.query('SELECT pg_notify($1, $2)', [LEADERS_CHANNEL, name]);
  return freed;
}

/**
 * The fence: inside a transaction, whether `owner` still holds `name` at `epoch`, unexpired; the
 * row is share-locked until the commit, so a claim waits for the transaction or is seen by it.
 */
export async function holdsLeadership(
  db: Queryable,
  name: string,
  owner: string,
  epoch: number,
): Promise<boolean> {
  const r = await db.query(
    `SELECT 1 FROM fleetvisor_leaders
     WHERE name = $1 AND owner = $2 AND epoch = $3 AND expires_at > clock_timestamp()
     FOR SHARE`,
    [name, owner, epoch],
  );
  return (r.rowCount ?? 0) > 0;
}

export interface LeaderView {
  readonly name: string;
  readonly owner: string;
  readonly epoch: number;
  /** How long ago it was claimed (ms, the database's clock). */
  readonly heldForMs: number;
}

/** Roles held now (an unexpired lease), by name. */
export async function leadersNow(db: Queryable): Promise<LeaderView[]> {
  const r = await db.query<{ name: string; owner: string; epoch: string; held: string }>(
    `SELECT name, owner, epoch,
       (extract(epoch FROM clock_timestamp() - acquired_at) * 1000)::bigint AS held
     FROM fleetvisor_leaders
     WHERE owner IS NOT NULL AND expires_at > clock_timestamp()
     ORDER BY name`,
  );
  return r.rows.map((row) => ({
    name: row.name,
    owner: row.owner,
    epoch: Number(row.epoch),
    heldForMs: Number(row.held),
  }));
}

export interface LeaderKeeperOptions {
  readonly pool: pg.Pool;
  /** The role, e.g. {@link PRIMARY_ROLE}. */
  readonly name: string;
  /** This instance, as the row names its holder. */
  readonly owner: string;
  /** Default 6000 ms (renewed, or tried, every 2000). */
  readonly leaseMs?: number;
  readonly logger: Logger;
  /**
   * The database's URL: a dedicated connection listens on {@link LEADERS_CHANNEL}, so a graceful
   * release is claimed at once instead of at the next try. Without it: at the next try.
   */
  readonly listenUrl?: string;
  /** This instance now holds the role at `epoch`: start its work (not awaited by the renewals). */
  readonly elected: (epoch: number) => Promise<void> | void;
  /** It holds it no more (lost, or stopping): stop its work. Awaited before a graceful release. */
  readonly deposed: (why: string) => Promise<void> | void;
}

export interface LeaderKeeper {
  readonly name: string;
  readonly leaseMs: number;
  /** The epoch held, while this instance leads. */
  holding(): { readonly epoch: number } | undefined;
  /** The first try at once, then one every `leaseMs / 3`. */
  start(): Promise<void>;
  /** Stops the role's work (`deposed`), releases it at once and stops trying. */
  stop(): Promise<void>;
  stats(): { readonly elected: number; readonly lost: number; readonly renewFailures: number };
}

/**
 * The connection that hears a role released on {@link LEADERS_CHANNEL} (none without
 * `listenUrl`): a release of this role calls `released`, so a waiting instance claims at once.
 */
function listenForReleases(
  options: LeaderKeeperOptions,
  released: () => void,
  isStopped: () => boolean,
): RoutingListener | undefined {
  if (options.listenUrl === undefined) return undefined;
  return createRoutingListener({
    url: options.listenUrl,
    channel: LEADERS_CHANNEL,
    logger: options.logger,
    names: { application: 'fleetvisor-leaders-listen', log: 'cluster', what: 'released roles' },
    onNotice: (payload) => {
      if (payload === options.name) released();
    },
    isStopped,
  });
}

/** The role's work started for `epoch`; not awaited, so it never delays the next renewal. */
function startRole(options: LeaderKeeperOptions, epoch: number): void {
  options.logger.info(`cluster: leadership '${options.name}' taken`, { instance: options.owner, epoch });
  void Promise.resolve(options.elected(epoch)).catch((error: unknown) =>
    options.logger.error('cluster: starting a role failed', { role: options.name, error: String(error) }),
  );
}

export function createLeaderKeeper(options: LeaderKeeperOptions): LeaderKeeper {
  const { pool, name, owner, logger: log } = options;
  const leaseMs = options.leaseMs ?? 6000;
  const { everyMs, safetyMs } = leaseTiming(leaseMs);
  let epoch: number | undefined;
  let validUntil = 0;
  let timer: NodeJS.Timeout | undefined;
  let deadline: NodeJS.Timeout | undefined;
  let stopped = false;
  let running: Promise<void> | undefined;
  const counts = { elected: 0, lost: 0, renewFailures: 0 };

  const depose = async (why: string) => {
    if (deadline) clearTimeout(deadline);
    deadline = undefined;
    epoch = undefined;
    await options.deposed(why);
  };
  const lose = (why: string) => {
    if (epoch === undefined) return;
    counts.lost++;
    log.error(`cluster: leadership '${name}' lost (${why}); its work stops`, { instance: owner });
    depose(why).catch((error: unknown) =>
      log.error('cluster: stopping a lost role failed', { role: name, error: String(error) }),
    );
  };
  const arm = (sentAt: number) => {
    validUntil = sentAt + leaseMs;
    if (deadline) clearTimeout(deadline);
    deadline = setTimeout(
      () => {
        deadline = undefined;
        if (!stopped) lose('not renewed in time: the database did not answer, or this process was paused');
      },
      msToDeadline(validUntil, safetyMs, performance.now()),
    );
    deadline.unref?.();
  };

  const step = async () => {
    const sentAt = performance.now();
    try {
      if (epoch !== undefined) {
        const held = epoch;
        const ok = await renewLeadership(pool, name, owner, held, leaseMs);
        if (epoch !== held) return; // deposed by the deadline meanwhile
        if (!ok) lose('the lease ran out');
        else if (!renewedInTime(sentAt, performance.now(), leaseMs, safetyMs))
          lose('the renewal took longer than the lease allows');
        else arm(sentAt);
        return;
      }
      const got = await claimLeadership(pool, name, owner, leaseMs);
      if (got === undefined) return;
      if (stopped || !renewedInTime(sentAt, performance.now(), leaseMs, safetyMs)) {
        await releaseLeadership(pool, name, owner, got);
        return;
      }
      epoch = got;
      counts.elected++;
      arm(sentAt);
      startRole(options, got);
    } catch (error) {
      counts.renewFailures++;
      log.warn(`cluster: leadership '${name}' renewal or claim failed`, {
        instance: owner,
        error: String(error),
      });
    }
  };
  // One step at a time: the timer's, or one kicked by a release heard on the channel.
  const kick = (): Promise<void> => {
    running ??= step().finally(() => {
      running = undefined;
    });
    return running;
  };
  const listener = listenForReleases(
    options,
    () => {
      if (epoch === undefined && !stopped) void kick();
    },
    () => stopped,
  );
  const loop = () => {
    timer = setTimeout(() => {
      // A listening connection that dropped is made again here; meanwhile the tries go on.
      if (listener && !listener.listening()) void listener.listen().catch(() => {});
      void kick().finally(() => {
        if (!stopped) loop();
      });
    }, everyMs);
    timer.unref?.();
  };

  return {
    name,
    leaseMs,
    holding: () => (epoch === undefined ? undefined : { epoch }),
    async start() {
      await listener?.listen().catch(() => {});
      await kick();
      if (!stopped) loop();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      await listener?.close();
      await running;
      const held = epoch;
      if (held === undefined) return;
      // The role's work stops first (the Sparkplug host says offline), then the row is freed.
      await depose('this instance stops');
      await releaseLeadership(pool, name, owner, held);
      log.info(`cluster: leadership '${name}' handed over`, { instance: owner, epoch: held });
    },
    stats: () => ({ ...counts }),
  };
}

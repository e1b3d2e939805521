/**
 * One instance's side of the cluster: it keeps the leases of the shards it owns, takes its share
 * of the shards, hands shards over gradually when others join, and stops its devices itself
 * before a lease it could not renew runs out (docs/scale-out.md).
 *
 * Two loops, so that starting a thousand devices never delays a renewal:
 * - **renew**, every `leaseMs / 3`: a heartbeat and one UPDATE extending every lease still ours.
 *   A shard missing from the answer was lost (it ran out: the store refused its writes meanwhile),
 *   and its devices are stopped at once without writing. If no renewal succeeds, a local deadline
 *   `leaseMs / 6` before the last renewal's lease would end (measured on this process's monotonic
 *   clock from before the renewal was sent) stops every device: a partitioned or paused instance
 *   gives up before anyone else may claim, and whatever it still tries to write is fenced.
 * - **balance**, after each renewal when the last one is done: the target share is
 *   `floor(shards / live instances)`, one more for the first `shards mod live` instances by id.
 *   Below it, claim free or expired shards (a dead instance's
 *   shards are claimed in the first pass after they expire: failover is not damped). Above it,
 *   hand over at most `maxMovesPerPass` shards a pass — stop their devices, save their state,
 *   then release the leases — so a joining instance takes shards gradually, as ThingsBoard and
 *   Pekko Cluster Sharding damp rebalancing because starting devices is slow.
 *
 * The fencing token of each shard is its epoch, handed to the store ({@link LeaseKeeper.tokenOf}).
 *
 * @example
 * const keeper = createLeaseKeeper({ pool, instance, shardCount, leaseMs: 6000, logger,
 *   gained: (shards) => fleet.load(...), handOver: ..., lost: ... });
 * await keeper.start();
 */
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { Logger } from '../runtime/runtime.js';
import type { InstanceInfo } from './leases.js';
import { claimLeases, heartbeat, leave, liveInstances, releaseLeases, renewLeases } from './leases.js';
import { shardOf } from './shard.js';

export interface LeaseKeeperOptions {
  readonly pool: pg.Pool;
  readonly instance: InstanceInfo;
  /** The fleet's shard count (from initCluster). */
  readonly shardCount: number;
  /** How long a lease lasts without renewal; default 6000 ms (renewed every 2000). */
  readonly leaseMs?: number;
  /** Most shards handed over in one balance pass; default 64. */
  readonly maxMovesPerPass?: number;
  readonly logger: Logger;
  /** Start the devices of these newly owned shards (restored from the store). */
  readonly gained: (shards: readonly number[]) => Promise<void>;
  /** Stop these shards' devices, saving their state: their leases are released right after. */
  readonly handOver: (shards: readonly number[]) => Promise<void>;
  /** These leases are gone: stop their devices now, writing nothing (it would be refused). */
  readonly lost: (shards: readonly number[], why: string) => void;
}

export interface LeaseKeeper {
  readonly instanceId: string;
  readonly shardCount: number;
  readonly leaseMs: number;
  /** Shards owned now, with their epochs. */
  readonly held: ReadonlyMap<number, number>;
  shardOf(deviceId: string): number;
  owns(deviceId: string): boolean;
  tokenOf(deviceId: string): { readonly shard: number; readonly epoch: number } | undefined;
  /** Joins: the first heartbeat, then the loops (the first claim waits one renewal interval, so instances starting together see each other). */
  start(): Promise<void>;
  /** Hands every shard over (devices saved and stopped), releases the leases and leaves. */
  stop(): Promise<void>;
  /** Where this instance's UI and API answer (known once its server listens): in the cluster view. */
  setApiUrl(url: string): void;
  /** Counts since start, for the cluster view and tests. */
  stats(): {
    readonly renewals: number;
    readonly renewFailures: number;
    readonly claimed: number;
    readonly handedOver: number;
    readonly lost: number;
  };
}

export function createLeaseKeeper(options: LeaseKeeperOptions): LeaseKeeper {
  const { pool, instance, shardCount, logger: log } = options;
  const leaseMs = options.leaseMs ?? 6000;
  const every = Math.max(1, Math.floor(leaseMs / 3));
  const safetyMs = Math.floor(leaseMs / 6);
  const maxMoves = options.maxMovesPerPass ?? 64;
  const held = new Map<number, number>();
  let me: InstanceInfo = instance;
  const counts = { renewals: 0, renewFailures: 0, claimed: 0, handedOver: 0, lost: 0 };
  let validUntil = 0;
  let renewTimer: NodeJS.Timeout | undefined;
  let deadlineTimer: NodeJS.Timeout | undefined;
  let balancing: Promise<void> | undefined;
  let renewing = false;
  /** Stopping: no more balancing, but renewals go on until every device is handed over. */
  let stopping = false;
  let stopped = false;
  let joinedAt = 0;

  const shard = (id: string) => shardOf(id, shardCount);

  function loseAll(why: string): void {
    if (held.size === 0) return;
    const shards = [...held.keys()];
    held.clear();
    counts.lost += shards.length;
    log.error(`cluster: ${shards.length} shard leases lost (${why}); their devices stop`, {
      instance: instance.id,
    });
    options.lost(shards, why);
  }

  function armDeadline(): void {
    if (deadlineTimer) clearTimeout(deadlineTimer);
    const ms = Math.max(0, validUntil - safetyMs - performance.now());
    deadlineTimer = setTimeout(() => {
      deadlineTimer = undefined;
      if (!stopped) loseAll('not renewed in time: the database did not answer, or this process was paused');
    }, ms);
    deadlineTimer.unref?.();
  }

  async function renew(): Promise<void> {
    if (renewing || stopped) return;
    renewing = true;
    const sentAt = performance.now();
    try {
      await heartbeat(pool, me);
      const still = await renewLeases(pool, instance.id, leaseMs);
      counts.renewals++;
      if (performance.now() >= sentAt + leaseMs - safetyMs) {
        // The answer came too late to rely on: the deadline has (or is about to) let go already.
        loseAll('the renewal took longer than the lease allows');
      } else {
        validUntil = sentAt + leaseMs;
        armDeadline();
      }
      const gone: number[] = [];
      for (const [s, epoch] of held) if (still.get(s) !== epoch) gone.push(s);
      if (gone.length > 0) {
        for (const s of gone) held.delete(s);
        counts.lost += gone.length;
        log.error(`cluster: ${gone.length} shard leases ran out before renewal; their devices stop`, {
          instance: instance.id,
        });
        options.lost(gone, 'the lease ran out');
      }
      // Leases the database still gives us but we let go of locally (a deadline passed): free them.
      const stray = [...still.keys()].filter((s) => !held.has(s));
      if (stray.length > 0) await releaseLeases(pool, instance.id, stray);
    } catch (error) {
      counts.renewFailures++;
      log.warn('cluster: lease renewal failed', { instance: instance.id, error: (error as Error).message });
    } finally {
      renewing = false;
    }
    if (!stopping && !balancing && performance.now() - joinedAt >= every)
      balancing = balance()
        .catch((error: unknown) =>
          log.warn('cluster: balancing failed', { instance: instance.id, error: (error as Error).message }),
        )
        .finally(() => {
          balancing = undefined;
        });
  }

  async function balance(): Promise<void> {
    const live = await liveInstances(pool, leaseMs);
    if (!live.includes(instance.id)) live.push(instance.id);
    live.sort();
    // An exact share: the first `shardCount mod n` instances (by id) take one shard more.
    const n = live.length;
    const target = Math.floor(shardCount / n) + (live.indexOf(instance.id) < shardCount % n ? 1 : 0);
    if (stopping) return;
    if (held.size < target) {
      const got = await claimLeases(pool, instance.id, target - held.size, leaseMs);
      if (got.size === 0) return;
      if (stopping) {
        await releaseLeases(pool, instance.id, [...got.keys()]);
        return;
      }
      for (const [s, epoch] of got) held.set(s, epoch);
      counts.claimed += got.size;
      log.info('cluster: shards claimed', {
        instance: instance.id,
        claimed: got.size,
        held: held.size,
        target,
      });
      await options.gained([...got.keys()]);
    } else if (held.size > target) {
      // Hand over the highest-numbered shards beyond the target, a few at a time.
      const give = [...held.keys()].sort((a, b) => b - a).slice(0, Math.min(maxMoves, held.size - target));
      await handOver(give);
      log.info('cluster: shards handed over', {
        instance: instance.id,
        released: give.length,
        held: held.size,
        target,
      });
    }
  }

  async function handOver(shards: readonly number[]): Promise<void> {
    if (shards.length === 0) return;
    await options.handOver(shards);
    // Dropped locally only after the devices were saved: their last writes still pass the fence.
    for (const s of shards) held.delete(s);
    counts.handedOver += shards.length;
    await releaseLeases(pool, instance.id, shards);
  }

  function loop(): void {
    renewTimer = setTimeout(() => {
      void renew().finally(() => {
        if (!stopped) loop();
      });
    }, every);
    renewTimer.unref?.();
  }

  return {
    instanceId: instance.id,
    shardCount,
    leaseMs,
    held,
    shardOf: shard,
    owns: (id) => held.has(shard(id)),
    tokenOf(id) {
      const s = shard(id);
      const epoch = held.get(s);
      return epoch === undefined ? undefined : { shard: s, epoch };
    },
    async start() {
      await heartbeat(pool, me);
      joinedAt = performance.now();
      loop();
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      await balancing;
      try {
        await handOver([...held.keys()]);
        // Also any lease the database still gives this instance that it let go of locally.
        await releaseLeases(pool, instance.id, 'all');
        await leave(pool, instance.id);
      } finally {
        stopped = true;
        if (renewTimer) clearTimeout(renewTimer);
        if (deadlineTimer) clearTimeout(deadlineTimer);
        held.clear();
      }
    },
    setApiUrl(url) {
      me = { ...me, apiUrl: url };
    },
    stats: () => ({ ...counts }),
  };
}

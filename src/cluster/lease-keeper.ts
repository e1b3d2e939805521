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
 * With `pinned` given, serial devices are pinned to this instance (src/cluster/pins.ts, renewed
 * with the leases): `owns` and `tokenOf` answer for a pinned device by its pin, and leave out a
 * device of a held shard that another instance has pinned.
 *
 * The steps live in lease-keeper-steps.ts (renew, deadline, balance: claim and hand over) and
 * their arithmetic in lease-keeper-plan.ts (timing, the share, which shards move); this file
 * holds the state and the public face.
 *
 * @example
 * const keeper = createLeaseKeeper({ pool, instance, shardCount, leaseMs: 6000, logger,
 *   gained: (shards) => fleet.load(...), handOver: ..., lost: ... });
 * await keeper.start();
 */
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { Logger } from '../runtime/runtime.js';
import type { FeedFigures } from './feed-figures.js';
import { leaseTiming } from './lease-keeper-plan.js';
import type { KeeperState } from './lease-keeper-steps.js';
import { handOver, loop } from './lease-keeper-steps.js';
import type { InstanceInfo } from './leases.js';
import { heartbeat, leave, releaseLeases } from './leases.js';
import type { PinChanges, PinKeeper } from './pins.js';
import { createPinKeeper } from './pins.js';
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
  /** This instance's change-feed figures, written with every heartbeat for the cluster view. */
  readonly feed?: () => FeedFigures;
  /** Serial devices are pinned here (src/cluster/pins.ts) when given: what to do as pins change. */
  readonly pinned?: {
    /** Start or stop devices as pins come and go (stopped ones write nothing: it would be refused). */
    readonly changed: (changes: PinChanges) => Promise<void>;
    /** Stop these pinned devices, saving their state (a graceful stop): their pins are released after. */
    readonly handOver: (deviceIds: readonly string[]) => Promise<void>;
    /** The devices declared to run here (PinKeeperOptions.declared). */
    readonly declared?: () => Promise<readonly string[]>;
  };
}

export interface LeaseKeeper {
  readonly instanceId: string;
  readonly shardCount: number;
  readonly leaseMs: number;
  /** Shards owned now, with their epochs. */
  readonly held: ReadonlyMap<number, number>;
  shardOf(deviceId: string): number;
  /** This instance runs the device: pinned here, or of a held shard and pinned nowhere else. */
  owns(deviceId: string): boolean;
  /** The fencing token of the device's writes (its pin's epoch when pinned here). */
  tokenOf(
    deviceId: string,
  ): { readonly shard: number; readonly epoch: number } | { readonly pin: number } | undefined;
  /** The pins (undefined without `pinned`). */
  readonly pins: PinKeeper | undefined;
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
  const { pool, instance, shardCount } = options;
  const leaseMs = options.leaseMs ?? 6000;
  const { everyMs, safetyMs } = leaseTiming(leaseMs);
  const k: KeeperState = {
    options,
    pool,
    instance,
    shardCount,
    log: options.logger,
    leaseMs,
    every: everyMs,
    safetyMs,
    maxMoves: options.maxMovesPerPass ?? 64,
    held: new Map<number, number>(),
    counts: { renewals: 0, renewFailures: 0, claimed: 0, handedOver: 0, lost: 0 },
    me: instance,
    validUntil: 0,
    renewTimer: undefined,
    deadlineTimer: undefined,
    balancing: undefined,
    renewing: false,
    renewal: undefined,
    stopping: false,
    stopped: false,
    joinedAt: 0,
    pins: undefined,
  };
  const { held } = k;
  const shard = (id: string) => shardOf(id, shardCount);
  const pinned = options.pinned;
  const pins =
    pinned &&
    createPinKeeper({
      pool,
      owner: instance.id,
      leaseMs,
      shardOf: shard,
      holdsShard: (s) => held.has(s),
      logger: options.logger,
      changed: pinned.changed,
      ...(pinned.declared ? { declared: pinned.declared } : {}),
    });
  k.pins = pins;

  return {
    instanceId: instance.id,
    shardCount,
    leaseMs,
    held,
    shardOf: shard,
    pins,
    owns: pins
      ? (id) => pins.here.has(id) || (held.has(shard(id)) && !pins.elsewhere.has(id))
      : (id) => held.has(shard(id)),
    tokenOf(id) {
      const pin = pins?.here.get(id);
      if (pin !== undefined) return { pin };
      if (pins?.elsewhere.has(id)) return undefined;
      const s = shard(id);
      const epoch = held.get(s);
      return epoch === undefined ? undefined : { shard: s, epoch };
    },
    async start() {
      await heartbeat(pool, k.me, options.feed?.());
      k.joinedAt = performance.now();
      loop(k);
    },
    async stop() {
      if (k.stopping) return;
      k.stopping = true;
      await k.balancing;
      try {
        await handOver(k, [...held.keys()]);
        if (pins && pinned) {
          await pinned.handOver([...pins.here.keys()]);
          await pins.release();
        }
        // No renewal from here on, and the one under way ends first: its heartbeat, landing after
        // the leave, marked this instance alive again (the cluster view showed it stale, not left,
        // seen under the loaded full suite).
        k.stopped = true;
        await k.renewal;
        // Also any lease the database still gives this instance that it let go of locally.
        await releaseLeases(pool, instance.id, 'all');
        await leave(pool, instance.id);
      } finally {
        k.stopped = true;
        if (k.renewTimer) clearTimeout(k.renewTimer);
        if (k.deadlineTimer) clearTimeout(k.deadlineTimer);
        held.clear();
      }
    },
    setApiUrl(url) {
      k.me = { ...k.me, apiUrl: url };
    },
    stats: () => ({ ...k.counts }),
  };
}

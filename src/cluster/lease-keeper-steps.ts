/**
 * The lease keeper's steps over its state (lease-keeper.ts tells the whole story): the renew loop
 * with its local deadline, and the balance pass that claims shards or hands them over.
 */
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { Logger } from '../runtime/runtime.js';
import type { LeaseKeeperOptions } from './lease-keeper.js';
import {
  goneShards,
  msToDeadline,
  renewedInTime,
  shardsToHandOver,
  targetShare,
} from './lease-keeper-plan.js';
import type { InstanceInfo } from './leases.js';
import { claimLeases, heartbeat, liveInstances, releaseLeases, renewLeases } from './leases.js';
import type { PinKeeper } from './pins.js';

/** One keeper's state: made once by `createLeaseKeeper`, changed only by these steps and its stop. */
export interface KeeperState {
  readonly options: LeaseKeeperOptions;
  readonly pool: pg.Pool;
  readonly instance: InstanceInfo;
  readonly shardCount: number;
  readonly log: Logger;
  readonly leaseMs: number;
  /** Renewal period (a third of the lease). */
  readonly every: number;
  /** The local deadline's margin before a lease ends (a sixth of it). */
  readonly safetyMs: number;
  readonly maxMoves: number;
  /** Shards owned now, with their epochs. */
  readonly held: Map<number, number>;
  readonly counts: {
    renewals: number;
    renewFailures: number;
    claimed: number;
    handedOver: number;
    lost: number;
  };
  /** This instance as its heartbeat says it (its API URL is set later). */
  me: InstanceInfo;
  /** On the monotonic clock: when the last renewed leases end. */
  validUntil: number;
  renewTimer: NodeJS.Timeout | undefined;
  deadlineTimer: NodeJS.Timeout | undefined;
  balancing: Promise<void> | undefined;
  renewing: boolean;
  /** The renewal under way, if any (a stop waits for it before it marks this instance left). */
  renewal: Promise<void> | undefined;
  /** Stopping: no more balancing, but renewals go on until every device is handed over. */
  stopping: boolean;
  stopped: boolean;
  joinedAt: number;
  /** The pins renewed with the leases (src/cluster/pins.ts); undefined: none kept. */
  pins: PinKeeper | undefined;
}

/** Renews every `every` ms until stopped. */
export function loop(k: KeeperState): void {
  k.renewTimer = setTimeout(() => {
    k.renewal = renew(k).finally(() => {
      k.renewal = undefined;
      if (!k.stopped) loop(k);
    });
  }, k.every);
  k.renewTimer.unref?.();
}

function loseAll(k: KeeperState, why: string): void {
  k.pins?.loseAll(why);
  if (k.held.size === 0) return;
  const shards = [...k.held.keys()];
  k.held.clear();
  k.counts.lost += shards.length;
  k.log.error(`cluster: ${shards.length} shard leases lost (${why}); their devices stop`, {
    instance: k.instance.id,
  });
  k.options.lost(shards, why);
}

function armDeadline(k: KeeperState): void {
  if (k.deadlineTimer) clearTimeout(k.deadlineTimer);
  const ms = msToDeadline(k.validUntil, k.safetyMs, performance.now());
  k.deadlineTimer = setTimeout(() => {
    k.deadlineTimer = undefined;
    if (!k.stopped)
      loseAll(k, 'not renewed in time: the database did not answer, or this process was paused');
  }, ms);
  k.deadlineTimer.unref?.();
}

/** A heartbeat and one UPDATE extending every lease still ours; then, when none runs, a balance pass. */
async function renew(k: KeeperState): Promise<void> {
  if (k.renewing || k.stopped) return;
  k.renewing = true;
  const { held, instance, log } = k;
  const sentAt = performance.now();
  try {
    await heartbeat(k.pool, k.me, k.options.feed?.());
    const still = await renewLeases(k.pool, instance.id, k.leaseMs);
    k.counts.renewals++;
    if (!renewedInTime(sentAt, performance.now(), k.leaseMs, k.safetyMs)) {
      // The answer came too late to rely on: the deadline has (or is about to) let go already.
      loseAll(k, 'the renewal took longer than the lease allows');
    } else {
      k.validUntil = sentAt + k.leaseMs;
      armDeadline(k);
    }
    const gone = goneShards(held, still);
    if (gone.length > 0) {
      for (const s of gone) held.delete(s);
      k.counts.lost += gone.length;
      log.error(`cluster: ${gone.length} shard leases ran out before renewal; their devices stop`, {
        instance: instance.id,
      });
      k.options.lost(gone, 'the lease ran out');
    }
    // Leases the database still gives us but we let go of locally (a deadline passed): free them.
    const stray = [...still.keys()].filter((s) => !held.has(s));
    if (stray.length > 0) await releaseLeases(k.pool, instance.id, stray);
    // Pins after leases: a device whose pin ran out goes back to its shard, held as just renewed.
    await k.pins?.renew();
  } catch (error) {
    k.counts.renewFailures++;
    log.warn('cluster: lease renewal failed', { instance: instance.id, error: (error as Error).message });
  } finally {
    k.renewing = false;
  }
  if (!k.stopping && !k.balancing && performance.now() - k.joinedAt >= k.every)
    k.balancing = balance(k)
      .catch((error: unknown) =>
        log.warn('cluster: balancing failed', { instance: instance.id, error: (error as Error).message }),
      )
      .finally(() => {
        k.balancing = undefined;
      });
}

/** Below the target share, claims free or expired shards; above it, hands a few over. */
async function balance(k: KeeperState): Promise<void> {
  const target = targetShare(await liveInstances(k.pool, k.leaseMs), k.instance.id, k.shardCount);
  if (k.stopping) return;
  if (k.held.size < target) await claim(k, target);
  else if (k.held.size > target) {
    // Hand over the highest-numbered shards beyond the target, a few at a time.
    const give = shardsToHandOver(k.held, target, k.maxMoves);
    await handOver(k, give);
    k.log.info('cluster: shards handed over', {
      instance: k.instance.id,
      released: give.length,
      held: k.held.size,
      target,
    });
  }
}

async function claim(k: KeeperState, target: number): Promise<void> {
  const { held, instance } = k;
  const got = await claimLeases(k.pool, instance.id, target - held.size, k.leaseMs);
  if (got.size === 0) return;
  if (k.stopping) {
    await releaseLeases(k.pool, instance.id, [...got.keys()]);
    return;
  }
  for (const [s, epoch] of got) held.set(s, epoch);
  k.counts.claimed += got.size;
  k.log.info('cluster: shards claimed', {
    instance: instance.id,
    claimed: got.size,
    held: held.size,
    target,
  });
  await k.options.gained([...got.keys()]);
}

/** Stops these shards' devices (saved), then drops and releases their leases. */
export async function handOver(k: KeeperState, shards: readonly number[]): Promise<void> {
  if (shards.length === 0) return;
  await k.options.handOver(shards);
  // Dropped locally only after the devices were saved: their last writes still pass the fence.
  for (const s of shards) k.held.delete(s);
  k.counts.handedOver += shards.length;
  await releaseLeases(k.pool, k.instance.id, shards);
}

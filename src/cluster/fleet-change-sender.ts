/**
 * The sending half of src/cluster/fleet-changes.ts: changed ids gather for `gatherMs`, then one
 * `NOTIFY` statement carries them on the fleet's channel, at most one every `coalesceMs`. A flush
 * that cannot be sent keeps its ids for the next one (logged once until it works again).
 *
 * @example
 * const sender = createChangeSender({ db: store.pool, me: 'beta', logger, gatherMs: 20, coalesceMs: 250 });
 * sender.add(['pump-1']);   // after the write of pump-1 committed
 * await sender.stop();      // sends what is pending
 */
import type pg from 'pg';
import type { Logger } from '../runtime/runtime.js';
import { encodeNotices, FLEET_CHANGES_CHANNEL, MAX_IDS_PER_FLUSH } from './fleet-change-notices.js';
import { messageOf } from './routed-reply.js';

export interface ChangeSenderOptions {
  readonly db: pg.Pool;
  /** This instance, as the notices name it. */
  readonly me: string;
  readonly logger: Logger;
  readonly gatherMs: number;
  readonly coalesceMs: number;
}

export interface ChangeSenderStats {
  readonly notices: number;
  readonly ids: number;
  readonly sendFailures: number;
}

export interface ChangeSender {
  /** These ids changed: sent with the next flush. */
  add(ids: Iterable<string>): void;
  /** The whole fleet may have changed: the next flush says `all`. */
  addAll(): void;
  /** No more flushes are scheduled; what is pending is sent now. */
  stop(): Promise<void>;
  stats(): ChangeSenderStats;
}

export function createChangeSender(options: ChangeSenderOptions): ChangeSender {
  const { db, me, logger: log, gatherMs, coalesceMs } = options;
  const pending = new Set<string>();
  let pendingAll = false;
  let timer: NodeJS.Timeout | undefined;
  let lastFlushAt = Number.NEGATIVE_INFINITY;
  let failing = false;
  let stopped = false;
  const counts = { notices: 0, ids: 0, sendFailures: 0 };

  function schedule(): void {
    if (timer || stopped) return;
    const wait = Math.max(gatherMs, lastFlushAt + coalesceMs - performance.now());
    timer = setTimeout(() => {
      timer = undefined;
      void flush();
    }, wait);
  }

  async function flush(): Promise<void> {
    if (pending.size === 0 && !pendingAll) return;
    const ids = [...pending];
    const all = pendingAll;
    pending.clear();
    pendingAll = false;
    lastFlushAt = performance.now();
    const notices = encodeNotices(me, ids, all);
    try {
      await db.query('SELECT pg_notify($1, n) FROM unnest($2::text[]) AS n', [
        FLEET_CHANGES_CHANNEL,
        notices,
      ]);
      counts.notices += notices.length;
      if (!all && ids.length <= MAX_IDS_PER_FLUSH) counts.ids += ids.length;
      if (failing) log.info('fleet changes: the other instances are notified again');
      failing = false;
    } catch (error) {
      // Sent with the next flush; meanwhile the other instances read these rows at their next full read.
      for (const id of ids) pending.add(id);
      pendingAll ||= all;
      counts.sendFailures++;
      if (!failing && !stopped)
        log.warn('fleet changes: cannot notify the other instances; trying again', {
          error: messageOf(error),
        });
      failing = true;
    }
    if (pending.size > 0 || pendingAll) schedule();
  }

  return {
    add(ids) {
      if (stopped) return;
      for (const id of ids) pending.add(id);
      if (pending.size > 0) schedule();
    },
    addAll() {
      if (stopped) return;
      pendingAll = true;
      schedule();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      await flush();
    },
    stats: () => ({ ...counts }),
  };
}

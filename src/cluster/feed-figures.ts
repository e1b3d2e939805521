/**
 * The change feed's figures of one instance (src/cluster/fleet-changes.ts) as the cluster view
 * shows them for every instance (docs/scale-out.md, "The change feed in the cluster view"): each
 * instance writes its own with its heartbeat (`fleetvisor_instances.feed`, every renewal), and any
 * instance reads them all with the lease table. Ages are relative, never a clock reading: the
 * last notice's age is stored as it was at the heartbeat, and read back with the heartbeat's own
 * age added (the database's clock), so no two machines' clocks are compared.
 *
 * @example
 * const figures = feedFigures(changes.stats(), changes.listening());
 * await heartbeat(pool, me, figures);
 * readFeedFigures(row.feed, row.seenAgoMs); // lastNoticeAgoMs as of now
 */
import type { FleetChangesStats } from './fleet-changes.js';

export interface FeedFigures {
  /** NOTIFY statements sent (a flush of many ids may take a few). */
  readonly noticesSent: number;
  /** Device ids named in them. */
  readonly idsSent: number;
  /** Flushes that could not be sent (their ids went out with a later one). */
  readonly sendFailures: number;
  /** Notices heard on the channel, the instance's own included. */
  readonly noticesHeard: number;
  /** Device ids named in the notices heard. */
  readonly idsHeard: number;
  /** Reads of the whole fleet because the listening connection dropped and came back. */
  readonly rereads: number;
  /** How long ago the last notice was heard (ms); null before the first. */
  readonly lastNoticeAgoMs: number | null;
  /** The listening connection is up. */
  readonly listening: boolean;
}

/** An instance's figures from its {@link FleetChangesStats}. */
export function feedFigures(stats: FleetChangesStats, listening: boolean): FeedFigures {
  return {
    noticesSent: stats.notices,
    idsSent: stats.ids,
    sendFailures: stats.sendFailures,
    noticesHeard: stats.heard,
    idsHeard: stats.idsHeard,
    rereads: stats.reconnects,
    lastNoticeAgoMs: stats.lastHeardAgoMs,
    listening,
  };
}

const count = (value: unknown): number =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.round(value) : 0;

/**
 * The figures an instance wrote with a heartbeat `seenAgoMs` ago, as of now; null when it wrote
 * none (an older version, or none yet) or what it wrote is not an object.
 */
export function readFeedFigures(value: unknown, seenAgoMs: number): FeedFigures | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const v = value as Record<string, unknown>;
  const last = v.lastNoticeAgoMs;
  return {
    noticesSent: count(v.noticesSent),
    idsSent: count(v.idsSent),
    sendFailures: count(v.sendFailures),
    noticesHeard: count(v.noticesHeard),
    idsHeard: count(v.idsHeard),
    rereads: count(v.rereads),
    lastNoticeAgoMs:
      typeof last === 'number' && Number.isFinite(last) ? Math.round(last + Math.max(0, seenAgoMs)) : null,
    listening: v.listening === true,
  };
}

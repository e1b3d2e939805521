/**
 * The cluster this instance belongs to, as the lease table sees it (docs/scale-out.md).
 */

/**
 * One instance's change feed (docs/scale-out.md, "The change feed in the cluster view"): the
 * notices it sent and heard since it started, as it wrote them with its last heartbeat (this
 * instance's own: as of the call).
 */
export interface ClusterFeedInfo {
  /** NOTIFY statements sent (a flush of many ids may take a few). */
  readonly noticesSent: number;
  /** Device ids named in them. */
  readonly idsSent: number;
  /** Flushes that could not be sent (their ids went out with a later one). */
  readonly sendFailures: number;
  /** Notices heard on the channel, its own included. */
  readonly noticesHeard: number;
  /** Device ids named in the notices heard. */
  readonly idsHeard: number;
  /** Reads of the whole fleet because its listening connection dropped and came back. */
  readonly rereads: number;
  /** How long ago it last heard a notice (ms); null before the first. */
  readonly lastNoticeAgoMs: number | null;
  /** Its listening connection is up. */
  readonly listening: boolean;
}

/** One instance of a cluster, as the lease table sees it. */
export interface ClusterInstanceInfo {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly apiUrl: string | null;
  readonly startedAt: number;
  /** How long ago it last renewed its leases (the database's clock). */
  readonly seenAgoMs: number;
  /** It stopped gracefully. */
  readonly left: boolean;
  /** Shards it holds an unexpired lease on. */
  readonly shards: number;
  /** Serial devices pinned to it (their ports are on its machine), whatever their shards. */
  readonly pins: number;
  readonly oldestLeaseAgeMs: number | null;
  readonly newestLeaseAgeMs: number | null;
  /** Its change feed's figures; null when it wrote none (an older version, or not yet). */
  readonly feed: ClusterFeedInfo | null;
  /**
   * The roles whose leader lease it holds: `['primary']` for the instance running the cluster's
   * Sparkplug Primary Host (docs/scale-out.md), else none.
   */
  readonly leads: readonly string[];
}

export interface ClusterInfo {
  /** The instance answering. */
  readonly self: string;
  readonly shardCount: number;
  readonly leaseMs: number;
  readonly instances: readonly ClusterInstanceInfo[];
  /** Shards without an unexpired lease (between an owner's death and a claim). */
  readonly unowned: number;
  /** This instance's counts since it started. */
  readonly stats: {
    readonly renewals: number;
    readonly renewFailures: number;
    readonly claimed: number;
    readonly handedOver: number;
    readonly lost: number;
  };
  /** Devices this instance supervises now. */
  readonly devices: number;
  /** Devices of the whole fleet, whichever instance supervises them. */
  readonly fleetDevices: number;
  /**
   * What this instance's API pushed of the other instances' devices since it started: reads of
   * changed rows, rows pushed to its UIs, devices pushed as gone, failed reads. Null when it pushes none.
   */
  readonly remotePush: {
    readonly reads: number;
    readonly rows: number;
    readonly removed: number;
    readonly failures: number;
  } | null;
}

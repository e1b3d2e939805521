/**
 * The cluster this instance belongs to, as the lease table sees it (docs/scale-out.md).
 */

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
  readonly oldestLeaseAgeMs: number | null;
  readonly newestLeaseAgeMs: number | null;
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
}

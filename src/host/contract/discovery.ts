/**
 * Devices heard but not adopted yet, and the host's bulk adoption of them.
 */

export interface DiscoveredView {
  readonly id: string;
  /** The convention it was heard on: `own` (Fleetvisor's protocol), `homie`, `sparkplug`. */
  readonly convention: string;
  readonly kind: string;
  readonly firmware: string;
  readonly via: string;
  readonly firstSeen: number;
  readonly lastSeen: number;
  readonly reason: string;
}

/**
 * A bulk adoption on the host (`adoptBulk`): one at a time, run by the host whether or not a page
 * is open, paced in batches, resumed after a host restart; every device's outcome counted. `done`
 * is `adopted + failed + skipped`; `skipped` are devices gone from the discovered list before their
 * turn (adopted by someone else, dropped, not heard again after a restart). `failures` groups the
 * failed by code, with the first message and ids.
 */
export interface AdoptBulkView {
  readonly id: string;
  readonly state: 'running' | 'finished' | 'cancelled';
  /** What was asked: explicit ids (how many), or the filter as given. */
  readonly selection:
    | { readonly ids: number }
    | {
        readonly text: string;
        readonly kind?: string;
        readonly convention?: string;
        readonly except: number;
      };
  readonly total: number;
  readonly done: number;
  readonly adopted: number;
  readonly failed: number;
  readonly skipped: number;
  readonly failures: readonly {
    readonly code: string;
    readonly count: number;
    readonly message: string;
    /** The first few ids that failed so. */
    readonly ids: readonly string[];
  }[];
  readonly startedBy: string;
  readonly startedAt: number;
  readonly finishedAt: number | null;
  /** Who cancelled it (`host stopping` when the app stopped under it). */
  readonly cancelledBy: string | null;
  /**
   * When it last resumed after a host restart (a job is kept in the store and goes on from its
   * last batch); absent when it never had to.
   */
  readonly resumedAt?: number;
  /**
   * While a resumed job waits for its devices to be heard again after the restart: how many of
   * those left are neither discovered nor adopted yet. 0 or absent otherwise.
   */
  readonly waiting?: number;
}

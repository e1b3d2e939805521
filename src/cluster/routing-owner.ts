/**
 * The owner's side of routed operations (src/cluster/command-router.ts): claim a request for a
 * device this instance runs (once: a claim is one `UPDATE … WHERE status = 'pending'`), read the
 * operation back (checked: src/cluster/routed-ops.ts), carry it out with the original actor,
 * write the answer and notify the requester. Requests come by
 * notification and by a sweep, every `sweepMs`, of the pending rows of the shards this instance
 * holds: the sweep catches what a lost connection missed and what the previous owner of a shard
 * left pending, listens again if the connection is gone, and deletes rows a day old.
 *
 * @example
 * const owner = createRoutingOwner({ pool, me: 'site-a-1', run, ready, logger, counts, sweepMs: 1000,
 *   listener, track, isStopped: () => stopped });
 * owner.startSweeps();
 * owner.serve(id); // on the notice { t: 'req', id, d, k } when ready(d, k ?? 'act')
 */
import type pg from 'pg';
import type { Logger } from '../runtime/runtime.js';
import {
  answerRoutedAction,
  claimRoutedAction,
  deleteOldRoutedActions,
  pendingRoutedActions,
} from './routed-actions.js';
import type { RoutedAnswer, RoutedKind, RoutedOp } from './routed-ops.js';
import { kindOfColumn, labelOf, opOfRow } from './routed-ops.js';
import { answerText, messageOf, refuse } from './routed-reply.js';
import type { RoutingListener } from './routing-listener.js';

/** Rows carried out at once for other instances; more wait for the next sweep. */
const MAX_SERVING = 32;
/** Old rows are deleted every this many sweeps. */
const CLEANUP_EVERY = 60;

export interface RoutingOwnerDeps {
  readonly pool: pg.Pool;
  readonly me: string;
  /** Carries the operation out here. */
  readonly run: (op: RoutedOp) => Promise<RoutedAnswer>;
  /** This instance can carry an operation of this kind out on the device now. */
  readonly ready: (deviceId: string, kind: RoutedKind) => boolean;
  readonly logger: Logger;
  /** The router's count of actions carried out here for another instance. */
  readonly counts: { served: number };
  readonly sweepMs: number;
  readonly listener: RoutingListener;
  /** Lets the router's stop wait for it. */
  track<T>(p: Promise<T>): Promise<T>;
  isStopped(): boolean;
}

export interface RoutingOwner {
  /** Claims and carries out request `id`, unless it is being served or too many are. */
  serve(id: string): void;
  startSweeps(): void;
  stopSweeps(): void;
}

export function createRoutingOwner(deps: RoutingOwnerDeps): RoutingOwner {
  const { pool, me, logger: log, counts } = deps;
  const serving = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let sweeping = false;
  let sweeps = 0;

  function serve(id: string): void {
    if (deps.isStopped() || serving.has(id) || serving.size >= MAX_SERVING) return; // the sweep comes back
    serving.add(id);
    void deps.track(
      carryOut(id)
        .catch((error: unknown) =>
          log.warn('routing: an action asked by another instance failed', { id, error: messageOf(error) }),
        )
        .finally(() => serving.delete(id)),
    );
  }

  async function carryOut(id: string): Promise<void> {
    const row = await claimRoutedAction(pool, id, me);
    if (!row) return; // claimed elsewhere, answered, expired, or not our shard (any more)
    const op = opOfRow(row);
    let answer: RoutedAnswer;
    if (!op.ok) answer = { ok: false, error: op.error };
    else
      try {
        answer = await deps.run(op.value);
      } catch (error) {
        answer = refuse(
          'internal',
          `'${labelOf(op.value)}' on '${row.device_id}' failed on ${me}: ${messageOf(error)}`,
        );
      }
    counts.served++;
    const kind = op.ok ? op.value.kind : (kindOfColumn(row.action) ?? 'device');
    await answerRoutedAction(pool, id, me, answerText(kind, answer), row.requested_by);
  }

  /** Pending rows of the shards this instance holds, for the devices it runs. */
  async function sweep(): Promise<void> {
    if (sweeping || deps.isStopped()) return;
    sweeping = true;
    try {
      if (!deps.listener.listening()) await deps.listener.listen().catch(() => {}); // logged by listen()
      const rows = await pendingRoutedActions(pool, me, MAX_SERVING);
      for (const row of rows) {
        // A kind this instance does not know is claimed and refused as such (badArgs).
        const kind = kindOfColumn(row.action) ?? 'device';
        if (deps.ready(row.device_id, kind)) serve(row.id);
      }
      if (++sweeps % CLEANUP_EVERY === 0) await deleteOldRoutedActions(pool);
    } catch (error) {
      log.warn('routing: the sweep of routed actions failed', { error: messageOf(error) });
    } finally {
      sweeping = false;
    }
  }

  function loop(): void {
    timer = setTimeout(() => {
      void sweep().finally(() => {
        if (!deps.isStopped()) loop();
      });
    }, deps.sweepMs);
    timer.unref?.();
  }

  return {
    serve,
    startSweeps: loop,
    stopSweeps() {
      if (timer) clearTimeout(timer);
    },
  };
}

/**
 * The requester's side of a routed operation (src/cluster/command-router.ts): ask the owner
 * through a row of `fleetvisor_routed_actions`, wait for its answer (woken by the owner's
 * notification, reading the row at most every second as well, since a lost connection loses
 * notifications), and at the deadline give up in a way that says whether it was carried out: a
 * row nobody claimed is marked `failed` and can be claimed no more (not carried out); one claimed
 * but not answered may have run (unknown: the device's command log and events tell; a read
 * changed nothing), and never runs again.
 *
 * @example
 * const requester = createRoutingRequester({ pool, me: 'site-a-1', timeoutMs: 15_000, counts,
 *   isStopped: () => stopped });
 * const op = { kind: 'act', deviceId: 'pump-7', action: 'identify', args: { seconds: 5 }, actor: 'ann' } as const;
 * const reply = await requester.ask(op, 17, 'site-a-2');
 * // on the notice { t: 'ans', id }: requester.wake(id)
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { askOwner, giveUpRoutedAction, readRoutedAction } from './routed-actions.js';
import type { RoutedAnswer, RoutedKind, RoutedOp } from './routed-ops.js';
import { isRead, labelOf } from './routed-ops.js';
import { messageOf, parseAnswer, refuse, replyText } from './routed-reply.js';

const POLL_MS = 1000;

export interface RoutingRequesterDeps {
  readonly pool: pg.Pool;
  readonly me: string;
  readonly timeoutMs: number;
  /** The router's counts: asked of another instance, and not answered in time. */
  readonly counts: { asked: number; unanswered: number };
  isStopped(): boolean;
}

export interface RoutingRequester {
  /** Asks `owner` to carry the operation out, and waits for its answer (or the deadline). */
  ask<K extends RoutedKind>(op: RoutedOp<K>, shard: number, owner: string): Promise<RoutedAnswer<K>>;
  /** The answer to request `id` was written: read it now. */
  wake(id: string): void;
  /** This instance is stopping: every wait reads its row once more, then gives up. */
  wakeAll(): void;
}

export function createRoutingRequester(deps: RoutingRequesterDeps): RoutingRequester {
  const { pool, me, timeoutMs, counts } = deps;
  /** Requests of this instance waiting for an answer: id → wake. */
  const waiting = new Map<string, () => void>();

  async function ask<K extends RoutedKind>(
    op: RoutedOp<K>,
    shard: number,
    owner: string,
  ): Promise<RoutedAnswer<K>> {
    const id = randomUUID();
    const { deviceId } = op;
    const kind = op.kind as K; // RoutedOp<K> distributes over K: its kind is K
    const action = labelOf(op);
    let wake = () => {};
    waiting.set(id, () => wake());
    const nap = (ms: number) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    try {
      try {
        await askOwner(pool, { id, shard, op, requestedBy: me, owner, timeoutMs });
      } catch (error) {
        return refuse(
          'routingFailed',
          `cannot ask ${owner} to carry out '${action}' on '${deviceId}': ${messageOf(error)}`,
        );
      }
      counts.asked++;
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const left = deadline - performance.now();
        if (left <= 0 || deps.isStopped()) break;
        await nap(Math.min(POLL_MS, left));
        const row = await readRoutedAction(pool, id).catch(() => undefined);
        if (row && (row.status === 'done' || row.status === 'failed')) return parseAnswer(kind, row.result);
      }
      return await giveUp(id, kind, op, owner);
    } finally {
      waiting.delete(id);
    }
  }

  // A row nobody claimed can be claimed no more; one claimed may have run.
  async function giveUp<K extends RoutedKind>(
    id: string,
    kind: K,
    op: RoutedOp<K>,
    owner: string,
  ): Promise<RoutedAnswer<K>> {
    counts.unanswered++;
    const { deviceId } = op;
    const action = labelOf(op);
    const unknown = isRead(op.kind)
      ? 'It changed nothing: ask again.'
      : "Whether it was carried out is unknown: the device's command log and events tell.";
    const seconds = `${Math.round(timeoutMs / 100) / 10} s`;
    const why = deps.isStopped() ? 'this instance is stopping' : `no answer within ${seconds}`;
    try {
      if (await giveUpRoutedAction(pool, id, replyText(refuse('ownerDidNotAnswer', why))))
        return refuse(
          'ownerDidNotAnswer',
          `${owner}, which runs '${deviceId}', did not take '${action}' (${why}): it may be stopped, overloaded or ` +
            'still loading the device. It was not carried out and will not be.',
        );
      const row = await readRoutedAction(pool, id);
      if (row && (row.status === 'done' || row.status === 'failed')) return parseAnswer(kind, row.result);
      return refuse(
        'ownerDidNotAnswer',
        `${row?.claimed_by ?? owner} took '${action}' on '${deviceId}' but did not answer (${why}): it stopped or ` +
          `failed mid-way. ${unknown} It will not run again.`,
      );
    } catch (error) {
      return refuse(
        'ownerDidNotAnswer',
        `${owner} did not answer '${action}' on '${deviceId}' (${why}), and the database did not answer either ` +
          `(${messageOf(error)}). ${unknown}`,
      );
    }
  }

  return {
    ask,
    wake: (id) => waiting.get(id)?.(),
    wakeAll() {
      for (const wake of waiting.values()) wake();
    },
  };
}

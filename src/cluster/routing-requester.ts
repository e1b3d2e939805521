/**
 * The requester's side of a routed action (src/cluster/command-router.ts): ask the owner through
 * a row of `fleetvisor_routed_actions`, wait for its answer (woken by the owner's notification,
 * reading the row at most every second as well, since a lost connection loses notifications),
 * and at the deadline give up in a way that says whether it was carried out: a row nobody claimed
 * is marked `failed` and can be claimed no more (not carried out); one claimed but not answered
 * may have run (unknown: the device's command log tells), and never runs again.
 *
 * @example
 * const requester = createRoutingRequester({ pool, me: 'site-a-1', timeoutMs: 15_000, counts,
 *   isStopped: () => stopped });
 * const reply = await requester.ask('pump-7', 17, 'site-a-2', 'identify', { seconds: 5 }, 'ann');
 * // on the notice { t: 'ans', id }: requester.wake(id)
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { askOwner, giveUpRoutedAction, readRoutedAction } from './routed-actions.js';
import type { RoutedReply } from './routed-reply.js';
import { messageOf, parseReply, refuse, replyText } from './routed-reply.js';

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
  /** Asks `owner` to carry the action out, and waits for its answer (or the deadline). */
  ask(
    deviceId: string,
    shard: number,
    owner: string,
    action: string,
    args: unknown,
    actor: string,
  ): Promise<RoutedReply>;
  /** The answer to request `id` was written: read it now. */
  wake(id: string): void;
  /** This instance is stopping: every wait reads its row once more, then gives up. */
  wakeAll(): void;
}

export function createRoutingRequester(deps: RoutingRequesterDeps): RoutingRequester {
  const { pool, me, timeoutMs, counts } = deps;
  /** Requests of this instance waiting for an answer: id → wake. */
  const waiting = new Map<string, () => void>();

  async function ask(
    deviceId: string,
    shard: number,
    owner: string,
    action: string,
    args: unknown,
    actor: string,
  ): Promise<RoutedReply> {
    const id = randomUUID();
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
        await askOwner(pool, { id, deviceId, shard, action, args, actor, requestedBy: me, owner, timeoutMs });
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
        if (row && (row.status === 'done' || row.status === 'failed')) return parseReply(row.result);
      }
      return await giveUp(id, deviceId, owner, action);
    } finally {
      waiting.delete(id);
    }
  }

  // A row nobody claimed can be claimed no more; one claimed may have run.
  async function giveUp(id: string, deviceId: string, owner: string, action: string): Promise<RoutedReply> {
    counts.unanswered++;
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
      if (row && (row.status === 'done' || row.status === 'failed')) return parseReply(row.result);
      return refuse(
        'ownerDidNotAnswer',
        `${row?.claimed_by ?? owner} took '${action}' on '${deviceId}' but did not answer (${why}): it stopped or ` +
          `failed mid-way. Whether it was carried out is unknown: the device's command log tells. It will not run again.`,
      );
    } catch (error) {
      return refuse(
        'ownerDidNotAnswer',
        `${owner} did not answer '${action}' on '${deviceId}' (${why}), and the database did not answer either ` +
          `(${messageOf(error)}): whether it was carried out is unknown; the device's command log tells.`,
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

/**
 * The queue both single writers share (src/store/sqlite-write-queue.ts,
 * src/store/postgres-write-queue.ts): jobs wait while a transaction runs, then up to `maxJobs` of
 * them run in the next one; each caller's promise settles only after that transaction ends. The
 * engine brings `runGroup`, which runs one group in one transaction and settles its entries with
 * {@link settleGroup} / {@link rejectGroup}.
 *
 * @example
 * const queue = createGroupCommitQueue<pg.PoolClient>(1000, async (group) => { … settleGroup(group, outcomes); });
 * await queue.submit({ durability: 'full', statements: 'one', run: (c) => c.query('DELETE FROM t') });
 */
import { messageOf } from './records.js';
import type { Durability } from './store.js';
import { StoreError } from './store.js';

export interface QueuedJob<C, T> {
  readonly durability: Durability;
  readonly statements: 'one' | 'many';
  readonly run: (conn: C) => Promise<T>;
}

/** A submitted job and its caller's promise. */
export interface GroupEntry<C> {
  readonly job: QueuedJob<C, unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** What one job of a group came to, before the commit decides. */
export type JobOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export interface GroupCommitQueue<C> {
  /** Queues a job; resolves with its result after the COMMIT that holds it. */
  submit<T>(job: QueuedJob<C, T>): Promise<T>;
  /** Resolves when every job submitted so far has settled. */
  idle(): Promise<void>;
  /** Jobs waiting or running (for health and back-pressure). */
  readonly depth: number;
}

export function createGroupCommitQueue<C>(
  maxJobs: number,
  runGroup: (group: GroupEntry<C>[]) => Promise<void>,
): GroupCommitQueue<C> {
  const pending: GroupEntry<C>[] = [];
  let running = 0;
  let draining = false;
  let idleWaiters: (() => void)[] = [];

  async function drain(): Promise<void> {
    while (pending.length > 0) {
      const group = pending.splice(0, maxJobs);
      running = group.length;
      await runGroup(group);
      running = 0;
    }
    draining = false;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const wake of waiters) wake();
  }

  return {
    submit<T>(job: QueuedJob<C, T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        pending.push({ job, resolve: resolve as (value: unknown) => void, reject });
        if (!draining) {
          draining = true;
          // Start after the current synchronous code, so writes issued together share a commit.
          queueMicrotask(() => void drain());
        }
      });
    },
    idle() {
      if (!draining) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    get depth() {
      return pending.length + running;
    },
  };
}

/** After the COMMIT: each entry gets its own outcome. */
export function settleGroup<C>(group: readonly GroupEntry<C>[], outcomes: readonly JobOutcome[]): void {
  group.forEach((e, i) => {
    const outcome = outcomes[i]!;
    if (outcome.ok) e.resolve(outcome.value);
    else e.reject(writeFailed('write failed', outcome.error));
  });
}

/** The transaction rolled back because the job at `failedAt` failed: every entry is rejected. */
export function rejectGroup<C>(group: readonly GroupEntry<C>[], failedAt: number, error: unknown): void {
  group.forEach((e, i) => {
    e.reject(
      i === failedAt
        ? writeFailed('write failed', error)
        : writeFailed('write rolled back: another write in the same transaction failed', error),
    );
  });
}

/** `cause` as a `writeFailed` StoreError saying `what` (a StoreError passes through as it is). */
export function writeFailed(what: string, cause: unknown): StoreError {
  if (cause instanceof StoreError) return cause;
  return new StoreError('writeFailed', `${what}: ${messageOf(cause)}`, { cause });
}

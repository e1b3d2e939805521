/**
 * Collects small appends (telemetry points, events) from many callers into one write job, so a
 * whole batch moves into the database in one statement (SQLite: `INSERT … SELECT … FROM
 * json_each(?)`; PostgreSQL: `INSERT … SELECT … FROM unnest(…)`) instead of one call per row.
 * Engine-neutral: it takes any write queue whose jobs receive that engine's connection.
 *
 * A job is queued `flushMs` after the first waiting item, or at once when `flushAt` items wait. The
 * job takes what waits **when it runs**, not when it was queued: while the writer is busy, items
 * keep joining the next batch, so batches grow with the load and a busy store writes bigger, cheaper
 * transactions. Every caller's promise settles after the commit holding its items.
 *
 * Bounded: beyond `maxWaiting` waiting items, {@link BatchBuffer.add} refuses (returns undefined)
 * rather than grow without limit.
 *
 * @example
 * const buffer = createBatchBuffer({ queue, durability: 'normal', flushMs: 50, flushAt: 10_000,
 *   maxWaiting: 200_000, maxPerJob: 100_000, write: writePoints, slice: (_, _o, count) => count });
 * const written = await buffer.add(points);
 */
import type { Durability } from './store.js';

/** The part of an engine's write queue a buffer needs: jobs run in order, each after its commit. */
export interface JobQueue<C> {
  submit<X>(job: {
    readonly durability: Durability;
    readonly statements: 'one' | 'many';
    readonly run: (conn: C) => Promise<X>;
  }): Promise<X>;
}

export interface BatchBufferOptions<C, T, B, R> {
  readonly queue: JobQueue<C>;
  readonly durability: Durability;
  /** Wait this long after the first waiting item before queueing a job; 0 queues at once. */
  readonly flushMs: number;
  /** Queue a job at once when this many items wait. */
  readonly flushAt: number;
  /** Refuse adds that would take the waiting items beyond this. */
  readonly maxWaiting: number;
  /** Most items one job takes (whole callers only, so at least one caller's items). */
  readonly maxPerJob: number;
  /** Writes one batch inside the job's transaction; may run several statements. */
  readonly write: (conn: C, items: readonly T[]) => Promise<B>;
  /** A caller's share of the batch result: its items are `[offset, offset + count)` of the batch. */
  readonly slice: (result: B, offset: number, count: number) => R;
  /** Called when a batch fails (after its callers are rejected), with its item count. */
  readonly onFailure?: (error: unknown, count: number) => void;
}

export interface BatchBuffer<T, R> {
  /** Adds a caller's items; resolves after their commit, or undefined when the buffer is full. */
  add(items: readonly T[]): Promise<R> | undefined;
  /** Queues a job for whatever waits now (on close). */
  flush(): void;
  /** Items waiting for a job. */
  readonly waiting: number;
  /** Resolves once at most `count` items wait (at once if they already do). */
  whenAtMost(count: number): Promise<void>;
}

interface Waiter<T, R> {
  readonly items: readonly T[];
  readonly resolve: (value: R) => void;
  readonly reject: (error: unknown) => void;
}

export function createBatchBuffer<C, T, B, R>(options: BatchBufferOptions<C, T, B, R>): BatchBuffer<T, R> {
  let waiters: Waiter<T, R>[] = [];
  let waiting = 0;
  let jobQueued = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let roomWaiters: { readonly count: number; readonly wake: () => void }[] = [];

  function queueJob(): void {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (jobQueued) return;
    jobQueued = true;
    let taken: Waiter<T, R>[] = [];
    options.queue
      .submit({
        durability: options.durability,
        statements: 'many',
        run: (conn) => {
          taken = take();
          const items: T[] = [];
          for (const w of taken) for (const item of w.items) items.push(item);
          return options.write(conn, items);
        },
      })
      .then(
        (result) => {
          let offset = 0;
          for (const w of taken) {
            w.resolve(options.slice(result, offset, w.items.length));
            offset += w.items.length;
          }
        },
        (error: unknown) => {
          let count = 0;
          for (const w of taken) {
            count += w.items.length;
            w.reject(error);
          }
          options.onFailure?.(error, count);
        },
      );
  }

  // Runs inside the job: from here on, new items belong to the next job.
  function take(): Waiter<T, R>[] {
    jobQueued = false;
    let count = 0;
    let n = 0;
    while (n < waiters.length && (n === 0 || count + waiters[n]!.items.length <= options.maxPerJob)) {
      count += waiters[n]!.items.length;
      n++;
    }
    const taken = waiters.slice(0, n);
    waiters = waiters.slice(n);
    waiting -= count;
    if (waiters.length > 0) schedule();
    if (roomWaiters.length > 0) {
      const ready = roomWaiters.filter((w) => waiting <= w.count);
      roomWaiters = roomWaiters.filter((w) => waiting > w.count);
      for (const w of ready) w.wake();
    }
    return taken;
  }

  function schedule(): void {
    if (jobQueued) return;
    if (waiting >= options.flushAt || options.flushMs <= 0) queueJob();
    else timer ??= setTimeout(queueJob, options.flushMs);
  }

  return {
    add(items) {
      if (waiting + items.length > options.maxWaiting && waiting > 0) return undefined;
      return new Promise<R>((resolve, reject) => {
        waiters.push({ items, resolve, reject });
        waiting += items.length;
        schedule();
      });
    },
    flush() {
      if (waiters.length > 0) queueJob();
    },
    get waiting() {
      return waiting;
    },
    whenAtMost(count) {
      if (waiting <= count) return Promise.resolve();
      return new Promise((wake) => roomWaiters.push({ count, wake }));
    },
  };
}

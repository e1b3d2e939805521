/**
 * Elixir's `Task.Supervisor`: a supervisor of temporary task processes (never restarted),
 * started on demand; fire-and-forget tasks, tasks awaited without a link (a failing task does
 * not crash the caller), and a bounded-concurrency stream of tasks.
 *
 * A task is a function given an AbortSignal: it exits `normal` when it resolves and with an
 * error when it throws or rejects. JavaScript cannot pre-empt it, so the signal is how it learns
 * that it was stopped (shutdown, then killed after its `shutdown` ms) or killed; whatever it does
 * afterwards is ignored. A rejection that happens while it is being stopped is taken as the
 * effect of the abort: the task exits with the stop's reason.
 *
 * Deviations from Elixir: `asyncNolink` never raises, a start refused for `maxChildren` or
 * `noproc` is the handle's result; `await` returns `timeout` as a value and leaves the task
 * running (like `Task.yield`); with `onTimeout: 'exit'` a stream does not crash its consumer,
 * the timeout is its last item.
 *
 * @example
 * const tasks = startTaskSupervisor(rt, { name: 'ota-jobs', maxChildren: 8 });
 * const started = tasks.startChild((signal) => pushImage(device, image, signal));
 * if (!started.ok) console.log(started.error.code); // 'maxChildren' | 'noproc'
 *
 * const probe = tasks.asyncNolink((signal) => ping(device, signal));
 * const r = await probe.await(2_000); // { ok: true, value } or { ok: false, error: { code: 'timeout', ... } }
 *
 * const reads = tasks.asyncStream(devices, (d, signal) => readVersion(d, signal), { maxConcurrency: 4 });
 * for await (const r of reads) if (r.ok) versions.push(r.value);
 */
import type { Result } from '../lib/result.js';
import type { ExitReason } from './exit-reason.js';
import { formatExitReason, NORMAL, toError } from './exit-reason.js';
import type { Pid, Shutdown } from './process.js';
import { ProcessBase, shutdownProcess } from './process.js';
import type { Runtime } from './runtime.js';
import type { TimerRef } from './timers.js';

export const DEFAULT_TASK_SHUTDOWN_MS = 5000;
export const DEFAULT_AWAIT_TIMEOUT_MS = 5000;

export type TaskFn<T> = (signal: AbortSignal) => T | Promise<T>;

export interface TaskOptions {
  /** Display name; defaults to `<supervisor name>:task`. */
  readonly name?: string;
  /** How long a stop waits before killing: ms, `'infinity'` or `'brutalKill'`. Default 5000. */
  readonly shutdown?: Shutdown;
}

/**
 * - `maxChildren`: the supervisor already runs `maxChildren` tasks;
 * - `noproc`: the supervisor is stopping or has exited;
 * - `timeout`: no result within the wait (the task may still be running);
 * - `exited`: the task failed, was stopped or was killed; `reason` says which.
 */
export type TaskErrorCode = 'maxChildren' | 'noproc' | 'timeout' | 'exited';
export interface TaskError {
  readonly code: TaskErrorCode;
  readonly message: string;
  /** Set for `exited`. */
  readonly reason?: ExitReason;
}
export type TaskResult<T> = Result<T, TaskError>;

export type StartTaskResult<T> = Result<
  TaskProcess<T>,
  TaskError & { readonly code: 'maxChildren' | 'noproc' }
>;

/** A task started with {@link TaskSupervisorProcess.asyncNolink}. */
export interface TaskHandle<T> {
  /** The task, or undefined when it could not start (then every result is that start error). */
  readonly task: TaskProcess<T> | undefined;
  /** Its result, or `timeout` after `timeoutMs` (default 5000, may be Infinity); the task runs on. */
  await(timeoutMs?: number): Promise<TaskResult<T>>;
  /** Stops the task (Elixir `Task.shutdown`) and resolves with its result, `ok` if it had finished. */
  shutdown(shutdown?: Shutdown): Promise<TaskResult<T>>;
}

export interface AsyncStreamOptions {
  /** Tasks running at once; default 2. */
  readonly maxConcurrency?: number;
  /** Per task, from its start; default 5000 (may be Infinity). */
  readonly timeoutMs?: number;
  /**
   * `exit` (default): a timeout ends the stream: the timed-out item's result is the last one
   * yielded and every running task is killed. `killTask`: that task is killed, its item yields
   * `timeout`, the stream goes on.
   */
  readonly onTimeout?: 'exit' | 'killTask';
  /** Yield in input order (default) or as tasks finish. */
  readonly ordered?: boolean;
}

export interface TaskSupervisorOptions {
  readonly name: string;
  /** Default Infinity. */
  readonly maxChildren?: number;
  /** For the `process.started` event when a supervisor starts it. */
  readonly parent?: Pid;
  readonly childId?: string;
}

/** Same shape as OTP `count_children`; every task is an active worker. */
export interface TaskChildCounts {
  readonly specs: number;
  readonly active: number;
  readonly supervisors: number;
  readonly workers: number;
}

const isThenable = <T>(value: T | PromiseLike<T>): value is PromiseLike<T> =>
  typeof (value as PromiseLike<T> | null)?.then === 'function';

function checkShutdown(shutdown: Shutdown, field: string): void {
  if (shutdown === 'brutalKill' || shutdown === 'infinity') return;
  if (typeof shutdown !== 'number' || !Number.isFinite(shutdown) || shutdown < 0)
    throw new RangeError(`${field} must be 'brutalKill', 'infinity' or ms >= 0, got ${String(shutdown)}`);
}

function abortError(name: string, reason: ExitReason): Error {
  const error = new Error(`task ${name} ${formatExitReason(reason)}`);
  error.name = 'AbortError';
  return error;
}

function exited<T>(name: string, reason: ExitReason): TaskResult<T> {
  return {
    ok: false,
    error: { code: 'exited', message: `task ${name} exited: ${formatExitReason(reason)}`, reason },
  };
}

/** A running task (kind `task`, always temporary). */
export class TaskProcess<T = unknown> extends ProcessBase {
  /** Aborted when the task is stopped or killed. */
  readonly signal: AbortSignal;
  /** Monotonic start time (clock.now()). */
  readonly startedAtMs: number;
  readonly shutdown: Shutdown;
  private readonly controller = new AbortController();
  private readonly settled: Promise<void>;
  private markSettled: () => void = () => {};

  /** Internal: use {@link TaskSupervisorProcess.startChild} and friends. */
  constructor(
    runtime: Runtime,
    supervisor: Pid,
    name: string,
    shutdown: Shutdown,
    fn: TaskFn<T>,
    onValue: ((value: T) => void) | undefined,
    private readonly reportCrash: boolean,
  ) {
    super(runtime, 'task', name);
    this.signal = this.controller.signal;
    this.shutdown = shutdown;
    this.startedAtMs = runtime.clock.now();
    this.settled = new Promise((resolve) => {
      this.markSettled = resolve;
    });
    this.started(supervisor);
    // Run after the caller has the task in hand (and could link to it), like a spawned process.
    queueMicrotask(() => this.run(fn, onValue));
  }

  private run(fn: TaskFn<T>, onValue: ((value: T) => void) | undefined): void {
    if (this.status !== 'running') {
      this.markSettled();
      return;
    }
    let out: T | Promise<T>;
    try {
      out = fn(this.signal);
    } catch (error) {
      this.markSettled();
      this.failed(error);
      return;
    }
    if (!isThenable(out)) {
      this.markSettled();
      this.succeeded(out, onValue);
      return;
    }
    Promise.resolve(out).then(
      (value) => {
        this.markSettled();
        this.succeeded(value, onValue);
      },
      (error: unknown) => {
        this.markSettled();
        this.failed(error);
      },
    );
  }

  private succeeded(value: T, onValue: ((value: T) => void) | undefined): void {
    if (!this.alive) return;
    onValue?.(value);
    this.exit(NORMAL);
  }

  private failed(cause: unknown): void {
    // While stopping, a rejection is most likely the abort's doing: the stop's reason wins.
    if (this.status !== 'running') return;
    const error = toError(cause);
    if (this.reportCrash) this.runtime.report(`task ${this.name} crashed`, error, this.pid);
    this.exit({ type: 'error', error });
  }

  protected terminate(reason: ExitReason): Promise<void> {
    this.controller.abort(abortError(this.name, reason));
    return this.settled;
  }

  protected override release(): void {
    this.controller.abort(abortError(this.name, this.exitReason ?? NORMAL));
  }
}

/** A running task supervisor (kind `supervisor`). Made by {@link startTaskSupervisor}. */
export class TaskSupervisorProcess extends ProcessBase {
  readonly maxChildren: number;
  private readonly children = new Set<TaskProcess<unknown>>();

  constructor(runtime: Runtime, options: TaskSupervisorOptions) {
    super(runtime, 'supervisor', options.name);
    const max = options.maxChildren ?? Number.POSITIVE_INFINITY;
    if (typeof max !== 'number' || !(max === Number.POSITIVE_INFINITY || (Number.isInteger(max) && max >= 0)))
      throw new RangeError(
        `startTaskSupervisor: maxChildren must be an integer >= 0 or Infinity, got ${String(max)}`,
      );
    this.maxChildren = max;
    this.started(options.parent, options.childId);
  }

  /** Starts a fire-and-forget task; a crash is reported. */
  startChild<T>(fn: TaskFn<T>, options: TaskOptions = {}): StartTaskResult<T> {
    return this.spawn(fn, options, undefined, true);
  }

  /** Starts a task whose result the caller awaits; its failure is a result, not a crash. */
  asyncNolink<T>(fn: TaskFn<T>, options: TaskOptions = {}): TaskHandle<T> {
    let outcome: { value: T } | undefined;
    const started = this.spawn(
      fn,
      options,
      (value) => {
        outcome = { value };
      },
      false,
    );
    const task = started.ok ? started.value : undefined;
    const resultOf = (reason: ExitReason): TaskResult<T> =>
      reason.type === 'normal' && outcome ? { ok: true, value: outcome.value } : exited(task!.name, reason);
    const runtime = this.runtime;
    return {
      task,
      await(timeoutMs = DEFAULT_AWAIT_TIMEOUT_MS) {
        if (!(timeoutMs >= 0)) throw new RangeError(`await: timeoutMs must be >= 0, got ${timeoutMs}`);
        if (!started.ok) return Promise.resolve(started);
        const t = started.value;
        if (!t.alive) return Promise.resolve(resultOf(t.exitReason!));
        return new Promise((resolve) => {
          let timer: TimerRef | undefined;
          const unlink = t.onExit((reason) => {
            if (timer) runtime.timers.cancel(timer);
            resolve(resultOf(reason));
          });
          if (Number.isFinite(timeoutMs))
            timer = runtime.timers.schedule(
              timeoutMs,
              () => {
                unlink();
                resolve({
                  ok: false,
                  error: { code: 'timeout', message: `task ${t.name} did not finish within ${timeoutMs} ms` },
                });
              },
              { owner: t.pid, label: 'task.await' },
            );
        });
      },
      async shutdown(shutdown = task?.shutdown ?? DEFAULT_TASK_SHUTDOWN_MS) {
        checkShutdown(shutdown, 'shutdown');
        if (!started.ok) return started;
        return resultOf(await shutdownProcess(runtime, started.value, shutdown));
      },
    };
  }

  /**
   * Runs `fn` over `items` in tasks, at most `maxConcurrency` at once, and yields one result per
   * item (see {@link AsyncStreamOptions}). Lazy: nothing starts before the first `next()`;
   * finished results wait in a buffer of at most `maxConcurrency`. Breaking out of the loop
   * kills the tasks still running. A start refused with `maxChildren` yields that error for its
   * item; `noproc` (the supervisor stopped) yields it once and ends the stream.
   */
  asyncStream<I, O>(
    items: Iterable<I>,
    fn: (item: I, signal: AbortSignal) => O | Promise<O>,
    options: AsyncStreamOptions = {},
  ): AsyncIterable<TaskResult<O>> {
    const maxConcurrency = options.maxConcurrency ?? 2;
    const timeoutMs = options.timeoutMs ?? DEFAULT_AWAIT_TIMEOUT_MS;
    const onTimeout = options.onTimeout ?? 'exit';
    const ordered = options.ordered ?? true;
    if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1)
      throw new RangeError(`asyncStream: maxConcurrency must be an integer >= 1, got ${maxConcurrency}`);
    if (!(timeoutMs >= 0)) throw new RangeError(`asyncStream: timeoutMs must be >= 0, got ${timeoutMs}`);
    if (onTimeout !== 'exit' && onTimeout !== 'killTask')
      throw new RangeError(`asyncStream: onTimeout must be 'exit' or 'killTask', got ${String(onTimeout)}`);
    return {
      [Symbol.asyncIterator]: () =>
        this.stream(items, fn, { maxConcurrency, timeoutMs, onTimeout, ordered })[Symbol.asyncIterator](),
    };
  }

  private async *stream<I, O>(
    items: Iterable<I>,
    fn: (item: I, signal: AbortSignal) => O | Promise<O>,
    options: Required<AsyncStreamOptions>,
  ): AsyncGenerator<TaskResult<O>> {
    const { maxConcurrency, timeoutMs, onTimeout, ordered } = options;
    const iterator = items[Symbol.iterator]();
    const running = new Map<number, { task: TaskProcess<O>; timer: TimerRef | undefined }>();
    // Ordered: results by item index, yielded from `emitIndex` on. Unordered: a FIFO.
    const byIndex = new Map<number, TaskResult<O>>();
    const fifo: TaskResult<O>[] = [];
    let emitIndex = 0;
    let nextIndex = 0;
    let exhausted = false;
    let closed = false; // ended: no more starts, late exits ignored
    let last: TaskResult<O> | undefined; // an `exit` timeout or `noproc`: yielded last
    let iterationError: { error: unknown } | undefined;
    let wake: (() => void) | undefined;

    const buffered = () => (ordered ? byIndex.size : fifo.length);
    const finish = (index: number, result: TaskResult<O>) => {
      if (ordered) byIndex.set(index, result);
      else fifo.push(result);
    };
    const stopAll = () => {
      closed = true;
      const slots = [...running.values()];
      running.clear();
      for (const { task, timer } of slots) {
        if (timer) this.runtime.timers.cancel(timer);
        task.kill();
      }
    };
    const wakeUp = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };

    const startItem = (index: number, item: I) => {
      let value: { v: O } | undefined;
      const started = this.spawn<O>(
        (signal) => fn(item, signal),
        { name: `${this.name}:stream[${index}]` },
        (v) => {
          value = { v };
        },
        false,
      );
      if (!started.ok) {
        if (started.error.code === 'noproc') {
          last = started;
          stopAll();
        } else finish(index, started);
        return;
      }
      const task = started.value;
      const slot = { task, timer: undefined as TimerRef | undefined };
      running.set(index, slot);
      task.onExit((reason) => {
        if (closed || running.get(index) !== slot) return; // timed out, or the stream ended
        running.delete(index);
        if (slot.timer) this.runtime.timers.cancel(slot.timer);
        finish(
          index,
          reason.type === 'normal' && value ? { ok: true, value: value.v } : exited(task.name, reason),
        );
        pump();
        wakeUp();
      });
      if (Number.isFinite(timeoutMs))
        slot.timer = this.runtime.timers.schedule(
          timeoutMs,
          () => {
            slot.timer = undefined;
            running.delete(index);
            const timeout: TaskResult<O> = {
              ok: false,
              error: { code: 'timeout', message: `task ${task.name} did not finish within ${timeoutMs} ms` },
            };
            task.kill();
            if (onTimeout === 'exit') {
              last = timeout;
              stopAll();
            } else {
              finish(index, timeout);
              pump();
            }
            wakeUp();
          },
          { owner: task.pid, label: 'stream.timeout' },
        );
    };

    const pump = () => {
      while (!exhausted && !closed && running.size < maxConcurrency && buffered() < maxConcurrency) {
        let next: IteratorResult<I>;
        try {
          next = iterator.next();
        } catch (error) {
          iterationError = { error };
          stopAll();
          return;
        }
        if (next.done) {
          exhausted = true;
          return;
        }
        startItem(nextIndex++, next.value);
      }
    };

    const take = (): TaskResult<O> | undefined => {
      if (!ordered) return fifo.shift();
      const result = byIndex.get(emitIndex);
      if (result === undefined) return undefined;
      byIndex.delete(emitIndex);
      emitIndex++;
      return result;
    };

    try {
      pump();
      for (;;) {
        if (iterationError) throw iterationError.error;
        if (last) {
          yield last;
          return;
        }
        const result = take();
        if (result) {
          yield result;
          pump();
          continue;
        }
        if (running.size === 0 && exhausted && buffered() === 0) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      stopAll();
      if (!exhausted) iterator.return?.();
    }
  }

  /** The running tasks, oldest first. */
  whichChildren(): TaskProcess<unknown>[] {
    return [...this.children];
  }

  countChildren(): TaskChildCounts {
    const n = this.children.size;
    return { specs: n, active: n, supervisors: 0, workers: n };
  }

  private spawn<T>(
    fn: TaskFn<T>,
    options: TaskOptions,
    onValue: ((value: T) => void) | undefined,
    reportCrash: boolean,
  ): StartTaskResult<T> {
    if (typeof fn !== 'function') throw new TypeError(`task supervisor ${this.name}: fn must be a function`);
    const shutdown = options.shutdown ?? DEFAULT_TASK_SHUTDOWN_MS;
    checkShutdown(shutdown, 'task shutdown');
    if (this.status !== 'running')
      return { ok: false, error: { code: 'noproc', message: `task supervisor ${this.name} is not running` } };
    if (this.children.size >= this.maxChildren)
      return {
        ok: false,
        error: {
          code: 'maxChildren',
          message: `task supervisor ${this.name} runs ${this.maxChildren} tasks already`,
        },
      };
    const task = new TaskProcess<T>(
      this.runtime,
      this.pid,
      options.name ?? `${this.name}:task`,
      shutdown,
      fn,
      onValue,
      reportCrash,
    );
    this.children.add(task);
    task.onExit(() => this.children.delete(task));
    return { ok: true, value: task };
  }

  /** Stops every task at once, each with its own shutdown (OTP T6: concurrent, not a sum). */
  protected async terminate(): Promise<void> {
    await Promise.all([...this.children].map((task) => shutdownProcess(this.runtime, task, task.shutdown)));
  }

  /** Killed: the tasks are linked and do not trap exits, so they die with it. */
  protected override release(): void {
    for (const task of [...this.children]) task.kill();
  }
}

/** Starts a task supervisor with no tasks; see the module doc. */
export function startTaskSupervisor(runtime: Runtime, options: TaskSupervisorOptions): TaskSupervisorProcess {
  return new TaskSupervisorProcess(runtime, options);
}

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
import type { ExitReason } from './exit-reason.js';
import type { Pid, Shutdown } from './process.js';
import { ProcessBase, shutdownProcess } from './process.js';
import type { Runtime } from './runtime.js';
import type { StartTaskResult, TaskFn, TaskOptions, TaskResult } from './task-process.js';
import {
  checkShutdown,
  DEFAULT_AWAIT_TIMEOUT_MS,
  DEFAULT_TASK_SHUTDOWN_MS,
  exited,
  TaskProcess,
} from './task-process.js';
import type { AsyncStreamOptions } from './task-stream.js';
import { TaskStream } from './task-stream.js';
import type { TimerRef } from './timers.js';

export type {
  StartTaskResult,
  TaskError,
  TaskErrorCode,
  TaskFn,
  TaskOptions,
  TaskResult,
} from './task-process.js';
export { DEFAULT_AWAIT_TIMEOUT_MS, DEFAULT_TASK_SHUTDOWN_MS, TaskProcess } from './task-process.js';
export type { AsyncStreamOptions } from './task-stream.js';

/** A task started with {@link TaskSupervisorProcess.asyncNolink}. */
export interface TaskHandle<T> {
  /** The task, or undefined when it could not start (then every result is that start error). */
  readonly task: TaskProcess<T> | undefined;
  /** Its result, or `timeout` after `timeoutMs` (default 5000, may be Infinity); the task runs on. */
  await(timeoutMs?: number): Promise<TaskResult<T>>;
  /** Stops the task (Elixir `Task.shutdown`) and resolves with its result, `ok` if it had finished. */
  shutdown(shutdown?: Shutdown): Promise<TaskResult<T>>;
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
    const spawn = <T>(task: TaskFn<T>, taskOptions: TaskOptions, onValue: (value: T) => void) =>
      this.spawn(task, taskOptions, onValue, false);
    const streamOptions = { maxConcurrency, timeoutMs, onTimeout, ordered };
    return {
      [Symbol.asyncIterator]: () =>
        new TaskStream(this.runtime.timers, this.name, spawn, items, fn, streamOptions)
          .results()
          [Symbol.asyncIterator](),
    };
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

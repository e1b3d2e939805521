/**
 * Elixir's `Task.async_stream` on a task supervisor: runs a function over the items of an
 * iterable in tasks, at most `maxConcurrency` at once, and yields one result per item, in input
 * order or as tasks finish, each within a per-task timeout. Started by
 * {@link TaskSupervisorProcess.asyncStream}, which validates the options (see
 * {@link AsyncStreamOptions}).
 *
 * One {@link TaskStream} per iteration: nothing starts before the first `next()`; finished
 * results wait in a buffer of at most `maxConcurrency`; ending the iteration (done, `break`, a
 * throw) kills the tasks still running and closes the input iterator.
 */
import type { StartTaskResult, TaskFn, TaskOptions, TaskProcess, TaskResult } from './task-process.js';
import { exited } from './task-process.js';
import type { TimerRef, TimerService } from './timers.js';

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

/** Starts one task for the stream under its supervisor (a failure is a result, not a crash). */
export type SpawnTask = <T>(
  fn: TaskFn<T>,
  options: TaskOptions,
  onValue: (value: T) => void,
) => StartTaskResult<T>;

interface Slot<O> {
  task: TaskProcess<O>;
  timer: TimerRef | undefined;
}

export class TaskStream<I, O> {
  private readonly running = new Map<number, Slot<O>>();
  // Ordered: results by item index, yielded from `emitIndex` on. Unordered: a FIFO.
  private readonly byIndex = new Map<number, TaskResult<O>>();
  private readonly fifo: TaskResult<O>[] = [];
  private emitIndex = 0;
  private nextIndex = 0;
  private exhausted = false;
  private closed = false; // ended: no more starts, late exits ignored
  private last: TaskResult<O> | undefined; // an `exit` timeout or `noproc`: yielded last
  private iterationError: { error: unknown } | undefined;
  private wake: (() => void) | undefined;
  private iterator: Iterator<I> | undefined;

  constructor(
    private readonly timers: TimerService,
    /** The supervisor's name: tasks are named `<name>:stream[<index>]`. */
    private readonly name: string,
    private readonly spawn: SpawnTask,
    private readonly items: Iterable<I>,
    private readonly fn: (item: I, signal: AbortSignal) => O | Promise<O>,
    private readonly options: Required<AsyncStreamOptions>,
  ) {}

  /** The results, one per item; see the module doc. */
  async *results(): AsyncGenerator<TaskResult<O>> {
    const iterator = this.items[Symbol.iterator]();
    this.iterator = iterator;
    try {
      this.pump();
      for (;;) {
        if (this.iterationError) throw this.iterationError.error;
        if (this.last) {
          yield this.last;
          return;
        }
        const result = this.take();
        if (result) {
          yield result;
          this.pump();
          continue;
        }
        if (this.running.size === 0 && this.exhausted && this.buffered() === 0) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      this.stopAll();
      if (!this.exhausted) iterator.return?.();
    }
  }

  private buffered(): number {
    return this.options.ordered ? this.byIndex.size : this.fifo.length;
  }

  private finish(index: number, result: TaskResult<O>): void {
    if (this.options.ordered) this.byIndex.set(index, result);
    else this.fifo.push(result);
  }

  private stopAll(): void {
    this.closed = true;
    const slots = [...this.running.values()];
    this.running.clear();
    for (const { task, timer } of slots) {
      if (timer) this.timers.cancel(timer);
      task.kill();
    }
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private startItem(index: number, item: I): void {
    const { timeoutMs, onTimeout } = this.options;
    const fn = this.fn;
    let value: { v: O } | undefined;
    const started = this.spawn<O>(
      (signal) => fn(item, signal),
      { name: `${this.name}:stream[${index}]` },
      (v) => {
        value = { v };
      },
    );
    if (!started.ok) {
      if (started.error.code === 'noproc') {
        this.last = started;
        this.stopAll();
      } else this.finish(index, started);
      return;
    }
    const task = started.value;
    const slot: Slot<O> = { task, timer: undefined };
    this.running.set(index, slot);
    task.onExit((reason) => {
      if (this.closed || this.running.get(index) !== slot) return; // timed out, or the stream ended
      this.running.delete(index);
      if (slot.timer) this.timers.cancel(slot.timer);
      this.finish(
        index,
        reason.type === 'normal' && value ? { ok: true, value: value.v } : exited(task.name, reason),
      );
      this.pump();
      this.wakeUp();
    });
    if (Number.isFinite(timeoutMs))
      slot.timer = this.timers.schedule(
        timeoutMs,
        () => {
          slot.timer = undefined;
          this.running.delete(index);
          const timeout: TaskResult<O> = {
            ok: false,
            error: { code: 'timeout', message: `task ${task.name} did not finish within ${timeoutMs} ms` },
          };
          task.kill();
          if (onTimeout === 'exit') {
            this.last = timeout;
            this.stopAll();
          } else {
            this.finish(index, timeout);
            this.pump();
          }
          this.wakeUp();
        },
        { owner: task.pid, label: 'stream.timeout' },
      );
  }

  private pump(): void {
    const iterator = this.iterator!;
    const { maxConcurrency } = this.options;
    while (
      !this.exhausted &&
      !this.closed &&
      this.running.size < maxConcurrency &&
      this.buffered() < maxConcurrency
    ) {
      let next: IteratorResult<I>;
      try {
        next = iterator.next();
      } catch (error) {
        this.iterationError = { error };
        this.stopAll();
        return;
      }
      if (next.done) {
        this.exhausted = true;
        return;
      }
      this.startItem(this.nextIndex++, next.value);
    }
  }

  private take(): TaskResult<O> | undefined {
    if (!this.options.ordered) return this.fifo.shift();
    const result = this.byIndex.get(this.emitIndex);
    if (result === undefined) return undefined;
    this.byIndex.delete(this.emitIndex);
    this.emitIndex++;
    return result;
  }
}

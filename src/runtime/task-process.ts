/**
 * A task process (kind `task`, always temporary): a function given an AbortSignal, run once. It
 * exits `normal` when it resolves and with an error when it throws or rejects; a stop or a kill
 * aborts its signal (see task-supervisor.ts for the supervisor that starts tasks). Also the
 * closed vocabulary of task results every task API answers with.
 */
import type { Result } from '../lib/result.js';
import type { ExitReason } from './exit-reason.js';
import { formatExitReason, NORMAL, toError } from './exit-reason.js';
import type { Pid, Shutdown } from './process.js';
import { ProcessBase } from './process.js';
import type { Runtime } from './runtime.js';

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

const isThenable = <T>(value: T | PromiseLike<T>): value is PromiseLike<T> =>
  typeof (value as PromiseLike<T> | null)?.then === 'function';

export function checkShutdown(shutdown: Shutdown, field: string): void {
  if (shutdown === 'brutalKill' || shutdown === 'infinity') return;
  if (typeof shutdown !== 'number' || !Number.isFinite(shutdown) || shutdown < 0)
    throw new RangeError(`${field} must be 'brutalKill', 'infinity' or ms >= 0, got ${String(shutdown)}`);
}

function abortError(name: string, reason: ExitReason): Error {
  const error = new Error(`task ${name} ${formatExitReason(reason)}`);
  error.name = 'AbortError';
  return error;
}

export function exited<T>(name: string, reason: ExitReason): TaskResult<T> {
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

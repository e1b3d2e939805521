/**
 * The process contract: anything with a lifecycle — started, running, exited with a reason.
 *
 * Kinds: a state machine (xstate actor), a server, an event manager, a task, a supervisor.
 * Supervisors only ever see this contract.
 *
 * Deviation from OTP, by necessity: JavaScript cannot pre-empt running code, so {@link Process.kill}
 * means: mark the process exited with reason `killed` at once, release its resources, drop its
 * mailbox, and ignore anything it still emits afterwards (every adapter checks `alive` before
 * acting on a late callback — the generation check OTP gets from pids for free).
 *
 * @example
 * class Echo extends ProcessBase {
 *   constructor(rt: Runtime) { super(rt, 'server', 'echo'); this.started(); }
 *   protected terminate() {}  // graceful cleanup: close ports, flush buffers
 * }
 */
import type { ExitReason } from './exit-reason.js';
import { errorExit, KILLED, SHUTDOWN } from './exit-reason.js';
import type { Runtime } from './runtime.js';

/** A process identifier, unique within one runtime instance. Made only by `runtime.nextPid()`. */
export type Pid = number & { readonly __brand: 'Pid' };

export type ProcessKind = 'statem' | 'server' | 'eventManager' | 'task' | 'supervisor';
export type ProcessStatus = 'running' | 'stopping' | 'exited';
export type ExitListener = (reason: ExitReason, process: Process) => void;

export interface Process {
  readonly pid: Pid;
  readonly kind: ProcessKind;
  /** A display name (device id, child id); not unique — names go through the registry. */
  readonly name: string;
  readonly status: ProcessStatus;
  readonly alive: boolean;
  /** Set once the process has exited. */
  readonly exitReason: ExitReason | undefined;
  /**
   * Link/monitor: `listener` runs once when the process exits (asynchronously if it already
   * has). Returns the unlink.
   */
  onExit(listener: ExitListener): () => void;
  /**
   * Asks the process to stop with `reason` (default `shutdown`) and resolves with the reason it
   * actually exited with — which may differ if it exited on its own meanwhile (OTP sup_stop_race).
   * No timeout here: supervisors enforce `shutdown` with {@link shutdownProcess}.
   */
  stop(reason?: ExitReason): Promise<ExitReason>;
  /** Brutal kill: exits now with reason `killed`; cleanup is best effort and not awaited. */
  kill(): void;
  /** Resolves when the process has exited. */
  whenExited(): Promise<ExitReason>;
}

/**
 * Base class for every process kind: status, exit-once, links, stop and kill. Subclasses
 * implement {@link ProcessBase.terminate} (graceful cleanup) and optionally
 * {@link ProcessBase.release} (synchronous resource release on kill).
 */
const KINDS: readonly ProcessKind[] = ['statem', 'server', 'eventManager', 'task', 'supervisor'];
const RUNNING = 0;
const STOPPING = 1;
const EXITED = 2;
const STATUSES: readonly ProcessStatus[] = ['running', 'stopping', 'exited'];

export abstract class ProcessBase implements Process {
  readonly pid: Pid;
  /**
   * The kind and the status as one small integer (kind index × 4 + status index): a process per
   * device, 100k of them, so every field counts.
   */
  private bits: number;
  /**
   * Before the exit, its exit listeners and {@link whenExited} waiters (one function, or an array
   * in the order they came); after it, the exit reason. One slot, as they are needed one after
   * the other.
   */
  private tail: ExitListener | ExitListener[] | ExitReason | undefined = undefined;

  constructor(
    protected readonly runtime: Runtime,
    kind: ProcessKind,
    public name: string,
    pid?: Pid,
  ) {
    this.pid = pid ?? runtime.nextPid();
    this.bits = KINDS.indexOf(kind) * 4 + RUNNING;
  }

  get kind(): ProcessKind {
    return KINDS[this.bits >> 2]!;
  }

  get status(): ProcessStatus {
    return STATUSES[this.bits & 3]!;
  }

  /** Subclasses set `stopping` (or `running` again); only {@link exit} ends a process. */
  set status(status: ProcessStatus) {
    if (status === 'exited') throw new Error(`${this.name}: a process exits through exit(reason)`);
    this.bits = (this.bits & ~3) | (status === 'stopping' ? STOPPING : RUNNING);
  }

  get exitReason(): ExitReason | undefined {
    return (this.bits & 3) === EXITED ? (this.tail as ExitReason) : undefined;
  }

  get alive(): boolean {
    return (this.bits & 3) !== EXITED;
  }

  /** Call once the process is running, to announce it on the event stream. */
  protected started(parent?: Pid, childId?: string): void {
    const events = this.runtime.events;
    if (events.active)
      events.emit({
        type: 'process.started',
        pid: this.pid,
        kind: this.kind,
        name: this.name,
        parent,
        childId,
      });
  }

  /** Graceful stop: release resources, flush; may be async. Throwing makes the exit an error. */
  protected abstract terminate(reason: ExitReason): Promise<void> | void;

  /** Synchronous release of resources on a brutal kill (close handles, cancel timers). */
  protected release(): void {}

  onExit(listener: ExitListener): () => void {
    if (!this.alive) {
      const reason = this.tail as ExitReason;
      let cancelled = false;
      queueMicrotask(() => {
        if (!cancelled) listener(reason, this);
      });
      return () => {
        cancelled = true;
      };
    }
    this.listen(listener);
    return () => {
      if (!this.alive) return;
      if (this.tail === listener) this.tail = undefined;
      else if (Array.isArray(this.tail)) this.tail = this.tail.filter((l) => l !== listener);
    };
  }

  whenExited(): Promise<ExitReason> {
    if (!this.alive) return Promise.resolve(this.tail as ExitReason);
    // A waiter is one more exit listener: resolving only queues the awaiting code, so it still
    // runs after every listener, as it did when waiters were kept apart.
    return new Promise((resolve) => this.listen(resolve));
  }

  private listen(listener: ExitListener): void {
    const tail = this.tail as ExitListener | ExitListener[] | undefined;
    if (tail === undefined) this.tail = listener;
    else if (typeof tail === 'function') this.tail = [tail, listener];
    else tail.push(listener);
  }

  stop(reason: ExitReason = SHUTDOWN): Promise<ExitReason> {
    if (!this.alive) return Promise.resolve(this.tail as ExitReason);
    const exited = this.whenExited();
    if ((this.bits & 3) === STOPPING) return exited;
    this.bits = (this.bits & ~3) | STOPPING;
    let result: Promise<void> | void;
    try {
      result = this.terminate(reason);
    } catch (error) {
      this.exit(errorExit(error));
      return exited;
    }
    if (result && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).then(
        () => this.exit(reason),
        (error: unknown) => this.exit(errorExit(error)),
      );
    } else {
      this.exit(reason);
    }
    return exited;
  }

  kill(): void {
    if (!this.alive) return;
    this.exit(KILLED);
    try {
      this.release();
    } catch (error) {
      this.runtime.report(`release after kill failed in ${this.name}`, error, this.pid);
    }
  }

  /**
   * Ends the process with `reason`. The first exit wins: a process that crashes while being
   * stopped keeps its own reason (OTP sup_stop_race).
   */
  protected exit(reason: ExitReason): void {
    if (!this.alive) return;
    const listeners = this.tail as ExitListener | ExitListener[] | undefined;
    this.bits = (this.bits & ~3) | EXITED;
    this.tail = reason;
    const events = this.runtime.events;
    if (events.active) events.emit({ type: 'process.exited', pid: this.pid, name: this.name, reason });
    if (typeof listeners === 'function') this.callExitListener(listeners, reason);
    else if (listeners) for (const l of listeners) this.callExitListener(l, reason);
  }

  private callExitListener(listener: ExitListener, reason: ExitReason): void {
    try {
      listener(reason, this);
    } catch (error) {
      this.runtime.report(`exit listener of ${this.name} threw`, error, this.pid);
    }
  }
}

/** How long a supervisor waits for a child to stop before killing it. */
export type Shutdown = 'brutalKill' | 'infinity' | number;

/**
 * Stops `process` the way an OTP supervisor does: `brutalKill` kills at once; a number of
 * milliseconds asks, waits that long, then kills; `infinity` asks and waits as long as it takes.
 * Resolves with the reason the process exited with.
 */
export function shutdownProcess(runtime: Runtime, process: Process, shutdown: Shutdown): Promise<ExitReason> {
  if (!process.alive) return process.whenExited();
  if (shutdown === 'brutalKill') {
    process.kill();
    return process.whenExited();
  }
  const stopping = process.stop(SHUTDOWN);
  if (shutdown === 'infinity') return stopping;
  return new Promise((resolve) => {
    const timer = runtime.timers.schedule(shutdown, () => process.kill(), {
      owner: process.pid,
      label: 'shutdown',
    });
    stopping.then((reason) => {
      runtime.timers.cancel(timer);
      resolve(reason);
    });
  });
}

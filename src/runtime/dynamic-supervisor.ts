/**
 * Elixir's DynamicSupervisor (OTP simple_one_for_one): children started on demand — one per
 * device — each restarted on its own (one-for-one), with a max-children limit and the usual
 * restart intensity (Elixir's defaults: 3 restarts within 5 s, no child limit).
 *
 * Differences from the static {@link Supervisor}, as in OTP: children are addressed by pid;
 * `terminateChild(pid)` removes the child altogether; there is no restartChild/deleteChild;
 * a restart whose start returns ignore removes the child; children that are restarting count
 * toward `maxChildren`; on shutdown all children are stopped concurrently (OTP T6), so the
 * total time is bounded by the slowest child, not the sum. `significant` children and
 * `autoShutdown` are rejected (Elixir X4). Queries answer at once, also while a restart awaits
 * an async start: that child shows `restarting` (see the deviations in supervisor.ts).
 *
 * To keep a supervised device as small as possible, many children share one spec object and
 * differ by the `arg` passed to `spec.start(arg)` (OTP's extra arguments).
 *
 * @example
 * const fleet = await startDynamicSupervisor(rt, { name: 'fleet', maxChildren: 10_000 });
 * const deviceSpec = { start: (id: string) => startDevice(rt, id), restart: 'permanent' } as const;
 * const res = await fleet.value.startChild(deviceSpec, 'sensor-17');
 */
import type { Checked, RestartType, SpecError } from './child-spec.js';
import { isValidShutdown } from './child-spec.js';
import type { ExitReason } from './exit-reason.js';
import { formatExitReason, REACHED_MAX_RESTART_INTENSITY, shutdownWith, toError } from './exit-reason.js';
import { OpQueue } from './op-queue.js';
import { PidIndex } from './pid-index.js';
import type { Pid, Process, Shutdown } from './process.js';
import { ProcessBase, shutdownProcess } from './process.js';
import { addRestart, restartsInWindow } from './restart-intensity.js';
import { needsRestart } from './restart-strategy.js';
import type { Runtime } from './runtime.js';
import type { ChildCounts, ChildInfo, SupervisorLike, SupResult } from './supervisor-types.js';
import type { TimerRef } from './timers.js';

export interface DynamicChildSpec<A> {
  /** Starts one child for `arg`; `null` means ignore; throwing is a start failure. */
  readonly start: (arg: A) => Process | null | Promise<Process | null>;
  readonly restart?: RestartType;
  readonly shutdown?: Shutdown;
  readonly type?: 'worker' | 'supervisor';
  /** A display id for the child (defaults to `String(arg)`). */
  readonly idOf?: (arg: A) => string;
}

export interface DynamicSupervisorOptions {
  readonly name?: string;
  /** Default 3 (Elixir). */
  readonly maxRestarts?: number;
  /** Default 5000 ms (Elixir). */
  readonly periodMs?: number;
  /** Default: no limit. */
  readonly maxChildren?: number;
}

/** One child: what starts it, and its process. Small: a fleet has one per device. */
interface DynChild {
  readonly spec: DynamicChildSpec<unknown>;
  readonly arg: unknown;
  /** Undefined from its exit until its replacement runs. */
  process: Process | undefined;
  /** Made at its first exit (most children never exit). */
  restarts: ChildRestarts | undefined;
}

interface ChildRestarts {
  /** The pid that exited: the child is found by it until its replacement runs. */
  lastPid: Pid;
  restarting: boolean;
  retryTimer: TimerRef | undefined;
  count: number;
  lastExit: ExitReason | undefined;
}

/** The pid a child is found by: its process's, or the last one while it waits for a restart. */
const pidOf = (c: DynChild): Pid => c.process?.pid ?? c.restarts!.lastPid;

const ok = <T>(value: T): SupResult<T> => ({ ok: true, value });
const isThenable = <T>(v: unknown): v is Promise<T> =>
  typeof v === 'object' && v !== null && typeof (v as Promise<T>).then === 'function';

function checkSpec(spec: DynamicChildSpec<unknown>): Checked<true> {
  const fail = (code: SpecError['code'], field: string, message: string) =>
    ({ ok: false, error: { code, field, message } }) as const;
  if (typeof spec?.start !== 'function') return fail('missingStart', 'start', 'start must be a function');
  if (spec.restart !== undefined && !['permanent', 'transient', 'temporary'].includes(spec.restart))
    return fail('badRestart', 'restart', 'restart must be permanent | transient | temporary');
  if (spec.shutdown !== undefined && !isValidShutdown(spec.shutdown))
    return fail(
      'badShutdown',
      'shutdown',
      "shutdown must be 'brutalKill', 'infinity' or a whole number of ms >= 0",
    );
  if ((spec as { significant?: unknown }).significant)
    return fail('badSignificant', 'significant', 'a dynamic supervisor does not take significant children');
  return { ok: true, value: true };
}

export class DynamicSupervisor extends ProcessBase implements SupervisorLike {
  readonly strategy = 'dynamic' as const;
  readonly maxRestarts: number;
  readonly periodMs: number;
  readonly maxChildren: number;
  private readonly children = new PidIndex<DynChild>(pidOf);
  private restartTimes: number[] = [];
  private readonly queue: OpQueue;
  private readonly onChildExit = (reason: ExitReason, child: Process) =>
    this.queue.post(() => this.handleChildExit(child, reason));

  constructor(runtime: Runtime, name: string, maxRestarts: number, periodMs: number, maxChildren: number) {
    super(runtime, 'supervisor', name);
    this.maxRestarts = maxRestarts;
    this.periodMs = periodMs;
    this.maxChildren = maxChildren;
    this.queue = new OpQueue((error) =>
      runtime.report(`dynamic supervisor ${name} failed handling a message`, error, this.pid),
    );
    this.started();
  }

  /**
   * Starts a child. Results: its process (or `undefined` if the start said ignore); errors
   * `maxChildren`, `startFailed`, a spec code, `noproc`.
   */
  startChild<A>(spec: DynamicChildSpec<A>, arg: A): Promise<SupResult<Process | undefined>> {
    return this.queue.callNow(() => {
      if (this.status !== 'running') return this.noproc();
      const s = spec as DynamicChildSpec<unknown>;
      const checked = checkSpec(s);
      if (!checked.ok) return { ok: false, error: checked.error } as SupResult<never>;
      if (this.children.size >= this.maxChildren)
        return {
          ok: false,
          error: {
            code: 'maxChildren',
            message: `${this.name} already has its maximum of ${this.maxChildren} children`,
          },
        } as SupResult<never>;
      const started = this.startOne(s, arg);
      return isThenable(started) ? started.then((r) => this.added(s, arg, r)) : this.added(s, arg, started);
    });
  }

  private added(spec: DynamicChildSpec<unknown>, arg: unknown, started: SupResult<Process | undefined>) {
    if (!started.ok || !started.value) return started;
    this.adopt({ spec, arg, process: started.value, restarts: undefined }, started.value);
    return started;
  }

  /** Stops a child (found by its current pid) and forgets it. Errors `notFound`, `noproc`. */
  terminateChild(pid: Pid): Promise<SupResult<undefined>> {
    return this.queue.call(async () => {
      if (this.status !== 'running') return this.noproc();
      const child = this.children.get(pid);
      if (!child)
        return {
          ok: false,
          error: { code: 'notFound', message: `no child with pid ${pid} in ${this.name}` },
        };
      await this.drop(child);
      return ok(undefined);
    });
  }

  whichChildren(): ChildInfo[] {
    const out: ChildInfo[] = [];
    for (const c of this.children.values()) {
      out.push({
        id: c.spec.idOf ? c.spec.idOf(c.arg) : String(c.arg),
        pid: c.process?.pid,
        process: c.process,
        status: c.restarts?.restarting ? 'restarting' : 'running',
        type: c.spec.type ?? 'worker',
        restart: c.spec.restart ?? 'permanent',
        significant: false,
        restartCount: c.restarts?.count ?? 0,
        lastExit: c.restarts?.lastExit,
      });
    }
    return out;
  }

  countChildren(): ChildCounts {
    let active = 0;
    let supervisors = 0;
    for (const c of this.children.values()) {
      if (c.process) active++;
      if (c.spec.type === 'supervisor') supervisors++;
    }
    return { specs: this.children.size, active, supervisors, workers: this.children.size - supervisors };
  }

  restartsInWindow(): number {
    return restartsInWindow(this.restartTimes, this.runtime.clock.now(), this.periodMs);
  }

  /** Messages waiting in its mailbox (child exits and admin calls), not counting the one being handled. */
  get mailboxLength(): number {
    return this.queue.length;
  }

  protected terminate(): Promise<void> {
    return this.queue.call(() => this.stopAll());
  }

  protected override release(): void {
    for (const c of this.children.values()) {
      if (c.restarts?.retryTimer) this.runtime.timers.cancel(c.restarts.retryTimer);
      c.process?.kill();
    }
    this.children.clear();
  }

  private noproc(): SupResult<never> {
    return {
      ok: false,
      error: { code: 'noproc', message: `dynamic supervisor ${this.name} is not running` },
    };
  }

  /** Starts one child; synchronous when its start function is. */
  private startOne(
    spec: DynamicChildSpec<unknown>,
    arg: unknown,
  ): SupResult<Process | undefined> | Promise<SupResult<Process | undefined>> {
    let result: Process | null | Promise<Process | null>;
    try {
      result = spec.start(arg);
    } catch (error) {
      return this.startFailed(spec, arg, error);
    }
    if (isThenable(result))
      return result.then(
        (p) => ok(p ?? undefined),
        (error: unknown) => this.startFailed(spec, arg, error),
      );
    return ok(result ?? undefined);
  }

  private startFailed(spec: DynamicChildSpec<unknown>, arg: unknown, error: unknown): SupResult<never> {
    {
      const cause = toError(error);
      const childId = spec.idOf ? spec.idOf(arg) : String(arg);
      if (this.runtime.events.active)
        this.runtime.events.emit({ type: 'child.startFailed', supervisor: this.pid, childId, error: cause });
      return {
        ok: false,
        error: {
          code: 'startFailed',
          cause,
          message: `child '${childId}' of ${this.name} failed to start: ${cause.message}`,
        },
      };
    }
  }

  private adopt(child: DynChild, process: Process): void {
    child.process = process;
    if (child.restarts) child.restarts.restarting = false;
    this.children.add(child);
    process.onExit(this.onChildExit);
    const events = this.runtime.events;
    if (events.active)
      events.emit({
        type: 'child.started',
        supervisor: this.pid,
        childId: child.spec.idOf ? child.spec.idOf(child.arg) : String(child.arg),
        pid: process.pid,
        childType: child.spec.type ?? 'worker',
      });
  }

  private async drop(child: DynChild): Promise<void> {
    this.children.delete(pidOf(child));
    const restarts = child.restarts;
    if (restarts?.retryTimer) this.runtime.timers.cancel(restarts.retryTimer);
    if (restarts) restarts.retryTimer = undefined;
    const p = child.process;
    child.process = undefined;
    if (p)
      await shutdownProcess(
        this.runtime,
        p,
        child.spec.shutdown ?? (child.spec.type === 'supervisor' ? 'infinity' : 5000),
      );
  }

  private async stopAll(): Promise<void> {
    await Promise.all(this.children.values().map((c) => this.drop(c)));
  }

  private async handleChildExit(process: Process, reason: ExitReason): Promise<void> {
    if (this.status !== 'running') return;
    const child = this.children.get(process.pid);
    if (!child || child.process !== process) return;
    // The pid is kept before the process goes: the child is found by it until its restart.
    if (child.restarts) child.restarts.lastPid = process.pid;
    else
      child.restarts = {
        lastPid: process.pid,
        restarting: false,
        retryTimer: undefined,
        count: 0,
        lastExit: undefined,
      };
    child.restarts.lastExit = reason;
    child.process = undefined;
    if (!needsRestart(child.spec.restart ?? 'permanent', reason)) {
      this.children.delete(process.pid);
      return;
    }
    this.runtime.logger.warn(`child ${process.name} of ${this.name} exited: ${formatExitReason(reason)}`, {
      pid: process.pid,
    });
    await this.restart(child, this.runtime.clock.now());
  }

  private async restart(child: DynChild, detectedAt: number): Promise<void> {
    const restarts = child.restarts!; // made at the exit that led here
    const decision = addRestart(this.restartTimes, this.runtime.clock.now(), this);
    this.restartTimes = decision.times;
    if (decision.decision === 'giveUp') {
      const childId = child.spec.idOf ? child.spec.idOf(child.arg) : String(child.arg);
      this.runtime.logger.error(
        `dynamic supervisor ${this.name} gave up: more than ${this.maxRestarts} restarts within ${this.periodMs} ms`,
        { pid: this.pid },
      );
      if (this.runtime.events.active)
        this.runtime.events.emit({
          type: 'supervisor.gaveUp',
          supervisor: this.pid,
          name: this.name,
          childId,
          maxRestarts: this.maxRestarts,
          periodMs: this.periodMs,
        });
      this.status = 'stopping';
      await this.stopAll();
      this.exit(shutdownWith(REACHED_MAX_RESTART_INTENSITY));
      return;
    }
    restarts.count++;
    const oldPid = restarts.lastPid;
    // Queries answer while an async start is awaited: the child is restarting, not running.
    restarts.restarting = true;
    const started = await this.startOne(child.spec, child.arg);
    if (!started.ok) {
      restarts.retryTimer = this.runtime.timers.schedule(
        0,
        () => {
          restarts.retryTimer = undefined;
          this.queue.post(() => this.retry(child));
        },
        { owner: this.pid, label: 'restart' },
      );
      return;
    }
    this.children.delete(oldPid);
    if (!started.value) return; // OTP simple_one_for_one_restart_ignore: the child is removed
    this.adopt(child, started.value);
    const events = this.runtime.events;
    if (events.active)
      events.emit({
        type: 'child.restarted',
        supervisor: this.pid,
        childId: child.spec.idOf ? child.spec.idOf(child.arg) : String(child.arg),
        oldPid,
        pid: started.value.pid,
        restartsInWindow: this.restartTimes.length,
        maxRestarts: this.maxRestarts,
        durationMs: this.runtime.clock.now() - detectedAt,
      });
  }

  private async retry(child: DynChild): Promise<void> {
    if (this.status !== 'running' || this.children.get(pidOf(child)) !== child || !child.restarts?.restarting)
      return;
    await this.restart(child, this.runtime.clock.now());
  }
}

/** Starts a dynamic supervisor. Errors: `badMaxRestarts`, `badPeriod`, `badMaxChildren`. */
export function startDynamicSupervisor(
  runtime: Runtime,
  options: DynamicSupervisorOptions = {},
): SupResult<DynamicSupervisor> {
  const maxRestarts = options.maxRestarts ?? 3;
  const periodMs = options.periodMs ?? 5000;
  const maxChildren = options.maxChildren ?? Number.POSITIVE_INFINITY;
  if (!Number.isInteger(maxRestarts) || maxRestarts < 0)
    return {
      ok: false,
      error: {
        code: 'badMaxRestarts',
        field: 'maxRestarts',
        message: 'maxRestarts must be a whole number >= 0',
      },
    };
  if (!Number.isInteger(periodMs) || periodMs <= 0)
    return {
      ok: false,
      error: { code: 'badPeriod', field: 'periodMs', message: 'periodMs must be a whole number of ms > 0' },
    };
  if (!(maxChildren === Number.POSITIVE_INFINITY || (Number.isInteger(maxChildren) && maxChildren >= 0)))
    return {
      ok: false,
      error: {
        code: 'badMaxChildren',
        field: 'maxChildren',
        message: 'maxChildren must be a whole number >= 0',
      },
    };
  return ok(
    new DynamicSupervisor(runtime, options.name ?? 'dynamic-supervisor', maxRestarts, periodMs, maxChildren),
  );
}

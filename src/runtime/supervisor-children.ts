/**
 * A static supervisor's children and the mechanics of running them: the child records in start
 * order, starting one child, restarting a group (stop newest first, start in order, roll back
 * on a failed start), the shutdown sequence (each child with its own shutdown policy, newest
 * first; a kill takes them all at once), and the `whichChildren` / `countChildren` reports.
 *
 * {@link SupervisorChildren} is the base of {@link Supervisor} (supervisor.ts), which holds the
 * policy: its mailbox, the admin API, when to restart and which group (strategy, intensity),
 * retries, giving up, and autoShutdown.
 */
import type { FullChildSpec, StartResult } from './child-spec.js';
import type { ExitReason } from './exit-reason.js';
import { toError } from './exit-reason.js';
import type { Pid, Process } from './process.js';
import { ProcessBase, shutdownProcess } from './process.js';
import type { ChildCounts, ChildInfo, ChildStatus, SupResult } from './supervisor-types.js';
import { err, ok } from './supervisor-types.js';
import type { TimerRef } from './timers.js';

/** One child of a static supervisor: its spec, and the process running it now, if any. */
export interface ChildRecord {
  spec: FullChildSpec;
  process: Process | undefined;
  state: ChildStatus;
  retryTimer: TimerRef | undefined;
  restartCount: number;
  lastExit: ExitReason | undefined;
}

export function newChildRecord(spec: FullChildSpec): ChildRecord {
  return {
    spec,
    process: undefined,
    state: 'stopped',
    retryTimer: undefined,
    restartCount: 0,
    lastExit: undefined,
  };
}

export function childInfo(r: ChildRecord): ChildInfo {
  return {
    id: r.spec.id,
    pid: r.process?.pid,
    process: r.process,
    status: r.state,
    type: r.spec.type,
    restart: r.spec.restart,
    significant: r.spec.significant,
    restartCount: r.restartCount,
    lastExit: r.lastExit,
  };
}

/** OTP `which_children`: newest first, as for static supervisors (A3). */
export function whichChildrenOf(records: readonly ChildRecord[]): ChildInfo[] {
  const out: ChildInfo[] = [];
  for (let i = records.length - 1; i >= 0; i--) out.push(childInfo(records[i]!));
  return out;
}

/** OTP `count_children`: a restarting child counts as a spec, not as active (A2). */
export function countChildrenOf(records: readonly ChildRecord[]): ChildCounts {
  let active = 0;
  let supervisors = 0;
  for (const r of records) {
    if (r.process?.alive) active++;
    if (r.spec.type === 'supervisor') supervisors++;
  }
  return { specs: records.length, active, supervisors, workers: records.length - supervisors };
}

function isProcess(value: unknown): value is Process {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Process).pid === 'number' &&
    typeof (value as Process).onExit === 'function' &&
    typeof (value as Process).kill === 'function'
  );
}

export abstract class SupervisorChildren extends ProcessBase {
  /** The children in start order. */
  protected records: ChildRecord[] = [];
  protected readonly byPid = new Map<Pid, ChildRecord>();
  /** Where a started child's exit goes (the supervisor's mailbox). */
  protected abstract readonly onChildExit: (reason: ExitReason, child: Process) => void;

  // ---- queries (synchronous snapshots of the current state) ----

  whichChildren(): ChildInfo[] {
    return whichChildrenOf(this.records);
  }

  countChildren(): ChildCounts {
    return countChildrenOf(this.records);
  }

  getChildSpec(id: string): SupResult<FullChildSpec> {
    const rec = this.find(id);
    return rec ? ok(rec.spec) : err({ code: 'notFound', message: `no child '${id}' in ${this.name}` });
  }

  // ---- the child table ----

  protected find(id: string): ChildRecord | undefined {
    for (const r of this.records) if (r.spec.id === id) return r;
    return undefined;
  }

  /** The child `id` if it exists and is stopped; else OTP's `notFound`, `restarting` or `running`. */
  protected stoppedChild(id: string): SupResult<ChildRecord> {
    const rec = this.find(id);
    if (!rec) return err({ code: 'notFound', message: `no child '${id}' in ${this.name}` });
    if (rec.state === 'restarting')
      return err({ code: 'restarting', message: `child '${id}' is in a restart loop` });
    if (rec.process)
      return err({ code: 'running', pid: rec.process.pid, message: `child '${id}' is running` });
    return ok(rec);
  }

  protected remove(rec: ChildRecord): void {
    this.cancelRetry(rec);
    this.records = this.records.filter((r) => r !== rec);
  }

  protected cancelRetry(rec: ChildRecord): void {
    if (rec.retryTimer) this.runtime.timers.cancel(rec.retryTimer);
    rec.retryTimer = undefined;
    if (rec.state === 'restarting') rec.state = 'stopped';
  }

  // ---- starting one child ----

  protected async startRecord(rec: ChildRecord): Promise<SupResult<Process | undefined>> {
    let result: StartResult;
    try {
      result = await rec.spec.start();
    } catch (error) {
      return this.startFailed(rec, toError(error));
    }
    if (result === null || result === undefined) {
      rec.process = undefined;
      rec.state = 'stopped';
      return ok(undefined);
    }
    if (!isProcess(result))
      return this.startFailed(
        rec,
        new Error(`start of '${rec.spec.id}' returned something that is not a process`),
      );
    rec.process = result;
    rec.state = 'running';
    this.byPid.set(result.pid, rec);
    result.onExit(this.onChildExit);
    const events = this.runtime.events;
    if (events.active)
      events.emit({
        type: 'child.started',
        supervisor: this.pid,
        childId: rec.spec.id,
        pid: result.pid,
        childType: rec.spec.type,
      });
    return ok(result);
  }

  private startFailed(rec: ChildRecord, cause: Error): SupResult<never> {
    const events = this.runtime.events;
    if (events.active)
      events.emit({ type: 'child.startFailed', supervisor: this.pid, childId: rec.spec.id, error: cause });
    return err({
      code: 'startFailed',
      cause,
      message: `child '${rec.spec.id}' of ${this.name} failed to start: ${cause.message}`,
    });
  }

  // ---- restarting a group ----

  /**
   * Stops the group's other running members newest first (temporary bystanders are dropped,
   * OTP R4), then starts the group in order. Returns the member that failed to start, after
   * stopping the members this round had already started.
   */
  protected async restartGroup(
    group: ChildRecord[],
    failedChild: ChildRecord,
  ): Promise<ChildRecord | undefined> {
    // Queries answer while this runs (we await stops and starts): mark the whole group first.
    for (const r of group) {
      this.cancelRetry(r);
      if (r === failedChild || r.spec.restart !== 'temporary') r.state = 'restarting';
    }
    for (let i = group.length - 1; i >= 0; i--) {
      const r = group[i]!;
      if (r === failedChild) continue;
      await this.stopRecord(r);
      if (r.spec.restart === 'temporary') this.remove(r);
    }
    const startedNow: ChildRecord[] = [];
    for (const r of group) {
      if (!this.records.includes(r)) continue;
      const res = await this.startRecord(r);
      if (!res.ok) {
        for (let i = startedNow.length - 1; i >= 0; i--) await this.stopRecord(startedNow[i]!);
        return r;
      }
      if (res.value) startedNow.push(r);
    }
    return undefined;
  }

  // ---- the shutdown sequence ----

  /** Stops one child with its shutdown policy; its exit is not treated as a crash. */
  protected async stopRecord(rec: ChildRecord): Promise<void> {
    const child = rec.process;
    rec.process = undefined;
    if (rec.state !== 'restarting') rec.state = 'stopped';
    if (!child) return;
    this.byPid.delete(child.pid);
    rec.lastExit = await shutdownProcess(this.runtime, child, rec.spec.shutdown);
  }

  /** Stops every child, newest first, each with its shutdown policy. */
  protected async stopAll(): Promise<void> {
    for (let i = this.records.length - 1; i >= 0; i--) {
      const rec = this.records[i]!;
      this.cancelRetry(rec);
      await this.stopRecord(rec);
    }
  }

  /** Stops every child, then exits with `reason` (a give-up or an autoShutdown). */
  protected async shutDownSelf(reason: ExitReason): Promise<void> {
    this.status = 'stopping';
    await this.stopAll();
    this.exit(reason);
  }

  /** Killed: the children are linked and do not trap exits, so they are killed with it. */
  protected override release(): void {
    for (let i = this.records.length - 1; i >= 0; i--) {
      const rec = this.records[i]!;
      this.cancelRetry(rec);
      const child = rec.process;
      rec.process = undefined;
      rec.state = 'stopped';
      if (child) {
        this.byPid.delete(child.pid);
        child.kill();
      }
    }
  }
}

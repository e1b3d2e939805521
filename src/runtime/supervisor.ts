/**
 * The OTP supervisor: ordered child specs, strategies oneForOne / oneForAll / restForOne,
 * restart types, restart intensity, shutdown policies, significant children and autoShutdown.
 *
 * Semantics follow Erlang/OTP `supervisor` (see shared/reference/reliability.md §a for the
 * OTP test each behaviour mirrors). Deliberate deviations, each forced by JavaScript or by our
 * declarative API:
 * - Options are data, not an `init/1` callback, so OTP's `init` returning `ignore` or garbage
 *   (S1, S2) has no counterpart; a parent's start function may return `null` (ignore) instead.
 * - A start function may be async (opening a port); the supervisor awaits it, one child at a time.
 * - `kill` cannot pre-empt: see {@link ProcessBase}. Killing a supervisor kills its children at
 *   once (they are linked and do not trap exits in OTP either).
 * - A failed restart is retried through a zero-delay timer rather than a self-sent message, so
 *   API calls and shutdown interleave with a failing restart loop (OTP-9549, T8).
 * - `whichChildren` lists newest first, as OTP does for static supervisors (A3).
 * - `whichChildren` and `countChildren` are synchronous snapshots, answered at once even while a
 *   restart is under way (OTP answers them only after the restart, so a caller never sees a
 *   half-done one). Every child the restart will start again shows `restarting` from the moment
 *   the restart begins until it runs again — never `stopped` — and counts as a spec but not as
 *   active, OTP's rule for a restarting child (`count_children`). If the restart fails, only the
 *   child that failed to start stays `restarting`, the others of its group are `stopped`, as in
 *   OTP's `try_again_restart`.
 *
 * @example
 * const sup = await startSupervisor(rt, {
 *   name: 'device-17', strategy: 'restForOne', maxRestarts: 3, periodMs: 5000,
 *   children: [
 *     { id: 'link', start: () => startLink(rt, port) },
 *     { id: 'machine', start: () => startDeviceMachine(rt, device) },
 *   ],
 * });
 * if (!sup.ok) throw new Error(sup.error.message);
 */
import type { AutoShutdown, ChildSpec, FullChildSpec, Strategy, SupervisorFlags } from './child-spec.js';
import { validateChildSpec, validateChildSpecs, validateSupervisorFlags } from './child-spec.js';
import type { ExitReason } from './exit-reason.js';
import { formatExitReason, REACHED_MAX_RESTART_INTENSITY, SHUTDOWN, shutdownWith } from './exit-reason.js';
import { OpQueue } from './op-queue.js';
import type { Pid, Process } from './process.js';
import { addRestart, restartsInWindow } from './restart-intensity.js';
import { needsRestart, planRestart } from './restart-strategy.js';
import type { Runtime } from './runtime.js';
import type { ChildRecord } from './supervisor-children.js';
import { newChildRecord, SupervisorChildren } from './supervisor-children.js';
import type { NameRegistration, SupervisorLike, SupervisorOptions, SupResult } from './supervisor-types.js';
import { err, ok } from './supervisor-types.js';

export { needsRestart } from './restart-strategy.js';
export type {
  ChildCounts,
  ChildInfo,
  ChildStatus,
  NameRegistration,
  SupervisorError,
  SupervisorErrorCode,
  SupervisorLike,
  SupervisorOptions,
  SupResult,
} from './supervisor-types.js';

const noproc = (name: string) => err({ code: 'noproc', message: `supervisor ${name} is not running` });

/**
 * A static supervisor: its mailbox, the admin API, and the restart policy — which exits restart
 * which group (restart type, strategy), within the restart intensity, with retries, giving up,
 * and autoShutdown. The mechanics of its children (start, group restart, shutdown sequence,
 * reports) are in its base, {@link SupervisorChildren} (supervisor-children.ts).
 */
export class Supervisor extends SupervisorChildren implements SupervisorLike {
  readonly strategy: Strategy;
  readonly maxRestarts: number;
  readonly periodMs: number;
  readonly autoShutdown: AutoShutdown;
  private restartTimes: number[] = [];
  private readonly mailbox: OpQueue;
  protected readonly onChildExit = (reason: ExitReason, child: Process) =>
    this.mailbox.post(() => this.handleChildExit(child, reason));

  constructor(runtime: Runtime, name: string, flags: SupervisorFlags) {
    super(runtime, 'supervisor', name);
    this.strategy = flags.strategy;
    this.maxRestarts = flags.maxRestarts;
    this.periodMs = flags.periodMs;
    this.autoShutdown = flags.autoShutdown;
    this.mailbox = new OpQueue((error) =>
      runtime.report(`supervisor ${name} failed handling a message`, error, this.pid),
    );
  }

  /** Starts the initial children in order; on a failure stops the started ones in reverse. */
  async init(specs: readonly FullChildSpec[], via: NameRegistration | undefined): Promise<SupResult<this>> {
    if (via) {
      const named = via.register(this);
      if (!named.ok) {
        this.exit(shutdownWith('name taken'));
        return err({
          code: 'alreadyStarted',
          pid: named.error.pid,
          message: `the name of supervisor ${this.name} is already taken`,
        });
      }
    }
    for (const spec of specs) {
      const rec = newChildRecord(spec);
      this.records.push(rec);
      const started = await this.startRecord(rec);
      if (!started.ok) {
        this.records.pop();
        this.status = 'stopping';
        await this.stopAll();
        this.exit({ type: 'error', error: started.error.cause ?? new Error(started.error.message) });
        return started;
      }
      if (started.value === undefined && spec.restart === 'temporary') this.records.pop();
    }
    this.started();
    return ok(this);
  }

  // ---- queries (the children's own are in SupervisorChildren) ----

  /** Restarts inside the current intensity window. */
  restartsInWindow(): number {
    return restartsInWindow(this.restartTimes, this.runtime.clock.now(), this.periodMs);
  }

  /** Messages waiting in its mailbox (child exits and admin calls), not counting the one being handled. */
  get mailboxLength(): number {
    return this.mailbox.length;
  }

  // ---- the admin API (serialised through the mailbox, like gen_server calls) ----

  /**
   * Adds and starts a child. Results: the process (or `undefined` if its start said ignore);
   * errors `alreadyStarted` (with pid), `alreadyPresent`, `startFailed`, a spec code, `noproc`.
   */
  startChild(spec: ChildSpec): Promise<SupResult<Process | undefined>> {
    return this.mailbox.call(async () => {
      if (this.status !== 'running') return noproc(this.name);
      const checked = validateChildSpec(spec, this.autoShutdown);
      if (!checked.ok) return err(checked.error);
      const existing = this.find(checked.value.id);
      if (existing) {
        if (existing.process)
          return err({
            code: 'alreadyStarted',
            pid: existing.process.pid,
            message: `child '${existing.spec.id}' is already running`,
          });
        return err({
          code: 'alreadyPresent',
          message: `child '${existing.spec.id}' exists but is not running`,
        });
      }
      const rec = newChildRecord(checked.value);
      this.records.push(rec);
      const started = await this.startRecord(rec);
      if (!started.ok || (started.value === undefined && rec.spec.restart === 'temporary')) this.remove(rec);
      return started;
    });
  }

  /** Stops a child and keeps its spec (a temporary child's spec is dropped). Idempotent. */
  terminateChild(id: string): Promise<SupResult<undefined>> {
    return this.mailbox.call(async () => {
      if (this.status !== 'running') return noproc(this.name);
      const rec = this.find(id);
      if (!rec) return err({ code: 'notFound', message: `no child '${id}' in ${this.name}` });
      this.cancelRetry(rec);
      await this.stopRecord(rec);
      if (rec.spec.restart === 'temporary') this.remove(rec);
      return ok(undefined);
    });
  }

  /** Starts a stopped child again. Errors `running`, `restarting`, `notFound`, `startFailed`. */
  restartChild(id: string): Promise<SupResult<Process | undefined>> {
    return this.mailbox.call(async () => {
      if (this.status !== 'running') return noproc(this.name);
      const rec = this.stoppedChild(id);
      return rec.ok ? this.startRecord(rec.value) : rec;
    });
  }

  /** Removes a stopped child's spec. Errors `running`, `restarting`, `notFound`. */
  deleteChild(id: string): Promise<SupResult<undefined>> {
    return this.mailbox.call(() => {
      if (this.status !== 'running') return noproc(this.name);
      const rec = this.stoppedChild(id);
      if (!rec.ok) return rec;
      this.remove(rec.value);
      return ok(undefined);
    });
  }

  // ---- process contract ----

  protected terminate(): Promise<void> {
    return this.mailbox.call(() => this.stopAll());
  }

  // ---- exits and restarts ----

  private async handleChildExit(child: Process, reason: ExitReason): Promise<void> {
    if (this.status !== 'running') return;
    const rec = this.byPid.get(child.pid);
    if (!rec || rec.process !== child) return; // stale: already stopped on purpose or replaced
    this.byPid.delete(child.pid);
    rec.process = undefined;
    rec.state = 'stopped';
    rec.lastExit = reason;
    if (!needsRestart(rec.spec.restart, reason)) {
      if (rec.spec.restart === 'temporary') this.remove(rec);
      if (rec.spec.significant) await this.maybeAutoShutdown(rec);
      return;
    }
    this.runtime.logger.warn(`child '${rec.spec.id}' of ${this.name} exited: ${formatExitReason(reason)}`, {
      pid: child.pid,
    });
    await this.restart(rec, child.pid, this.runtime.clock.now());
  }

  private async restart(rec: ChildRecord, oldPid: Pid | undefined, detectedAt: number): Promise<void> {
    const decision = addRestart(this.restartTimes, this.runtime.clock.now(), this);
    this.restartTimes = decision.times;
    if (decision.decision === 'giveUp') {
      await this.giveUp(rec);
      return;
    }
    rec.restartCount++;
    const group = planRestart(this.strategy, this.records, rec);
    const failed = await this.restartGroup(group, rec);
    if (failed) {
      // OTP try_again_restart: retry later through the mailbox; each try counts as a restart.
      // Until then only the failed child is restarting; the rest of its group is stopped.
      for (const r of group) if (r !== failed && !r.process) r.state = 'stopped';
      failed.state = 'restarting';
      failed.retryTimer = this.runtime.timers.schedule(
        0,
        () => {
          failed.retryTimer = undefined;
          this.mailbox.post(() => this.retry(failed));
        },
        { owner: this.pid, label: `restart:${failed.spec.id}` },
      );
      return;
    }
    const events = this.runtime.events;
    if (events.active)
      events.emit({
        type: 'child.restarted',
        supervisor: this.pid,
        childId: rec.spec.id,
        oldPid,
        pid: rec.process?.pid,
        restartsInWindow: this.restartTimes.length,
        maxRestarts: this.maxRestarts,
        durationMs: this.runtime.clock.now() - detectedAt,
      });
  }

  private async retry(rec: ChildRecord): Promise<void> {
    if (this.status !== 'running' || rec.state !== 'restarting' || !this.records.includes(rec)) return;
    await this.restart(rec, undefined, this.runtime.clock.now());
  }

  private async giveUp(rec: ChildRecord): Promise<void> {
    this.runtime.logger.error(
      `supervisor ${this.name} gave up: more than ${this.maxRestarts} restarts within ${this.periodMs} ms (last: '${rec.spec.id}')`,
      { pid: this.pid },
    );
    const events = this.runtime.events;
    if (events.active)
      events.emit({
        type: 'supervisor.gaveUp',
        supervisor: this.pid,
        name: this.name,
        childId: rec.spec.id,
        maxRestarts: this.maxRestarts,
        periodMs: this.periodMs,
      });
    await this.shutDownSelf(shutdownWith(REACHED_MAX_RESTART_INTENSITY));
  }

  private async maybeAutoShutdown(rec: ChildRecord): Promise<void> {
    if (this.autoShutdown === 'never') return;
    if (this.autoShutdown === 'allSignificant') {
      const othersLeft = this.records.some(
        (r) => r !== rec && r.spec.significant && (r.process || r.state === 'restarting'),
      );
      if (othersLeft) return;
    }
    const events = this.runtime.events;
    if (events.active)
      events.emit({ type: 'supervisor.autoShutdown', supervisor: this.pid, childId: rec.spec.id });
    await this.shutDownSelf(SHUTDOWN);
  }
}

/**
 * Starts a supervisor and its children in order. Errors: a spec or flag code naming the field,
 * `startFailed` (a child's start failed; the children already started were stopped in reverse
 * order), `alreadyStarted` (its via-name is taken).
 */
export async function startSupervisor(
  runtime: Runtime,
  options: SupervisorOptions,
): Promise<SupResult<Supervisor>> {
  const flags = validateSupervisorFlags(options);
  if (!flags.ok) return err(flags.error);
  const specs = validateChildSpecs(options.children ?? [], flags.value.autoShutdown);
  if (!specs.ok) return err(specs.error);
  const sup = new Supervisor(runtime, options.name ?? 'supervisor', flags.value);
  return sup.init(specs.value, options.via);
}

/**
 * A child spec for a nested supervisor (type `supervisor`, shutdown `infinity`): its start
 * throws the nested supervisor's start error, which the parent reports as `startFailed`.
 */
export function supervisorChild(
  runtime: Runtime,
  id: string,
  options: SupervisorOptions,
  extra: Pick<ChildSpec, 'restart' | 'shutdown' | 'significant'> = {},
): ChildSpec {
  return {
    id,
    type: 'supervisor',
    ...extra,
    start: async () => {
      const res = await startSupervisor(runtime, { name: id, ...options });
      if (!res.ok)
        throw Object.assign(new Error(res.error.message), { code: res.error.code, cause: res.error.cause });
      return res.value;
    },
  };
}

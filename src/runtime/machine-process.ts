/**
 * An xstate v5 state machine as a supervised process — our gen_statem.
 *
 * - Snapshot status `error` is an abnormal exit (the error is the reason); `done` is `normal`.
 * - `after` delays run on the runtime's shared timer heap (the actor's `clock` is this process),
 *   so every deadline is known: {@link MachineProcess.timers} lists them for the UI and
 *   {@link MachineProcess.persistedState} includes them for the store.
 * - gen_statem's three timeout kinds besides `after`: a **state timeout** (cancelled when the
 *   state changes), an **event timeout** (cancelled by any event) and **named timeouts** (kept
 *   across states until cancelled or re-armed) — {@link MachineProcess.startTimer}. A named
 *   timeout is how a liveness deadline is pushed back by telemetry without an event going through
 *   the machine.
 * - Restore: xstate does not re-arm delayed transitions from a persisted snapshot
 *   (statelyai/xstate#5331), so this process owns them: a restored machine re-schedules every
 *   persisted timer through xstate's own scheduler, with the time that remained (a deadline that
 *   passed while the app was down fires at once).
 * - Hibernation (gen_statem `hibernate`): after `hibernateAfterMs` without an event, the actor is
 *   dropped; only the persisted snapshot (as a JSON string) and its deadlines stay. The next event
 *   or the earliest deadline wakes it through the same restore path.
 *
 * Deviations from gen_statem: there is no postponing of events and no `next_event` insertion;
 * xstate's own semantics (eventless transitions, `raise`) cover those needs.
 *
 * @example
 * const p = startMachine(rt, { name: 'sensor-1', machine: deviceMachine, hibernateAfterMs: 60_000 });
 * p.send({ type: 'CONNECT' });
 * p.startTimer('named', 'liveness', 30_000, { type: 'LIVENESS_TIMEOUT' });
 */
import type { AnyStateMachine, EventObject, InputFrom, SnapshotFrom } from 'xstate';
import { createActor } from 'xstate';
import type { ExitReason } from './exit-reason.js';
import { NORMAL, errorExit } from './exit-reason.js';
import type { Pid } from './process.js';
import { ProcessBase } from './process.js';
import type { Runtime } from './runtime.js';
import type { TimerRef } from './timers.js';

export type TimerKind = 'after' | 'state' | 'event' | 'named';

/** A running timeout as the store persists it and the UI shows it. */
export interface MachineTimer {
  readonly kind: TimerKind;
  /** For `after`: xstate's scheduled-event id; for named timeouts: the name. */
  readonly id: string;
  readonly event: EventObject;
  readonly delayMs: number;
  /** Absolute wall-clock deadline (epoch ms). */
  readonly wallDeadlineMs: number;
}

/** Everything needed to bring the machine back: its persisted snapshot and running timeouts. */
export interface PersistedMachineState {
  readonly snapshot: unknown;
  readonly timers: readonly MachineTimer[];
}

export interface MachineProcessOptions<TMachine extends AnyStateMachine> {
  readonly name: string;
  readonly machine: TMachine;
  readonly input?: InputFrom<TMachine>;
  /** Resume from this state instead of the machine's initial state. */
  readonly restore?: PersistedMachineState | undefined;
  /** Called after every transition (cheap: pull {@link MachineProcess.persistedState} when needed). */
  readonly onTransition?: ((process: MachineProcess<TMachine>) => void) | undefined;
  /** Drop the actor after this long without an event (gen_statem hibernate). Off by default. */
  readonly hibernateAfterMs?: number | undefined;
  readonly parent?: Pid | undefined;
  readonly childId?: string | undefined;
}

interface Armed {
  kind: TimerKind;
  id: string;
  event: EventObject | undefined; // undefined for xstate's own timers until identified
  ref: TimerRef;
  /** Armed since the last good snapshot (not part of the state a restart resumes). */
  fresh: boolean;
}

type Actor<TMachine extends AnyStateMachine> = ReturnType<typeof createActor<TMachine>>;

/** Human-readable state value: `connected`, `updating.transfer`, `{a,b}` for parallel states. */
export function formatStateValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 1) {
      const [k, v] = entries[0]!;
      return `${k}.${formatStateValue(v)}`;
    }
    return `{${entries.map(([k, v]) => `${k}.${formatStateValue(v)}`).join(',')}}`;
  }
  return String(value);
}

export class MachineProcess<TMachine extends AnyStateMachine = AnyStateMachine> extends ProcessBase {
  private actor: Actor<TMachine> | undefined;
  private readonly machine: TMachine;
  private readonly input: InputFrom<TMachine> | undefined;
  private readonly onTransitionHook: ((p: MachineProcess<TMachine>) => void) | undefined;
  private readonly hibernateAfterMs: number;
  private armed: Armed[] = [];
  /** Last snapshot that was not an error: what a restart resumes from. */
  private lastGood: SnapshotFrom<TMachine> | undefined;
  private stateLabel = '';
  private lastEventType = 'xstate.init';
  private hibernated: { json: string; timers: MachineTimer[] } | undefined;
  private lastActivityMs = 0;
  private idleCheck: TimerRef | undefined;
  private wakeTimer: TimerRef | undefined;
  private quiet = false; // true while we stop the actor ourselves (hibernate, shutdown)

  constructor(runtime: Runtime, options: MachineProcessOptions<TMachine>) {
    super(runtime, 'statem', options.name);
    this.machine = options.machine;
    this.input = options.input;
    this.onTransitionHook = options.onTransition;
    this.hibernateAfterMs = options.hibernateAfterMs ?? 0;
    this.boot(options.restore);
    this.started(options.parent, options.childId);
    if (this.alive) this.touch();
  }

  // ---- the public face ----

  /** Sends an event; wakes a hibernated machine first. Events to an exited machine are dropped. */
  send(event: EventFrom<TMachine>): void {
    if (this.status === 'exited') return;
    if (this.hibernated) this.wake();
    this.cancelKind('event');
    this.lastEventType = event.type;
    this.touch();
    this.actor?.send(event);
  }

  /** The current snapshot (restores a hibernated machine's snapshot without waking it). */
  getSnapshot(): SnapshotFrom<TMachine> | undefined {
    if (this.actor) return this.actor.getSnapshot();
    if (this.hibernated) return this.machine.resolveState(JSON.parse(this.hibernated.json)) as SnapshotFrom<TMachine>;
    return this.lastGood;
  }

  /** The state as text, e.g. `connected` or `updating.transfer`. */
  get state(): string {
    return this.stateLabel;
  }

  get isHibernating(): boolean {
    return this.hibernated !== undefined;
  }

  /** Running timeouts, earliest deadline first. */
  timers(): MachineTimer[] {
    if (this.hibernated) return [...this.hibernated.timers];
    return this.describe(this.armed);
  }

  private describe(armed: readonly Armed[]): MachineTimer[] {
    const out: MachineTimer[] = [];
    for (const a of armed) {
      const event = a.event ?? this.identify(a);
      out.push({ kind: a.kind, id: a.id, event: event ?? { type: 'unknown' }, delayMs: a.ref.delayMs, wallDeadlineMs: a.ref.wallDeadlineMs });
    }
    return out.sort((x, y) => x.wallDeadlineMs - y.wallDeadlineMs);
  }

  /**
   * The state to persist: the last good snapshot (never an error snapshot) and the running
   * timeouts. After a crash this is what the replacement should be restored from.
   */
  persistedState(): PersistedMachineState | undefined {
    if (this.hibernated) return { snapshot: JSON.parse(this.hibernated.json), timers: [...this.hibernated.timers] };
    if (!this.lastGood) return undefined;
    return { snapshot: this.persistSnapshot(this.lastGood), timers: this.alive ? this.timers() : this.lastTimers };
  }

  /**
   * Arms a gen_statem timeout that delivers `event` to the machine when it fires. Re-arming a
   * name (or the single state/event timeout) replaces the running one.
   */
  startTimer(kind: Exclude<TimerKind, 'after'>, id: string, delayMs: number, event: EventObject): void {
    if (this.status === 'exited') return;
    if (this.hibernated) this.wake();
    this.cancelTimer(kind, id);
    this.arm(kind, kind === 'named' ? id : kind, event, delayMs);
  }

  /** Cancels a gen_statem timeout; returns whether one was running. */
  cancelTimer(kind: Exclude<TimerKind, 'after'>, id: string): boolean {
    const key = kind === 'named' ? id : kind;
    const i = this.armed.findIndex((a) => a.kind === kind && a.id === key);
    if (i < 0) return false;
    const [a] = this.armed.splice(i, 1);
    this.runtime.timers.cancel(a!.ref);
    this.emitTimer('timer.cancelled', a!.id);
    return true;
  }

  // ---- the clock xstate schedules its `after` delays on (this object is the actor's clock) ----

  /** @internal xstate's clock contract. */
  setTimeout(fn: () => void, delayMs: number): TimerRef {
    const armed: Armed = { kind: 'after', id: '', event: undefined, ref: undefined as unknown as TimerRef, fresh: true };
    armed.ref = this.runtime.timers.schedule(
      delayMs,
      () => {
        this.disarm(armed);
        if (this.status === 'exited' || !this.actor) return;
        this.emitTimer('timer.fired', armed.id);
        this.lastEventType = armed.event?.type ?? armed.id;
        this.touch();
        fn();
      },
      { owner: this.pid, label: 'after' },
    );
    this.armed.push(armed);
    this.identify(armed);
    if (this.runtime.events.active)
      this.runtime.events.emit({
        type: 'timer.scheduled',
        pid: this.pid,
        label: armed.id || 'after',
        delayMs,
        wallDeadlineMs: armed.ref.wallDeadlineMs,
      });
    return armed.ref;
  }

  /** @internal xstate's clock contract. */
  clearTimeout(ref: TimerRef): void {
    const i = this.armed.findIndex((a) => a.ref === ref);
    if (i >= 0) {
      const [a] = this.armed.splice(i, 1);
      // xstate cancels every timer when the actor fails; remember the ones of the last good
      // state, so the replacement resumes them.
      if (!a!.fresh) (this.cancelledSinceGood ??= []).push(a!);
      this.emitTimer('timer.cancelled', a!.id);
    }
    this.runtime.timers.cancel(ref);
  }

  // ---- xstate observer ----

  /** @internal */
  next(snapshot: SnapshotFrom<TMachine>): void {
    if (this.status === 'exited' || this.quiet) return;
    const status = (snapshot as { status: string }).status;
    if (status === 'error') return; // the error callback ends the process
    const before = this.stateLabel;
    this.lastGood = snapshot;
    this.cancelledSinceGood = undefined;
    for (const a of this.armed) a.fresh = false;
    const after = formatStateValue((snapshot as { value: unknown }).value);
    if (after !== before) {
      this.stateLabel = after;
      this.cancelKind('state');
      const events = this.runtime.events;
      if (events.active)
        events.emit({ type: 'state.transition', pid: this.pid, name: this.name, from: before, to: after, event: this.lastEventType });
    }
    this.onTransitionHook?.(this);
    if (status === 'done') this.finish(NORMAL);
  }

  /** @internal */
  error(error: unknown): void {
    if (this.status === 'exited' || this.quiet) return;
    this.finish(errorExit(error));
  }

  /** @internal */
  complete(): void {}

  // ---- lifecycle ----

  protected terminate(): void {
    this.lastTimers = this.timers();
    this.teardown();
  }

  protected override release(): void {
    this.teardown();
  }

  private lastTimers: MachineTimer[] = [];
  private cancelledSinceGood: Armed[] | undefined;

  private finish(reason: ExitReason): void {
    if (reason.type === 'error') {
      const good = this.armed.filter((a) => !a.fresh).concat(this.cancelledSinceGood ?? []);
      this.lastTimers = this.describe(good);
    } else {
      this.lastTimers = this.timers();
    }
    this.teardown();
    this.exit(reason);
  }

  private teardown(): void {
    this.quiet = true;
    for (const a of this.armed) this.runtime.timers.cancel(a.ref);
    this.armed = [];
    if (this.idleCheck) this.runtime.timers.cancel(this.idleCheck);
    if (this.wakeTimer) this.runtime.timers.cancel(this.wakeTimer);
    this.idleCheck = undefined;
    this.wakeTimer = undefined;
    const actor = this.actor;
    this.actor = undefined;
    try {
      actor?.stop();
    } catch (error) {
      this.runtime.report(`stopping the actor of ${this.name} failed`, error, this.pid);
    }
  }

  private boot(restore: PersistedMachineState | undefined): void {
    this.quiet = false;
    const options: Record<string, unknown> = { clock: this };
    if (this.input !== undefined) options.input = this.input;
    if (restore) options.snapshot = restore.snapshot;
    let actor: Actor<TMachine>;
    try {
      actor = createActor(this.machine, options as Parameters<typeof createActor<TMachine>>[1]);
    } catch (error) {
      // A snapshot that does not fit the machine: the process exits with the reason.
      this.finish(errorExit(error));
      return;
    }
    this.actor = actor;
    actor.subscribe(this);
    try {
      actor.start();
    } catch (error) {
      this.finish(errorExit(error));
      return;
    }
    if (this.status === 'exited') return;
    const snap = actor.getSnapshot();
    if ((snap as { status: string }).status === 'error') {
      this.finish(errorExit((snap as { error: unknown }).error));
      return;
    }
    this.lastGood = snap;
    this.stateLabel = formatStateValue((snap as { value: unknown }).value);
    if (restore) this.rearm(restore.timers);
    if ((snap as { status: string }).status === 'done') this.finish(NORMAL);
  }

  /** Re-schedules persisted timeouts with the time that remains (passed deadlines fire at once). */
  private rearm(timers: readonly MachineTimer[]): void {
    const now = this.runtime.clock.wallNow();
    for (const t of timers) {
      const remaining = Math.max(0, t.wallDeadlineMs - now);
      if (t.kind === 'after') {
        const actor = this.actor;
        if (!actor) return;
        // Through xstate's scheduler with the original id, so leaving the state cancels it.
        actor.system.scheduler.schedule(actor, actor, t.event, remaining, t.id);
      } else {
        this.arm(t.kind, t.id, t.event, remaining);
      }
    }
  }

  private arm(kind: TimerKind, id: string, event: EventObject, delayMs: number): void {
    const armed: Armed = { kind, id, event, ref: undefined as unknown as TimerRef, fresh: true };
    armed.ref = this.runtime.timers.schedule(
      delayMs,
      () => {
        this.disarm(armed);
        if (this.status === 'exited') return;
        this.emitTimer('timer.fired', id);
        if (this.hibernated) this.wake();
        if (kind !== 'event') this.cancelKind('event');
        this.lastEventType = event.type;
        this.touch();
        this.actor?.send(event as EventFrom<TMachine>);
      },
      { owner: this.pid, label: `${kind}:${id}` },
    );
    this.armed.push(armed);
    if (this.runtime.events.active)
      this.runtime.events.emit({
        type: 'timer.scheduled',
        pid: this.pid,
        label: `${kind}:${id}`,
        delayMs,
        wallDeadlineMs: armed.ref.wallDeadlineMs,
      });
  }

  private disarm(armed: Armed): void {
    const i = this.armed.indexOf(armed);
    if (i >= 0) this.armed.splice(i, 1);
  }

  private cancelKind(kind: TimerKind): void {
    if (this.armed.length === 0) return;
    for (let i = this.armed.length - 1; i >= 0; i--) {
      const a = this.armed[i]!;
      if (a.kind !== kind) continue;
      this.armed.splice(i, 1);
      this.runtime.timers.cancel(a.ref);
      this.emitTimer('timer.cancelled', `${kind}:${a.id}`);
    }
  }

  /** Finds the xstate scheduled event behind an `after` timer (id and event, for persistence). */
  private identify(armed: Armed): EventObject | undefined {
    if (armed.event || !this.actor) return armed.event;
    const scheduled = this.actor.system.getSnapshot()._scheduledEvents;
    for (const key in scheduled) {
      const s = scheduled[key]!;
      if (this.armed.some((a) => a !== armed && a.kind === 'after' && a.id === s.id)) continue;
      armed.id = s.id;
      armed.event = s.event;
      return s.event;
    }
    return undefined;
  }

  private emitTimer(type: 'timer.fired' | 'timer.cancelled', label: string): void {
    const events = this.runtime.events;
    if (events.active) events.emit({ type, pid: this.pid, label });
  }

  private persistSnapshot(snapshot: SnapshotFrom<TMachine>): unknown {
    return this.machine.getPersistedSnapshot(snapshot);
  }

  // ---- hibernation ----

  private touch(): void {
    if (this.hibernateAfterMs <= 0) return;
    this.lastActivityMs = this.runtime.clock.now();
    if (!this.idleCheck) this.scheduleIdleCheck(this.hibernateAfterMs);
  }

  private scheduleIdleCheck(delayMs: number): void {
    this.idleCheck = this.runtime.timers.schedule(
      delayMs,
      () => {
        this.idleCheck = undefined;
        if (this.status !== 'running' || this.hibernated) return;
        const idleMs = this.runtime.clock.now() - this.lastActivityMs;
        if (idleMs >= this.hibernateAfterMs) this.hibernate();
        else this.scheduleIdleCheck(this.hibernateAfterMs - idleMs);
      },
      { owner: this.pid, label: 'hibernate' },
    );
  }

  /** Drops the actor, keeping only the persisted snapshot and the deadlines. */
  hibernate(): void {
    if (this.status !== 'running' || this.hibernated || !this.lastGood) return;
    const timers = this.timers();
    const json = JSON.stringify(this.persistSnapshot(this.lastGood));
    this.teardown();
    this.lastGood = undefined;
    this.hibernated = { json, timers };
    if (timers.length > 0) {
      const earliest = timers[0]!.wallDeadlineMs - this.runtime.clock.wallNow();
      this.wakeTimer = this.runtime.timers.schedule(
        Math.max(0, earliest),
        () => {
          this.wakeTimer = undefined;
          if (this.status === 'running' && this.hibernated) this.wake();
        },
        { owner: this.pid, label: 'wake' },
      );
    }
  }

  private wake(): void {
    const h = this.hibernated;
    if (!h) return;
    this.hibernated = undefined;
    if (this.wakeTimer) this.runtime.timers.cancel(this.wakeTimer);
    this.wakeTimer = undefined;
    this.boot({ snapshot: JSON.parse(h.json), timers: h.timers });
    this.touch();
  }
}

type EventFrom<TMachine extends AnyStateMachine> = Parameters<Actor<TMachine>['send']>[0];

/** Starts a machine process (see {@link MachineProcess}). */
export function startMachine<TMachine extends AnyStateMachine>(
  runtime: Runtime,
  options: MachineProcessOptions<TMachine>,
): MachineProcess<TMachine> {
  return new MachineProcess(runtime, options);
}

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
 * - Every event the actor processes goes on the runtime's stream as `machine.event`, with its
 *   payload and the state before and after it (the inspector's history); `state.transition` only
 *   when the state changes.
 * - Hibernation (gen_statem `hibernate`): after `hibernateAfterMs` without an event, the actor is
 *   dropped; only the persisted snapshot and deadlines stay, as one JSON string. The next event or
 *   the earliest deadline wakes it through the same restore path.
 *
 * Memory matters (one process per device, 100k devices): everything a kind shares lives in one
 * {@link MachineConfig}; each timer is one small object, not a closure; rarely used state sits
 * in a lazily made side object.
 *
 * Deviations from gen_statem: no postponing of events and no `next_event` insertion; xstate's own
 * semantics (eventless transitions, `raise`) cover those needs.
 *
 * @example
 * const sensorKind: MachineConfig<typeof deviceMachine> = { machine: deviceMachine, hibernateAfterMs: 60_000 };
 * const p = startMachine(rt, 'sensor-1', sensorKind);
 * p.send({ type: 'CONNECT' });
 * p.startTimer('named', 'liveness', 30_000, { type: 'LIVENESS_TIMEOUT' });
 */
import type { AnyStateMachine, EventObject, InputFrom, SnapshotFrom } from 'xstate';
import { createActor } from 'xstate';
import type { ExitReason } from './exit-reason.js';
import { errorExit, NORMAL } from './exit-reason.js';
import type { Pid } from './process.js';
import { ProcessBase } from './process.js';
import type { Runtime } from './runtime.js';
import type { TimerRef, TimerService } from './timers.js';
import { TimerEntry } from './timers.js';

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

/** What every process of one kind shares (pass the same object to every start). */
export interface MachineConfig<TMachine extends AnyStateMachine = AnyStateMachine> {
  readonly machine: TMachine;
  readonly input?: InputFrom<TMachine>;
  /** Called after every snapshot (cheap: pull {@link MachineProcess.persistedState} when needed). */
  readonly onTransition?: ((process: MachineProcess<TMachine>) => void) | undefined;
  /** Drop the actor after this long without an event (gen_statem hibernate). Off by default. */
  readonly hibernateAfterMs?: number | undefined;
}

export interface MachineStartOptions {
  /** Resume from this state instead of the machine's initial state. */
  readonly restore?: PersistedMachineState | undefined;
  readonly parent?: Pid | undefined;
  readonly childId?: string | undefined;
}

type Actor<TMachine extends AnyStateMachine> = ReturnType<typeof createActor<TMachine>>;
type EventFrom<TMachine extends AnyStateMachine> = Parameters<Actor<TMachine>['send']>[0];

/**
 * One running timeout of a machine process: its own entry in the runtime's timer heap (the
 * label is its kind) and its own callback, and a link in the process's list of running timeouts
 * (most machines run one at a time: no array per process).
 */
class Armed extends TimerEntry {
  /** Armed since the last good snapshot (not part of the state a restart resumes). */
  fresh = true;
  next: Armed | undefined = undefined;
  constructor(
    readonly process: MachineProcess,
    /** For `after`: xstate's scheduled-event id; for named timeouts: the name. */
    public name: string,
    public event: EventObject | undefined,
    /** xstate's callback for an `after` delay (it holds the actor: dropped once cancelled or fired). */
    public xstateFn: (() => void) | undefined,
  ) {
    super();
  }
  get kind(): TimerKind {
    return this.label as TimerKind;
  }
  onTimer(): void {
    this.process.fire(this);
  }
  /**
   * Cancels it. A cancelled entry waits in the timer heap until the heap is compacted, so it lets
   * go of xstate's callback (and through it the actor) now.
   */
  cancel(timers: TimerService): void {
    timers.cancel(this);
    this.xstateFn = undefined;
  }
}

/** Rarely used state, made on first need. */
interface Extra {
  hibernated?: string | undefined; // see encodeHibernated
  lastActivityMs: number;
  idleCheck?: TimerRef | undefined;
  wakeTimer?: TimerRef | undefined;
  lastTimers?: MachineTimer[] | undefined;
}

/** Human-readable state value: `connected`, `running.idle` for a nested state, `{a.x,b.y}` for parallel states. */
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

const INIT_EVENT: EventObject = Object.freeze({ type: 'xstate.init' });
const AFTER_EVENT: EventObject = Object.freeze({ type: 'xstate.after' });

const statusOf = (s: unknown) => (s as { status: string }).status;
const stateValueOf = (s: unknown) => (s as { value: unknown }).value;

export class MachineProcess<TMachine extends AnyStateMachine = AnyStateMachine> extends ProcessBase {
  private actor: Actor<TMachine> | undefined = undefined;
  /** Running timeouts, in the order they were armed (a list through {@link Armed.next}). */
  private armed: Armed | undefined = undefined;
  /** Last snapshot that was not an error: what a restart resumes from. */
  private lastGood: SnapshotFrom<TMachine> | undefined = undefined;
  private stateLabel = '';
  /** The event being processed (held until the next one: one small object per machine). */
  private lastEvent: EventObject = INIT_EVENT;
  private quiet = false; // true while we stop the actor ourselves
  private extra: Extra | undefined = undefined;
  /** Timers of the last good state that xstate cancelled since (restored after a crash). */
  private lostSinceGood: Armed | Armed[] | undefined = undefined;
  /** xstate's own `scheduler.schedule`, wrapped by {@link identifyingSchedule}. */
  xstateSchedule: ScheduleFn | undefined = undefined;

  constructor(
    runtime: Runtime,
    name: string,
    readonly config: MachineConfig<TMachine>,
    options: MachineStartOptions = {},
  ) {
    super(runtime, 'statem', name);
    this.boot(options.restore);
    this.started(options.parent, options.childId);
    if (this.alive) this.touch();
  }

  // ---- the public face ----

  /** Sends an event; wakes a hibernated machine first. Events to an exited machine are dropped. */
  send(event: EventFrom<TMachine>): void {
    if (this.status === 'exited') return;
    if (this.extra?.hibernated) this.wake();
    if (this.armed) this.cancelKind('event');
    this.lastEvent = event;
    if (this.config.hibernateAfterMs) this.touch();
    this.actor?.send(event);
  }

  /** The current snapshot (a hibernated machine's is resolved without waking it). */
  getSnapshot(): SnapshotFrom<TMachine> | undefined {
    if (this.actor) return this.actor.getSnapshot();
    const h = this.extra?.hibernated;
    if (h)
      return this.config.machine.resolveState(
        decodeHibernated(h).snapshot as never,
      ) as SnapshotFrom<TMachine>;
    return this.lastGood;
  }

  /** The state as text, e.g. `connected` or `running.idle`. */
  get state(): string {
    return this.stateLabel;
  }

  get isHibernating(): boolean {
    return this.extra?.hibernated !== undefined;
  }

  /** Running timeouts, earliest deadline first. */
  timers(): MachineTimer[] {
    const h = this.extra?.hibernated;
    if (h) return [...decodeHibernated(h).timers];
    return this.describe(this.armedList());
  }

  /**
   * The state to persist: the last good snapshot (never an error snapshot) and the running
   * timeouts. After a crash this is what the replacement should be restored from.
   */
  persistedState(): PersistedMachineState | undefined {
    const h = this.extra?.hibernated;
    if (h) return decodeHibernated(h);
    if (!this.lastGood) return undefined;
    return {
      snapshot: this.config.machine.getPersistedSnapshot(this.lastGood),
      timers: this.alive ? this.timers() : (this.extra?.lastTimers ?? []),
    };
  }

  /**
   * Arms a gen_statem timeout that delivers `event` when it fires. Re-arming a name (or the
   * single state/event timeout) replaces the running one.
   */
  startTimer(kind: Exclude<TimerKind, 'after'>, id: string, delayMs: number, event: EventObject): void {
    if (this.status === 'exited') return;
    if (this.extra?.hibernated) this.wake();
    this.cancelTimer(kind, id);
    this.arm(
      new Armed(this as unknown as MachineProcess, kind === 'named' ? id : kind, event, undefined),
      kind,
      delayMs,
    );
  }

  /** Whether a gen_statem timeout is running (cheap: no list is built). */
  hasTimer(kind: Exclude<TimerKind, 'after'>, id: string): boolean {
    return this.findTimer(kind, id) !== undefined;
  }

  /** Milliseconds left on a gen_statem timeout (runtime clock), or undefined when none runs. */
  timerRemainingMs(kind: Exclude<TimerKind, 'after'>, id: string): number | undefined {
    const a = this.findTimer(kind, id);
    return a ? a.deadlineMs - this.runtime.clock.now() : undefined;
  }

  /** Cancels a gen_statem timeout; returns whether one was running. */
  cancelTimer(kind: Exclude<TimerKind, 'after'>, id: string): boolean {
    const a = this.findTimer(kind, id);
    if (!a) return false;
    this.unlink(a);
    a.cancel(this.runtime.timers);
    this.emitTimer('timer.cancelled', a);
    return true;
  }

  // ---- the clock xstate schedules its delays on (this object is the actor's clock) ----

  /** @internal xstate's clock contract. */
  setTimeout(fn: () => void, delayMs: number): Armed {
    // xstate's scheduler handed us the id and event just before calling this clock.
    const armed = new Armed(this as unknown as MachineProcess, handoffId ?? '', handoffEvent, fn);
    return this.arm(armed, 'after', delayMs);
  }

  /** @internal xstate's clock contract. */
  clearTimeout(armed: Armed): void {
    if (!this.unlink(armed)) return;
    armed.cancel(this.runtime.timers);
    // xstate cancels timers on the way to a failure too: remember the ones of the last good
    // state, so a replacement resumes them. One field, no allocation, in the common case.
    if (!armed.fresh) {
      const lost = this.lostSinceGood;
      if (lost === undefined) this.lostSinceGood = armed;
      else if (Array.isArray(lost)) lost.push(armed);
      else this.lostSinceGood = [lost, armed];
    }
    this.emitTimer('timer.cancelled', armed);
  }

  /** @internal called by an {@link Armed} timer. */
  fire(armed: Armed): void {
    this.unlink(armed);
    if (this.status === 'exited') return;
    this.emitTimer('timer.fired', armed);
    if (this.extra?.hibernated) this.wake();
    if (armed.kind !== 'event' && this.armed) this.cancelKind('event');
    if (this.config.hibernateAfterMs) this.touch();
    const xstateFn = armed.xstateFn;
    armed.xstateFn = undefined;
    if (xstateFn) {
      this.lastEvent = armed.event ?? AFTER_EVENT;
      xstateFn();
    } else if (armed.event) {
      this.lastEvent = armed.event;
      this.actor?.send(armed.event as EventFrom<TMachine>);
    }
  }

  // ---- xstate observer ----

  /** @internal */
  next(snapshot: SnapshotFrom<TMachine>): void {
    if (this.status === 'exited' || this.quiet) return;
    const status = statusOf(snapshot);
    if (status === 'error') return; // the error callback ends the process
    this.lastGood = snapshot;
    this.lostSinceGood = undefined;
    for (let a = this.armed; a; a = a.next) a.fresh = false;
    const value = stateValueOf(snapshot);
    const after = typeof value === 'string' ? value : formatStateValue(value);
    const before = this.stateLabel;
    const events = this.runtime.events;
    if (after !== before) {
      this.stateLabel = after;
      if (this.armed) this.cancelKind('state');
      if (events.active)
        events.emit({
          type: 'state.transition',
          pid: this.pid,
          name: this.name,
          from: before,
          to: after,
          event: this.lastEvent.type,
        });
    }
    // A wake from hibernation replays the init of the same state: not an event anyone sent.
    if (events.active && !(this.lastEvent === INIT_EVENT && before === after))
      events.emit({
        type: 'machine.event',
        pid: this.pid,
        name: this.name,
        event: this.lastEvent,
        from: before,
        to: after,
      });
    this.config.onTransition?.(this);
    if (status === 'done') this.finish(NORMAL);
  }

  /**
   * @internal xstate calls an observer's `error` detached from its object, so it is a getter
   * that binds on use: the closure exists only when the machine actually fails.
   */
  get error(): (error: unknown) => void {
    return (error: unknown) => {
      if (this.status === 'exited' || this.quiet) return;
      this.finish(errorExit(error));
    };
  }

  /** @internal */
  complete(): void {}

  // ---- lifecycle ----

  protected terminate(): void {
    this.extraState().lastTimers = this.timers();
    this.teardown();
  }

  protected override release(): void {
    this.teardown();
  }

  private finish(reason: ExitReason): void {
    if (reason.type === 'error') {
      const good = this.armedList()
        .filter((a) => !a.fresh)
        .concat(this.lostSinceGood ?? []);
      this.extraState().lastTimers = this.describe(good);
    } else {
      this.extraState().lastTimers = this.timers();
    }
    this.teardown();
    this.exit(reason);
  }

  private teardown(): void {
    this.quiet = true;
    for (let a = this.armed; a; a = a.next) a.cancel(this.runtime.timers);
    this.armed = undefined;
    const extra = this.extra;
    if (extra) {
      if (extra.idleCheck) this.runtime.timers.cancel(extra.idleCheck);
      if (extra.wakeTimer) this.runtime.timers.cancel(extra.wakeTimer);
      extra.idleCheck = undefined;
      extra.wakeTimer = undefined;
    }
    const actor = this.actor;
    this.actor = undefined;
    this.xstateSchedule = undefined; // it holds the old actor system alive
    this.lostSinceGood = undefined;
    try {
      actor?.stop();
    } catch (error) {
      this.runtime.report(`stopping the actor of ${this.name} failed`, error, this.pid);
    }
  }

  private boot(restore: PersistedMachineState | undefined): void {
    this.quiet = false;
    this.lastEvent = INIT_EVENT;
    const options: { clock: MachineProcess<TMachine>; input?: unknown; snapshot?: unknown } = { clock: this };
    if (this.config.input !== undefined) options.input = this.config.input;
    if (restore) options.snapshot = restore.snapshot;
    let actor: Actor<TMachine>;
    try {
      actor = createActor(this.config.machine, options as Parameters<typeof createActor<TMachine>>[1]);
    } catch (error) {
      this.finish(errorExit(error)); // a snapshot that does not fit the machine
      return;
    }
    this.actor = actor;
    observe(actor, this);
    const scheduler = actor.system.scheduler as { schedule: ScheduleFn };
    this.xstateSchedule = scheduler.schedule;
    scheduler.schedule = identifyingSchedule;
    try {
      actor.start();
    } catch (error) {
      this.finish(errorExit(error));
      return;
    }
    if (this.status === 'exited') return;
    const snap = actor.getSnapshot();
    if (statusOf(snap) === 'error') {
      this.finish(errorExit((snap as { error: unknown }).error));
      return;
    }
    this.lastGood = snap;
    this.stateLabel = formatStateValue(stateValueOf(snap));
    if (restore) this.rearm(restore.timers);
    if (statusOf(snap) === 'done') this.finish(NORMAL);
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
        this.arm(new Armed(this as unknown as MachineProcess, t.id, t.event, undefined), t.kind, remaining);
      }
    }
  }

  private arm(armed: Armed, kind: TimerKind, delayMs: number): Armed {
    this.runtime.timers.arm(armed, delayMs, this.pid, kind);
    if (!this.armed) this.armed = armed;
    else {
      let last = this.armed;
      while (last.next) last = last.next;
      last.next = armed;
    }
    const events = this.runtime.events;
    if (events.active) {
      events.emit({
        type: 'timer.scheduled',
        pid: this.pid,
        label: `${kind}:${armed.name}`,
        delayMs,
        wallDeadlineMs: armed.wallDeadlineMs,
      });
    }
    return armed;
  }

  /** Takes a timeout out of the running list; false when it was not in it. */
  private unlink(armed: Armed): boolean {
    let prev: Armed | undefined;
    for (let a = this.armed; a; prev = a, a = a.next) {
      if (a !== armed) continue;
      if (prev) prev.next = a.next;
      else this.armed = a.next;
      a.next = undefined;
      return true;
    }
    return false;
  }

  private findTimer(kind: Exclude<TimerKind, 'after'>, id: string): Armed | undefined {
    const key = kind === 'named' ? id : kind;
    for (let a = this.armed; a; a = a.next) if (a.kind === kind && a.name === key) return a;
    return undefined;
  }

  private armedList(): Armed[] {
    const out: Armed[] = [];
    for (let a = this.armed; a; a = a.next) out.push(a);
    return out;
  }

  private cancelKind(kind: TimerKind): void {
    // At most one state and one event timeout runs (arming one replaces the other).
    let prev: Armed | undefined;
    let a = this.armed;
    while (a) {
      const next = a.next;
      if (a.kind !== kind) {
        prev = a;
        a = next;
        continue;
      }
      if (prev) prev.next = next;
      else this.armed = next;
      a.next = undefined;
      a.cancel(this.runtime.timers);
      this.emitTimer('timer.cancelled', a);
      a = next;
    }
  }

  private describe(armed: readonly Armed[]): MachineTimer[] {
    const out: MachineTimer[] = [];
    for (const a of armed) {
      out.push({
        kind: a.kind,
        id: a.name,
        event: a.event ?? { type: 'xstate.after' },
        delayMs: a.delayMs,
        wallDeadlineMs: a.wallDeadlineMs,
      });
    }
    return out.sort((x, y) => x.wallDeadlineMs - y.wallDeadlineMs);
  }

  private emitTimer(type: 'timer.fired' | 'timer.cancelled', a: Armed): void {
    const events = this.runtime.events;
    if (events.active) events.emit({ type, pid: this.pid, label: `${a.kind}:${a.name}` });
  }

  private extraState(): Extra {
    if (!this.extra) this.extra = { lastActivityMs: 0 };
    return this.extra;
  }

  // ---- hibernation ----

  private touch(): void {
    const after = this.config.hibernateAfterMs;
    if (!after) return;
    const extra = this.extraState();
    extra.lastActivityMs = this.runtime.clock.now();
    if (!extra.idleCheck) this.scheduleIdleCheck(after);
  }

  private scheduleIdleCheck(delayMs: number): void {
    const extra = this.extraState();
    extra.idleCheck = this.runtime.timers.schedule(
      delayMs,
      () => {
        extra.idleCheck = undefined;
        if (this.status !== 'running' || extra.hibernated) return;
        const after = this.config.hibernateAfterMs ?? 0;
        const idleMs = this.runtime.clock.now() - extra.lastActivityMs;
        if (idleMs >= after) this.hibernate();
        else this.scheduleIdleCheck(after - idleMs);
      },
      { owner: this.pid, label: 'hibernate' },
    );
  }

  /** Drops the actor, keeping only the persisted snapshot and the deadlines (one JSON string). */
  hibernate(): void {
    if (this.status !== 'running' || this.extra?.hibernated || !this.lastGood) return;
    const timers = this.timers();
    const json = encodeHibernated(this.config.machine.getPersistedSnapshot(this.lastGood), timers);
    this.teardown();
    this.lastGood = undefined;
    const extra = this.extraState();
    extra.hibernated = json;
    extra.lastTimers = undefined;
    if (timers.length > 0) {
      const earliest = timers[0]!.wallDeadlineMs - this.runtime.clock.wallNow();
      extra.wakeTimer = this.runtime.timers.schedule(
        Math.max(0, earliest),
        () => {
          extra.wakeTimer = undefined;
          if (this.status === 'running' && extra.hibernated) this.wake();
        },
        { owner: this.pid, label: 'wake' },
      );
    }
  }

  private wake(): void {
    const extra = this.extra;
    const h = extra?.hibernated;
    if (!extra || !h) return;
    extra.hibernated = undefined;
    if (extra.wakeTimer) this.runtime.timers.cancel(extra.wakeTimer);
    extra.wakeTimer = undefined;
    this.boot(decodeHibernated(h));
    this.touch();
  }
}

type ScheduleFn = (source: unknown, target: unknown, event: EventObject, delay: number, id?: string) => void;

// A synchronous hand-off: xstate's scheduler records a delayed event and at once calls the
// actor's clock; the wrapper below leaves the event's id and body here for that call to take.
let handoffId: string | undefined;
let handoffEvent: EventObject | undefined;

/**
 * Replaces `actor.system.scheduler.schedule` (a public object of xstate's) so each `after` timer
 * is named — id and event, for persistence and the UI — when it is armed, with no scanning and
 * no closure per actor: every actor of our systems has its process as `clock`.
 */
function identifyingSchedule(
  source: unknown,
  target: unknown,
  event: EventObject,
  delay: number,
  id?: string,
): void {
  const owner = (source as { clock?: unknown }).clock;
  if (!(owner instanceof MachineProcess) || !owner.xstateSchedule)
    throw new Error('xstate scheduler without its process');
  handoffId = id;
  handoffEvent = event;
  try {
    owner.xstateSchedule(source, target, event, delay, id);
  } finally {
    handoffId = undefined;
    handoffEvent = undefined;
  }
}

/**
 * A hibernated machine as one short JSON string: the persisted snapshot without its defaults
 * (status active, empty history and children) and each timer as a tuple, its event left out
 * when it is just `{ type: id }` (xstate's `after` events).
 */
export function encodeHibernated(snapshot: unknown, timers: readonly MachineTimer[]): string {
  const { status, historyValue, children, ...rest } = snapshot as Record<string, unknown>;
  const s: Record<string, unknown> = rest;
  if (status !== 'active') s.status = status;
  if (historyValue && Object.keys(historyValue).length > 0) s.historyValue = historyValue;
  if (children && Object.keys(children).length > 0) s.children = children;
  const t = timers.map((x) => {
    const tuple: unknown[] = [x.kind, x.id, x.wallDeadlineMs, x.delayMs];
    if (!(x.event.type === x.id && Object.keys(x.event).length === 1)) tuple.push(x.event);
    return tuple;
  });
  return JSON.stringify([s, t]);
}

export function decodeHibernated(json: string): PersistedMachineState {
  const [s, t] = JSON.parse(json) as [
    Record<string, unknown>,
    [TimerKind, string, number, number, EventObject?][],
  ];
  const snapshot = { status: 'active', historyValue: {}, children: {}, ...s };
  const timers = t.map(([kind, id, wallDeadlineMs, delayMs, event]) => ({
    kind,
    id,
    wallDeadlineMs,
    delayMs,
    event: event ?? { type: id },
  }));
  return { snapshot, timers };
}

/**
 * Registers the process as the actor's observer. xstate's `subscribe` wraps an observer in a new
 * object with three bound functions plus a subscription (~250 B a device); adding the process
 * itself to the actor's observer set costs nothing (xstate calls `next` and `complete` as
 * methods, and reads `error` as a property — see the getter). That set is private to xstate, so
 * this falls back to `subscribe` if it ever changes shape; the machine-process tests cover the
 * transition and the error path through it.
 */
function observe(actor: { subscribe(o: object): unknown }, observer: object): void {
  const observers = (actor as unknown as { observers?: unknown }).observers;
  if (observers instanceof Set) observers.add(observer);
  else actor.subscribe(observer);
}

/** Starts a machine process (see {@link MachineProcess}). */
export function startMachine<TMachine extends AnyStateMachine>(
  runtime: Runtime,
  name: string,
  config: MachineConfig<TMachine>,
  options: MachineStartOptions = {},
): MachineProcess<TMachine> {
  return new MachineProcess(runtime, name, config, options);
}

/**
 * An xstate v5 state machine as a supervised process — our gen_statem.
 *
 * - Snapshot status `error` is an abnormal exit (the error is the reason); `done` is `normal`.
 * - `after` delays (and delayed raise/sendTo, a child's too) run on the runtime's shared timer
 *   heap: the actor system's scheduler is `runtimeScheduler` (machine-timeouts.ts), and the
 *   actors' `clock` is this process. So every deadline is known: {@link MachineProcess.timers}
 *   lists them for the UI and {@link MachineProcess.persistedState} includes them for the store.
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
 * {@link MachineConfig}; each timer is one small object, not a closure (xstate's own scheduler
 * is not used: it keeps a closure, records and map entries per pending delay); rarely used state
 * sits in a lazily made side object.
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
import { errorExit, NORMAL } from './exit-reason.js';
import type { Actor } from './machine-lifecycle.js';
import {
  formatStateValue,
  INIT_EVENT,
  MachineLifecycle,
  stateValueOf,
  statusOf,
} from './machine-lifecycle.js';
import type { PersistedMachineState } from './machine-persistence.js';
import { decodeHibernated, encodeHibernated } from './machine-persistence.js';
import type { TimerKind } from './machine-timeouts.js';
import { Armed } from './machine-timeouts.js';
import type { Pid } from './process.js';
import type { Runtime } from './runtime.js';
import type { TimerRef } from './timers.js';

export { formatStateValue } from './machine-lifecycle.js';
export type { PersistedMachineState } from './machine-persistence.js';
export { decodeHibernated, encodeHibernated } from './machine-persistence.js';
export type { MachineTimer, TimerKind } from './machine-timeouts.js';

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

type EventFrom<TMachine extends AnyStateMachine> = Parameters<Actor<TMachine>['send']>[0];

/**
 * The public face of a machine process, the observer of its actor, and hibernation. Its layers:
 * the running timeouts (machine-timeouts.ts), then the actor's lifecycle (machine-lifecycle.ts).
 */
export class MachineProcess<
  TMachine extends AnyStateMachine = AnyStateMachine,
> extends MachineLifecycle<TMachine> {
  constructor(
    runtime: Runtime,
    name: string,
    config: MachineConfig<TMachine>,
    options: MachineStartOptions = {},
  ) {
    super(runtime, name, config);
    this.boot(options.restore);
    this.started(options.parent, options.childId);
    if (this.alive) this.touch();
  }

  // ---- the public face ----

  /** Sends an event; wakes a hibernated machine first. Events to an exited machine are dropped. */
  send(event: EventFrom<TMachine>): void {
    if (!this.alive) return;
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

  /**
   * Arms a gen_statem timeout that delivers `event` when it fires. Re-arming a name (or the
   * single state/event timeout) replaces the running one.
   */
  startTimer(kind: Exclude<TimerKind, 'after'>, id: string, delayMs: number, event: EventObject): void {
    if (!this.alive) return;
    if (this.extra?.hibernated) this.wake();
    this.cancelTimer(kind, id);
    this.arm(new Armed(this, kind === 'named' ? id : kind, event, undefined), kind, delayMs);
  }

  // ---- a running timeout fires ----

  /** @internal called by an {@link Armed} timer. */
  fire(armed: Armed): void {
    this.unlink(armed);
    if (!this.alive) return;
    this.emitTimer('timer.fired', armed);
    if (this.extra?.hibernated) this.wake();
    if (armed.kind !== 'event' && this.armed) this.cancelKind('event');
    if (this.config.hibernateAfterMs) this.touch();
    this.lastEvent = armed.event;
    if (armed.kind === 'after') this.relay(armed);
    else this.actor?.send(armed.event as EventFrom<TMachine>);
  }

  // ---- xstate observer ----

  /** @internal */
  next(snapshot: SnapshotFrom<TMachine>): void {
    if (!this.alive || !this.actor) return;
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
      if (!this.alive || !this.actor) return;
      this.finish(errorExit(error));
    };
  }

  /** @internal */
  complete(): void {}

  // ---- hibernation ----

  private touch(): void {
    const after = this.config.hibernateAfterMs;
    if (!after) return;
    const extra = this.extraState();
    extra.lastActivityMs = this.runtime.clock.now();
    if (!extra.timer) extra.timer = this.hibernationTimer(after, 'hibernate');
  }

  /**
   * @internal its hibernation timer fired (the process is that timer's callback: no closure per
   * device): the idle check while awake, the wake-up at the earliest deadline while hibernated.
   */
  onTimer(): void {
    const extra = this.extraState();
    extra.timer = undefined;
    if (this.status !== 'running') return;
    if (extra.hibernated) {
      this.wake();
      return;
    }
    const after = this.config.hibernateAfterMs ?? 0;
    const idleMs = this.runtime.clock.now() - extra.lastActivityMs;
    if (idleMs >= after) this.hibernate();
    else extra.timer = this.hibernationTimer(after - idleMs, 'hibernate');
  }

  private hibernationTimer(delayMs: number, label: 'hibernate' | 'wake'): TimerRef {
    return this.runtime.timers.schedule(delayMs, this, { owner: this.pid, label });
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
      extra.timer = this.hibernationTimer(Math.max(0, earliest), 'wake');
    }
  }

  private wake(): void {
    const extra = this.extra;
    const h = extra?.hibernated;
    if (!extra || !h) return;
    extra.hibernated = undefined;
    if (extra.timer) this.runtime.timers.cancel(extra.timer);
    extra.timer = undefined;
    this.boot(decodeHibernated(h));
    this.touch();
  }
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

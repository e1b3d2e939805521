/**
 * The running timeouts of a machine process, and the scheduler of its actors' delayed events.
 *
 * xstate's `after` delays (and delayed `raise`/`sendTo`) and gen_statem's state, event and named
 * timeouts all run on the runtime's shared timer heap: each is one {@link Armed} entry, linked
 * into the process's list of running timeouts (most machines run one at a time: no array per
 * process), named (id and event) so every deadline can be listed for the UI and persisted for a
 * restart. The delayed events reach it through {@link runtimeScheduler}, which stands in for the
 * actor system's own scheduler.
 *
 * {@link MachineTimeouts} is the bottom layer of {@link MachineProcess} (machine-process.ts); the
 * actor's lifecycle sits on it (machine-lifecycle.ts).
 */
import type { AnyActorRef, EventObject } from 'xstate';
import { ProcessBase } from './process.js';
import type { TimerService } from './timers.js';
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

/**
 * One running timeout of a machine process: its own entry in the runtime's timer heap (the
 * label is its kind) and its own callback, and a link in the process's list of running timeouts
 * (most machines run one at a time: no array per process).
 */
export class Armed extends TimerEntry {
  /** Armed since the last good snapshot (not part of the state a restart resumes). */
  fresh = true;
  next: Armed | undefined = undefined;
  constructor(
    readonly process: MachineTimeouts,
    /** For `after`: xstate's scheduled-event id; for named timeouts: the name. */
    public name: string,
    public event: EventObject,
    /**
     * For `after` (an xstate delayed event), whom it goes from and to: undefined from the
     * process's actor to itself (an `after` transition, a delayed raise), an actor from and to
     * itself (a child's own delay), or [source, target] (a delayed sendTo). It holds actors:
     * dropped once cancelled or fired.
     */
    public route: Route,
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
    this.route = undefined;
  }
}

type Pair = readonly [source: AnyActorRef, target: AnyActorRef];
/** The part of xstate's actor system that delivers a delayed event. */
interface Relay {
  _relay(source: AnyActorRef, target: AnyActorRef, event: EventObject): void;
}
type Route = AnyActorRef | Pair | undefined;
const isPair = (route: AnyActorRef | Pair): route is Pair => Array.isArray(route);

export abstract class MachineTimeouts extends ProcessBase {
  /** Running timeouts, in the order they were armed (a list through {@link Armed.next}). */
  protected armed: Armed | undefined = undefined;
  /** Timers of the last good state that xstate cancelled since (restored after a crash). */
  protected lostSinceGood: Armed | Armed[] | undefined = undefined;
  /** The actor delayed events go from and to when their route does not say (see {@link Armed.route}). */
  protected abstract get routeActor(): AnyActorRef | undefined;

  /** @internal called by an {@link Armed} timer when it fires. */
  abstract fire(armed: Armed): void;

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

  // ---- xstate's delayed events (through runtimeScheduler) ----

  /**
   * @internal The process is its actors' clock, so {@link runtimeScheduler} finds it from an
   * actor; xstate's own scheduler, the only user of a clock's timeouts, is not used.
   */
  setTimeout(): never {
    throw new Error(`${this.name}: xstate timeouts go through runtimeScheduler, not the clock`);
  }

  /** @internal See {@link setTimeout}. */
  clearTimeout(): never {
    throw new Error(`${this.name}: xstate timeouts go through runtimeScheduler, not the clock`);
  }

  /** @internal {@link runtimeScheduler}'s schedule. */
  armDelayed(
    source: AnyActorRef,
    target: AnyActorRef,
    event: EventObject,
    delayMs: number,
    id: string,
  ): void {
    const own = source === this.routeActor;
    const route: Route = source === target ? (own ? undefined : source) : [source, target];
    this.arm(new Armed(this, id, event, route), 'after', delayMs);
  }

  /**
   * @internal {@link runtimeScheduler}'s cancel: the latest delayed event `source` scheduled
   * under `id` (xstate's own scheduler forgets an earlier one scheduled under the same id).
   */
  cancelDelayed(source: AnyActorRef, id: string): void {
    let found: Armed | undefined;
    for (let a = this.armed; a; a = a.next) if (a.name === id && this.isFrom(a, source)) found = a;
    if (found) this.cancelAfter(found);
  }

  /** @internal {@link runtimeScheduler}'s cancelAll: every delayed event `source` scheduled. */
  cancelAllDelayed(source: AnyActorRef): void {
    for (let a = this.armed; a; ) {
      const next = a.next;
      if (this.isFrom(a, source)) this.cancelAfter(a);
      a = next;
    }
  }

  /**
   * Delivers a fired delayed event as xstate's own scheduler does: through the actor system's
   * relay (which also tells its inspectors). Nothing when its actor is gone.
   */
  protected relay(armed: Armed): void {
    const route = armed.route;
    armed.route = undefined;
    const source = route === undefined ? this.routeActor : isPair(route) ? route[0] : route;
    const target = route !== undefined && isPair(route) ? route[1] : source;
    if (source && target) (source.system as unknown as Relay)._relay(source, target, armed.event);
  }

  private isFrom(a: Armed, source: AnyActorRef): boolean {
    if (a.kind !== 'after') return false;
    const route = a.route;
    if (route === undefined) return source === this.routeActor;
    return (isPair(route) ? route[0] : route) === source;
  }

  private cancelAfter(armed: Armed): void {
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

  // ---- the list of running timeouts ----

  protected arm(armed: Armed, kind: TimerKind, delayMs: number): Armed {
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
  protected unlink(armed: Armed): boolean {
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

  protected findTimer(kind: Exclude<TimerKind, 'after'>, id: string): Armed | undefined {
    const key = kind === 'named' ? id : kind;
    for (let a = this.armed; a; a = a.next) if (a.kind === kind && a.name === key) return a;
    return undefined;
  }

  protected armedList(): Armed[] {
    const out: Armed[] = [];
    for (let a = this.armed; a; a = a.next) out.push(a);
    return out;
  }

  protected cancelKind(kind: TimerKind): void {
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

  protected emitTimer(type: 'timer.fired' | 'timer.cancelled', a: Armed): void {
    const events = this.runtime.events;
    if (events.active) events.emit({ type, pid: this.pid, label: `${a.kind}:${a.name}` });
  }
}

/** Running timeouts as the store persists them and the UI shows them, earliest deadline first. */
export function describeTimers(armed: readonly Armed[]): MachineTimer[] {
  const out: MachineTimer[] = [];
  for (const a of armed) {
    out.push({
      kind: a.kind,
      id: a.name,
      event: a.event,
      delayMs: a.delayMs,
      wallDeadlineMs: a.wallDeadlineMs,
    });
  }
  return out.sort((x, y) => x.wallDeadlineMs - y.wallDeadlineMs);
}

/** The process whose actors' clock it is; anything else is misuse. */
function ownerOf(actor: AnyActorRef): MachineTimeouts {
  const owner = (actor as { clock?: unknown }).clock;
  if (!(owner instanceof MachineTimeouts))
    throw new Error('runtimeScheduler: an actor without its machine process');
  return owner;
}

/**
 * The scheduler of every actor system a machine process boots (set as `system.scheduler`; the
 * process is the actors' clock, so each call finds it from the actor): a delayed event becomes
 * an {@link Armed} entry on the runtime's timer heap, named for the UI and the store, and
 * relayed through the system when it fires, as xstate's own scheduler does.
 *
 * Why not xstate's own: per pending delay it keeps a closure and its context, a record of the
 * event, a key string and entries in two objects used as maps, besides its timer — several
 * hundred bytes a device, a fleet of them. Deviation: `system.getSnapshot()` lists no scheduled
 * events; the process persists its running timeouts itself ({@link MachineTimer}).
 */
export const runtimeScheduler = Object.freeze({
  schedule(source: AnyActorRef, target: AnyActorRef, event: EventObject, delay: number, id?: string): void {
    // xstate's default id for a delayed event sent without one.
    ownerOf(source).armDelayed(source, target, event, delay, id ?? Math.random().toString(36).slice(2));
  },
  cancel(source: AnyActorRef, id: string): void {
    ownerOf(source).cancelDelayed(source, id);
  },
  cancelAll(actorRef: AnyActorRef): void {
    ownerOf(actorRef).cancelAllDelayed(actorRef);
  },
});

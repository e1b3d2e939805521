/**
 * The running timeouts of a machine process, and the process as xstate's clock.
 *
 * xstate's `after` delays and gen_statem's state, event and named timeouts all run on the
 * runtime's shared timer heap: each is one {@link Armed} entry, linked into the process's list of
 * running timeouts (most machines run one at a time: no array per process). xstate's scheduler
 * names each `after` delay (id and event) through {@link identifyingSchedule}, so every deadline
 * can be listed for the UI and persisted for a restart.
 *
 * {@link MachineTimeouts} is the bottom layer of {@link MachineProcess} (machine-process.ts); the
 * actor's lifecycle sits on it (machine-lifecycle.ts).
 */
import type { EventObject } from 'xstate';
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

export abstract class MachineTimeouts extends ProcessBase {
  /** Running timeouts, in the order they were armed (a list through {@link Armed.next}). */
  protected armed: Armed | undefined = undefined;
  /** Timers of the last good state that xstate cancelled since (restored after a crash). */
  protected lostSinceGood: Armed | Armed[] | undefined = undefined;
  /** xstate's own `scheduler.schedule`, wrapped by {@link identifyingSchedule}. */
  xstateSchedule: ScheduleFn | undefined = undefined;

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

  // ---- the clock xstate schedules its delays on (this object is the actor's clock) ----

  /** @internal xstate's clock contract. */
  setTimeout(fn: () => void, delayMs: number): Armed {
    // xstate's scheduler handed us the id and event just before calling this clock.
    const armed = new Armed(this, handoffId ?? '', handoffEvent, fn);
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
      event: a.event ?? { type: 'xstate.after' },
      delayMs: a.delayMs,
      wallDeadlineMs: a.wallDeadlineMs,
    });
  }
  return out.sort((x, y) => x.wallDeadlineMs - y.wallDeadlineMs);
}

export type ScheduleFn = (
  source: unknown,
  target: unknown,
  event: EventObject,
  delay: number,
  id?: string,
) => void;

// A synchronous hand-off: xstate's scheduler records a delayed event and at once calls the
// actor's clock; the wrapper below leaves the event's id and body here for that call to take.
let handoffId: string | undefined;
let handoffEvent: EventObject | undefined;

/**
 * Replaces `actor.system.scheduler.schedule` (a public object of xstate's) so each `after` timer
 * is named — id and event, for persistence and the UI — when it is armed, with no scanning and
 * no closure per actor: every actor of our systems has its process as `clock`.
 */
export function identifyingSchedule(
  source: unknown,
  target: unknown,
  event: EventObject,
  delay: number,
  id?: string,
): void {
  const owner = (source as { clock?: unknown }).clock;
  if (!(owner instanceof MachineTimeouts) || !owner.xstateSchedule)
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

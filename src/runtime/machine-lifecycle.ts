/**
 * The xstate actor inside a machine process: booting it (from the machine's initial state or a
 * persisted one, re-arming the persisted timeouts), tearing it down, and the exit that follows
 * a failure or a final state — with what a replacement resumes from (the last good snapshot and
 * the timeouts of that state).
 *
 * {@link MachineLifecycle} is the middle layer of {@link MachineProcess} (machine-process.ts):
 * it sits on the running timeouts (machine-timeouts.ts), and the public face, the observer and
 * hibernation sit on it.
 */
import type { AnyActorRef, AnyStateMachine, EventObject, SnapshotFrom } from 'xstate';
import { createActor } from 'xstate';
import type { ExitReason } from './exit-reason.js';
import { errorExit, NORMAL } from './exit-reason.js';
import type { PersistedMachineState } from './machine-persistence.js';
import { decodeHibernated } from './machine-persistence.js';
// A type-only cycle: the config's `onTransition` is handed the whole MachineProcess.
import type { MachineConfig } from './machine-process.js';
import type { MachineTimer } from './machine-timeouts.js';
import { Armed, describeTimers, MachineTimeouts, runtimeScheduler } from './machine-timeouts.js';
import type { Runtime } from './runtime.js';
import type { TimerRef } from './timers.js';

export type Actor<TMachine extends AnyStateMachine> = ReturnType<typeof createActor<TMachine>>;

/**
 * Rarely used state, made on first need. A class, so every field has its slot from the start
 * (an object literal given fields later keeps them in a separate, larger property store).
 */
export class Extra {
  hibernated: string | undefined = undefined; // see encodeHibernated
  lastActivityMs = 0;
  /** The hibernation timer: the idle check while awake, the wake-up while hibernated. */
  timer: TimerRef | undefined = undefined;
  lastTimers: MachineTimer[] | undefined = undefined;
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

export const INIT_EVENT: EventObject = Object.freeze({ type: 'xstate.init' });

export const statusOf = (s: unknown) => (s as { status: string }).status;
export const stateValueOf = (s: unknown) => (s as { value: unknown }).value;

export abstract class MachineLifecycle<
  TMachine extends AnyStateMachine = AnyStateMachine,
> extends MachineTimeouts {
  /** Undefined while hibernated, after the exit, and while we stop it ourselves: its callbacks are then ignored. */
  protected actor: Actor<TMachine> | undefined = undefined;
  /** Last snapshot that was not an error: what a restart resumes from. */
  protected lastGood: SnapshotFrom<TMachine> | undefined = undefined;
  protected stateLabel = '';
  /** The event being processed (held until the next one: one small object per machine). */
  protected lastEvent: EventObject = INIT_EVENT;
  protected extra: Extra | undefined = undefined;

  constructor(
    runtime: Runtime,
    name: string,
    readonly config: MachineConfig<TMachine>,
  ) {
    super(runtime, 'statem', name);
  }

  protected get routeActor(): AnyActorRef | undefined {
    return this.actor;
  }

  /** Running timeouts, earliest deadline first. */
  timers(): MachineTimer[] {
    const h = this.extra?.hibernated;
    if (h) return [...decodeHibernated(h).timers];
    return describeTimers(this.armedList());
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

  protected terminate(): void {
    this.extraState().lastTimers = this.timers();
    this.teardown();
  }

  protected override release(): void {
    this.teardown();
  }

  protected finish(reason: ExitReason): void {
    if (reason.type === 'error') {
      const good = this.armedList()
        .filter((a) => !a.fresh)
        .concat(this.lostSinceGood ?? []);
      this.extraState().lastTimers = describeTimers(good);
    } else {
      this.extraState().lastTimers = this.timers();
    }
    this.teardown();
    this.exit(reason);
  }

  protected teardown(): void {
    for (let a = this.armed; a; a = a.next) a.cancel(this.runtime.timers);
    this.armed = undefined;
    const extra = this.extra;
    if (extra?.timer) {
      this.runtime.timers.cancel(extra.timer);
      extra.timer = undefined;
    }
    const actor = this.actor;
    this.actor = undefined; // first: what it reports while it stops is not ours to act on
    this.lostSinceGood = undefined;
    try {
      actor?.stop();
    } catch (error) {
      this.runtime.report(`stopping the actor of ${this.name} failed`, error, this.pid);
    }
  }

  protected boot(restore: PersistedMachineState | undefined): void {
    this.lastEvent = INIT_EVENT;
    const options: { clock: MachineLifecycle<TMachine>; input?: unknown; snapshot?: unknown } = {
      clock: this,
    };
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
    // Its delayed events go on the runtime's timer heap, as the process's timeouts.
    (actor.system as { scheduler: unknown }).scheduler = runtimeScheduler;
    try {
      actor.start();
    } catch (error) {
      this.finish(errorExit(error));
      return;
    }
    if (!this.alive) return;
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
        this.arm(new Armed(this, t.id, t.event, undefined), t.kind, remaining);
      }
    }
  }

  protected extraState(): Extra {
    if (!this.extra) this.extra = new Extra();
    return this.extra;
  }
}

/**
 * Registers the process as the actor's observer. xstate's `subscribe` wraps an observer in a new
 * object with three bound functions plus a subscription (~250 B a device); adding the process
 * itself to the actor's observer set costs nothing (xstate calls `next` and `complete` as
 * methods, and reads `error` as a property — see the getter in machine-process.ts). That set is
 * private to xstate, so this falls back to `subscribe` if it ever changes shape; the
 * machine-process tests cover the transition and the error path through it.
 */
function observe(actor: { subscribe(o: object): unknown }, observer: object): void {
  const observers = (actor as unknown as { observers?: unknown }).observers;
  if (observers instanceof Set) observers.add(observer);
  else actor.subscribe(observer);
}

/**
 * gen_event: an event manager process with pluggable handlers, each with its own state. Events
 * and handler changes go through one mailbox, so a handler sees exactly the events notified
 * after it was added and before it was removed, each handler in turn, one event at a time.
 *
 * A handler that throws (or rejects) is removed, its `terminate` runs with the error, the
 * removal is emitted as a `handler.removed` event and reported; the manager and the other
 * handlers live on (OTP gen_event, without supervised handlers).
 *
 * Deviation: handlers run in the order they were added (OTP runs the newest first).
 *
 * Why a facade: {@link ProcessBase} has a private `notify` (its exit-listener fan-out), so a
 * subclass cannot offer gen_event's `notify`; the manager is an internal ProcessBase subclass
 * behind {@link EventManagerProcess}, which implements the Process contract by delegation.
 *
 * @example
 * const alarms = startEventManager<Alarm>(rt, { name: 'alarms' });
 * await alarms.addHandler('log', { handleEvent: (a, _s: undefined) => void log.warn(a.text) });
 * await alarms.addHandler('count', { init: () => 0, handleEvent: (_a, n: number) => n + 1 });
 * alarms.notify({ text: 'battery low' });     // returns at once
 * await alarms.syncNotify({ text: 'offline' }); // resolves once every handler has seen it
 */
import type { ExitReason } from './exit-reason.js';
import { formatExitReason, NORMAL, toError } from './exit-reason.js';
import type { MessageQueue } from './message-queue.js';
import { createMessageQueue } from './message-queue.js';
import type { ExitListener, Pid, Process, ProcessStatus } from './process.js';
import { ProcessBase } from './process.js';
import type { Runtime } from './runtime.js';

export interface EventHandler<E, S = undefined> {
  /** The handler's initial state (undefined when absent). Throwing refuses the handler. */
  init?(): S;
  handleEvent(event: E, state: S): S | Promise<S>;
  /**
   * Runs when the handler leaves: `normal` after {@link EventManagerProcess.removeHandler}, the
   * manager's reason when it stops, `error` when the handler threw. Not on a kill.
   */
  terminate?(reason: ExitReason, state: S): void | Promise<void>;
}

/**
 * - `alreadyPresent`: a handler with that id is installed;
 * - `initFailed`: its `init` threw (message says why; the handler is not installed);
 * - `noproc`: the manager is stopping or has exited.
 */
export type AddHandlerResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly error: { readonly code: 'alreadyPresent' | 'initFailed' | 'noproc'; readonly message: string };
    };

/** `notFound`: no handler with that id; `noproc`: the manager is stopping or has exited. */
export type RemoveHandlerResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly error: { readonly code: 'notFound' | 'noproc'; readonly message: string };
    };

/** `noproc`: the manager stopped before every handler had seen the event. */
export type SyncNotifyResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly error: { readonly code: 'noproc'; readonly message: string } };

export interface EventManagerOptions {
  readonly name: string;
  /** For the `process.started` event when a supervisor starts it. */
  readonly parent?: Pid;
  readonly childId?: string;
}

interface Installed<E> {
  readonly id: string;
  readonly handler: EventHandler<E, unknown>;
  state: unknown;
  live: boolean;
}

type Message<E> =
  | { readonly type: 'notify'; readonly event: E; readonly done?: (result: SyncNotifyResult) => void }
  | {
      readonly type: 'add';
      readonly id: string;
      readonly handler: EventHandler<E, unknown>;
      readonly done: (result: AddHandlerResult) => void;
    }
  | { readonly type: 'remove'; readonly id: string; readonly done: (result: RemoveHandlerResult) => void };

const isThenable = <T>(value: T | PromiseLike<T>): value is PromiseLike<T> =>
  typeof (value as PromiseLike<T> | null)?.then === 'function';

class EventManagerCore<E> extends ProcessBase {
  private readonly handlers = new Map<string, Installed<E>>();
  private readonly queue: MessageQueue<Message<E>>;
  private current: Message<E> | undefined;

  constructor(runtime: Runtime, options: EventManagerOptions) {
    super(runtime, 'eventManager', options.name);
    this.queue = createMessageQueue<Message<E>>(
      (message) => this.handle(message),
      // Handler errors are caught per handler; this is a bug in the manager itself.
      (error) => this.runtime.report(`event manager ${this.name} failed handling a message`, error, this.pid),
    );
    this.started(options.parent, options.childId);
  }

  addHandler<S>(id: string, handler: EventHandler<E, S>): Promise<AddHandlerResult> {
    if (typeof id !== 'string' || id.length === 0)
      throw new TypeError('addHandler: id must be a non-empty string');
    if (typeof handler?.handleEvent !== 'function')
      throw new TypeError('addHandler: handler.handleEvent is required');
    return new Promise((done) => {
      const h = handler as EventHandler<E, unknown>;
      if (!this.queue.push({ type: 'add', id, handler: h, done })) done(this.noproc());
    });
  }

  removeHandler(id: string): Promise<RemoveHandlerResult> {
    return new Promise((done) => {
      if (!this.queue.push({ type: 'remove', id, done })) done(this.noproc());
    });
  }

  whichHandlers(): string[] {
    return [...this.handlers.keys()];
  }

  post(event: E): boolean {
    return this.queue.push({ type: 'notify', event });
  }

  syncNotify(event: E): Promise<SyncNotifyResult> {
    return new Promise((done) => {
      if (!this.queue.push({ type: 'notify', event, done })) done(this.noproc());
    });
  }

  private noproc(): { ok: false; error: { code: 'noproc'; message: string } } {
    const state = this.alive ? 'stopping' : 'not running';
    return { ok: false, error: { code: 'noproc', message: `event manager ${this.name} is ${state}` } };
  }

  private handle(message: Message<E>): void | Promise<void> {
    this.current = message;
    const out = this.handleMessage(message);
    if (!out) {
      this.current = undefined;
      return;
    }
    return out.then(() => {
      this.current = undefined;
    });
  }

  private handleMessage(message: Message<E>): void | Promise<void> {
    switch (message.type) {
      case 'notify': {
        const out = this.dispatch(message.event, this.handlers.values());
        const done = message.done;
        if (!done) return out;
        if (!out) return done({ ok: true });
        return out.then(() => {
          if (this.alive) done({ ok: true });
        });
      }
      case 'add': {
        if (this.handlers.has(message.id))
          return message.done({
            ok: false,
            error: { code: 'alreadyPresent', message: `handler ${message.id} is already in ${this.name}` },
          });
        let state: unknown;
        try {
          state = message.handler.init?.();
        } catch (error) {
          return message.done({
            ok: false,
            error: {
              code: 'initFailed',
              message: `init of handler ${message.id} threw: ${toError(error).message}`,
            },
          });
        }
        this.handlers.set(message.id, { id: message.id, handler: message.handler, state, live: true });
        return message.done({ ok: true });
      }
      case 'remove': {
        const installed = this.handlers.get(message.id);
        if (!installed)
          return message.done({
            ok: false,
            error: { code: 'notFound', message: `no handler ${message.id} in ${this.name}` },
          });
        this.uninstall(installed, undefined);
        const out = this.callTerminate(installed, NORMAL);
        if (!out) return message.done({ ok: true });
        return out.then(() => message.done({ ok: true }));
      }
    }
  }

  /**
   * Runs the event through the handlers left in `rest`. Synchronous handlers need no promise;
   * the first async one suspends the loop, which resumes from the same (live) Map iterator, so a
   * handler removed meanwhile is skipped.
   */
  private dispatch(event: E, rest: IterableIterator<Installed<E>>): void | Promise<void> {
    for (let next = rest.next(); !next.done; next = rest.next()) {
      const installed = next.value;
      let out: unknown;
      try {
        out = installed.handler.handleEvent(event, installed.state);
      } catch (error) {
        const removing = this.removeCrashed(installed, error);
        if (removing) return removing.then(() => this.resume(event, rest));
        continue;
      }
      if (isThenable(out))
        return Promise.resolve(out)
          .then(
            (state) => {
              if (installed.live) installed.state = state;
            },
            (error: unknown) => this.removeCrashed(installed, error),
          )
          .then(() => this.resume(event, rest));
      installed.state = out;
    }
  }

  private resume(event: E, rest: IterableIterator<Installed<E>>): void | Promise<void> {
    // Killed while a handler ran: the rest of the handlers are gone with the manager.
    if (this.alive) return this.dispatch(event, rest);
  }

  private removeCrashed(installed: Installed<E>, cause: unknown): void | Promise<void> {
    if (!installed.live || !this.alive) return;
    const error = toError(cause);
    this.uninstall(installed, error);
    this.runtime.report(`handler ${installed.id} of ${this.name} threw and was removed`, error, this.pid);
    return this.callTerminate(installed, { type: 'error', error });
  }

  private uninstall(installed: Installed<E>, error: Error | undefined): void {
    installed.live = false;
    this.handlers.delete(installed.id);
    const events = this.runtime.events;
    if (events.active)
      events.emit({ type: 'handler.removed', pid: this.pid, handlerId: installed.id, error });
  }

  /** Calls the handler's terminate; its errors are reported, never thrown. */
  private callTerminate(installed: Installed<E>, reason: ExitReason): void | Promise<void> {
    const terminate = installed.handler.terminate;
    if (!terminate) return;
    const failed = (error: unknown) =>
      this.runtime.report(`terminate of handler ${installed.id} of ${this.name} threw`, error, this.pid);
    try {
      const out = terminate.call(installed.handler, reason, installed.state);
      if (isThenable(out)) return Promise.resolve(out).then(undefined, failed);
    } catch (error) {
      failed(error);
    }
  }

  private closeQueue(reason: ExitReason | undefined): void {
    const state = reason ? `exited (${formatExitReason(reason)})` : 'is stopping';
    const message = `event manager ${this.name} ${state}`;
    const noproc = { ok: false, error: { code: 'noproc', message } } as const;
    const left = this.queue.close();
    if (reason && this.current) left.unshift(this.current);
    for (const m of left) m.done?.(noproc);
  }

  protected terminate(reason: ExitReason): Promise<void> {
    this.closeQueue(undefined);
    return this.terminateHandlers(reason);
  }

  private async terminateHandlers(reason: ExitReason): Promise<void> {
    // The event in flight reaches every handler first (no pre-emption).
    await this.queue.idle();
    for (const installed of [...this.handlers.values()]) {
      if (!this.alive) return; // killed while a terminate ran
      installed.live = false;
      this.handlers.delete(installed.id);
      await this.callTerminate(installed, reason);
    }
  }

  protected override exit(reason: ExitReason): void {
    if (!this.alive) return;
    super.exit(reason);
    this.closeQueue(reason);
    this.current = undefined;
    for (const installed of this.handlers.values()) installed.live = false;
    this.handlers.clear();
  }
}

/** A running event manager (kind `eventManager`). Made by {@link startEventManager}. */
export class EventManagerProcess<E> implements Process {
  readonly kind = 'eventManager';
  private readonly core: EventManagerCore<E>;

  constructor(runtime: Runtime, options: EventManagerOptions) {
    this.core = new EventManagerCore<E>(runtime, options);
  }

  get pid(): Pid {
    return this.core.pid;
  }
  get name(): string {
    return this.core.name;
  }
  get status(): ProcessStatus {
    return this.core.status;
  }
  get alive(): boolean {
    return this.core.alive;
  }
  get exitReason(): ExitReason | undefined {
    return this.core.exitReason;
  }
  onExit(listener: ExitListener): () => void {
    return this.core.onExit((reason) => listener(reason, this));
  }
  stop(reason?: ExitReason): Promise<ExitReason> {
    return this.core.stop(reason);
  }
  kill(): void {
    this.core.kill();
  }
  whenExited(): Promise<ExitReason> {
    return this.core.whenExited();
  }

  /** Installs a handler after the events already queued. Throws on an empty id or no handleEvent. */
  addHandler<S>(id: string, handler: EventHandler<E, S>): Promise<AddHandlerResult> {
    return this.core.addHandler(id, handler);
  }
  /** Removes a handler after the events already queued; resolves once its `terminate` ran. */
  removeHandler(id: string): Promise<RemoveHandlerResult> {
    return this.core.removeHandler(id);
  }
  /** Ids of the installed handlers, in call order. */
  whichHandlers(): string[] {
    return this.core.whichHandlers();
  }
  /** Queues an event for every handler; false if dropped (manager stopping or exited). */
  notify(event: E): boolean {
    return this.core.post(event);
  }
  /** Queues an event and resolves once every handler has handled it. */
  syncNotify(event: E): Promise<SyncNotifyResult> {
    return this.core.syncNotify(event);
  }
}

/** Starts an event manager with no handlers; see the module doc. */
export function startEventManager<E>(runtime: Runtime, options: EventManagerOptions): EventManagerProcess<E> {
  return new EventManagerProcess<E>(runtime, options);
}

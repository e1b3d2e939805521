/**
 * gen_server: a process holding state, answering calls and casts from one mailbox, one message
 * at a time (serial even when handlers are async).
 *
 * OTP parity:
 * - a handler that throws crashes the server: `terminate(error, state)` runs, the server exits
 *   with that error (abnormal), and every pending call answers `exited`;
 * - a call to a server that has exited answers `noproc`;
 * - a call that times out is still handled when its turn comes; the late reply is dropped;
 * - `init` that throws makes {@link startServer} throw that error, OTP's `{error, Reason}` from
 *   `start_link`: a supervisor's start function sees a start failure, not a started child.
 *
 * Deviations: a call returns a value instead of exiting the caller; stopping does not drain the
 * mailbox (the message being handled finishes, then `terminate` runs, and the calls still queued
 * answer `exited`), so a shutdown is bounded by one handler rather than by the queue's length. A
 * server that calls itself from a handler waits for its own reply and times out (OTP exits with
 * `calling_self`).
 *
 * @example
 * const counter = startServer(rt, {
 *   name: 'counter',
 *   init: () => 0,
 *   handleCall: (req: 'get', n: number) => ({ reply: n, state: n }),
 *   handleCast: (by: number, n: number) => n + by,
 * });
 * counter.cast(2);
 * const r = await counter.call('get', 1000); // { ok: true, value: 2 }
 * if (!r.ok) console.log(r.error.code);       // 'timeout' | 'noproc' | 'exited'
 */
import type { Result } from '../lib/result.js';
import type { ExitReason } from './exit-reason.js';
import { formatExitReason, toError } from './exit-reason.js';
import type { MessageQueue } from './message-queue.js';
import { createMessageQueue } from './message-queue.js';
import type { Pid } from './process.js';
import { ProcessBase } from './process.js';
import type { Runtime } from './runtime.js';
import type { TimerRef } from './timers.js';

export const DEFAULT_CALL_TIMEOUT_MS = 5000;

/**
 * - `timeout`: no reply within the call's `timeoutMs` (the server lives on);
 * - `noproc`: the server had already exited when called;
 * - `exited`: the server exited (crashed, stopped or killed) before replying.
 */
export type CallErrorCode = 'timeout' | 'noproc' | 'exited';
export interface CallError {
  readonly code: CallErrorCode;
  readonly message: string;
}
export type CallResult<Reply> = Result<Reply, CallError>;

export interface CallReturn<State, Reply> {
  readonly reply: Reply;
  readonly state: State;
}

export interface ServerSpec<State, Call, Reply, Cast> {
  /** Display name (not unique; name it through a registry). */
  readonly name: string;
  /** Builds the initial state; throwing makes {@link startServer} throw. */
  init(): State;
  handleCall?(request: Call, state: State): CallReturn<State, Reply> | Promise<CallReturn<State, Reply>>;
  handleCast?(message: Cast, state: State): State | Promise<State>;
  /** Runs once on a stop or a crash (not on a kill); errors in it are reported. */
  terminate?(reason: ExitReason, state: State): void | Promise<void>;
  /** For the `process.started` event when a supervisor starts it. */
  readonly parent?: Pid;
  readonly childId?: string;
}

type Message<Call, Reply, Cast> =
  | { readonly kind: 'call'; readonly request: Call; readonly pending: PendingCall<Reply> }
  | { readonly kind: 'cast'; readonly message: Cast };

interface PendingCall<Reply> {
  readonly resolve: (result: CallResult<Reply>) => void;
  readonly sentAtMs: number;
  timer: TimerRef | undefined;
  settled: boolean;
}

const isThenable = <T>(value: T | PromiseLike<T>): value is PromiseLike<T> =>
  typeof (value as PromiseLike<T> | null)?.then === 'function';

/** A running gen_server. Made by {@link startServer}. */
export class ServerProcess<State, Call = never, Reply = never, Cast = never> extends ProcessBase {
  private state: State;
  private readonly queue: MessageQueue<Message<Call, Reply, Cast>>;
  private readonly pending = new Set<PendingCall<Reply>>();
  private crashing: Promise<void> | undefined;

  constructor(
    runtime: Runtime,
    private readonly spec: ServerSpec<State, Call, Reply, Cast>,
  ) {
    super(runtime, 'server', spec.name);
    this.state = spec.init();
    this.queue = createMessageQueue<Message<Call, Reply, Cast>>(
      (message) => this.handle(message),
      (error, message) => this.crash(error, message.kind),
    );
    this.started(spec.parent, spec.childId);
  }

  /** Messages waiting in the mailbox (a queue-length metric). */
  get mailboxLength(): number {
    return this.queue.length;
  }

  /**
   * Sends `request` and resolves with the reply, or with `timeout` / `noproc` / `exited`.
   * `timeoutMs` may be `Infinity`. Throws if the server has no `handleCall` (misuse).
   */
  call(request: Call, timeoutMs: number = DEFAULT_CALL_TIMEOUT_MS): Promise<CallResult<Reply>> {
    if (!this.spec.handleCall) throw new TypeError(`server ${this.name} has no handleCall`);
    if (!(timeoutMs >= 0))
      throw new RangeError(`server ${this.name}: call timeoutMs must be >= 0, got ${timeoutMs}`);
    if (!this.alive)
      return Promise.resolve({
        ok: false,
        error: { code: 'noproc', message: `server ${this.name} (pid ${this.pid}) is not running` },
      });
    return new Promise((resolve) => {
      const pending: PendingCall<Reply> = {
        resolve,
        sentAtMs: this.runtime.clock.now(),
        timer: undefined,
        settled: false,
      };
      if (Number.isFinite(timeoutMs))
        pending.timer = this.runtime.timers.schedule(
          timeoutMs,
          () => {
            pending.timer = undefined;
            this.settle(pending, {
              ok: false,
              error: { code: 'timeout', message: `server ${this.name} did not reply within ${timeoutMs} ms` },
            });
          },
          { owner: this.pid, label: 'call.timeout' },
        );
      this.pending.add(pending);
      // While stopping the mailbox is closed: the call stays pending and answers `exited`.
      this.queue.push({ kind: 'call', request, pending });
    });
  }

  /**
   * Sends `message` without waiting. Returns false when it was dropped because the server is
   * stopping or has exited (OTP's cast never fails either). Throws if there is no `handleCast`.
   */
  cast(message: Cast): boolean {
    if (!this.spec.handleCast) throw new TypeError(`server ${this.name} has no handleCast`);
    return this.alive && this.queue.push({ kind: 'cast', message });
  }

  private handle(message: Message<Call, Reply, Cast>): void | Promise<void> {
    if (message.kind === 'cast') {
      const next = this.spec.handleCast!(message.message, this.state);
      if (!isThenable(next)) {
        this.state = next;
        return;
      }
      return Promise.resolve(next).then((state) => {
        if (this.alive) this.state = state;
      });
    }
    const out = this.spec.handleCall!(message.request, this.state);
    if (!isThenable(out)) return this.replied(message.pending, out);
    return Promise.resolve(out).then((result) => this.replied(message.pending, result));
  }

  private replied(pending: PendingCall<Reply>, result: CallReturn<State, Reply>): void {
    // Killed while the handler ran: the caller already has its `exited` answer.
    if (!this.alive) return;
    if (typeof result !== 'object' || result === null || !('state' in result))
      throw new TypeError(`server ${this.name}: handleCall must return { reply, state }`);
    this.state = result.state;
    this.settle(pending, { ok: true, value: result.reply });
  }

  private settle(pending: PendingCall<Reply>, result: CallResult<Reply>): void {
    if (pending.settled) return;
    pending.settled = true;
    this.pending.delete(pending);
    if (pending.timer) this.runtime.timers.cancel(pending.timer);
    pending.timer = undefined;
    const events = this.runtime.events;
    if (result.ok && events.active)
      events.emit({
        type: 'measurement',
        name: 'server.call',
        value: this.runtime.clock.now() - pending.sentAtMs,
        unit: 'ms',
        pid: this.pid,
      });
    pending.resolve(result);
  }

  private crash(cause: unknown, kind: 'call' | 'cast'): void {
    if (!this.alive || this.crashing) return;
    const error = toError(cause);
    const reason: ExitReason = { type: 'error', error };
    this.status = 'stopping';
    this.queue.close();
    this.runtime.report(`server ${this.name} crashed handling a ${kind}`, error, this.pid);
    this.crashing = this.runTerminate(reason).then(() => this.exit(reason));
  }

  private async runTerminate(reason: ExitReason): Promise<void> {
    if (!this.spec.terminate) return;
    try {
      await this.spec.terminate(reason, this.state);
    } catch (error) {
      this.runtime.report(`terminate of server ${this.name} threw`, error, this.pid);
    }
  }

  protected terminate(reason: ExitReason): Promise<void> {
    this.queue.close();
    return this.finishStop(reason);
  }

  private async finishStop(reason: ExitReason): Promise<void> {
    // The handler in flight cannot be pre-empted: let it finish (its caller gets the reply).
    await this.queue.idle();
    // It may have crashed meanwhile: then the crash's own reason wins (OTP sup_stop_race).
    if (this.crashing) await this.crashing;
    if (!this.alive || !this.spec.terminate) return;
    // Unlike a crash, an error in terminate here becomes the exit reason (ProcessBase.stop).
    await this.spec.terminate(reason, this.state);
  }

  protected override exit(reason: ExitReason): void {
    if (!this.alive) return;
    super.exit(reason);
    this.queue.close();
    const message = `server ${this.name} exited (${formatExitReason(reason)}) before replying`;
    for (const pending of [...this.pending])
      this.settle(pending, { ok: false, error: { code: 'exited', message } });
  }
}

/** Starts a gen_server; see the module doc. Throws what `init` throws. */
export function startServer<State, Call = never, Reply = never, Cast = never>(
  runtime: Runtime,
  spec: ServerSpec<State, Call, Reply, Cast>,
): ServerProcess<State, Call, Reply, Cast> {
  return new ServerProcess(runtime, spec);
}

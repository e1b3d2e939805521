/**
 * How an open command changes and ends (src/devices/create-command-tracker.ts): each change is
 * announced; each command ends exactly once, in a final status that is announced, written to the
 * command log, told to the guards and to whoever waits for it. Its one timer is armed here too:
 * the time to live while it is pending (`expired`), the carrier's reply time once it is sent
 * (`timedOut`).
 *
 * @example
 * const outcomes = createCommandOutcomes({ runtime, store, table, writes, observers });
 * outcomes.armExpiry(e); // pending: ends 'expired' at e.view.expiresAt unless sent before
 * outcomes.change(e, { status: 'sent', sentAt, attempts: 1 });
 * outcomes.armReply(e, carrier); // ends 'timedOut' after carrier.replyTimeoutMs unless settled
 * outcomes.finish(e, 'succeeded', { result: { rebootInMs: 500 } });
 */
import type { JsonValue } from '../../lib/json.js';
import type { Failure } from '../../lib/result.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { CommandStatus, Store } from '../../store/store.js';
import type { CommandCarrier, TrackedCommand } from '../command-tracker.js';
import type { CommandObservers } from './command-observers.js';
import type { CommandEntry, CommandTable } from './command-table.js';
import type { CommandWrites } from './command-writes.js';

const FINAL: ReadonlySet<CommandStatus> = new Set([
  'succeeded',
  'failed',
  'timedOut',
  'cancelled',
  'expired',
]);

/** Whether a status is final (the command will not change any more). */
export const isFinalStatus = (s: CommandStatus): boolean => FINAL.has(s);

export interface CommandOutcomes {
  /** Patches the view and announces it. */
  change(e: CommandEntry, patch: Partial<TrackedCommand>): void;
  /** Ends it: the final status, once. */
  finish(
    e: CommandEntry,
    status: CommandStatus,
    extra: { result?: JsonValue; error?: Failure<string> },
  ): void;
  /** Ends a pending command whose time to live ran out. */
  expire(e: CommandEntry): void;
  /** Arms its time to live (none when it waits forever). */
  armExpiry(e: CommandEntry): void;
  /** Arms the wait for its confirmation after a send. */
  armReply(e: CommandEntry, carrier: CommandCarrier): void;
  cancelTimer(e: CommandEntry): void;
}

export interface CommandOutcomesDeps {
  readonly runtime: Runtime;
  readonly store: Store;
  readonly table: CommandTable;
  readonly writes: CommandWrites;
  readonly observers: CommandObservers;
}

export function createCommandOutcomes(deps: CommandOutcomesDeps): CommandOutcomes {
  const { runtime, store, table, writes, observers } = deps;
  const log = runtime.logger;
  const now = () => runtime.clock.wallNow();

  function change(e: CommandEntry, patch: Partial<TrackedCommand>): void {
    e.view = { ...e.view, ...patch };
    observers.announce(e.view);
  }

  function cancelTimer(e: CommandEntry): void {
    if (e.timer) runtime.timers.cancel(e.timer);
    e.timer = undefined;
  }

  function finish(
    e: CommandEntry,
    status: CommandStatus,
    extra: { result?: JsonValue; error?: Failure<string> },
  ): void {
    cancelTimer(e);
    const completedAt = now();
    change(e, { status, completedAt, ...extra });
    const { commandId } = e.view;
    table.close(e);
    writes.persist(commandId, () => store.updateCommand(commandId, { status, completedAt, ...extra }));
    observers.settled(e.view);
    for (const w of e.waiters.splice(0)) w(e.view);
  }

  function expire(e: CommandEntry): void {
    const { deviceId, commandId, action } = e.view;
    log.info('command expired before it could be sent', { deviceId, commandId, action });
    finish(e, 'expired', {
      error: {
        code: 'expired',
        message: `device ${deviceId} could not be reached before the command expired`,
      },
    });
  }

  function armExpiry(e: CommandEntry): void {
    cancelTimer(e);
    const at = e.view.expiresAt;
    if (at === null) return;
    e.timer = runtime.timers.schedule(
      Math.max(0, at - now()),
      () => {
        e.timer = undefined;
        if (e.view.status === 'pending') expire(e);
      },
      { owner: 0, label: `expire:${e.view.commandId}` },
    );
  }

  function armReply(e: CommandEntry, carrier: CommandCarrier): void {
    cancelTimer(e);
    const { deviceId, commandId } = e.view;
    const { replyTimeoutMs } = carrier;
    e.timer = runtime.timers.schedule(
      replyTimeoutMs,
      () => {
        e.timer = undefined;
        if (e.view.status !== 'sent') return;
        log.warn('command got no confirmation', { deviceId, commandId, replyTimeoutMs });
        finish(e, 'timedOut', {
          error: {
            code: 'timedOut',
            message:
              carrier.describeTimeout?.(e.view) ??
              `no confirmation from ${deviceId} within ${replyTimeoutMs} ms`,
          },
        });
      },
      { owner: 0, label: `reply:${commandId}` },
    );
  }

  return { change, finish, expire, armExpiry, armReply, cancelTimer };
}

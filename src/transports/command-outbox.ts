/**
 * The command outbox: every command to a device is audited in the store first, then sent when the
 * device is reachable — at once if it is online, when it comes back if it is not — and ends in
 * exactly one final status: `succeeded`, `failed` (the device said no), `timedOut` (sent, no reply
 * in time), `expired` (its time ran out before it could be sent), or `cancelled`.
 *
 * At least once on the wire, once on the device: a command sent but unanswered when the link
 * drops is sent again, with the same `cmdId`, when the device returns, and after an app restart
 * ({@link CommandOutbox.load}); the device executes each `cmdId` once and repeats its reply
 * (docs/protocol.md §4). Here a second reply for the same command is ignored, and a reply for a
 * command never sent to that device is dropped and reported.
 *
 * Bounded: at most `maxPendingPerDevice` open commands per device; a submit past it is refused
 * (`outboxFull`), never silently dropped.
 *
 * @example
 * const outbox = createCommandOutbox({ runtime, store, deliver: (id, cmd) => links.send(id, cmd) });
 * await outbox.load();
 * const r = await outbox.submit({ deviceId: 'pump-7', action: 'reboot', args: {}, actor: 'ana' });
 * // r.value.status: 'sent' when pump-7 is online, 'pending' until it returns otherwise
 * outbox.deviceOnline('pump-7'); // flushes its pending commands, oldest first
 * outbox.handleReply('pump-7', { v: 1, type: 'reply', cmdId: r.value.commandId, ok: true });
 */
import { randomUUID } from 'node:crypto';
import type { Runtime } from '../runtime/runtime.js';
import type { TimerRef } from '../runtime/timers.js';
import type { CommandStatus, JsonObject, JsonValue, Store, StoreFailure } from '../store/store.js';
import type { CommandMessage, ReplyMessage, Result } from './protocol.js';
import { encodeMessage, ProtocolError, parseDeviceId } from './protocol.js';

export interface CommandView {
  readonly commandId: string;
  readonly deviceId: string;
  readonly action: string;
  readonly args: JsonObject;
  readonly actor: string;
  readonly status: CommandStatus;
  readonly requestedAt: number;
  readonly expiresAt: number | null;
  /** When it was last put on the wire; null while it has never been sent. */
  readonly sentAt: number | null;
  /** How many times it was put on the wire (a resend after a drop counts). */
  readonly attempts: number;
  readonly result?: JsonValue;
  readonly error?: StoreFailure<string>;
  readonly completedAt: number | null;
}

export type SubmitErrorCode = 'badDeviceId' | 'badCommand' | 'outboxFull' | 'badExpiry' | 'stopped';
export type ReplyOutcome = 'completed' | 'duplicate' | 'unknownCommand';

export interface SubmitInput {
  readonly deviceId: string;
  readonly action: string;
  readonly args?: JsonObject;
  /** An operator's name, or `system:<component>`. */
  readonly actor: string;
  /** How long it may wait for an offline device; default `defaultTtlMs`; null: forever. */
  readonly ttlMs?: number | null;
}

export interface CommandOutboxOptions {
  readonly runtime: Runtime;
  readonly store: Store;
  /** Puts the command on the device's link; false when the device has no link now. */
  deliver(deviceId: string, command: CommandMessage): boolean;
  /** How long a sent command waits for its reply; default 30 000 ms. */
  readonly replyTimeoutMs?: number;
  /** Default time a command may wait for an offline device; default 3 600 000 ms (1 h). */
  readonly defaultTtlMs?: number | null;
  /** Largest encoded command, in bytes; default the protocol's payload limit (16 KiB). */
  readonly maxCommandBytes?: number;
  /** Most open (pending or sent) commands per device; default 100. */
  readonly maxPendingPerDevice?: number;
  /** Every status change, for the log and the UI. */
  onChange?(command: CommandView): void;
}

export interface CommandOutbox {
  /** Reloads open commands from the store (after a restart); they are sent when their device is online. */
  load(): Promise<number>;
  submit(input: SubmitInput): Promise<Result<CommandView, { code: SubmitErrorCode; message: string }>>;
  /** The device can be reached: send what waits for it, oldest first. */
  deviceOnline(deviceId: string): void;
  /** The device's link went away: what was sent and not answered will be sent again. */
  deviceOffline(deviceId: string): void;
  isOnline(deviceId: string): boolean;
  handleReply(deviceId: string, reply: ReplyMessage): ReplyOutcome;
  cancel(commandId: string): Promise<boolean>;
  /** Open commands, oldest first (of one device, or all). */
  open(deviceId?: string): CommandView[];
  get(commandId: string): CommandView | undefined;
  /** Every status change (besides `onChange`), for live views; the returned function stops it. */
  listen(listener: (command: CommandView) => void): () => void;
  /** Resolves with the command once it has a final status. */
  settled(commandId: string): Promise<CommandView>;
  /** Resolves when every store write so far is done. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

interface Entry {
  view: CommandView;
  timer: TimerRef | undefined;
  waiters: ((v: CommandView) => void)[];
}

const FINAL: ReadonlySet<CommandStatus> = new Set([
  'succeeded',
  'failed',
  'timedOut',
  'cancelled',
  'expired',
]);
/** Replies remembered per device after completion, to tell a duplicate from a stranger. */
const RECENT_PER_DEVICE = 64;

export function createCommandOutbox(options: CommandOutboxOptions): CommandOutbox {
  const { runtime, store } = options;
  const log = runtime.logger;
  const replyTimeoutMs = options.replyTimeoutMs ?? 30_000;
  const defaultTtlMs = options.defaultTtlMs === undefined ? 3_600_000 : options.defaultTtlMs;
  const maxPending = options.maxPendingPerDevice ?? 100;
  const open = new Map<string, Entry>(); // commandId → entry, insertion = request order
  const byDevice = new Map<string, Set<Entry>>();
  const recent = new Map<string, string[]>(); // deviceId → recently completed commandIds
  const online = new Set<string>();
  let writes: Promise<unknown> = Promise.resolve();
  let stopped = false;

  const now = () => runtime.clock.wallNow();

  /** Store writes keep their order; a failed write is logged, the command lives on in memory. */
  function persist(commandId: string, write: () => Promise<unknown>): void {
    writes = writes
      .then(write)
      .catch((error: unknown) =>
        log.error('command audit write failed', { commandId, error: (error as Error).message }),
      );
  }

  const listeners = new Set<(command: CommandView) => void>();
  function announce(view: CommandView): void {
    options.onChange?.(view);
    for (const l of listeners) {
      try {
        l(view);
      } catch (error) {
        runtime.report('command outbox: a listener threw', error);
      }
    }
  }

  function change(e: Entry, patch: Partial<CommandView>): void {
    e.view = { ...e.view, ...patch };
    announce(e.view);
  }

  function finish(
    e: Entry,
    status: CommandStatus,
    extra: { result?: JsonValue; error?: StoreFailure<string> },
  ): void {
    if (e.timer) runtime.timers.cancel(e.timer);
    e.timer = undefined;
    const completedAt = now();
    change(e, { status, completedAt, ...extra });
    const { commandId, deviceId } = e.view;
    open.delete(commandId);
    byDevice.get(deviceId)?.delete(e);
    const list = recent.get(deviceId) ?? [];
    list.push(commandId);
    if (list.length > RECENT_PER_DEVICE) list.shift();
    recent.set(deviceId, list);
    persist(commandId, () => store.updateCommand(commandId, { status, completedAt, ...extra }));
    for (const w of e.waiters.splice(0)) w(e.view);
  }

  function armExpiry(e: Entry): void {
    if (e.timer) runtime.timers.cancel(e.timer);
    e.timer = undefined;
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

  function expire(e: Entry): void {
    log.info('command expired before its device came back', {
      deviceId: e.view.deviceId,
      commandId: e.view.commandId,
      action: e.view.action,
    });
    finish(e, 'expired', {
      error: {
        code: 'expired',
        message: `device ${e.view.deviceId} did not come back before the command expired`,
      },
    });
  }

  const wire = (v: CommandView): CommandMessage =>
    ({
      v: 1,
      type: 'cmd',
      cmdId: v.commandId,
      action: v.action,
      ...(Object.keys(v.args).length > 0 ? { args: v.args } : {}),
      ...(v.expiresAt !== null ? { expiresAt: v.expiresAt } : {}),
    }) as CommandMessage;

  function send(e: Entry): void {
    const v = e.view;
    if (v.expiresAt !== null && v.expiresAt <= now()) {
      expire(e);
      return;
    }
    const message = wire(v);
    if (!options.deliver(v.deviceId, message)) return; // stays pending: the link is gone
    const sentAt = now();
    if (e.timer) runtime.timers.cancel(e.timer);
    e.timer = runtime.timers.schedule(
      replyTimeoutMs,
      () => {
        e.timer = undefined;
        if (e.view.status !== 'sent') return;
        log.warn('command got no reply', { deviceId: v.deviceId, commandId: v.commandId, replyTimeoutMs });
        finish(e, 'timedOut', {
          error: { code: 'timedOut', message: `no reply from ${v.deviceId} within ${replyTimeoutMs} ms` },
        });
      },
      { owner: 0, label: `reply:${v.commandId}` },
    );
    const first = v.status !== 'sent';
    change(e, { status: 'sent', sentAt, attempts: v.attempts + 1 });
    if (first) persist(v.commandId, () => store.updateCommand(v.commandId, { status: 'sent' }));
  }

  function add(view: CommandView): Entry {
    const e: Entry = { view, timer: undefined, waiters: [] };
    open.set(view.commandId, e);
    let set = byDevice.get(view.deviceId);
    if (!set) {
      set = new Set();
      byDevice.set(view.deviceId, set);
    }
    set.add(e);
    return e;
  }

  return {
    async load() {
      let loaded = 0;
      for (const status of ['pending', 'sent'] as const) {
        let before: number | undefined;
        for (;;) {
          const page = await store.queryCommands({
            status,
            limit: 1000,
            ...(before ? { beforeSeq: before } : {}),
          });
          for (const item of page.items) {
            if (!item.ok) {
              log.error('a stored command cannot be read; it is not resent', { error: item.error.message });
              continue;
            }
            const r = item.value;
            if (open.has(r.commandId)) continue;
            const args =
              r.args !== null && typeof r.args === 'object' && !Array.isArray(r.args) ? r.args : {};
            const e = add({
              commandId: r.commandId,
              deviceId: r.deviceId,
              action: r.action,
              args: args as JsonObject,
              actor: r.actor,
              status: 'pending', // sent before the restart, unanswered: send again (same cmdId)
              requestedAt: r.requestedAt,
              expiresAt: r.expiresAt,
              sentAt: null,
              attempts: status === 'sent' ? 1 : 0,
              completedAt: null,
            });
            armExpiry(e);
            loaded++;
          }
          if (page.nextCursor === null || page.nextCursor === undefined) break;
          before = page.nextCursor;
        }
      }
      // Oldest first, whatever order the pages came in.
      for (const set of byDevice.values()) {
        const sorted = [...set].sort((a, b) => a.view.requestedAt - b.view.requestedAt);
        set.clear();
        for (const e of sorted) set.add(e);
      }
      if (loaded > 0) log.info('commands waiting from before the restart', { count: loaded });
      return loaded;
    },

    async submit(input) {
      if (stopped) return { ok: false, error: { code: 'stopped', message: 'the command outbox is stopped' } };
      const id = parseDeviceId(input.deviceId);
      if (!id.ok) return { ok: false, error: { code: 'badDeviceId', message: id.error.message } };
      const ttl = input.ttlMs === undefined ? defaultTtlMs : input.ttlMs;
      if (ttl !== null && !(Number.isFinite(ttl) && ttl > 0))
        return {
          ok: false,
          error: { code: 'badExpiry', message: `ttlMs must be a positive number of ms, not ${ttl}` },
        };
      const waiting = byDevice.get(id.value)?.size ?? 0;
      if (waiting >= maxPending)
        return {
          ok: false,
          error: {
            code: 'outboxFull',
            message: `device ${id.value} already has ${waiting} commands waiting (at most ${maxPending}); cancel some or wait for it to come back`,
          },
        };
      const requestedAt = now();
      const view: CommandView = {
        commandId: randomUUID().replaceAll('-', ''),
        deviceId: id.value,
        action: input.action,
        args: input.args ?? {},
        actor: input.actor,
        status: 'pending',
        requestedAt,
        expiresAt: ttl === null ? null : requestedAt + Math.round(ttl),
        sentAt: null,
        attempts: 0,
        completedAt: null,
      };
      // A command the protocol cannot carry (too large, a bad action name, non-JSON args) is
      // refused now, with the reason, instead of waiting forever for a link that will refuse it.
      try {
        encodeMessage(wire(view), options.maxCommandBytes ? { maxBytes: options.maxCommandBytes } : {});
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        return {
          ok: false,
          error: { code: 'badCommand', message: `command not sendable: ${error.message}` },
        };
      }
      // Audited before it can reach the device: a crash after the send still leaves a record.
      await store.recordCommand({
        commandId: view.commandId,
        deviceId: view.deviceId,
        action: view.action,
        args: view.args,
        actor: view.actor,
        requestedAt,
        expiresAt: view.expiresAt,
      });
      const e = add(view);
      announce(view);
      if (online.has(id.value)) send(e);
      if (e.view.status === 'pending') armExpiry(e);
      return { ok: true, value: e.view };
    },

    deviceOnline(deviceId) {
      online.add(deviceId);
      const set = byDevice.get(deviceId);
      if (!set) return;
      for (const e of [...set]) if (e.view.status === 'pending') send(e);
    },

    deviceOffline(deviceId) {
      online.delete(deviceId);
      const set = byDevice.get(deviceId);
      if (!set) return;
      for (const e of set) {
        if (e.view.status !== 'sent') continue;
        // Unanswered: it may or may not have run; the same cmdId goes again when the device returns.
        change(e, { status: 'pending' });
        armExpiry(e);
      }
    },

    isOnline: (deviceId) => online.has(deviceId),

    handleReply(deviceId, reply) {
      const e = open.get(reply.cmdId);
      if (!e || e.view.deviceId !== deviceId || e.view.attempts === 0) {
        if (recent.get(deviceId)?.includes(reply.cmdId)) return 'duplicate';
        log.warn('reply for a command never sent to this device; dropped', { deviceId, cmdId: reply.cmdId });
        return 'unknownCommand';
      }
      if (reply.ok)
        finish(e, 'succeeded', reply.result !== undefined ? { result: reply.result as JsonValue } : {});
      else finish(e, 'failed', { error: { code: reply.error.code, message: reply.error.message } });
      return 'completed';
    },

    async cancel(commandId) {
      const e = open.get(commandId);
      if (!e) return false;
      finish(e, 'cancelled', { error: { code: 'cancelled', message: 'cancelled by the operator' } });
      await writes;
      return true;
    },

    open(deviceId) {
      const entries = deviceId === undefined ? [...open.values()] : [...(byDevice.get(deviceId) ?? [])];
      return entries.map((e) => e.view);
    },

    get: (commandId) => open.get(commandId)?.view,

    listen(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    settled(commandId) {
      const e = open.get(commandId);
      if (!e) return Promise.reject(new Error(`command ${commandId} is not open`));
      return new Promise((resolve) => e.waiters.push(resolve));
    },

    async flush() {
      await writes;
    },

    async stop() {
      stopped = true;
      for (const e of open.values()) if (e.timer) runtime.timers.cancel(e.timer);
      await writes;
    },
  };
}

export const isFinalStatus = (s: CommandStatus): boolean => FINAL.has(s);

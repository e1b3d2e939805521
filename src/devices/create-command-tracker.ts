/**
 * The command tracker: the one implementation of the command lifecycle of
 * src/devices/command-tracker.ts, over the store's command log and the carriers that put commands
 * on their wires.
 *
 * Where it refines the contract (written there too):
 * - Presence is the fleet's: `deviceOnline` / `deviceOffline` come from `fleet.linkUp` /
 *   `fleet.linkDown`; carriers have no `reachable`.
 * - A carrier is looked up when a command is submitted and again at each dispatch, so commands
 *   loaded after a restart wait for a carrier that registers later (a convention's bridge starts
 *   after the fleet). A command that was on the wire before the restart is resent only by a carrier
 *   that `resendsAfterDrop`; any other ends `failed` with `linkLost` at its next dispatch, since it
 *   may or may not have run.
 * - The default time to live is the carrier's (`defaultTtlMs`) when it has one, else the tracker's.
 * - Refusals at submit time (bad id, bad ttl, no carrier, offline for a carrier that cannot queue,
 *   a full outbox, the carrier's own `prepare`, then a guard) are not audited: nothing was asked of the
 *   device. A bad `ttlMs` is `badArgs` naming the field.
 *
 * Store writes keep their order and never block the lifecycle: a failed write is logged and the
 * command lives on in memory (the submit's audit itself is awaited, so a command the store refused
 * to record never reaches a device).
 *
 * @example
 * const tracker = createCommandTracker({ runtime, store, carrierOf: (id) => fleetCarrierOf(id) });
 * await tracker.load();
 * tracker.deviceOnline('pump-7');
 * const r = await tracker.submit({ deviceId: 'pump-7', action: 'reboot', actor: 'ana' });
 * // the carrier, on the device's reply:
 * tracker.settle(r.ok ? r.value.commandId : '', { ok: true }, 'pump-7');
 */
import { randomUUID } from 'node:crypto';
import type { JsonObject, JsonValue } from '../lib/json.js';
import { isJsonObject } from '../lib/json.js';
import type { Failure } from '../lib/result.js';
import { err } from '../lib/result.js';
import type { Runtime } from '../runtime/runtime.js';
import type { TimerRef } from '../runtime/timers.js';
import type { CommandStatus, Store } from '../store/store.js';
import type {
  CommandCarrier,
  CommandErrorCode,
  CommandGuard,
  CommandTracker,
  DispatchOutcome,
  SubmitResult,
  TrackedCommand,
} from './command-tracker.js';
import { parseDeviceId } from './device-id.js';

export interface CommandTrackerOptions {
  readonly runtime: Runtime;
  readonly store: Store;
  /** The carrier of a device's commands now; undefined: none (yet). */
  carrierOf(deviceId: string): CommandCarrier | undefined;
  /** Default time a command may wait for an offline device; default 3 600 000 ms (1 h); null: forever. */
  readonly defaultTtlMs?: number | null;
  /** Most open (pending or sent) commands per device; default 100. */
  readonly maxOpenPerDevice?: number;
}

interface Entry {
  view: TrackedCommand;
  timer: TimerRef | undefined;
  waiters: ((v: TrackedCommand) => void)[];
}

const FINAL: ReadonlySet<CommandStatus> = new Set([
  'succeeded',
  'failed',
  'timedOut',
  'cancelled',
  'expired',
]);

/** Whether a status is final (the command will not change any more). */
export const isFinalStatus = (s: CommandStatus): boolean => FINAL.has(s);

/** Confirmations remembered per device after completion, to tell a duplicate from a stranger. */
const RECENT_PER_DEVICE = 64;

export function createCommandTracker(options: CommandTrackerOptions): CommandTracker {
  const { runtime, store } = options;
  const log = runtime.logger;
  const trackerTtlMs = options.defaultTtlMs === undefined ? 3_600_000 : options.defaultTtlMs;
  const maxOpen = options.maxOpenPerDevice ?? 100;
  const open = new Map<string, Entry>(); // commandId → entry, insertion = request order
  const byDevice = new Map<string, Set<Entry>>();
  const recent = new Map<string, string[]>(); // deviceId → recently completed commandIds
  const online = new Set<string>();
  const guards = new Set<CommandGuard>();
  const listeners = new Set<(command: TrackedCommand) => void>();
  let writes: Promise<unknown> = Promise.resolve();
  let stopped = false;

  const now = () => runtime.clock.wallNow();

  function persist(commandId: string, write: () => Promise<unknown>): void {
    writes = writes
      .then(write)
      .catch((error: unknown) =>
        log.error('command audit write failed', { commandId, error: (error as Error).message }),
      );
  }

  function announce(view: TrackedCommand): void {
    for (const l of listeners) {
      try {
        l(view);
      } catch (error) {
        runtime.report('command tracker: a listener threw', error);
      }
    }
  }

  function change(e: Entry, patch: Partial<TrackedCommand>): void {
    e.view = { ...e.view, ...patch };
    announce(e.view);
  }

  function cancelTimer(e: Entry): void {
    if (e.timer) runtime.timers.cancel(e.timer);
    e.timer = undefined;
  }

  function finish(
    e: Entry,
    status: CommandStatus,
    extra: { result?: JsonValue; error?: Failure<string> },
  ): void {
    cancelTimer(e);
    const completedAt = now();
    change(e, { status, completedAt, ...extra });
    const { commandId, deviceId } = e.view;
    open.delete(commandId);
    byDevice.get(deviceId)?.delete(e);
    if (byDevice.get(deviceId)?.size === 0) byDevice.delete(deviceId);
    const list = recent.get(deviceId) ?? [];
    list.push(commandId);
    if (list.length > RECENT_PER_DEVICE) list.shift();
    recent.set(deviceId, list);
    persist(commandId, () => store.updateCommand(commandId, { status, completedAt, ...extra }));
    for (const g of guards) {
      try {
        g.settled?.(e.view);
      } catch (error) {
        runtime.report('command tracker: a guard threw', error);
      }
    }
    for (const w of e.waiters.splice(0)) w(e.view);
  }

  function armExpiry(e: Entry): void {
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

  function expire(e: Entry): void {
    const { deviceId, commandId, action } = e.view;
    log.info('command expired before it could be sent', { deviceId, commandId, action });
    finish(e, 'expired', {
      error: {
        code: 'expired',
        message: `device ${deviceId} could not be reached before the command expired`,
      },
    });
  }

  function armReply(e: Entry, carrier: CommandCarrier): void {
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

  /** Puts a pending command on its carrier's wire, if the device is reachable and it is still valid. */
  function dispatch(e: Entry): void {
    const v = e.view;
    if (v.status !== 'pending' || !online.has(v.deviceId)) return;
    if (v.expiresAt !== null && v.expiresAt <= now()) {
      expire(e);
      return;
    }
    const carrier = options.carrierOf(v.deviceId);
    if (!carrier) return; // waits for a carrier to register (a bridge starting after the fleet)
    if (v.carrier !== carrier.name) change(e, { carrier: carrier.name });
    if (v.attempts > 0 && !carrier.resendsAfterDrop) {
      finish(e, 'failed', {
        error: {
          code: 'linkLost',
          message: `the link to ${v.deviceId} dropped after the command was sent; ${carrier.name} cannot resend it safely (it may or may not have run)`,
        },
      });
      return;
    }
    let outcome: DispatchOutcome;
    try {
      outcome = carrier.dispatch(e.view);
    } catch (error) {
      runtime.report(`command tracker: the ${carrier.name} carrier threw on dispatch`, error);
      outcome = {
        ok: false,
        error: { code: 'noLink', message: `the ${carrier.name} carrier failed: ${(error as Error).message}` },
      };
    }
    if (outcome === 'notReachable') return;
    const sentAt = now();
    const first = v.attempts === 0 && v.sentAt === null;
    if (outcome === 'sent') {
      change(e, { status: 'sent', sentAt, attempts: e.view.attempts + 1 });
      armReply(e, carrier);
      if (first) persist(v.commandId, () => store.updateCommand(v.commandId, { status: 'sent' }));
      return;
    }
    change(e, { sentAt, attempts: e.view.attempts + 1 });
    if (outcome.ok) finish(e, 'succeeded', outcome.result !== undefined ? { result: outcome.result } : {});
    else finish(e, 'failed', { error: outcome.error });
  }

  function add(view: TrackedCommand): Entry {
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

  /** The view, naming its carrier once one is registered (loaded commands start `unknown`). */
  function current(e: Entry): TrackedCommand {
    if (e.view.carrier === 'unknown') {
      const carrier = options.carrierOf(e.view.deviceId);
      if (carrier) e.view = { ...e.view, carrier: carrier.name };
    }
    return e.view;
  }

  const refuse = (code: CommandErrorCode, message: string): SubmitResult => err(code, message);

  async function loadStatus(
    status: 'pending' | 'sent',
    owns: ((deviceId: string) => boolean) | undefined,
  ): Promise<number> {
    let loaded = 0;
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
        if (open.has(r.commandId) || (owns && !owns(r.deviceId))) continue;
        const e = add({
          commandId: r.commandId,
          deviceId: r.deviceId,
          action: r.action,
          args: isJsonObject(r.args) ? r.args : {},
          actor: r.actor,
          carrier: options.carrierOf(r.deviceId)?.name ?? 'unknown',
          // Sent before the restart and unanswered: pending again; its carrier decides at dispatch.
          status: 'pending',
          requestedAt: r.requestedAt,
          expiresAt: r.expiresAt,
          sentAt: null,
          attempts: status === 'sent' ? 1 : 0,
          completedAt: null,
        });
        armExpiry(e);
        loaded++;
      }
      if (page.nextCursor === null || page.nextCursor === undefined) return loaded;
      before = page.nextCursor;
    }
  }

  return {
    async load(owns) {
      const loaded = (await loadStatus('pending', owns)) + (await loadStatus('sent', owns));
      // Oldest first, whatever order the pages came in.
      for (const set of byDevice.values()) {
        const sorted = [...set].sort((a, b) => a.view.requestedAt - b.view.requestedAt);
        set.clear();
        for (const e of sorted) set.add(e);
      }
      if (loaded > 0) log.info('commands waiting from before the restart', { count: loaded });
      for (const id of online) for (const e of [...(byDevice.get(id) ?? [])]) dispatch(e);
      return loaded;
    },

    async submit(input) {
      if (stopped) return refuse('stopped', 'the command tracker is stopped');
      const id = parseDeviceId(input.deviceId);
      if (!id.ok) return refuse('badDeviceId', id.error.message);
      const deviceId: string = id.value;
      const carrier = options.carrierOf(deviceId);
      if (!carrier) return refuse('noLink', `nothing carries commands to ${deviceId} (no link for its kind)`);
      const defaultTtlMs = carrier.defaultTtlMs === undefined ? trackerTtlMs : carrier.defaultTtlMs;
      const ttl = input.ttlMs === undefined ? defaultTtlMs : input.ttlMs;
      if (ttl !== null && !(Number.isFinite(ttl) && ttl > 0))
        return refuse('badArgs', `ttlMs must be a positive number of ms, not ${String(ttl)}`);
      if (!carrier.queuesWhileOffline && !online.has(deviceId))
        return refuse(
          'offline',
          `device ${deviceId} is offline and ${carrier.name} commands cannot wait for it`,
        );
      const waiting = byDevice.get(deviceId)?.size ?? 0;
      if (waiting >= maxOpen)
        return refuse(
          'outboxFull',
          `device ${deviceId} already has ${waiting} open commands (at most ${maxOpen}); cancel some or wait for it`,
        );
      const prepared = carrier.prepare({ deviceId, action: input.action, args: input.args ?? {} });
      if (!prepared.ok) return prepared;
      // Guards last: a command they let through (a breaker's probe, a token taken) is admitted.
      for (const g of guards) {
        const refused = g.check({ deviceId, action: input.action });
        if (refused) return { ok: false, error: refused };
      }
      const args: JsonObject = prepared.value;
      const requestedAt = now();
      const view: TrackedCommand = {
        commandId: randomUUID().replaceAll('-', ''),
        deviceId,
        action: input.action,
        args,
        actor: input.actor,
        carrier: carrier.name,
        status: 'pending',
        requestedAt,
        expiresAt: ttl === null ? null : requestedAt + Math.round(ttl),
        sentAt: null,
        attempts: 0,
        completedAt: null,
      };
      // Audited before it can reach the device: a crash after the send still leaves a record.
      await store.recordCommand({
        commandId: view.commandId,
        deviceId,
        action: view.action,
        args,
        actor: view.actor,
        requestedAt,
        expiresAt: view.expiresAt,
      });
      if (stopped) {
        persist(view.commandId, () =>
          store.updateCommand(view.commandId, {
            status: 'cancelled',
            completedAt: now(),
            error: { code: 'stopped', message: 'the command tracker stopped before it was sent' },
          }),
        );
        return refuse('stopped', 'the command tracker stopped');
      }
      const e = add(view);
      for (const g of guards) {
        try {
          g.admitted?.(view);
        } catch (error) {
          runtime.report('command tracker: a guard threw', error);
        }
      }
      announce(view);
      dispatch(e);
      if (e.view.status === 'pending') armExpiry(e);
      return { ok: true, value: e.view };
    },

    settle(commandId, outcome, fromDeviceId) {
      const e = open.get(commandId);
      const stranger =
        !e || e.view.attempts === 0 || (fromDeviceId !== undefined && e.view.deviceId !== fromDeviceId);
      if (stranger) {
        const deviceId = fromDeviceId ?? e?.view.deviceId;
        if (deviceId !== undefined && recent.get(deviceId)?.includes(commandId)) return 'duplicate';
        if (!e && fromDeviceId === undefined)
          for (const list of recent.values()) if (list.includes(commandId)) return 'duplicate';
        log.warn('confirmation for a command never sent to this device; dropped', { deviceId, commandId });
        return 'unknownCommand';
      }
      if (outcome.ok) finish(e, 'succeeded', outcome.result !== undefined ? { result: outcome.result } : {});
      else finish(e, 'failed', { error: { code: outcome.error.code, message: outcome.error.message } });
      return 'completed';
    },

    deviceOnline(deviceId) {
      if (stopped) return;
      online.add(deviceId);
      const set = byDevice.get(deviceId);
      if (!set) return;
      for (const e of [...set]) dispatch(e);
    },

    deviceOffline(deviceId) {
      if (stopped) return;
      online.delete(deviceId);
      const set = byDevice.get(deviceId);
      if (!set) return;
      for (const e of [...set]) {
        if (e.view.status !== 'sent') continue;
        const carrier = options.carrierOf(deviceId);
        if (carrier?.resendsAfterDrop) {
          // Unanswered: it may or may not have run; the same id goes again when the device returns.
          change(e, { status: 'pending' });
          armExpiry(e);
        } else
          finish(e, 'failed', {
            error: {
              code: 'linkLost',
              message: `the link to ${deviceId} dropped before the command was confirmed (it may or may not have run)`,
            },
          });
      }
    },

    async cancel(commandId, actor) {
      const e = open.get(commandId);
      if (!e) return false;
      finish(e, 'cancelled', {
        error: { code: 'cancelled', message: `cancelled by ${actor ?? 'the operator'}` },
      });
      await writes;
      return true;
    },

    release(deviceId) {
      const set = byDevice.get(deviceId);
      if (!set) return 0;
      const entries = [...set];
      for (const e of entries) {
        cancelTimer(e);
        open.delete(e.view.commandId);
      }
      byDevice.delete(deviceId);
      online.delete(deviceId);
      return entries.length;
    },

    cancelDevice(deviceId, reason) {
      const set = byDevice.get(deviceId);
      if (!set) return 0;
      const entries = [...set];
      for (const e of entries) finish(e, 'cancelled', { error: { code: 'cancelled', message: reason } });
      return entries.length;
    },

    open(deviceId) {
      const entries = deviceId === undefined ? [...open.values()] : [...(byDevice.get(deviceId) ?? [])];
      return entries.map(current);
    },

    get(commandId) {
      const e = open.get(commandId);
      return e ? current(e) : undefined;
    },

    listen(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },

    settled(commandId) {
      const e = open.get(commandId);
      if (!e) return Promise.reject(new Error(`command ${commandId} is not open`));
      return new Promise((resolve) => e.waiters.push(resolve));
    },

    addGuard(guard) {
      guards.add(guard);
      return () => {
        guards.delete(guard);
      };
    },

    async flush() {
      await writes;
    },

    async stop() {
      stopped = true;
      for (const e of open.values()) cancelTimer(e);
      await writes;
    },
  };
}

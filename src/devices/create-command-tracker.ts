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
 * The parts, under src/devices/commands/: the table of open commands (command-table.ts), the
 * ordered store writes (command-writes.ts), listeners and guards (command-observers.ts), changes,
 * final statuses and timers (command-outcomes.ts), carriers and presence (command-dispatch.ts),
 * admission (command-submit.ts), reload after a restart (command-reload.ts). This file puts them
 * together behind the {@link CommandTracker} contract.
 *
 * @example
 * const tracker = createCommandTracker({ runtime, store, carrierOf: (id) => fleetCarrierOf(id) });
 * await tracker.load();
 * tracker.deviceOnline('pump-7');
 * const r = await tracker.submit({ deviceId: 'pump-7', action: 'reboot', actor: 'ana' });
 * // the carrier, on the device's reply:
 * tracker.settle(r.ok ? r.value.commandId : '', { ok: true }, 'pump-7');
 */
import type { Runtime } from '../runtime/runtime.js';
import type { Store } from '../store/store.js';
import type { CommandCarrier, CommandTracker, TrackedCommand } from './command-tracker.js';
import { createCommandDispatch } from './commands/command-dispatch.js';
import { createCommandObservers } from './commands/command-observers.js';
import { createCommandOutcomes } from './commands/command-outcomes.js';
import { createCommandReload } from './commands/command-reload.js';
import { createCommandSubmit } from './commands/command-submit.js';
import type { CommandEntry } from './commands/command-table.js';
import { createCommandTable } from './commands/command-table.js';
import { createCommandWrites } from './commands/command-writes.js';

export { isFinalStatus } from './commands/command-outcomes.js';

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

export function createCommandTracker(options: CommandTrackerOptions): CommandTracker {
  const { runtime, store } = options;
  const log = runtime.logger;
  const carrierOf = (deviceId: string) => options.carrierOf(deviceId);
  const table = createCommandTable();
  const writes = createCommandWrites(log);
  const observers = createCommandObservers(runtime);
  const outcomes = createCommandOutcomes({ runtime, store, table, writes, observers });
  const dispatcher = createCommandDispatch({ runtime, store, table, writes, outcomes, carrierOf });
  const { finish } = outcomes;
  let stopped = false;
  const submit = createCommandSubmit({
    runtime,
    store,
    table,
    writes,
    observers,
    outcomes,
    dispatcher,
    carrierOf,
    defaultTtlMs: options.defaultTtlMs === undefined ? 3_600_000 : options.defaultTtlMs,
    maxOpenPerDevice: options.maxOpenPerDevice ?? 100,
    isStopped: () => stopped,
  });

  /** The view, naming its carrier once one is registered (loaded commands start `unknown`). */
  function current(e: CommandEntry): TrackedCommand {
    if (e.view.carrier === 'unknown') {
      const carrier = carrierOf(e.view.deviceId);
      if (carrier) e.view = { ...e.view, carrier: carrier.name };
    }
    return e.view;
  }

  return {
    load: createCommandReload({ runtime, store, table, outcomes, dispatcher, carrierOf }),
    submit,

    settle(commandId, outcome, fromDeviceId) {
      const e = table.get(commandId);
      const stranger =
        !e || e.view.attempts === 0 || (fromDeviceId !== undefined && e.view.deviceId !== fromDeviceId);
      if (stranger) {
        // Without a device to go by (an unknown id, no sender named), any device's recent ones count.
        const deviceId = fromDeviceId ?? e?.view.deviceId;
        if (table.completedLately(deviceId, commandId)) return 'duplicate';
        log.warn('confirmation for a command never sent to this device; dropped', { deviceId, commandId });
        return 'unknownCommand';
      }
      if (outcome.ok) finish(e, 'succeeded', outcome.result !== undefined ? { result: outcome.result } : {});
      else finish(e, 'failed', { error: { code: outcome.error.code, message: outcome.error.message } });
      return 'completed';
    },

    deviceOnline(deviceId) {
      if (!stopped) dispatcher.deviceOnline(deviceId);
    },

    deviceOffline(deviceId) {
      if (!stopped) dispatcher.deviceOffline(deviceId);
    },

    async cancel(commandId, actor) {
      const e = table.get(commandId);
      if (!e) return false;
      finish(e, 'cancelled', {
        error: { code: 'cancelled', message: `cancelled by ${actor ?? 'the operator'}` },
      });
      await writes.flush();
      return true;
    },

    release(deviceId) {
      const entries = table.release(deviceId);
      for (const e of entries) outcomes.cancelTimer(e);
      return entries.length;
    },

    cancelDevice(deviceId, reason) {
      const entries = table.ofDevice(deviceId);
      for (const e of entries) finish(e, 'cancelled', { error: { code: 'cancelled', message: reason } });
      return entries.length;
    },

    open: (deviceId) => (deviceId === undefined ? table.all() : table.ofDevice(deviceId)).map(current),
    get(commandId) {
      const e = table.get(commandId);
      return e ? current(e) : undefined;
    },
    listen: observers.listen,

    settled(commandId) {
      const e = table.get(commandId);
      if (!e) return Promise.reject(new Error(`command ${commandId} is not open`));
      return new Promise((resolve) => e.waiters.push(resolve));
    },

    addGuard: observers.addGuard,
    flush: writes.flush,

    async stop() {
      stopped = true;
      for (const e of table.all()) outcomes.cancelTimer(e);
      await writes.flush();
    },
  };
}

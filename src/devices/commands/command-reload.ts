/**
 * Open commands back from the store's command log after a restart (src/devices/create-command-tracker.ts).
 * Pending and sent commands are opened again as `pending`, oldest first per device, with their
 * time to live armed; one that was sent keeps its attempt, so at its next dispatch only a carrier
 * that `resendsAfterDrop` puts it on the wire again, any other ends it `linkLost`. Those whose
 * device is already online go out at once.
 *
 * @example
 * const reload = createCommandReload({ runtime, store, table, outcomes, dispatcher, carrierOf });
 * const count = await reload((deviceId) => keeper.owns(deviceId)); // only this instance's devices
 */
import { isJsonObject } from '../../lib/json.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { Store } from '../../store/store.js';
import type { CommandCarrier } from '../command-tracker.js';
import type { CommandDispatch } from './command-dispatch.js';
import type { CommandOutcomes } from './command-outcomes.js';
import type { CommandTable } from './command-table.js';

export interface CommandReloadDeps {
  readonly runtime: Runtime;
  readonly store: Store;
  readonly table: CommandTable;
  readonly outcomes: CommandOutcomes;
  readonly dispatcher: CommandDispatch;
  carrierOf(deviceId: string): CommandCarrier | undefined;
}

/** Returns the reload: how many commands it opened, of the devices `owns` accepts (all without it). */
export function createCommandReload(
  deps: CommandReloadDeps,
): (owns?: (deviceId: string) => boolean) => Promise<number> {
  const { store, table } = deps;
  const log = deps.runtime.logger;

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
        if (table.get(r.commandId) || (owns && !owns(r.deviceId))) continue;
        const e = table.add({
          commandId: r.commandId,
          deviceId: r.deviceId,
          action: r.action,
          args: isJsonObject(r.args) ? r.args : {},
          actor: r.actor,
          carrier: deps.carrierOf(r.deviceId)?.name ?? 'unknown',
          // Sent before the restart and unanswered: pending again; its carrier decides at dispatch.
          status: 'pending',
          requestedAt: r.requestedAt,
          expiresAt: r.expiresAt,
          sentAt: null,
          attempts: status === 'sent' ? 1 : 0,
          completedAt: null,
        });
        deps.outcomes.armExpiry(e);
        loaded++;
      }
      if (page.nextCursor === null || page.nextCursor === undefined) return loaded;
      before = page.nextCursor;
    }
  }

  return async function load(owns) {
    const loaded = (await loadStatus('pending', owns)) + (await loadStatus('sent', owns));
    // Oldest first, whatever order the pages came in.
    table.sortOldestFirst();
    if (loaded > 0) log.info('commands waiting from before the restart', { count: loaded });
    for (const id of table.onlineDevices()) for (const e of table.ofDevice(id)) deps.dispatcher.dispatch(e);
    return loaded;
  };
}

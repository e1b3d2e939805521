/**
 * Open commands onto their carriers' wires (src/devices/create-command-tracker.ts): a pending
 * command goes out when its device's link is up, oldest first, through the carrier that carries
 * its device now; a link that goes down sends unconfirmed commands back to pending when their
 * carrier can resend them safely, and ends them `linkLost` otherwise.
 *
 * The carrier is looked up at each dispatch, so a command loaded after a restart waits for a
 * carrier that registers later (a convention's bridge starts after the fleet).
 *
 * @example
 * const dispatcher = createCommandDispatch({ runtime, store, table, writes, outcomes, carrierOf });
 * dispatcher.deviceOnline('pump-7'); // its pending commands go out, oldest first
 * dispatcher.deviceOffline('pump-7'); // its sent ones wait for a resend, or end 'linkLost'
 */
import type { Runtime } from '../../runtime/runtime.js';
import type { Store } from '../../store/store.js';
import type { CommandCarrier, DispatchOutcome } from '../command-tracker.js';
import type { CommandOutcomes } from './command-outcomes.js';
import type { CommandEntry, CommandTable } from './command-table.js';
import type { CommandWrites } from './command-writes.js';

export interface CommandDispatch {
  /** Puts a pending command on its carrier's wire, if the device is reachable and it is still valid. */
  dispatch(e: CommandEntry): void;
  /** The device's link is up: what waits for it goes out, oldest first. */
  deviceOnline(deviceId: string): void;
  /** The device's link went down: what was sent waits for a resend, or ends `linkLost`. */
  deviceOffline(deviceId: string): void;
}

export interface CommandDispatchDeps {
  readonly runtime: Runtime;
  readonly store: Store;
  readonly table: CommandTable;
  readonly writes: CommandWrites;
  readonly outcomes: CommandOutcomes;
  carrierOf(deviceId: string): CommandCarrier | undefined;
}

export function createCommandDispatch(deps: CommandDispatchDeps): CommandDispatch {
  const { runtime, store, table, writes, outcomes } = deps;
  const { change, finish } = outcomes;
  const now = () => runtime.clock.wallNow();

  function dispatch(e: CommandEntry): void {
    const v = e.view;
    if (v.status !== 'pending' || !table.isOnline(v.deviceId)) return;
    if (v.expiresAt !== null && v.expiresAt <= now()) {
      outcomes.expire(e);
      return;
    }
    const carrier = deps.carrierOf(v.deviceId);
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
      outcomes.armReply(e, carrier);
      if (first) writes.persist(v.commandId, () => store.updateCommand(v.commandId, { status: 'sent' }));
      return;
    }
    change(e, { sentAt, attempts: e.view.attempts + 1 });
    if (outcome.ok) finish(e, 'succeeded', outcome.result !== undefined ? { result: outcome.result } : {});
    else finish(e, 'failed', { error: outcome.error });
  }

  return {
    dispatch,

    deviceOnline(deviceId) {
      table.setOnline(deviceId, true);
      for (const e of table.ofDevice(deviceId)) dispatch(e);
    },

    deviceOffline(deviceId) {
      table.setOnline(deviceId, false);
      for (const e of table.ofDevice(deviceId)) {
        if (e.view.status !== 'sent') continue;
        const carrier = deps.carrierOf(deviceId);
        if (carrier?.resendsAfterDrop) {
          // Unanswered: it may or may not have run; the same id goes again when the device returns.
          change(e, { status: 'pending' });
          outcomes.armExpiry(e);
        } else
          finish(e, 'failed', {
            error: {
              code: 'linkLost',
              message: `the link to ${deviceId} dropped before the command was confirmed (it may or may not have run)`,
            },
          });
      }
    },
  };
}

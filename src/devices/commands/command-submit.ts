/**
 * A command's admission (src/devices/create-command-tracker.ts): checked (its device id, its time
 * to live, a carrier for its device, the device's presence for a carrier that cannot queue, room in
 * the device's outbox, the carrier's own `prepare`, then the guards), audited in the store's
 * command log, then opened and dispatched. A refusal before the audit is not audited: nothing was
 * asked of the device. The audit is awaited, so a command the store refused to record never
 * reaches a device.
 *
 * @example
 * const submit = createCommandSubmit({ runtime, store, table, writes, observers, outcomes, dispatcher,
 *   carrierOf, defaultTtlMs: 3_600_000, maxOpenPerDevice: 100, isStopped: () => stopped });
 * const r = await submit({ deviceId: 'pump-7', action: 'reboot', actor: 'ana' });
 * // r.ok: r.value.status 'sent' (pump-7 online) or 'pending'; else r.error.code, e.g. 'outboxFull'
 */
import { randomUUID } from 'node:crypto';
import type { JsonObject } from '../../lib/json.js';
import { err } from '../../lib/result.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { Store } from '../../store/store.js';
import type {
  CommandCarrier,
  CommandErrorCode,
  SubmitInput,
  SubmitResult,
  TrackedCommand,
} from '../command-tracker.js';
import { parseDeviceId } from '../device-id.js';
import type { CommandDispatch } from './command-dispatch.js';
import type { CommandObservers } from './command-observers.js';
import type { CommandOutcomes } from './command-outcomes.js';
import type { CommandTable } from './command-table.js';
import type { CommandWrites } from './command-writes.js';

export interface CommandSubmitDeps {
  readonly runtime: Runtime;
  readonly store: Store;
  readonly table: CommandTable;
  readonly writes: CommandWrites;
  readonly observers: CommandObservers;
  readonly outcomes: CommandOutcomes;
  readonly dispatcher: CommandDispatch;
  carrierOf(deviceId: string): CommandCarrier | undefined;
  /** The tracker's default time to live, used when the carrier has none; null: forever. */
  readonly defaultTtlMs: number | null;
  readonly maxOpenPerDevice: number;
  isStopped(): boolean;
}

const refuse = (code: CommandErrorCode, message: string): SubmitResult => err(code, message);

export function createCommandSubmit(deps: CommandSubmitDeps): (input: SubmitInput) => Promise<SubmitResult> {
  const { runtime, store, table, writes, observers, outcomes, dispatcher, maxOpenPerDevice: maxOpen } = deps;
  const now = () => runtime.clock.wallNow();

  return async function submit(input) {
    if (deps.isStopped()) return refuse('stopped', 'the command tracker is stopped');
    const id = parseDeviceId(input.deviceId);
    if (!id.ok) return refuse('badDeviceId', id.error.message);
    const deviceId: string = id.value;
    const carrier = deps.carrierOf(deviceId);
    if (!carrier) return refuse('noLink', `nothing carries commands to ${deviceId} (no link for its kind)`);
    const defaultTtlMs = carrier.defaultTtlMs === undefined ? deps.defaultTtlMs : carrier.defaultTtlMs;
    const ttl = input.ttlMs === undefined ? defaultTtlMs : input.ttlMs;
    if (ttl !== null && !(Number.isFinite(ttl) && ttl > 0))
      return refuse('badArgs', `ttlMs must be a positive number of ms, not ${String(ttl)}`);
    if (!carrier.queuesWhileOffline && !table.isOnline(deviceId))
      return refuse(
        'offline',
        `device ${deviceId} is offline and ${carrier.name} commands cannot wait for it`,
      );
    const waiting = table.countOf(deviceId);
    if (waiting >= maxOpen)
      return refuse(
        'outboxFull',
        `device ${deviceId} already has ${waiting} open commands (at most ${maxOpen}); cancel some or wait for it`,
      );
    const prepared = carrier.prepare({ deviceId, action: input.action, args: input.args ?? {} });
    if (!prepared.ok) return prepared;
    // Guards last: a command they let through (a breaker's probe, a token taken) is admitted.
    const refused = observers.check({ deviceId, action: input.action });
    if (refused) return { ok: false, error: refused };
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
    if (deps.isStopped()) {
      writes.persist(view.commandId, () =>
        store.updateCommand(view.commandId, {
          status: 'cancelled',
          completedAt: now(),
          error: { code: 'stopped', message: 'the command tracker stopped before it was sent' },
        }),
      );
      return refuse('stopped', 'the command tracker stopped');
    }
    const e = table.add(view);
    observers.admitted(view);
    observers.announce(view);
    dispatcher.dispatch(e);
    if (e.view.status === 'pending') outcomes.armExpiry(e);
    return { ok: true, value: e.view };
  };
}

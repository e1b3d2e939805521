/**
 * Actions: validated by the device's kind, then either an event for the machine (audited in the
 * command log around the send) or a command to the device through the command tracker.
 */

import { randomUUID } from 'node:crypto';
import { formatExitReason } from '../../runtime/exit-reason.js';
import type { JsonValue } from '../../store/store.js';
import type { BuiltAction } from '../define-device.js';
import type { Entry, FleetContext } from './context.js';
import { fail } from './context.js';
import { canHandle } from './link-sync.js';
import type { ActionReply, FleetResult } from './types.js';

export type Act = (
  id: string,
  action: string,
  args: unknown,
  actor?: string,
) => Promise<FleetResult<ActionReply>>;

/** See {@link Fleet.act}. */
export function createAct(ctx: FleetContext): Act {
  const { runtime, store } = ctx;

  async function act(
    id: string,
    action: string,
    args: unknown,
    actor = 'operator',
  ): Promise<FleetResult<ActionReply>> {
    if (ctx.stopping) return fail('stopped', 'the fleet is stopping');
    const e = ctx.entries.get(id);
    if (!e) return fail('notFound', `no device '${String(id).slice(0, 80)}'`);
    if (e.failure)
      return fail('deviceFailed', `device ${id} has failed (${e.failure.message}); restart it first`);
    const built = e.kind.buildAction(action, args);
    if (!built.ok) return fail(built.code, built.message);
    if (built.value.type === 'command') return command(e, action, built.value, actor);
    const event = built.value.event;
    if (!e.machine?.alive) return fail('deviceFailed', `device ${id} is restarting`);
    const before = e.machine.state;
    if (!canHandle(e, event))
      return fail('notAllowedInState', `action '${action}' is not possible while ${id} is ${before}`);
    const commandId = randomUUID();
    const requestedAt = runtime.clock.wallNow();
    await store.recordCommand({
      commandId,
      deviceId: id,
      action,
      args: (args ?? {}) as JsonValue,
      actor,
      requestedAt,
    });
    e.machine.send(event as never);
    const after = e.machine?.alive ? e.machine.state : before;
    const crashed = !e.machine?.alive;
    await store.updateCommand(commandId, {
      status: crashed ? 'failed' : 'succeeded',
      ...(crashed
        ? {
            error: {
              code: 'crashed',
              message: e.lastExit ? formatExitReason(e.lastExit) : 'the device crashed',
            },
          }
        : { result: { state: after } }),
      completedAt: runtime.clock.wallNow(),
    });
    ctx.logEvent('device.action', id, { action, actor, commandId, from: before, to: after });
    return { ok: true, value: { commandId, state: after } };
  }

  async function command(
    e: Entry,
    action: string,
    built: Extract<BuiltAction, { type: 'command' }>,
    actor: string,
  ): Promise<FleetResult<ActionReply>> {
    const id = e.record.id;
    if (!ctx.carrierOf(id))
      return fail('noLink', `action '${action}' is sent to the device, and this fleet has no links`);
    const r = await ctx.commands.submit({ deviceId: id, action: built.command, args: built.args, actor });
    if (!r.ok) return { ok: false, error: r.error }; // the tracker's code (and retryAt), unchanged
    const state = e.machine?.alive ? e.machine.state : e.stateLabel;
    ctx.logEvent('device.command', id, {
      action,
      actor,
      commandId: r.value.commandId,
      status: r.value.status,
    });
    return { ok: true, value: { commandId: r.value.commandId, state, commandStatus: r.value.status } };
  }

  return act;
}

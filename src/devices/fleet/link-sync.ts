/**
 * Link presence and liveness: the fleet keeps each device's link as the links layer reports it
 * and makes the machine agree with it (`CONNECT` + `HELLO` when up, `LINK_DOWN` when gone). A
 * liveness timeout shows the link down too (`silent: …`); the device's next message brings link
 * and machine back.
 */

import type { EventObject } from 'xstate';
import type { Entry, FleetContext } from './context.js';
import { fail } from './context.js';
import type { FleetResult } from './types.js';

/** A liveness deadline is pushed back only once it is this much (or a tenth of it) stale. */
const LIVENESS_SLACK_MS = 1000;

export const canHandle = (e: Entry, event: EventObject): boolean => {
  const snap = e.machine?.getSnapshot() as { can?: (ev: EventObject) => boolean } | undefined;
  return !!snap?.can?.(event);
};

/** Sends the machine what it can take to agree with the link (`hello`: a fresh hello arrived). */
export function syncLink(e: Entry, hello: boolean): void {
  const p = e.machine;
  if (!p?.alive) return;
  const send = (event: EventObject) => {
    if (!canHandle(e, event)) return false;
    p.send(event as never);
    return p.alive;
  };
  if (e.link.up) {
    const connected = send({ type: 'CONNECT' });
    if ((hello || connected) && e.linkFirmware !== null)
      send({ type: 'HELLO', firmware: e.linkFirmware } as EventObject);
  } else send({ type: 'LINK_DOWN', reason: e.link.reason ?? 'link down' } as EventObject);
}

export function fallSilent(ctx: FleetContext, e: Entry): void {
  const timeoutMs = e.kind.liveness?.timeoutMs(e.record.attributes);
  const reason = `silent: no message within ${timeoutMs} ms (liveness)`;
  e.silent = true;
  e.link = { up: false, via: e.link.via, since: ctx.runtime.clock.wallNow(), reason };
  ctx.logEvent('device.offline', e.record.id, { via: e.link.via, reason });
  ctx.commands.deviceOffline(e.record.id);
}

export function pushLiveness(ctx: FleetContext, e: Entry): void {
  if (e.silent) {
    // A sign of life after the silence: its link was up all along.
    e.silent = false;
    e.link = { up: true, via: e.link.via, since: ctx.runtime.clock.wallNow(), reason: null };
    ctx.logEvent('device.online', e.record.id, { via: e.link.via, after: 'silence' });
    ctx.commands.deviceOnline(e.record.id);
  }
  const p = e.machine;
  const liveness = e.kind.liveness;
  if (p?.alive && liveness?.states.includes(p.state)) {
    // Re-arming on every message costs a cancel and a schedule each; a deadline that is still
    // within LIVENESS_SLACK of a fresh one is left alone (at most that much earlier: documented).
    const timeoutMs = liveness.timeoutMs(e.record.attributes);
    const left = p.timerRemainingMs('named', 'liveness');
    if (left === undefined || left < timeoutMs - Math.min(LIVENESS_SLACK_MS, timeoutMs / 10))
      p.startTimer('named', 'liveness', timeoutMs, liveness.event);
  }
  // Data again from a device its machine gave up on as silent: it is back.
  else if (p?.alive && e.link.up) syncLink(e, false);
}

/** See {@link Fleet.linkUp}. */
export function linkUp(
  ctx: FleetContext,
  id: string,
  info: { readonly via: string; readonly firmware: string | null },
): FleetResult<undefined> {
  const e = ctx.entries.get(id);
  if (!e) return fail('notFound', `link up for unknown device '${String(id).slice(0, 80)}'`);
  const changed = !e.link.up || e.link.via !== info.via;
  e.silent = false;
  e.linkFirmware = info.firmware;
  if (changed) {
    e.link = { up: true, via: info.via, since: ctx.runtime.clock.wallNow(), reason: null };
    ctx.logEvent('device.online', id, { via: info.via });
  }
  syncLink(e, true);
  ctx.commands.deviceOnline(id);
  return { ok: true, value: undefined };
}

/** See {@link Fleet.linkDown}. */
export function linkDown(
  ctx: FleetContext,
  id: string,
  reason: string,
  linkOptions: { readonly restate?: boolean } | undefined,
): FleetResult<undefined> {
  const e = ctx.entries.get(id);
  if (!e) return fail('notFound', `link down for unknown device '${String(id).slice(0, 80)}'`);
  if (!e.link.up && e.link.since !== null) {
    if ((linkOptions?.restate || e.silent) && e.link.reason !== reason) {
      e.silent = false;
      e.link = { ...e.link, reason };
      ctx.logEvent('device.offline', id, { via: e.link.via, reason, restated: true });
    }
    return { ok: true, value: undefined };
  }
  e.link = { up: false, via: e.link.via, since: ctx.runtime.clock.wallNow(), reason };
  ctx.logEvent('device.offline', id, { via: e.link.via, reason });
  syncLink(e, false);
  ctx.commands.deviceOffline(id);
  return { ok: true, value: undefined };
}

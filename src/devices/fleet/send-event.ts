/**
 * The machine inspector's two doors into a device (issue 13): what its machine holds now (state,
 * context, the events it accepts) and an event sent by hand — validated against the machine
 * and its current state, then audited in the device's event log (`device.eventSent`) with who sent it.
 *
 * Refusals, a closed set: `notFound` (no such device), `notRunning` (failed, restarting, or the
 * fleet is stopping), `unknownEvent` (the machine has no transition on it, or it is one of
 * xstate's own `xstate.*`), `notAccepted` (not in its current state), `badPayload` (not a JSON
 * object, carries `type`, or over {@link MAX_EVENT_PAYLOAD_CHARS} once serialised).
 *
 * @example
 * const r = await fleet.sendEvent('pump-7', 'HELLO', { firmware: '2.1.0' }, 'alice');
 * if (r.ok) r.value; // { from: 'connecting', to: 'connected', state: 'connected' }
 * else r.error.code; // 'notAccepted' | 'unknownEvent' | 'badPayload' | …
 */

import type { Failure, Result } from '../../lib/result.js';
import { err } from '../../lib/result.js';
import type { JsonObject, JsonValue } from '../../store/store.js';
import type { Entry, FleetContext } from './context.js';
import { canHandle } from './link-sync.js';

/** The largest payload of an event sent by hand, as JSON text. */
export const MAX_EVENT_PAYLOAD_CHARS = 4096;

export type SendEventErrorCode = 'notFound' | 'notRunning' | 'unknownEvent' | 'notAccepted' | 'badPayload';

export interface SentEvent {
  readonly from: string;
  readonly to: string;
  /** The state after it (`to`, or where a crash left the device). */
  readonly state: string;
  /** The machine crashed on it; its supervisor restarts it from its last good state. */
  readonly crashed: boolean;
}

/** A device's machine as the inspector shows it. */
export interface MachineInspection {
  readonly state: string;
  /** The persisted context (JSON); null when no snapshot exists (never started). */
  readonly context: JsonValue;
  /** Every event type the machine has a transition on, sorted. */
  readonly events: readonly string[];
  /** Those its current state accepts now; empty while it does not run. */
  readonly accepts: readonly string[];
  readonly running: boolean;
}

interface StateNodeLike {
  readonly transitions: ReadonlyMap<string, unknown>;
  readonly states: Readonly<Record<string, StateNodeLike>>;
}

const eventTypesCache = new WeakMap<object, readonly string[]>();

/**
 * The event types a machine has transitions on, from its state nodes (cached per machine).
 * xstate's own (`xstate.*`: delays, done, init) and wildcard descriptors are left out: they are
 * not events an operator sends.
 */
export function eventTypesOf(machine: { readonly root: unknown }): readonly string[] {
  const cached = eventTypesCache.get(machine);
  if (cached) return cached;
  const types = new Set<string>();
  const walk = (n: StateNodeLike) => {
    for (const type of n.transitions.keys())
      if (!type.startsWith('xstate.') && !type.includes('*')) types.add(type);
    for (const child of Object.values(n.states ?? {})) walk(child);
  };
  walk(machine.root as StateNodeLike);
  const out = [...types].sort();
  eventTypesCache.set(machine, out);
  return out;
}

/**
 * Checks a hand-made payload: a JSON object without `type`, at most
 * {@link MAX_EVENT_PAYLOAD_CHARS} serialised. Undefined is an empty payload.
 */
export function checkPayload(payload: unknown): Result<JsonObject, Failure<'badPayload'>> {
  if (payload === undefined) return { ok: true, value: {} };
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload))
    return err(
      'badPayload',
      `the payload must be a JSON object, not ${payload === null ? 'null' : Array.isArray(payload) ? 'an array' : typeof payload}`,
    );
  if (Object.hasOwn(payload, 'type'))
    return err('badPayload', "the payload must not carry 'type': the event's name is its type");
  let text: string;
  try {
    text = JSON.stringify(payload);
  } catch (error) {
    return err('badPayload', `the payload is not JSON: ${(error as Error).message}`);
  }
  if (text.length > MAX_EVENT_PAYLOAD_CHARS)
    return err(
      'badPayload',
      `the payload is ${text.length} characters as JSON, over the ${MAX_EVENT_PAYLOAD_CHARS} allowed`,
    );
  return { ok: true, value: JSON.parse(text) as JsonObject };
}

const running = (ctx: FleetContext, e: Entry): boolean =>
  !ctx.stopping && !e.failure && !!e.machine?.alive && !e.removed;

/** See {@link Fleet.inspect}. */
export function inspectMachine(ctx: FleetContext, id: string): MachineInspection | undefined {
  const e = ctx.entries.get(id);
  if (!e) return undefined;
  const events = eventTypesOf(e.kind.machine);
  const snapshot = e.machine?.persistedState()?.snapshot ?? e.restore?.snapshot;
  const context = (snapshot as { context?: JsonValue } | undefined)?.context ?? null;
  const live = running(ctx, e);
  return {
    state: e.machine?.state || e.stateLabel,
    context,
    events,
    accepts: live ? events.filter((type) => canHandle(e, { type })) : [],
    running: live,
  };
}

/** See {@link Fleet.sendEvent}. */
export function sendEvent(
  ctx: FleetContext,
  id: string,
  type: string,
  payload: unknown,
  actor: string,
): Result<SentEvent, Failure<SendEventErrorCode>> {
  const e = ctx.entries.get(id);
  if (!e) return err('notFound', `no device '${String(id).slice(0, 80)}'`);
  if (!running(ctx, e))
    return err(
      'notRunning',
      ctx.stopping
        ? 'the fleet is stopping'
        : e.failure
          ? `device ${id} has failed (${e.failure.message}); restart it first`
          : `device ${id} is not running (its machine is restarting)`,
    );
  const known = eventTypesOf(e.kind.machine);
  if (!known.includes(type))
    return err(
      'unknownEvent',
      `the ${e.kind.kind} machine has no event '${String(type).slice(0, 64)}'; it knows ${known.join(', ') || 'none'}`,
    );
  const checked = checkPayload(payload);
  if (!checked.ok) return checked;
  const event = { ...checked.value, type };
  const machine = e.machine!;
  const from = machine.state;
  if (!canHandle(e, event)) return err('notAccepted', `${id} does not accept ${type} while ${from}`);
  machine.send(event as never);
  const crashed = !machine.alive;
  const to = crashed ? from : machine.state;
  const state = e.machine?.alive ? e.machine.state : e.stateLabel;
  ctx.logEvent('device.eventSent', id, {
    event: type,
    payload: checked.value,
    actor,
    from,
    to,
    ...(crashed ? { crashed: true } : {}),
  });
  return { ok: true, value: { from, to, state, crashed } };
}

/**
 * The machine inspector over the API (issue 13): `deviceInspect` (a device's state, context, the
 * events it accepts now and the last ones it processed) and `sendEvent` (an event sent by hand,
 * validated and audited by the fleet, src/devices/fleet/send-event.ts). Machines are reached only
 * through the fleet; the last events come from the runtime's `machine.event` stream, kept here in
 * a bounded history (src/host/api/machine-events.ts).
 *
 * `sendEvent`'s refusals keep the fleet's codes (`notFound`, `notRunning`, `unknownEvent`,
 * `notAccepted`, `badPayload`), so the form can say exactly what was wrong. It answers once the
 * audit entry is committed.
 *
 * @example
 * await api.call('deviceInspect', { id: 'pump-7' }); // { state, context, accepts: ['DISCONNECT', …], lastEvents, … }
 * await api.call('sendEvent', { id: 'pump-7', event: 'HELLO', payload: { firmware: '2.1.0' } }, { actor: 'alice' });
 */
import { MAX_EVENT_PAYLOAD_CHARS } from '../../devices/fleet/send-event.js';
import type { ApiContext, Handlers } from './handlers.js';
import { ApiFailure } from './handlers.js';
import { MachineEventHistory } from './machine-events.js';

/** Who sent it when the transport names nobody. */
const DEFAULT_ACTOR = 'operator';

const fail = (code: string, message: string): never => {
  throw new ApiFailure(code, message);
};

/**
 * The handlers, and the history they read. The history listens for as long as the app's runtime
 * runs (the API has no stop of its own for handlers; a stopped runtime emits nothing).
 */
export function inspectHandlers(ctx: ApiContext): Pick<Handlers, 'deviceInspect' | 'sendEvent'> {
  const { fleet, runtime } = ctx.app;
  const history = new MachineEventHistory(() => runtime.clock.wallNow());
  runtime.events.subscribe((e) => {
    if (e.type === 'machine.event' && fleet.has(e.name)) history.record(e.name, e.at, e.event, e.from, e.to);
  });
  fleet.watchEvents((e) => {
    if (e.kind === 'device.removed' && e.deviceId !== undefined) history.forget(e.deviceId);
  });

  return {
    deviceInspect: async (a) => {
      const m = fleet.inspect(a.id) ?? fail('notFound', `no device '${a.id}'`);
      const kept = history.of(a.id);
      return {
        id: a.id,
        state: m.state,
        running: m.running,
        context: m.context,
        events: m.events,
        accepts: m.accepts,
        lastEvents: kept.events,
        recordedSince: kept.since,
        maxPayloadChars: MAX_EVENT_PAYLOAD_CHARS,
      };
    },

    sendEvent: async (a, context) => {
      const r = fleet.sendEvent(a.id, a.event, a.payload, context.actor ?? DEFAULT_ACTOR);
      if (!r.ok) return fail(r.error.code, r.error.message);
      // The audit entry is on disk before the operator is told it was sent.
      await fleet.flush();
      return r.value;
    },
  };
}

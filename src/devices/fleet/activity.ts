/**
 * What the fleet hears from its devices: telemetry (stored, never a machine event) and signs of
 * life; both push the liveness deadline back and feed {@link Fleet.observe}.
 */

import type { TelemetryPoint } from '../../store/store.js';
import type { FleetContext } from './context.js';
import { fail } from './context.js';
import { pushLiveness } from './link-sync.js';
import type { Fleet, FleetActivity } from './types.js';

export type Activity = Pick<Fleet, 'observe' | 'ingestTelemetry' | 'touch'>;

export function createActivity(ctx: FleetContext): Activity {
  const { runtime, entries } = ctx;
  const observers = new Set<(activity: FleetActivity) => void>();
  const emit = (activity: FleetActivity) => {
    for (const o of observers) {
      try {
        o(activity);
      } catch (error) {
        runtime.report('fleet: an activity observer threw', error);
      }
    }
  };

  return {
    observe(listener) {
      observers.add(listener);
      return () => observers.delete(listener);
    },

    async ingestTelemetry(id, values, deviceTs = null, origin) {
      const e = entries.get(id);
      if (!e) return fail('notFound', `telemetry for unknown device '${String(id).slice(0, 80)}'`);
      const receivedAt = runtime.clock.wallNow();
      const points: TelemetryPoint[] = [];
      for (const metric in values)
        if (Object.hasOwn(values, metric))
          points.push(
            origin
              ? {
                  deviceId: id,
                  metric,
                  deviceTs,
                  receivedAt,
                  value: values[metric]!,
                  boot: origin.boot,
                  seq: origin.seq,
                }
              : { deviceId: id, metric, deviceTs, receivedAt, value: values[metric]! },
          );
      pushLiveness(ctx, e);
      if (observers.size > 0) emit({ type: 'telemetry', deviceId: id, at: receivedAt, values, deviceTs });
      const r = await ctx.store.appendTelemetry(points);
      // The store's own code (`overloaded`: its write buffer is full), so whoever counts the loss
      // names its cause; the fleet being stopped is not it (issue 12 §0).
      if (!r.ok) return fail(r.error.code, r.error.message);
      return { ok: true, value: r.value.written };
    },

    touch(id) {
      const e = entries.get(id);
      if (!e) return fail('notFound', `sign of life from unknown device '${String(id).slice(0, 80)}'`);
      pushLiveness(ctx, e);
      if (observers.size > 0) emit({ type: 'seen', deviceId: id, at: runtime.clock.wallNow() });
      return { ok: true, value: undefined };
    },
  };
}

/**
 * `latestValues` over the API: the latest value of one metric for every device (or the devices
 * named), and the names of the metrics heard, for the fleet table's metric columns. One answer for
 * the whole fleet, so a table of 10,000 rows asks once, never once per row; the push stream keeps
 * it current afterwards.
 *
 * The values are kept in memory from what reaches the fleet (`fleet.observe`, every convention),
 * seeded at start with each series' newest stored point (`store.latestTelemetry`, one indexed
 * query for the whole fleet; a call waits for it), so a restarted host shows every device's last
 * value at once, not only what arrived since (issue 13). Newest wins, whichever came first.
 * Bounded by devices × metric names, with at most {@link MAX_TRACKED_METRICS} names kept unasked
 * (a metric asked for is kept from then on, and a stored one left out by the bound is read then).
 *
 * @example
 * await api.call('latestValues', { metric: 'temp' });
 * // { metrics: ['rssi', 'temp', 'uptime'], values: [{ id: 'pump-1', at: 1718000000000, value: 21.4 }, …] }
 */
import type { FleetActivity } from '../../devices/fleet.js';
import type { LatestPoint } from '../../store/latest-telemetry.js';
import type { App } from '../app.js';
import type { Handlers } from './handlers.js';

/** Metric names kept without being asked for: a fleet whose devices report hundreds stays bounded. */
export const MAX_TRACKED_METRICS = 200;

interface Latest {
  readonly at: number;
  readonly value: number;
}

/** The latest value per (metric, device), fed by the fleet's activity. */
export class LatestValues {
  private readonly byMetric = new Map<string, Map<string, Latest>>();

  /** Starts tracking `metric` (idempotent); past the bound only when `asked`. */
  private track(metric: string, asked: boolean): Map<string, Latest> | undefined {
    let values = this.byMetric.get(metric);
    if (!values && (asked || this.byMetric.size < MAX_TRACKED_METRICS)) {
      values = new Map();
      this.byMetric.set(metric, values);
    }
    return values;
  }

  observe(activity: FleetActivity): void {
    if (activity.type !== 'telemetry') return;
    for (const metric in activity.values)
      if (Object.hasOwn(activity.values, metric))
        this.track(metric, false)?.set(activity.deviceId, {
          at: activity.at,
          value: activity.values[metric]!,
        });
  }

  /**
   * Adds stored points where nothing newer was heard; `asked` as for a metric asked for. Answers
   * the metric names left out by the bound (to be read when asked for).
   */
  seed(points: readonly LatestPoint[], asked = false): Set<string> {
    const left = new Set<string>();
    for (const p of points) {
      const values = this.track(p.metric, asked);
      if (!values) {
        left.add(p.metric);
        continue;
      }
      const heard = values.get(p.deviceId);
      if (!heard || heard.at < p.receivedAt) values.set(p.deviceId, { at: p.receivedAt, value: p.value });
    }
    return left;
  }

  metrics(): string[] {
    return [...this.byMetric.keys()].sort();
  }

  /**
   * The values of `metric` for `ids` (all when absent), skipping devices `exists` says are gone
   * (and forgetting them: a removed device's values go with it).
   */
  values(
    metric: string,
    ids: readonly string[] | undefined,
    exists: (id: string) => boolean,
  ): { id: string; at: number; value: number }[] {
    const values = this.track(metric, true)!;
    const out: { id: string; at: number; value: number }[] = [];
    const add = (id: string, v: Latest | undefined) => {
      if (v) out.push({ id, at: v.at, value: v.value });
    };
    if (ids) for (const id of new Set(ids)) add(id, exists(id) ? values.get(id) : undefined);
    else
      for (const [id, v] of values) {
        if (exists(id)) add(id, v);
        else values.delete(id);
      }
    return out;
  }
}

/**
 * The handler, and the keeper it reads. The keeper listens for as long as the app's fleet runs;
 * the API has no stop of its own for handlers, and a stopped fleet emits nothing. The store's
 * newest points are read at once; a store that fails to answer is reported, and the values heard
 * live are answered without them.
 */
export function latestHandlers(app: App): Pick<Handlers, 'latestValues'> {
  const latest = new LatestValues();
  app.fleet.observe((activity) => latest.observe(activity));
  let unread = new Set<string>();
  const seeded = app.store.latestTelemetry().then(
    (points) => {
      unread = latest.seed(points);
    },
    (error: unknown) => app.runtime.report('latestValues: could not read the stored latest values', error),
  );
  /** A stored metric the bound left out, read once it is asked for. */
  const readMetric = async (metric: string) => {
    if (!unread.delete(metric)) return;
    try {
      latest.seed(await app.store.latestTelemetry({ metric }), true);
    } catch (error) {
      app.runtime.report(`latestValues: could not read the stored values of '${metric}'`, error);
    }
  };
  return {
    latestValues: async (a) => {
      await seeded;
      if (a.metric !== undefined) await readMetric(a.metric);
      return {
        metrics: latest.metrics(),
        values: a.metric === undefined ? [] : latest.values(a.metric, a.ids, (id) => app.fleet.has(id)),
      };
    },
  };
}

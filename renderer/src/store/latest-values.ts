/**
 * The latest value of a few chosen metrics for every device, for the fleet table's metric columns:
 * seeded by one `latestValues` call per metric (the whole fleet in one answer, never a call per
 * row), then kept current from the push stream's telemetry points. Only the tracked metrics are
 * kept, so the model is bounded by devices × chosen columns; an older value never replaces a newer.
 *
 * The hook re-renders its view at most once per {@link PUBLISH_EVERY_MS}: a table of 10,000 live
 * devices re-sorting by a metric on every frame would cost more than a reading changing a second
 * late is worth.
 *
 * @example
 * const { latest, version } = useLatestValues(['temp']);
 * latest.get('temp', 'pump-7'); // { at, value } or undefined
 */
import { useEffect, useMemo, useState } from 'react';
import type { TelemetryPoint } from '../../../src/host/contract.js';
import { columnDecimals } from '../lib/reading-format.js';
import { useClient, useLive, useStore } from './use-live.js';

export const PUBLISH_EVERY_MS = 1_000;

export interface LatestValue {
  readonly at: number;
  readonly value: number;
}

export interface LatestValues {
  get(metric: string, id: string): LatestValue | undefined;
  /** Keeps these metrics (their known values stay), forgets the others. */
  track(metrics: readonly string[]): void;
  tracked(): readonly string[];
  /**
   * The decimals of a metric's column: what its most precise value needs (lib/reading-format.ts),
   * so every cell shows as many. Worked out again only after its values changed.
   */
  decimals(metric: string): number;
  /** Takes the values of a tracked metric, newer ones only; true if any changed. */
  merge(metric: string, values: readonly { id: string; at: number; value: number }[]): boolean;
  /** Takes pushed points of tracked metrics, newer ones only; true if any changed. */
  applyPoints(points: readonly TelemetryPoint[]): boolean;
}

export function createLatestValues(): LatestValues {
  const byMetric = new Map<string, Map<string, LatestValue>>();
  // Per metric, its column's decimals while its values are unchanged (each visible cell asks).
  const decimalsOf = new Map<string, number>();
  const put = (values: Map<string, LatestValue>, id: string, at: number, value: number): boolean => {
    const old = values.get(id);
    if (old && (old.at > at || (old.at === at && old.value === value))) return false;
    values.set(id, { at, value });
    return true;
  };
  function* valuesOf(map: Map<string, LatestValue>): Generator<number> {
    for (const v of map.values()) yield v.value;
  }
  return {
    get: (metric, id) => byMetric.get(metric)?.get(id),
    track(metrics) {
      const wanted = new Set(metrics);
      for (const metric of [...byMetric.keys()])
        if (!wanted.has(metric)) {
          byMetric.delete(metric);
          decimalsOf.delete(metric);
        }
      for (const metric of wanted) if (!byMetric.has(metric)) byMetric.set(metric, new Map());
    },
    tracked: () => [...byMetric.keys()],
    decimals(metric) {
      const known = decimalsOf.get(metric);
      if (known !== undefined) return known;
      const map = byMetric.get(metric);
      const decimals = map ? columnDecimals(valuesOf(map)) : 0;
      if (map) decimalsOf.set(metric, decimals);
      return decimals;
    },
    merge(metric, values) {
      const map = byMetric.get(metric);
      if (!map) return false;
      let changed = false;
      for (const v of values) if (put(map, v.id, v.at, v.value)) changed = true;
      if (changed) decimalsOf.delete(metric);
      return changed;
    },
    applyPoints(points) {
      let changed = false;
      for (const p of points) {
        const map = byMetric.get(p.metric);
        if (map && put(map, p.id, p.at, p.value)) {
          changed = true;
          decimalsOf.delete(p.metric);
        }
      }
      return changed;
    },
  };
}

/**
 * The model for these metrics, and a version that changes when values did. Asks the host again
 * after each reconnect (the stream's new snapshot carries no telemetry).
 */
export function useLatestValues(metrics: readonly string[]): {
  readonly latest: LatestValues;
  readonly version: number;
} {
  const client = useClient();
  const store = useStore();
  const latest = useMemo(() => createLatestValues(), []);
  const [version, setVersion] = useState(0);
  const liveSince = useLive((s) => (s.connection.kind === 'live' ? s.connection.since : 0));
  const key = metrics.join('\u0000');

  // biome-ignore lint/correctness/useExhaustiveDependencies: `key` stands for the metrics' contents
  useEffect(() => {
    latest.track(metrics);
    setVersion((v) => v + 1);
    if (metrics.length === 0 || liveSince === 0) return;
    let alive = true;
    for (const metric of metrics)
      void client
        .call('latestValues', { metric })
        .then((r) => {
          if (alive && r.ok && latest.merge(metric, r.value.values)) setVersion((v) => v + 1);
        })
        .catch(() => {
          // the pushed points still fill the column
        });
    return () => {
      alive = false;
    };
  }, [client, latest, key, liveSince]);

  useEffect(() => {
    if (metrics.length === 0) return;
    let dirty = false;
    const off = store.watchTelemetry((points) => {
      if (latest.applyPoints(points)) dirty = true;
    });
    const timer = setInterval(() => {
      if (!dirty) return;
      dirty = false;
      setVersion((v) => v + 1);
    }, PUBLISH_EVERY_MS);
    return () => {
      off();
      clearInterval(timer);
    };
  }, [store, latest, metrics.length]);

  return { latest, version };
}

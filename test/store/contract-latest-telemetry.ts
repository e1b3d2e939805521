/**
 * Each series' newest point (src/store/latest-telemetry.ts), on every engine: by receive time,
 * whatever the order points were written in, across a reopen (a restarted host reads it), per
 * metric when asked; pruned points are gone. Issue 13: the fleet table's metric columns.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LatestPoint } from '../../src/store/latest-telemetry.js';
import type { Store, TelemetryPoint } from '../../src/store/store.js';
import type { StoreEngine } from './contract.js';

const T = 1_750_000_000_000;

const byKey = (a: LatestPoint, b: LatestPoint) =>
  `${a.deviceId}/${a.metric}`.localeCompare(`${b.deviceId}/${b.metric}`);

export function defineLatestTelemetryContract(engine: StoreEngine): void {
  describe(`${engine.name} store: the newest point of each series`, () => {
    let store: Store;
    let clock: number;

    beforeEach(async () => {
      await engine.fresh();
      clock = T + 60_000;
      store = await engine.open({ now: () => clock, telemetryFlushMs: 1 });
    });
    afterEach(async () => {
      await store.close();
      await engine.cleanup();
    });

    const point = (deviceId: string, metric: string, receivedAt: number, value: number): TelemetryPoint => ({
      deviceId,
      metric,
      deviceTs: null,
      receivedAt,
      value,
    });

    it('answers the newest point per (device, metric) by receive time, across a reopen', async () => {
      expect(await store.latestTelemetry()).toEqual([]);
      await store.appendTelemetry([
        point('d1', 'temp', T + 30, 21.5),
        point('d1', 'temp', T + 10, 20),
        point('d1', 'rssi', T + 5, -70),
        point('d2', 'temp', T + 1, 19),
      ]);
      await store.appendTelemetry([point('d1', 'temp', T + 20, 20.5), point('d2', 'temp', T + 40, 18)]);
      await store.close();
      store = await engine.open({ now: () => clock });
      expect((await store.latestTelemetry()).sort(byKey)).toEqual([
        { deviceId: 'd1', metric: 'rssi', receivedAt: T + 5, value: -70 },
        { deviceId: 'd1', metric: 'temp', receivedAt: T + 30, value: 21.5 },
        { deviceId: 'd2', metric: 'temp', receivedAt: T + 40, value: 18 },
      ]);
      expect((await store.latestTelemetry({ metric: 'temp' })).sort(byKey)).toEqual([
        { deviceId: 'd1', metric: 'temp', receivedAt: T + 30, value: 21.5 },
        { deviceId: 'd2', metric: 'temp', receivedAt: T + 40, value: 18 },
      ]);
      expect(await store.latestTelemetry({ metric: 'none' })).toEqual([]);
      await expect(store.latestTelemetry({ metric: '' })).rejects.toMatchObject({
        code: 'invalidArgument',
        field: 'metric',
      });
    });

    it('leaves out series whose points were all pruned', async () => {
      await store.appendTelemetry([point('d1', 'temp', T, 1), point('d2', 'temp', T + 50_000, 2)]);
      await store.pruneTelemetry(30_000); // now is T + 60 s: d1's only point goes
      expect(await store.latestTelemetry()).toEqual([
        { deviceId: 'd2', metric: 'temp', receivedAt: T + 50_000, value: 2 },
      ]);
    });

    it('reads 10,000 devices × 4 metrics of 5 points each in one query', async () => {
      const metrics = ['temp', 'rssi', 'uptime', 'load'];
      for (let round = 0; round < 5; round++) {
        const points: TelemetryPoint[] = [];
        for (let d = 0; d < 10_000; d++)
          for (const m of metrics) points.push(point(`dev-${d}`, m, T + round * 1000 + d, round * 10 + d));
        const r = await store.appendTelemetry(points);
        expect(r.ok).toBe(true);
      }
      const started = performance.now();
      const latest = await store.latestTelemetry();
      const ms = performance.now() - started;
      expect(latest).toHaveLength(40_000);
      const one = latest.find((p) => p.deviceId === 'dev-7' && p.metric === 'load');
      expect(one).toEqual({ deviceId: 'dev-7', metric: 'load', receivedAt: T + 4000 + 7, value: 47 });
      // Loose on purpose (a loaded 2-core machine); a scan of the 200,000 points is what it guards against.
      expect(ms).toBeLessThan(5_000);
    }, 120_000);
  });
}

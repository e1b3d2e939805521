/**
 * The latest value per (metric, device) behind `latestValues` (src/host/api/latest.ts), fed with
 * the fleet's activity by hand: newest wins, signs of life carry no value, the named devices only,
 * a removed device forgotten, and the bound on metric names kept unasked.
 */
import { describe, expect, it } from 'vitest';
import { LatestValues, MAX_TRACKED_METRICS } from '../../../src/host/api/latest.js';

const telemetry = (deviceId: string, at: number, values: Record<string, number>) =>
  ({ type: 'telemetry', deviceId, at, values, deviceTs: null }) as const;

describe('LatestValues', () => {
  it('keeps the newest value of each metric per device, and lists the names heard', () => {
    const latest = new LatestValues();
    latest.observe(telemetry('pump-1', 1_000, { temp: 20.5, rssi: -60 }));
    latest.observe(telemetry('pump-2', 1_500, { temp: 22 }));
    latest.observe(telemetry('pump-1', 2_000, { temp: 21 }));
    latest.observe({ type: 'seen', deviceId: 'pump-3', at: 2_500 });
    expect(latest.metrics()).toEqual(['rssi', 'temp']);
    expect(latest.values('temp', undefined, () => true)).toEqual([
      { id: 'pump-1', at: 2_000, value: 21 },
      { id: 'pump-2', at: 1_500, value: 22 },
    ]);
    expect(latest.values('rssi', undefined, () => true)).toEqual([{ id: 'pump-1', at: 1_000, value: -60 }]);
  });

  it('answers only the devices named, once each, and forgets devices that are gone', () => {
    const latest = new LatestValues();
    latest.observe(telemetry('a', 1, { temp: 1 }));
    latest.observe(telemetry('b', 2, { temp: 2 }));
    latest.observe(telemetry('c', 3, { temp: 3 }));
    expect(latest.values('temp', ['c', 'a', 'c', 'nobody'], () => true).map((v) => v.id)).toEqual(['c', 'a']);
    expect(latest.values('temp', undefined, (id) => id !== 'b').map((v) => v.id)).toEqual(['a', 'c']);
    expect(latest.values('temp', ['b'], () => true)).toEqual([]);
  });

  it('keeps at most a bounded number of names unasked; a metric asked for is kept from then on', () => {
    const latest = new LatestValues();
    for (let i = 0; i < MAX_TRACKED_METRICS + 5; i++) latest.observe(telemetry('d', i, { [`m${i}`]: i }));
    expect(latest.metrics()).toHaveLength(MAX_TRACKED_METRICS);
    const late = `m${MAX_TRACKED_METRICS + 1}`;
    expect(latest.values(late, undefined, () => true)).toEqual([]);
    latest.observe(telemetry('d', 9_999, { [late]: 7 }));
    expect(latest.values(late, undefined, () => true)).toEqual([{ id: 'd', at: 9_999, value: 7 }]);
  });

  it('takes stored points where nothing newer was heard, and names the ones the bound left out', () => {
    const latest = new LatestValues();
    latest.observe(telemetry('a', 5_000, { temp: 30 }));
    const left = latest.seed([
      { deviceId: 'a', metric: 'temp', receivedAt: 4_000, value: 1 }, // older than heard: ignored
      { deviceId: 'b', metric: 'temp', receivedAt: 4_000, value: 2 },
      { deviceId: 'a', metric: 'rssi', receivedAt: 3_000, value: -70 },
    ]);
    expect(left.size).toBe(0);
    expect(latest.metrics()).toEqual(['rssi', 'temp']);
    expect(latest.values('temp', undefined, () => true)).toEqual([
      { id: 'a', at: 5_000, value: 30 },
      { id: 'b', at: 4_000, value: 2 },
    ]);
    latest.seed([{ deviceId: 'b', metric: 'temp', receivedAt: 6_000, value: 3 }]);
    expect(latest.values('temp', ['b'], () => true)).toEqual([{ id: 'b', at: 6_000, value: 3 }]);

    const full = new LatestValues();
    const many = Array.from({ length: MAX_TRACKED_METRICS + 2 }, (_, i) => ({
      deviceId: 'd',
      metric: `m${i}`,
      receivedAt: i,
      value: i,
    }));
    expect([...full.seed(many)]).toEqual([`m${MAX_TRACKED_METRICS}`, `m${MAX_TRACKED_METRICS + 1}`]);
    expect(full.metrics()).toHaveLength(MAX_TRACKED_METRICS);
    full.seed([many.at(-1)!], true);
    expect(full.values(`m${MAX_TRACKED_METRICS + 1}`, undefined, () => true)).toHaveLength(1);
  });
});

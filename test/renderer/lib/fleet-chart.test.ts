/**
 * The pure parts of the fleet's one-metric chart (renderer/src/lib/fleet-chart.ts): which devices
 * it draws, and several devices' history and live points laid on one time grid.
 */
import { describe, expect, it } from 'vitest';
import {
  alignSeries,
  CHART_MAX_DEVICES,
  chartDevices,
  colourOf,
  lastValue,
} from '../../../renderer/src/lib/fleet-chart.js';

const bucket = (start: number, avg: number) => ({ start, min: avg, max: avg, avg, count: 1 });

describe('chartDevices', () => {
  const shown = Array.from({ length: 50 }, (_, i) => `d-${i}`);

  it('takes the selection when there is one, else the first shown, at most 20', () => {
    expect(chartDevices(['d-7', 'd-3'], shown)).toEqual({ ids: ['d-7', 'd-3'], total: 2, from: 'selection' });
    const first = chartDevices([], shown);
    expect(first.ids).toEqual(shown.slice(0, CHART_MAX_DEVICES));
    expect(first).toMatchObject({ total: 50, from: 'shown' });
    expect(chartDevices(shown, []).ids).toHaveLength(CHART_MAX_DEVICES);
    expect(chartDevices([], [])).toEqual({ ids: [], total: 0, from: 'shown' });
  });

  it('gives each line its own colour', () => {
    const colours = new Set(Array.from({ length: CHART_MAX_DEVICES }, (_, i) => colourOf(i)));
    expect(colours.size).toBe(CHART_MAX_DEVICES);
  });
});

describe('alignSeries', () => {
  const grid = { from: 0, bucketMs: 10_000 };

  it('lays every series on one grid of bucket middles, null where a device said nothing', () => {
    const data = alignSeries(grid, 35_000, 60_000, [
      { history: [bucket(0, 1), bucket(20_000, 3)], times: [], values: [] },
      { history: [bucket(10_000, 7)], times: [], values: [] },
    ]);
    expect(data[0]).toEqual([5, 15, 25, 35]);
    expect(data[1]).toEqual([1, null, 3, null]);
    expect(data[2]).toEqual([null, 7, null, null]);
  });

  it('averages live points into the buckets after the history, never over it', () => {
    const [, column] = alignSeries(grid, 45_000, 60_000, [
      { history: [bucket(10_000, 5)], times: [12_000, 21_000, 29_000, 41_000], values: [99, 2, 4, 8] },
    ]);
    expect(column).toEqual([null, 5, 3, null, 8]);
  });

  it('keeps only the window before now as time goes on', () => {
    const data = alignSeries(grid, 95_000, 30_000, [
      { history: [bucket(0, 1)], times: [91_000], values: [6] },
    ]);
    expect(data[0]).toEqual([75, 85, 95]);
    expect(data[1]).toEqual([null, null, 6]);
    expect(lastValue(data[1]!)).toBe(6);
    expect(lastValue([null, null])).toBeNull();
  });
});

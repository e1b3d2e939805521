/**
 * Sorting the fleet table by a metric column (renderer/src/lib/fleet-sort.ts): by the latest value,
 * ties by id, devices without a value last in both directions, and re-sorted when values change.
 */
import { describe, expect, it } from 'vitest';
import { metricOfSortKey, metricSortKey, sortDevices } from '../../../renderer/src/lib/fleet-sort.js';
import type { DeviceRow } from '../../../src/host/contract.js';
import { row } from '../device-rows.js';

const devices = new Map(['d-1', 'd-2', 'd-3', 'd-10', 'd-11'].map((id) => [id, row(id)]));
const ids = (rows: readonly DeviceRow[]) => rows.map((r) => r.id);

describe('sorting by a metric column', () => {
  const temp: Record<string, number> = { 'd-1': 21.5, 'd-2': -3, 'd-10': 21.5, 'd-11': Number.NaN };
  const tempOf = (id: string, metric: string) => (metric === 'temp' ? temp[id] : undefined);
  const key = metricSortKey('temp');

  it('names the metric in the sort key', () => {
    expect(key).toBe('metric:temp');
    expect(metricOfSortKey(key)).toBe('temp');
    expect(metricOfSortKey('metric:a:b')).toBe('a:b');
    expect(metricOfSortKey('lastSeen')).toBeNull();
  });

  it('orders by value, ties by id, missing values (and NaN) last in both directions', () => {
    expect(ids(sortDevices(devices, key, false, [], tempOf))).toEqual(['d-2', 'd-1', 'd-10', 'd-3', 'd-11']);
    expect(ids(sortDevices(devices, key, true, [], tempOf))).toEqual(['d-1', 'd-10', 'd-2', 'd-3', 'd-11']);
  });

  it('puts every device in id order when no value is known, or for another metric', () => {
    expect(ids(sortDevices(devices, key, true))).toEqual(['d-1', 'd-2', 'd-3', 'd-10', 'd-11']);
    expect(ids(sortDevices(devices, metricSortKey('rssi'), false, [], tempOf))).toEqual([
      'd-1',
      'd-2',
      'd-3',
      'd-10',
      'd-11',
    ]);
  });

  it('follows new values from the last order', () => {
    const first = sortDevices(devices, key, false, [], tempOf);
    const next: Record<string, number> = { ...temp, 'd-3': -10, 'd-2': 30 };
    expect(ids(sortDevices(devices, key, false, first, (id) => next[id]))).toEqual([
      'd-3',
      'd-1',
      'd-10',
      'd-2',
      'd-11',
    ]);
  });
});

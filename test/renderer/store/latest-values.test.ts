/**
 * The fleet table's model of the latest metric values (renderer/src/store/latest-values.ts): only
 * tracked metrics kept, the host's answer and pushed points merged with the newer value winning,
 * and an untracked metric forgotten.
 */
import { describe, expect, it } from 'vitest';
import { createLatestValues } from '../../../renderer/src/store/latest-values.js';

describe('latest values', () => {
  it('keeps tracked metrics only, newest value first whichever way it came', () => {
    const latest = createLatestValues();
    latest.track(['temp']);
    expect(latest.merge('temp', [{ id: 'a', at: 10, value: 1 }])).toBe(true);
    expect(latest.merge('rssi', [{ id: 'a', at: 10, value: -50 }])).toBe(false);
    expect(
      latest.applyPoints([
        { id: 'a', metric: 'temp', at: 20, value: 2 },
        { id: 'b', metric: 'rssi', at: 20, value: -60 },
      ]),
    ).toBe(true);
    // The host's answer may arrive after newer pushes: it does not roll them back.
    expect(latest.merge('temp', [{ id: 'a', at: 15, value: 9 }])).toBe(false);
    expect(latest.applyPoints([{ id: 'a', metric: 'temp', at: 20, value: 2 }])).toBe(false);
    expect(latest.get('temp', 'a')).toEqual({ at: 20, value: 2 });
    expect(latest.get('rssi', 'b')).toBeUndefined();
  });

  it('forgets a metric no longer tracked, and keeps the values of one still tracked', () => {
    const latest = createLatestValues();
    latest.track(['temp', 'flow']);
    latest.merge('temp', [{ id: 'a', at: 1, value: 20 }]);
    latest.merge('flow', [{ id: 'a', at: 1, value: 3 }]);
    latest.track(['flow', 'rssi']);
    expect(latest.tracked()).toEqual(['flow', 'rssi']);
    expect(latest.get('temp', 'a')).toBeUndefined();
    expect(latest.get('flow', 'a')).toEqual({ at: 1, value: 3 });
  });
});

describe('latest values: a column’s decimals', () => {
  it('follows the most precise value of the metric, again after its values change', () => {
    const latest = createLatestValues();
    latest.track(['temp', 'rssi']);
    latest.merge('temp', [
      { id: 'a', at: 10, value: 21 },
      { id: 'b', at: 10, value: 21.5 },
    ]);
    latest.merge('rssi', [{ id: 'a', at: 10, value: -61 }]);
    expect(latest.decimals('temp')).toBe(1);
    expect(latest.decimals('rssi')).toBe(0);
    latest.applyPoints([{ id: 'c', metric: 'temp', at: 11, value: 21.53 }]);
    expect(latest.decimals('temp')).toBe(2);
    // The precise reading replaced by a coarser one: the column needs fewer again.
    latest.applyPoints([{ id: 'c', metric: 'temp', at: 12, value: 21.5 }]);
    expect(latest.decimals('temp')).toBe(1);
    expect(latest.decimals('unknown')).toBe(0);
  });
});

/**
 * A metric cell's reading (renderer/src/views/FleetRow.tsx): up to 2 decimals, fewer for large
 * numbers, digits grouped — the same text `toLocaleString` gave, from formatters made once (a
 * table of 2,000 rows sorted by a metric re-renders its visible cells every second, and building a
 * formatter per call was most of a cell's render).
 */
import { describe, expect, it } from 'vitest';
import { formatReading } from '../../../renderer/src/views/FleetRow.js';

describe('formatReading', () => {
  it('reads as toLocaleString did, for small, large, negative and whole values', () => {
    const values = [0, 21.374, 25, -75, 99.999, 100.25, 1_204.56, 86_400, -0.004, 1e9 + 0.5];
    for (const v of values) {
      const digits = Math.abs(v) >= 1_000 ? 0 : Math.abs(v) >= 100 ? 1 : 2;
      expect(formatReading(v), String(v)).toBe(v.toLocaleString('en-US', { maximumFractionDigits: digits }));
    }
    expect(formatReading(21.374)).toBe('21.37');
    expect(formatReading(1_204.56)).toBe('1,205');
  });
});

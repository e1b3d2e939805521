/**
 * Metric readings in the fleet table's columns (renderer/src/lib/reading-format.ts, issue 13: "21.5
 * next to 21.53 next to 21"): one number of decimals per column, from what its most precise value
 * needs, at most what a reading's size is worth; and a lone reading as `toLocaleString` gave it.
 */
import { describe, expect, it } from 'vitest';
import { columnDecimals, decimalsNeeded, formatReading } from '../../../renderer/src/lib/reading-format.js';

describe('reading format', () => {
  it('reads a lone value as toLocaleString did, for small, large, negative and whole values', () => {
    const values = [0, 21.374, 25, -75, 99.999, 100.25, 1_204.56, 86_400, -0.004, 1e9 + 0.5];
    for (const v of values) {
      const digits = Math.abs(v) >= 1_000 ? 0 : Math.abs(v) >= 100 ? 1 : 2;
      expect(formatReading(v), String(v)).toBe(v.toLocaleString('en-US', { maximumFractionDigits: digits }));
    }
  });

  it.each([
    [21, 0],
    [21.5, 1],
    [21.53, 2],
    [21.537, 2],
    [21.999, 0], // reads 22
    [21.995, 0], // reads 22.00 → 22
    [0.1 + 0.2, 1],
    [-3.25, 2],
    [100.25, 1], // from 100 on, one decimal at most
    [1_204.56, 0], // from 1,000 on, none
    [Number.NaN, 0],
  ])('%s needs %i decimals', (value, decimals) => {
    expect(decimalsNeeded(value)).toBe(decimals);
  });

  it.each([
    [[21.5, 21.53, 21], 2, ['21.50', '21.53', '21.00']],
    [[21.5, 21, 22.1], 1, ['21.5', '21.0', '22.1']],
    [[-75, -61, -80], 0, ['-75', '-61', '-80']],
    [[86_400, 3_600.5, 12], 0, ['86,400', '3,601', '12']],
    [[1_204.56, 0.53], 2, ['1,204.56', '0.53']],
    [[-0.004, 1.25], 2, ['0.00', '1.25']],
    [[], 0, []],
  ])('a column of %j shows %i decimals in every cell', (values, decimals, shown) => {
    expect(columnDecimals(values)).toBe(decimals);
    expect(values.map((v) => formatReading(v, decimals))).toEqual(shown);
  });

  it('keeps a column right-aligned: its cells are as long where the integer parts are', () => {
    const values = [21.5, 21.53, 21, 19.9, 20.25];
    const d = columnDecimals(values);
    expect(new Set(values.map((v) => formatReading(v, d).length))).toEqual(new Set([5]));
  });
});

/**
 * Metric readings for a column of numbers: one number of decimals per column, so `21.50` sits above
 * `21.53` and `21.00`, not `21.5` above `21.53` above `21`. The contract carries no precision for a
 * kind's metrics, so a column's decimals come from its values: as many as the most precise of them
 * needs, at most 2 (1 for readings of 100 and more, none from 1,000 on, as before), so a column of
 * whole numbers stays whole. Formatters are made once: `toLocaleString` with options builds an
 * `Intl.NumberFormat` per call, which was most of a metric cell's render.
 *
 * @example
 * const d = columnDecimals([21.5, 21.53, 21]); // 2
 * formatReading(21.5, d);                     // '21.50'
 * formatReading(1_204.56);                    // '1,205' (the value's own precision)
 */

/** The most decimals a reading is shown with. */
export const MAX_READING_DECIMALS = 2;

const FIXED = Array.from(
  { length: MAX_READING_DECIMALS + 1 },
  (_, digits) =>
    // 'negative': a reading that rounds to zero reads 0.00, not -0.00.
    new Intl.NumberFormat('en-US', {
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
      signDisplay: 'negative',
    }),
);
const UP_TO = Array.from(
  { length: MAX_READING_DECIMALS + 1 },
  (_, digits) => new Intl.NumberFormat('en-US', { maximumFractionDigits: digits }),
);

/** The decimals a reading of this size is worth at most: 2, 1 from 100 on, none from 1,000 on. */
export function decimalsWorth(value: number): number {
  const abs = Math.abs(value);
  return abs >= 1_000 ? 0 : abs >= 100 ? 1 : MAX_READING_DECIMALS;
}

/** The decimals one reading needs (trailing zeros dropped), at most what its size is worth. */
export function decimalsNeeded(value: number): number {
  if (!Number.isFinite(value)) return 0;
  const most = decimalsWorth(value);
  // Rounded as shown, in integer steps, so 21.999 needs none (it reads 22) and 0.1 + 0.2 needs one.
  const scaled = Math.round(Math.abs(value) * 10 ** most);
  let needed = most;
  for (let step = scaled; needed > 0 && step % 10 === 0; step /= 10) needed--;
  return needed;
}

/** The decimals of a column: what its most precise reading needs. 0 for no readings. */
export function columnDecimals(values: Iterable<number>): number {
  let decimals = 0;
  for (const value of values) {
    const needed = decimalsNeeded(value);
    if (needed > decimals) decimals = needed;
    if (decimals === MAX_READING_DECIMALS) break;
  }
  return decimals;
}

/**
 * A reading with its digits grouped: with `decimals`, exactly that many (a column's); without,
 * up to what its size is worth (`21.37`, `204.5`, `1,205`, `86,400`).
 */
export function formatReading(value: number, decimals?: number): string {
  if (decimals === undefined) return UP_TO[decimalsWorth(value)]!.format(value);
  const d = Math.max(0, Math.min(MAX_READING_DECIMALS, Math.trunc(decimals)));
  return FIXED[d]!.format(value);
}

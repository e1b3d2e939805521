/**
 * The pure parts of the fleet's one-metric chart: which devices it draws (the selection, else the
 * first ones the filter shows, at most {@link CHART_MAX_DEVICES}), and the devices' series laid on
 * one time grid for uPlot — the host's history in equal buckets (every device asked for the same
 * range, so their buckets line up), then live points averaged into the buckets after it.
 *
 * @example
 * const pick = chartDevices(selectedIds, shownIds);     // { ids, total, from: 'selection' | 'shown' }
 * const grid = { from, bucketMs: CHART_WINDOW_MS / CHART_BUCKETS };
 * const data = alignSeries(grid, now, CHART_WINDOW_MS, series);  // [x, s1, s2, …]
 */
import type { Bucket } from '../../../src/host/contract.js';

export const CHART_MAX_DEVICES = 20;
export const CHART_WINDOW_MS = 3_600_000;
/** 30 s each over the hour: fine enough to see a step, few enough for 20 lines. */
export const CHART_BUCKETS = 120;

/** Distinct on light and dark panels, in an order where neighbours differ most. */
export const SERIES_COLOURS: readonly string[] = [
  '#2563eb',
  '#dc2626',
  '#16a34a',
  '#d97706',
  '#7c3aed',
  '#0891b2',
  '#db2777',
  '#65a30d',
  '#ea580c',
  '#4f46e5',
  '#0d9488',
  '#be123c',
  '#a16207',
  '#9333ea',
  '#0284c7',
  '#c026d3',
  '#15803d',
  '#b45309',
  '#6d28d9',
  '#e11d48',
];

export function colourOf(index: number): string {
  return SERIES_COLOURS[index % SERIES_COLOURS.length]!;
}

export interface ChartPick {
  readonly ids: readonly string[];
  /** How many there were to pick from. */
  readonly total: number;
  readonly from: 'selection' | 'shown';
}

/** The selected devices when any (in the table's order), else the first shown; capped. */
export function chartDevices(
  selected: readonly string[],
  shown: readonly string[],
  max = CHART_MAX_DEVICES,
): ChartPick {
  const from = selected.length > 0 ? 'selection' : 'shown';
  const list = from === 'selection' ? selected : shown;
  return { ids: list.slice(0, max), total: list.length, from };
}

export interface ChartGrid {
  /** Wall ms where bucket 0 starts. */
  readonly from: number;
  readonly bucketMs: number;
}

export interface SeriesInput {
  /** The host's buckets over the grid (same from, same bucket size). */
  readonly history: readonly Bucket[];
  /** Live points, oldest first. */
  readonly times: readonly number[];
  readonly values: readonly number[];
}

/**
 * uPlot's columns: x in seconds (each bucket's middle) over the last `windowMs` before `now`, then
 * one column per series, null where a device reported nothing. A bucket the history covers keeps
 * the history's average; live points only fill the buckets after the history's last.
 */
export function alignSeries(
  grid: ChartGrid,
  now: number,
  windowMs: number,
  series: readonly SeriesInput[],
): [number[], ...(number | null)[][]] {
  const { from, bucketMs } = grid;
  const last = Math.max(0, Math.floor((now - from) / bucketMs));
  const first = Math.max(0, Math.ceil((now - windowMs - from) / bucketMs));
  const n = last - first + 1;
  const x: number[] = [];
  for (let i = first; i <= last; i++) x.push((from + (i + 0.5) * bucketMs) / 1000);
  const columns = series.map((s) => {
    const sum = new Float64Array(n);
    const count = new Uint32Array(n);
    const out: (number | null)[] = new Array(n).fill(null);
    let historyEnd = -1;
    for (const b of s.history) {
      const i = Math.floor((b.start - from) / bucketMs);
      historyEnd = Math.max(historyEnd, i);
      if (i >= first && i <= last) out[i - first] = b.avg;
    }
    for (let k = 0; k < s.times.length; k++) {
      const i = Math.floor((s.times[k]! - from) / bucketMs);
      if (i <= historyEnd || i < first || i > last) continue;
      const j = i - first;
      sum[j] = (sum[j] ?? 0) + s.values[k]!;
      count[j] = (count[j] ?? 0) + 1;
    }
    for (let j = 0; j < n; j++) if (count[j]! > 0) out[j] = sum[j]! / count[j]!;
    return out;
  });
  return [x, ...columns];
}

/** The last non-null value of a column, for the legend. */
export function lastValue(column: readonly (number | null)[]): number | null {
  for (let i = column.length - 1; i >= 0; i--)
    if (column[i] !== null && column[i] !== undefined) return column[i]!;
  return null;
}

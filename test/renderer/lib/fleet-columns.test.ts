/**
 * The fleet table's column choice (renderer/src/lib/fleet-columns.ts): defaults, what is read back
 * from storage (validated), hiding and showing own columns (never the id), metric columns added in
 * order up to the bound, each with its unit, and the grid's tracks following the columns shown.
 */
import { describe, expect, it } from 'vitest';
import {
  addMetricColumn,
  DEFAULT_COLUMN_PREFS,
  gridMinWidth,
  gridTemplate,
  MAX_METRIC_COLUMNS,
  OWN_COLUMNS,
  parseColumnPrefs,
  removeMetricColumn,
  toggleColumn,
  visibleColumns,
} from '../../../renderer/src/lib/fleet-columns.js';

const keys = (prefs = DEFAULT_COLUMN_PREFS) => visibleColumns(prefs).map((c) => c.key);

describe('fleet columns', () => {
  it('shows every own column and no metric by default', () => {
    expect(keys()).toEqual(OWN_COLUMNS.map((c) => c.key));
    expect(parseColumnPrefs(undefined)).toEqual(DEFAULT_COLUMN_PREFS);
  });

  it('reads back only what makes sense: known columns, usable names, no repeats, the bound', () => {
    const raw = {
      hidden: ['drift', 'id', 'nonsense', 'drift', 7],
      metrics: ['temp', '', 'temp', 'x'.repeat(65), 3, 'a', 'b', 'c', 'd', 'e', 'f'],
    };
    expect(parseColumnPrefs(raw)).toEqual({ hidden: ['drift'], metrics: ['temp', 'a', 'b', 'c', 'd', 'e'] });
    for (const bad of [null, 'x', 42, [], { hidden: 'drift', metrics: {} }])
      expect(parseColumnPrefs(bad)).toEqual(DEFAULT_COLUMN_PREFS);
  });

  it('hides and shows own columns, but never the id', () => {
    const hidden = toggleColumn(toggleColumn(DEFAULT_COLUMN_PREFS, 'drift'), 'firmware');
    expect(keys(hidden)).not.toContain('drift');
    expect(keys(hidden)).not.toContain('firmware');
    expect(keys(toggleColumn(hidden, 'drift'))).toContain('drift');
    expect(toggleColumn(DEFAULT_COLUMN_PREFS, 'id')).toBe(DEFAULT_COLUMN_PREFS);
  });

  it('adds metric columns after the own ones, in order, with their unit, up to the bound', () => {
    let prefs = addMetricColumn(DEFAULT_COLUMN_PREFS, ' temp ');
    prefs = addMetricColumn(prefs, 'flow');
    expect(addMetricColumn(prefs, 'temp')).toBe(prefs);
    expect(addMetricColumn(prefs, '  ')).toBe(prefs);
    const shown = visibleColumns(prefs);
    expect(shown.slice(-2).map((c) => [c.key, c.metric, c.unit, c.numeric])).toEqual([
      ['metric:temp', 'temp', '°C', true],
      ['metric:flow', 'flow', 'l/min', true],
    ]);
    expect(removeMetricColumn(prefs, 'temp').metrics).toEqual(['flow']);
    for (let i = 0; i < 10; i++) prefs = addMetricColumn(prefs, `m${i}`);
    expect(prefs.metrics).toHaveLength(MAX_METRIC_COLUMNS);
  });

  it('lays the grid out for the columns shown, the checkbox first', () => {
    const prefs = addMetricColumn(toggleColumn(DEFAULT_COLUMN_PREFS, 'name'), 'temp');
    const columns = visibleColumns(prefs);
    const tracks = gridTemplate(columns);
    expect(tracks.startsWith('34px ')).toBe(true);
    // One track per column: the widths are single tokens or one minmax(…).
    expect(tracks.match(/minmax\([^)]*\)|\d+px/g)).toHaveLength(columns.length + 1);
    // The rows' least width is the sum of the tracks' least widths.
    const least = [...tracks.matchAll(/(?:minmax\()?(\d+)px/g)].reduce((sum, m) => sum + Number(m[1]), 0);
    expect(gridMinWidth(columns)).toBe(least);
  });

  it('makes a metric column wide enough for its header, within bounds', () => {
    const short = visibleColumns(addMetricColumn(DEFAULT_COLUMN_PREFS, 'rpm')).at(-1)!;
    const long = visibleColumns(addMetricColumn(DEFAULT_COLUMN_PREFS, 'temperature')).at(-1)!;
    const huge = visibleColumns(addMetricColumn(DEFAULT_COLUMN_PREFS, 'x'.repeat(64))).at(-1)!;
    expect(short.minPx).toBe(96);
    expect(long.minPx).toBeGreaterThan(short.minPx);
    expect(huge.minPx).toBe(180);
  });
});

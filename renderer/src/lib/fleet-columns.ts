/**
 * Which columns the fleet table shows: its own columns, any of which but the id can be hidden, and
 * metric columns (the latest value of a metric per device, with its unit), in the order added. The
 * choice is the operator's, kept in this browser (localStorage), validated when read back.
 *
 * @example
 * let prefs = parseColumnPrefs(undefined);          // every own column, no metric
 * prefs = addMetricColumn(toggleColumn(prefs, 'drift'), 'temp');
 * const columns = visibleColumns(prefs);            // …, restarts, temp (°C)
 * row.style.gridTemplateColumns = gridTemplate(columns);
 */
import type { SortKey } from './fleet-sort.js';
import { metricSortKey } from './fleet-sort.js';
import { unitOf } from './format.js';
import { createStoredValue } from './stored-value.js';

export type OwnColumnKey = Exclude<SortKey, `metric:${string}`>;

export interface FleetColumn {
  readonly key: SortKey;
  readonly label: string;
  readonly numeric: boolean;
  /** Its track in the grid's `grid-template-columns`. */
  readonly width: string;
  /** The least the track takes, px: the rows' least width is their sum. */
  readonly minPx: number;
  /** Set on a metric column. */
  readonly metric?: string;
  readonly unit?: string;
}

/** The table's own columns, in their order; the id stays (a row needs a name). */
export const OWN_COLUMNS: readonly (FleetColumn & { readonly key: OwnColumnKey; readonly fixed?: true })[] = [
  { key: 'id', label: 'ID', numeric: false, width: 'minmax(96px, 0.9fr)', minPx: 96, fixed: true },
  { key: 'name', label: 'Name', numeric: false, width: 'minmax(130px, 1.4fr)', minPx: 130 },
  { key: 'kind', label: 'Kind', numeric: false, width: 'minmax(150px, 1.1fr)', minPx: 150 },
  { key: 'state', label: 'State', numeric: false, width: 'minmax(150px, 1.4fr)', minPx: 150 },
  { key: 'link', label: 'Link', numeric: false, width: 'minmax(130px, 1.1fr)', minPx: 130 },
  { key: 'firmware', label: 'Firmware', numeric: false, width: '96px', minPx: 96 },
  { key: 'lastSeen', label: 'Last seen', numeric: true, width: '112px', minPx: 112 },
  { key: 'drift', label: 'Drift', numeric: true, width: '76px', minPx: 76 },
  { key: 'restarts', label: 'Restarts', numeric: true, width: '104px', minPx: 104 },
];

/** The selection checkbox's track, before every column. */
const CHECK_PX = 34;
/** More would squeeze the own columns past reading on a laptop screen. */
export const MAX_METRIC_COLUMNS = 6;
/** A metric name as the contract allows it. */
const MAX_METRIC_NAME = 64;

export interface FleetColumnPrefs {
  readonly hidden: readonly OwnColumnKey[];
  readonly metrics: readonly string[];
}

export const DEFAULT_COLUMN_PREFS: FleetColumnPrefs = { hidden: [], metrics: [] };

const isOwnKey = (key: unknown): key is OwnColumnKey => OWN_COLUMNS.some((c) => c.key === key && !c.fixed);

const isMetricName = (name: unknown): name is string =>
  typeof name === 'string' && name.length > 0 && name.length <= MAX_METRIC_NAME;

/** What was stored, validated: unknown columns, bad names and repeats dropped, the bound kept. */
export function parseColumnPrefs(raw: unknown): FleetColumnPrefs {
  if (typeof raw !== 'object' || raw === null) return DEFAULT_COLUMN_PREFS;
  const { hidden, metrics } = raw as { hidden?: unknown; metrics?: unknown };
  return {
    hidden: Array.isArray(hidden) ? [...new Set(hidden.filter(isOwnKey))] : [],
    metrics: Array.isArray(metrics)
      ? [...new Set(metrics.filter(isMetricName))].slice(0, MAX_METRIC_COLUMNS)
      : [],
  };
}

/** Shows a hidden own column, hides a shown one; the id column stays. */
export function toggleColumn(prefs: FleetColumnPrefs, key: OwnColumnKey): FleetColumnPrefs {
  if (!isOwnKey(key)) return prefs;
  const hidden = prefs.hidden.includes(key) ? prefs.hidden.filter((k) => k !== key) : [...prefs.hidden, key];
  return { ...prefs, hidden };
}

/** Adds a metric column at the end; unchanged when it is there, the name is bad, or the bound is met. */
export function addMetricColumn(prefs: FleetColumnPrefs, metric: string): FleetColumnPrefs {
  const name = metric.trim();
  if (!isMetricName(name) || prefs.metrics.includes(name) || prefs.metrics.length >= MAX_METRIC_COLUMNS)
    return prefs;
  return { ...prefs, metrics: [...prefs.metrics, name] };
}

export function removeMetricColumn(prefs: FleetColumnPrefs, metric: string): FleetColumnPrefs {
  return { ...prefs, metrics: prefs.metrics.filter((m) => m !== metric) };
}

/**
 * A metric column, wide enough for its header (name, unit and the sort arrow, in the header's
 * 11.5 px capitals: about 8 px a character) and for a reading like `-1,204.57 °C`.
 */
export function metricColumn(metric: string): FleetColumn {
  const unit = unitOf(metric);
  const minPx = Math.min(180, Math.max(96, 8 * (metric.length + unit.length + 3) + 16));
  return {
    key: metricSortKey(metric),
    label: metric,
    numeric: true,
    width: `minmax(${minPx}px, 0.8fr)`,
    minPx,
    metric,
    unit,
  };
}

/** The columns shown, in order: the own ones not hidden, then the metric ones. */
export function visibleColumns(prefs: FleetColumnPrefs): FleetColumn[] {
  return [
    ...OWN_COLUMNS.filter((c) => c.fixed || !prefs.hidden.includes(c.key)),
    ...prefs.metrics.map(metricColumn),
  ];
}

/** The grid's tracks for these columns, the checkbox first. */
export function gridTemplate(columns: readonly FleetColumn[]): string {
  return [`${CHECK_PX}px`, ...columns.map((c) => c.width)].join(' ');
}

/**
 * The least width of a row, px. Rows and header take at least this, so past the window's width
 * the table scrolls sideways with every row laid out alike, instead of cutting the last columns.
 */
export function gridMinWidth(columns: readonly FleetColumn[]): number {
  return columns.reduce((sum, c) => sum + c.minPx, CHECK_PX);
}

/** This browser's choice, shared by the table and the chooser. */
export const columnPrefs = createStoredValue('fleetvisor.fleetColumns', parseColumnPrefs);

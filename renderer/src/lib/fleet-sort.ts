/**
 * The fleet table's order and filter, pure functions of the rows: natural order (`pump-2` before
 * `pump-10`) by any column with ties by id, re-sorted cheaply from the last order after a push,
 * and the filter by text (id, name, firmware, tags), kind, state and tag. A metric column sorts by
 * the device's latest value of that metric (`metric:temp`); devices without one come last in
 * either direction, so flipping the order shows the other end of the readings, not the blanks.
 *
 * @example
 * const rows = sortDevices(devices, 'lastSeen', true, lastRows).filter((r) => matches(r, filter));
 * sortDevices(devices, metricSortKey('temp'), true, lastRows, (id, m) => latest.get(m, id)?.value);
 */
import type { DeviceRow } from '../../../src/host/contract.js';

export type SortKey =
  | 'id'
  | 'name'
  | 'kind'
  | 'state'
  | 'link'
  | 'firmware'
  | 'lastSeen'
  | 'drift'
  | 'restarts'
  | `metric:${string}`;

/** The latest value of a metric for a device, when known (for metric columns). */
export type MetricValueOf = (id: string, metric: string) => number | undefined;

export const metricSortKey = (metric: string): SortKey => `metric:${metric}`;

/** The metric a sort key names, or null for the row's own columns. */
export function metricOfSortKey(key: SortKey): string | null {
  return key.startsWith('metric:') ? key.slice(7) : null;
}

// Every push replaces the rows that changed (a live device's every second: its "last seen"), so
// nothing is cached per row object; the texts a key is made of rarely change, so keys are cached
// by text.
const naturalKeys = new Map<string, string>();

/** `pump-2` before `pump-10`: digits padded, case folded; plain `<` then sorts naturally. */
export function naturalKey(text: string): string {
  let key = naturalKeys.get(text);
  if (key === undefined) {
    if (naturalKeys.size >= 200_000) naturalKeys.clear();
    key = text.toLowerCase().replace(/\d+/g, (d) => d.padStart(12, '0'));
    naturalKeys.set(text, key);
  }
  return key;
}

function sortValue(row: DeviceRow, key: SortKey, metricValue: MetricValueOf): string | number | undefined {
  const metric = metricOfSortKey(key);
  if (metric !== null) {
    const v = metricValue(row.id, metric);
    return v === undefined || Number.isNaN(v) ? undefined : v;
  }
  switch (key as Exclude<SortKey, `metric:${string}`>) {
    case 'lastSeen':
      return row.lastSeen ?? 0;
    case 'drift':
      return row.drift;
    case 'restarts':
      return row.restarts;
    case 'link':
      return `${row.link.up ? 1 : 0}${naturalKey(row.link.via ?? '')}`;
    case 'firmware':
      return naturalKey(row.firmware ?? '');
    case 'state':
      return row.health === 'failed' ? '!' : naturalKey(row.state);
    default:
      return naturalKey(row[key as 'id' | 'name' | 'kind']);
  }
}

interface Keyed {
  readonly row: DeviceRow;
  /** undefined: no value (a metric not reported), sorted last. */
  readonly key: string | number | undefined;
  readonly tie: string;
}

/**
 * Every device sorted by `sort` (ties by id, ascending). `previous` is the last order: fed in that
 * order, a re-sort after a push that moved nothing is one pass (the sort finds one sorted run), and
 * a flip of direction one reversed run. Each key is computed once, not once per comparison.
 * `metricValue` gives metric columns their values; without it every device lacks one.
 */
export function sortDevices(
  devices: ReadonlyMap<string, DeviceRow>,
  sort: SortKey,
  descending: boolean,
  previous: readonly DeviceRow[] = [],
  metricValue: MetricValueOf = () => undefined,
): DeviceRow[] {
  const keyed: Keyed[] = [];
  const add = (row: DeviceRow) =>
    keyed.push({ row, key: sortValue(row, sort, metricValue), tie: naturalKey(row.id) });
  for (const old of previous) {
    const row = devices.get(old.id);
    if (row) add(row);
  }
  if (keyed.length !== devices.size) {
    const taken = new Set(previous.map((r) => r.id));
    for (const row of devices.values()) if (!taken.has(row.id)) add(row);
  }
  const dir = descending ? -1 : 1;
  const tie = (a: Keyed, b: Keyed) => (a.tie < b.tie ? -1 : a.tie > b.tie ? 1 : 0);
  keyed.sort((a, b) => {
    if (a.key === undefined || b.key === undefined)
      return a.key === b.key ? tie(a, b) : a.key === undefined ? 1 : -1;
    return a.key < b.key ? -dir : a.key > b.key ? dir : tie(a, b);
  });
  return keyed.map((k) => k.row);
}

/** What the toolbar filters by; empty strings filter nothing. */
export interface FleetFilter {
  readonly text: string;
  readonly kind: string;
  readonly state: string;
  readonly tag: string;
}

/** The lowercased texts the filter box searches, per device, kept while they stay the same. */
const haystacks = new Map<
  string,
  { name: string; firmware: string | null; tags: readonly string[]; text: string }
>();

function haystackOf(row: DeviceRow): string {
  const cached = haystacks.get(row.id);
  if (
    cached &&
    cached.name === row.name &&
    cached.firmware === row.firmware &&
    cached.tags.length === row.tags.length &&
    cached.tags.every((t, i) => t === row.tags[i])
  )
    return cached.text;
  if (haystacks.size >= 200_000) haystacks.clear();
  // One line per field: the box's text holds no line break, so a match never spans two fields.
  const text = [row.id, row.name, row.firmware ?? '', ...row.tags].join('\n').toLowerCase();
  haystacks.set(row.id, { name: row.name, firmware: row.firmware, tags: row.tags, text });
  return text;
}

export function matches(row: DeviceRow, ui: FleetFilter): boolean {
  if (ui.kind && row.kind !== ui.kind) return false;
  if (ui.tag && !row.tags.includes(ui.tag)) return false;
  if (ui.state) {
    if (ui.state === 'health:failed') {
      if (row.health !== 'failed') return false;
    } else if (row.state !== ui.state && !row.state.startsWith(`${ui.state}.`)) return false;
  }
  // The id, name, firmware or a tag holds the text, case folded.
  if (ui.text && !haystackOf(row).includes(ui.text.toLowerCase())) return false;
  return true;
}

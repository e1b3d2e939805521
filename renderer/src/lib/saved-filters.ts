/**
 * Named fleet filters (text, kind, state, tag) the operator saved to recall later, kept in this
 * browser (localStorage) and validated when read back. Saving under a name that exists replaces
 * that filter (names compare case folded); the list reads in name order.
 *
 * @example
 * let list = parseSavedFilters(undefined);                          // []
 * list = saveFilter(list, 'Hot roof', { text: '', kind: '', state: 'connected', tag: 'roof' });
 * describeFilter(list[0]!);                                          // 'state connected · tag roof'
 * list = deleteFilter(list, 'hot roof');                             // []
 */
import type { FleetFilter } from './fleet-sort.js';
import { createStoredValue } from './stored-value.js';

export interface SavedFilter extends FleetFilter {
  readonly name: string;
}

export const MAX_SAVED_FILTERS = 50;
export const MAX_FILTER_NAME = 60;
/** The toolbar's own limits (the contract's `devices` query takes the same). */
const MAX_TEXT = 200;

const EMPTY: FleetFilter = { text: '', kind: '', state: '', tag: '' };

const fold = (name: string) => name.trim().toLowerCase();
const byName = (a: SavedFilter, b: SavedFilter) => fold(a.name).localeCompare(fold(b.name));

const field = (value: unknown): string =>
  typeof value === 'string' && value.length <= MAX_TEXT ? value : '';

/** What was stored, validated: entries without a usable name dropped, later repeats of a name too. */
export function parseSavedFilters(raw: unknown): SavedFilter[] {
  if (!Array.isArray(raw)) return [];
  const seen = new Set<string>();
  const out: SavedFilter[] = [];
  for (const item of raw) {
    if (typeof item !== 'object' || item === null) continue;
    const r = item as Record<string, unknown>;
    const name = typeof r.name === 'string' ? r.name.trim() : '';
    if (name === '' || name.length > MAX_FILTER_NAME || seen.has(fold(name))) continue;
    seen.add(fold(name));
    out.push({ name, text: field(r.text), kind: field(r.kind), state: field(r.state), tag: field(r.tag) });
    if (out.length >= MAX_SAVED_FILTERS) break;
  }
  return out.sort(byName);
}

/** True when the filter filters something. */
export function isFiltering(filter: FleetFilter): boolean {
  return filter.text !== '' || filter.kind !== '' || filter.state !== '' || filter.tag !== '';
}

export function filterOf(saved: FleetFilter): FleetFilter {
  return { text: saved.text, kind: saved.kind, state: saved.state, tag: saved.tag };
}

export function sameFilter(a: FleetFilter, b: FleetFilter): boolean {
  return a.text === b.text && a.kind === b.kind && a.state === b.state && a.tag === b.tag;
}

/**
 * The list with `filter` saved as `name` (trimmed), replacing one of the same name. Unchanged when
 * the name is empty or too long, or the list is full and the name new.
 */
export function saveFilter(list: readonly SavedFilter[], name: string, filter: FleetFilter): SavedFilter[] {
  const trimmed = name.trim();
  if (trimmed === '' || trimmed.length > MAX_FILTER_NAME) return [...list];
  const others = list.filter((f) => fold(f.name) !== fold(trimmed));
  if (others.length >= MAX_SAVED_FILTERS) return [...list];
  return [...others, { name: trimmed, ...filterOf({ ...EMPTY, ...filter }) }].sort(byName);
}

export function deleteFilter(list: readonly SavedFilter[], name: string): SavedFilter[] {
  return list.filter((f) => fold(f.name) !== fold(name));
}

/** One line for the list: `“pump” · kind acme.pump · state connected · tag roof`. */
export function describeFilter(filter: FleetFilter): string {
  const parts: string[] = [];
  if (filter.text) parts.push(`“${filter.text}”`);
  if (filter.kind) parts.push(`kind ${filter.kind}`);
  if (filter.state) parts.push(filter.state === 'health:failed' ? 'failed' : `state ${filter.state}`);
  if (filter.tag) parts.push(`tag ${filter.tag}`);
  return parts.length > 0 ? parts.join(' · ') : 'every device';
}

/** This browser's saved filters. */
export const savedFilters = createStoredValue('fleetvisor.savedFilters', parseSavedFilters);

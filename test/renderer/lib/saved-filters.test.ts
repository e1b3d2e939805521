/**
 * Saved fleet filters (renderer/src/lib/saved-filters.ts): saved and listed by name, a name saved
 * again replaced (case folded), deleted, read back from storage validated, bounded, and described
 * in one line for the list.
 */
import { describe, expect, it } from 'vitest';
import {
  deleteFilter,
  describeFilter,
  isFiltering,
  MAX_SAVED_FILTERS,
  parseSavedFilters,
  sameFilter,
  saveFilter,
} from '../../../renderer/src/lib/saved-filters.js';

const none = { text: '', kind: '', state: '', tag: '' };

describe('saved filters', () => {
  it('saves under a trimmed name, lists by name, and replaces a name saved again', () => {
    let list = saveFilter([], ' Roof ', { ...none, tag: 'roof' });
    list = saveFilter(list, 'failed', { ...none, state: 'health:failed' });
    expect(list.map((f) => f.name)).toEqual(['failed', 'Roof']);
    list = saveFilter(list, 'roof', { ...none, tag: 'roof', state: 'connected' });
    expect(list.map((f) => [f.name, f.state])).toEqual([
      ['failed', 'health:failed'],
      ['roof', 'connected'],
    ]);
    expect(saveFilter(list, '   ', { ...none, text: 'x' })).toEqual(list);
    expect(saveFilter(list, 'x'.repeat(61), { ...none, text: 'x' })).toEqual(list);
  });

  it('keeps only the filter fields, and deletes by name', () => {
    const extra = { ...none, text: 'pump', sort: 'id', selected: ['a'] } as typeof none;
    const [saved] = saveFilter([], 'pumps', extra);
    expect(saved).toEqual({ name: 'pumps', ...none, text: 'pump' });
    expect(deleteFilter([saved!], 'PUMPS')).toEqual([]);
  });

  it('reads back what was stored, dropping what does not parse and repeated names', () => {
    const raw = [
      { name: 'b', text: 'x', kind: 'acme.pump', state: '', tag: '' },
      { name: 'A', text: 42, kind: null },
      { name: '' },
      { name: 'B', tag: 'dup' },
      'junk',
      null,
    ];
    expect(parseSavedFilters(raw)).toEqual([
      { name: 'A', text: '', kind: '', state: '', tag: '' },
      { name: 'b', text: 'x', kind: 'acme.pump', state: '', tag: '' },
    ]);
    expect(parseSavedFilters({ name: 'x' })).toEqual([]);
    expect(parseSavedFilters(undefined)).toEqual([]);
  });

  it(`keeps at most ${MAX_SAVED_FILTERS}, though a full list may still replace one`, () => {
    let list = parseSavedFilters([]);
    for (let i = 0; i < MAX_SAVED_FILTERS + 3; i++)
      list = saveFilter(list, `f${i}`, { ...none, text: `${i}` });
    expect(list).toHaveLength(MAX_SAVED_FILTERS);
    expect(saveFilter(list, 'f1', { ...none, text: 'new' }).find((f) => f.name === 'f1')?.text).toBe('new');
  });

  it('describes, compares and tells an empty filter', () => {
    expect(describeFilter({ text: 'pump', kind: 'acme.pump', state: 'connected', tag: 'roof' })).toBe(
      '“pump” · kind acme.pump · state connected · tag roof',
    );
    expect(describeFilter({ ...none, state: 'health:failed' })).toBe('failed');
    expect(describeFilter(none)).toBe('every device');
    expect(isFiltering(none)).toBe(false);
    expect(isFiltering({ ...none, tag: 'x' })).toBe(true);
    expect(sameFilter({ ...none, tag: 'x' }, { ...none, tag: 'x' })).toBe(true);
    expect(sameFilter({ ...none, tag: 'x' }, { ...none, tag: 'y' })).toBe(false);
  });
});

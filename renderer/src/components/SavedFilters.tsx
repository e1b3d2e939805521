/**
 * Saved fleet filters: recall one from the list (it replaces the toolbar's text, kind, state and
 * tag), delete one, or save the current filter under a name (an existing name is replaced). Kept
 * in this browser (renderer/src/lib/saved-filters.ts).
 *
 * @example
 * <SavedFilters current={{ text, kind, state, tag }} onRecall={(f) => setUi((ui) => ({ ...ui, ...f }))} />
 */
import { useState } from 'react';
import type { FleetFilter } from '../lib/fleet-sort.js';
import {
  deleteFilter,
  describeFilter,
  filterOf,
  isFiltering,
  MAX_FILTER_NAME,
  MAX_SAVED_FILTERS,
  sameFilter,
  savedFilters,
  saveFilter,
} from '../lib/saved-filters.js';
import { useStoredValue } from '../lib/stored-value.js';
import { MenuButton } from './MenuButton.js';

export function SavedFilters({
  current,
  onRecall,
}: {
  readonly current: FleetFilter;
  readonly onRecall: (filter: FleetFilter) => void;
}) {
  const list = useStoredValue(savedFilters);
  const active = list.find((f) => isFiltering(f) && sameFilter(f, current));
  return (
    <MenuButton
      label={active ? `Saved: ${active.name}` : 'Saved filters'}
      title="Save the current filter under a name, or recall one"
      testId="saved-filters-button"
    >
      {(close) => (
        <SavedList
          list={list}
          current={current}
          onRecall={(f) => {
            onRecall(filterOf(f));
            close();
          }}
        />
      )}
    </MenuButton>
  );
}

function SavedList({
  list,
  current,
  onRecall,
}: {
  readonly list: ReturnType<typeof savedFilters.get>;
  readonly current: FleetFilter;
  readonly onRecall: (filter: FleetFilter) => void;
}) {
  const [name, setName] = useState('');
  const filtering = isFiltering(current);
  const replaces = list.some((f) => f.name.toLowerCase() === name.trim().toLowerCase());
  const full = list.length >= MAX_SAVED_FILTERS && !replaces;

  return (
    <div className="saved-filters" data-testid="saved-filters">
      <h3>Saved filters</h3>
      {list.length === 0 ? (
        <p className="muted small-text">None yet: filter the table, then save it here.</p>
      ) : (
        <ul className="menu-list">
          {list.map((f) => (
            <li key={f.name} className="menu-row">
              <button
                type="button"
                className="link-button saved-filter"
                onClick={() => onRecall(f)}
                title={describeFilter(f)}
                data-testid="saved-filter"
                data-name={f.name}
              >
                <strong>{f.name}</strong>
                <span className="muted small-text">{describeFilter(f)}</span>
              </button>
              <button
                type="button"
                className="btn ghost small"
                aria-label={`Delete the saved filter ${f.name}`}
                onClick={() => savedFilters.set(deleteFilter(list, f.name))}
                data-testid="saved-filter-delete"
              >
                ✕
              </button>
            </li>
          ))}
        </ul>
      )}
      <form
        className="menu-row"
        onSubmit={(e) => {
          e.preventDefault();
          if (!filtering || full || name.trim() === '') return;
          savedFilters.set(saveFilter(list, name, current));
          setName('');
        }}
      >
        <input
          type="text"
          placeholder={filtering ? 'Name this filter' : 'Filter the table first'}
          aria-label="Name of the filter to save"
          value={name}
          maxLength={MAX_FILTER_NAME}
          disabled={!filtering}
          onChange={(e) => setName(e.target.value)}
          data-testid="saved-filter-name"
        />
        <button
          type="submit"
          className="btn small primary"
          disabled={!filtering || full || name.trim() === ''}
          data-testid="saved-filter-save"
        >
          {replaces ? 'Replace' : 'Save'}
        </button>
      </form>
      {filtering ? <p className="muted small-text">Saves: {describeFilter(current)}</p> : null}
      {full ? <p className="tone-text-warn small-text">At most {MAX_SAVED_FILTERS} saved filters.</p> : null}
    </div>
  );
}

/**
 * The fleet table's column chooser: a box per own column (the id stays), the metric columns with a
 * remove button each, and a field to add one, suggesting the metric names the host has heard
 * (`latestValues`, asked once each time the chooser opens). Changes apply at once and are kept in
 * this browser (renderer/src/lib/fleet-columns.ts).
 *
 * @example
 * <ColumnChooser prefs={prefs} onChange={columnPrefs.set} />
 */
import { useState } from 'react';
import type { FleetColumnPrefs } from '../lib/fleet-columns.js';
import {
  addMetricColumn,
  MAX_METRIC_COLUMNS,
  OWN_COLUMNS,
  removeMetricColumn,
  toggleColumn,
} from '../lib/fleet-columns.js';
import { unitOf } from '../lib/format.js';
import { useCall } from '../lib/hooks.js';
import { MenuButton } from './MenuButton.js';

export function ColumnChooser({
  prefs,
  onChange,
}: {
  readonly prefs: FleetColumnPrefs;
  readonly onChange: (prefs: FleetColumnPrefs) => void;
}) {
  return (
    <MenuButton
      label="Columns"
      title="Show or hide columns; add the latest value of a metric"
      testId="columns-button"
    >
      {() => <ColumnList prefs={prefs} onChange={onChange} />}
    </MenuButton>
  );
}

function ColumnList({
  prefs,
  onChange,
}: {
  readonly prefs: FleetColumnPrefs;
  readonly onChange: (prefs: FleetColumnPrefs) => void;
}) {
  const known = useCall((c) => c.call('latestValues', {}), []);
  const [metric, setMetric] = useState('');
  const full = prefs.metrics.length >= MAX_METRIC_COLUMNS;
  const suggestions = (known.value?.metrics ?? []).filter((m) => !prefs.metrics.includes(m));
  const add = (name: string) => {
    const next = addMetricColumn(prefs, name);
    if (next !== prefs) onChange(next);
    setMetric('');
  };

  return (
    <div className="column-chooser" data-testid="column-chooser">
      <h3>Columns</h3>
      <ul className="menu-list">
        {OWN_COLUMNS.map((c) => (
          <li key={c.key}>
            <label>
              <input
                type="checkbox"
                checked={c.fixed === true || !prefs.hidden.includes(c.key)}
                disabled={c.fixed === true}
                onChange={() => onChange(toggleColumn(prefs, c.key))}
                data-testid={`column-toggle-${c.key}`}
              />
              {c.label}
            </label>
          </li>
        ))}
      </ul>
      <h3>Metrics (latest value)</h3>
      {prefs.metrics.length > 0 ? (
        <ul className="menu-list">
          {prefs.metrics.map((m) => (
            <li key={m} className="menu-row">
              <span className="mono">{m}</span>
              {unitOf(m) ? <span className="muted"> {unitOf(m)}</span> : null}
              <span className="spacer" />
              <button
                type="button"
                className="btn ghost small"
                aria-label={`Remove the ${m} column`}
                onClick={() => onChange(removeMetricColumn(prefs, m))}
                data-testid={`metric-remove-${m}`}
              >
                ✕
              </button>
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted small-text">None yet.</p>
      )}
      <form
        className="menu-row"
        onSubmit={(e) => {
          e.preventDefault();
          add(metric);
        }}
      >
        <input
          type="text"
          list="fleet-metric-names"
          placeholder={full ? `at most ${MAX_METRIC_COLUMNS}` : 'metric, e.g. temp'}
          aria-label="Metric to add as a column"
          value={metric}
          disabled={full}
          maxLength={64}
          onChange={(e) => setMetric(e.target.value)}
          data-testid="metric-input"
        />
        <button
          type="submit"
          className="btn small"
          disabled={full || metric.trim() === ''}
          data-testid="metric-add"
        >
          Add
        </button>
        <datalist id="fleet-metric-names">
          {suggestions.map((m) => (
            <option key={m} value={m} />
          ))}
        </datalist>
      </form>
      {suggestions.length > 0 && !full ? (
        <div className="metric-suggestions">
          {suggestions.slice(0, 12).map((m) => (
            <button
              key={m}
              type="button"
              className="btn ghost small mono"
              onClick={() => add(m)}
              data-testid={`metric-suggest-${m}`}
            >
              + {m}
            </button>
          ))}
        </div>
      ) : null}
      {known.status === 'error' ? (
        <p className="tone-text-err small-text">Could not list the metrics: {known.message}</p>
      ) : null}
    </div>
  );
}

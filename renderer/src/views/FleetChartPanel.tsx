/**
 * The fleet view's chart of one metric across devices: the selected devices, else the first the
 * filter shows, at most 20 (renderer/src/lib/fleet-chart.ts), over the last hour. The metric is
 * picked from the names the host has heard and the table's metric columns.
 *
 * @example
 * <FleetChartPanel selected={selectedIds} shown={shownIds} filterKey={key} preferred={['temp']} onClose={close} />
 */
import { useMemo, useRef, useState } from 'react';
import { MultiDeviceChart } from '../components/MultiDeviceChart.js';
import { CHART_MAX_DEVICES, chartDevices } from '../lib/fleet-chart.js';
import { unitOf } from '../lib/format.js';
import { useCall } from '../lib/hooks.js';

export function FleetChartPanel({
  selected,
  shown,
  filterKey,
  preferred,
  onClose,
}: {
  /** Selected ids in the table's order. */
  readonly selected: readonly string[];
  /** The ids the filter shows, in the table's order. */
  readonly shown: readonly string[];
  /** Changes when the filter or the order does: the shown devices are taken again. */
  readonly filterKey: string;
  /** The table's metric columns: offered first, the first one picked. */
  readonly preferred: readonly string[];
  readonly onClose: () => void;
}) {
  const known = useCall((c) => c.call('latestValues', {}), []);
  const names = useMemo(
    () => [...new Set([...preferred, ...(known.value?.metrics ?? [])])],
    [preferred, known.value],
  );
  const [chosen, setChosen] = useState<string | null>(null);
  const metric = chosen ?? preferred[0] ?? (names.includes('temp') ? 'temp' : names[0]) ?? null;
  // The devices are taken when the panel opens, the selection or the filter changes, not at every
  // push: sorted by "last seen", the first 20 shown change every second.
  const shownRef = useRef(shown);
  shownRef.current = shown;
  const selectedKey = selected.join('\u0000');
  // biome-ignore lint/correctness/useExhaustiveDependencies: the keys say when; the shown ids are read as they are then
  const pick = useMemo(() => chartDevices(selected, shownRef.current), [selectedKey, filterKey]);
  const ids = pick.ids;

  return (
    <section
      className="panel fleet-chart-panel"
      aria-label="Chart of one metric across devices"
      data-testid="fleet-chart-panel"
    >
      <div className="panel-head">
        <h2>
          Chart{' '}
          <select
            aria-label="Metric to chart"
            value={metric ?? ''}
            onChange={(e) => setChosen(e.target.value)}
            data-testid="fleet-chart-metric"
          >
            {metric === null ? <option value="">no metric heard yet</option> : null}
            {names.map((m) => (
              <option key={m} value={m}>
                {m}
                {unitOf(m) ? ` (${unitOf(m)})` : ''}
              </option>
            ))}
          </select>
        </h2>
        <span className="muted small-text" data-testid="fleet-chart-note">
          {pick.total === 0
            ? 'no device to chart'
            : `${pick.ids.length === pick.total ? `${pick.total}` : `first ${pick.ids.length} of ${pick.total.toLocaleString('en-US')}`} ${pick.from === 'selection' ? 'selected' : 'shown'} device${pick.total === 1 ? '' : 's'} · last hour${pick.total > CHART_MAX_DEVICES ? ` · at most ${CHART_MAX_DEVICES} lines` : ''}`}
        </span>
        <span className="spacer" />
        <button type="button" className="btn ghost small" onClick={onClose} data-testid="fleet-chart-close">
          Close
        </button>
      </div>
      {metric !== null && ids.length > 0 ? <MultiDeviceChart ids={ids} metric={metric} /> : null}
    </section>
  );
}

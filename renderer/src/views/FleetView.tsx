/**
 * The fleet table: every device, live, filtered by text/kind/state/tag, sorted by any column,
 * virtualized (only the visible rows exist in the DOM, so 10,000 devices scroll like 40).
 * Select with the checkboxes (shift-click selects a range, the header box selects everything the
 * filter shows), then send an action to the selection from the action bar and read each
 * device's answer below the table. A row's name opens the device.
 *
 * The toolbar also recalls saved filters (SavedFilters), chooses the columns — hide own ones, add
 * the latest value of a metric, sortable like the rest (ColumnChooser, one `latestValues` model
 * for the whole table, store/latest-values.ts) — and opens a chart of one metric across the
 * selected or first shown devices (FleetChartPanel). Columns and saved filters live in this
 * browser's localStorage.
 *
 * In a cluster the table lists the whole fleet: this instance's devices live, the other
 * instances' read from the shared database and pushed as their owners signal changes
 * (store/remote-rows.ts), each with its owner and the age of its row; actions and a device's
 * detail on them are carried out by their owner.
 *
 * Keyboard: ↑/↓/PgUp/PgDn/Home/End move, Space selects, Enter opens, `/` jumps to the filter.
 *
 * @example
 * <FleetView ui={ui} setUi={setUi} onOpen={(id) => go({ view: 'device', id })} />
 */
import type { KeyboardEvent } from 'react';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { ActionView, ActResult, DeviceRow, Json } from '../../../src/host/contract.js';
import type { ActArgs } from '../api/client.js';
import { messageOf } from '../api/client.js';
import type { ActionChoice } from '../components/ActionForm.js';
import { ActionForm } from '../components/ActionForm.js';
import { ActResults } from '../components/ActResults.js';
import { ColumnChooser } from '../components/ColumnChooser.js';
import '../components/fleet-tools.css';
import { SavedFilters } from '../components/SavedFilters.js';
import { SimHint } from '../components/SimHint.js';
import { Empty, Waiting } from '../components/States.js';
import { useFirmwareJobs } from '../lib/firmware-jobs.js';
import type { FleetColumnPrefs } from '../lib/fleet-columns.js';
import { columnPrefs, gridMinWidth, gridTemplate, visibleColumns } from '../lib/fleet-columns.js';
import type { FleetFilter, SortKey } from '../lib/fleet-sort.js';
import { matches, metricOfSortKey, naturalKey, sortDevices } from '../lib/fleet-sort.js';
import { mergeRows } from '../lib/fleet-wide.js';
import { formatNumber } from '../lib/format.js';
import { useCall, useNow, useVirtualRows } from '../lib/hooks.js';
import { useStoredValue } from '../lib/stored-value.js';
import { useLatestValues } from '../store/latest-values.js';
import { useRemoteRows } from '../store/remote-rows.js';
import { useClient, useLive } from '../store/use-live.js';
import { ClusterShareNote } from './ClusterPanel.js';
import { AddDeviceButton } from './DeviceAdmin.js';
import { FleetChartPanel } from './FleetChartPanel.js';
import { FleetRow } from './FleetRow.js';

// The order and filter moved to lib/fleet-sort.ts; importers of this module keep their names.
export type { FleetFilter, SortKey } from '../lib/fleet-sort.js';
export { matches, sortDevices } from '../lib/fleet-sort.js';

export const ROW_HEIGHT = 28;
const HEADER_HEIGHT = 31;

export interface FleetUi {
  readonly text: string;
  readonly kind: string;
  readonly state: string;
  readonly tag: string;
  readonly sort: SortKey;
  readonly descending: boolean;
  readonly selected: ReadonlySet<string>;
  readonly anchor: string | null;
  readonly results: {
    readonly action: string;
    readonly items: readonly ActResult[];
    readonly error?: string;
  } | null;
}

export const initialFleetUi: FleetUi = {
  text: '',
  kind: '',
  state: '',
  tag: '',
  sort: 'id',
  descending: false,
  selected: new Set(),
  anchor: null,
  results: null,
};

export function FleetView({
  ui,
  setUi,
  onOpen,
  onOpenDiscovered,
  waiting = 0,
}: {
  readonly ui: FleetUi;
  readonly setUi: (update: (ui: FleetUi) => FleetUi) => void;
  readonly onOpen: (id: string) => void;
  /** Opens the list of devices waiting for adoption. */
  readonly onOpenDiscovered: () => void;
  /** Devices waiting for adoption (the Discovered view's count): the empty fleet says so first. */
  readonly waiting?: number;
}) {
  const ready = useLive((s) => s.ready);
  const ownVersion = useLive((s) => s.devicesVersion);
  const own = useLive((s) => s.devices);
  // In a cluster, the other instances' devices, polled (the push stream carries only this
  // instance's): one map over both, pushed rows first (lib/fleet-wide.ts).
  const remote = useRemoteRows();
  const version = ownVersion + remote.version;
  // biome-ignore lint/correctness/useExhaustiveDependencies: the live map is mutated in place; its version says when
  const devices = useMemo(() => mergeRows(own, remote.rows), [own, ownVersion, remote.rows]);
  const client = useClient();
  const now = useNow(1_000);
  const kinds = useCall((c) => c.call('kinds', {}), []);
  // Devices being updated, by id: one poll for the table, no call per row.
  const updating = useFirmwareJobs().active;
  const filterRef = useRef<HTMLInputElement>(null);
  const [active, setActive] = useState(0);
  const [chartOpen, setChartOpen] = useState(false);
  // The columns this browser chose, and the latest values of its metric columns (one model).
  const prefs = useStoredValue(columnPrefs);
  const columns = useMemo(() => visibleColumns(prefs), [prefs]);
  // One style object for the header and every row: memoized rows compare it by identity.
  const grid = useMemo(
    () => ({ gridTemplateColumns: gridTemplate(columns), minWidth: gridMinWidth(columns) }),
    [columns],
  );
  const { latest, version: latestVersion } = useLatestValues(prefs.metrics);
  // Sorted by a metric, the order follows its values; otherwise their changes sort nothing.
  const sortVersion = metricOfSortKey(ui.sort) === null ? 0 : latestVersion;

  // biome-ignore lint/correctness/useExhaustiveDependencies: the map is mutated in place; its version says when
  const facets = useMemo(() => {
    const kindSet = new Set<string>();
    const stateSet = new Set<string>();
    const tagSet = new Set<string>();
    for (const row of devices.values()) {
      kindSet.add(row.kind);
      stateSet.add(row.state.split('.')[0]!);
      for (const t of row.tags) tagSet.add(t);
    }
    const sorted = (s: Set<string>) => [...s].sort((a, b) => naturalKey(a).localeCompare(naturalKey(b)));
    return { kinds: sorted(kindSet), states: sorted(stateSet), tags: sorted(tagSet) };
  }, [devices, version]);

  // Sorted once per push or sort change, filtered once per filter change: a key typed in the filter
  // box sorts nothing, and a push re-sorts from the last order (one pass when nothing moved).
  const lastOrder = useRef<readonly DeviceRow[]>([]);
  // biome-ignore lint/correctness/useExhaustiveDependencies: the map is mutated in place; its version says when
  const ordered = useMemo(() => {
    lastOrder.current = sortDevices(
      devices,
      ui.sort,
      ui.descending,
      lastOrder.current,
      (id, metric) => latest.get(metric, id)?.value,
    );
    return lastOrder.current;
  }, [devices, version, ui.sort, ui.descending, latest, sortVersion]);
  const rows = useMemo(() => {
    const filter = { text: ui.text, kind: ui.kind, state: ui.state, tag: ui.tag };
    if (!filter.text && !filter.kind && !filter.state && !filter.tag) return ordered;
    return ordered.filter((row) => matches(row, filter));
  }, [ordered, ui.text, ui.kind, ui.state, ui.tag]);

  // Online and failed among the devices the filter shows, so the counts read together.
  const shownCounts = useMemo(() => {
    let online = 0;
    let failed = 0;
    for (const row of rows) {
      if (row.link.up) online++;
      if (row.health === 'failed') failed++;
    }
    return { online, failed };
  }, [rows]);

  const win = useVirtualRows(rows.length, ROW_HEIGHT, { headerHeight: HEADER_HEIGHT });
  const activeIndex = Math.min(active, Math.max(0, rows.length - 1));

  // biome-ignore lint/correctness/useExhaustiveDependencies: the map is mutated in place; its version says when
  const selectedRows = useMemo(
    () => [...ui.selected].map((id) => devices.get(id)).filter((r): r is DeviceRow => r !== undefined),
    [ui.selected, devices, version],
  );
  // Once per change of the rows or the selection, not on every scroll frame (5,000 lookups each).
  const [allFilteredSelected, someFilteredSelected] = useMemo(() => {
    if (ui.selected.size === 0 || rows.length === 0) return [false, false];
    let selected = 0;
    for (const r of rows) if (ui.selected.has(r.id)) selected++;
    return [selected === rows.length, selected > 0 && selected < rows.length];
  }, [rows, ui.selected]);

  const choices = useMemo((): ActionChoice[] => {
    if (kinds.status !== 'ok' || kinds.value === undefined) return [];
    const byKind = new Map(kinds.value.map((k) => [k.kind, k.actions]));
    const counts = new Map<string, { action: ActionView; applies: number }>();
    const kindCounts = new Map<string, number>();
    for (const row of selectedRows) kindCounts.set(row.kind, (kindCounts.get(row.kind) ?? 0) + 1);
    for (const [kind, n] of kindCounts)
      for (const action of byKind.get(kind) ?? []) {
        const entry = counts.get(action.name) ?? { action, applies: 0 };
        entry.applies += n;
        counts.set(action.name, entry);
      }
    return [...counts.values()]
      .map((c) => ({ ...c, of: selectedRows.length }))
      .sort((a, b) => a.action.name.localeCompare(b.action.name));
  }, [kinds, selectedRows]);

  // The latest rows for the row callbacks, so they stay stable and memoized rows skip renders.
  const rowsRef = useRef(rows);
  rowsRef.current = rows;
  const toggle = useCallback(
    (id: string, index: number, range: boolean) => {
      const rows = rowsRef.current;
      setUi((old) => {
        const selected = new Set(old.selected);
        const anchorIndex = old.anchor ? rows.findIndex((r) => r.id === old.anchor) : -1;
        if (range && anchorIndex >= 0) {
          const on = old.selected.has(old.anchor!);
          const [from, to] = anchorIndex < index ? [anchorIndex, index] : [index, anchorIndex];
          for (let i = from; i <= to; i++) {
            if (on) selected.add(rows[i]!.id);
            else selected.delete(rows[i]!.id);
          }
        } else if (selected.has(id)) selected.delete(id);
        else selected.add(id);
        return { ...old, selected, anchor: range && anchorIndex >= 0 ? old.anchor : id };
      });
    },
    [setUi],
  );

  const selectAllFiltered = () =>
    setUi((old) => {
      const selected = new Set(old.selected);
      if (allFilteredSelected) for (const r of rows) selected.delete(r.id);
      else for (const r of rows) selected.add(r.id);
      return { ...old, selected };
    });

  const send = async (action: ActionView, args: Record<string, Json>) => {
    const kindsWith = new Set(
      (kinds.value ?? []).filter((k) => k.actions.some((a) => a.name === action.name)).map((k) => k.kind),
    );
    const ids = selectedRows.filter((r) => kindsWith.has(r.kind)).map((r) => r.id);
    if (ids.length === 0) return;
    try {
      const result = await client.call('act', { ids, action: action.name, args: args as ActArgs });
      setUi((old) => ({
        ...old,
        results: result.ok
          ? { action: action.name, items: result.value }
          : { action: action.name, items: [], error: `${result.error.code}: ${result.error.message}` },
      }));
    } catch (error) {
      setUi((old) => ({ ...old, results: { action: action.name, items: [], error: messageOf(error) } }));
    }
  };

  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    const page = Math.max(1, Math.floor((win.element?.clientHeight ?? 400) / ROW_HEIGHT) - 1);
    const move = (to: number) => {
      e.preventDefault();
      const i = Math.max(0, Math.min(rows.length - 1, to));
      setActive(i);
      win.scrollToIndex(i);
    };
    if (e.key === 'ArrowDown') move(activeIndex + 1);
    else if (e.key === 'ArrowUp') move(activeIndex - 1);
    else if (e.key === 'PageDown') move(activeIndex + page);
    else if (e.key === 'PageUp') move(activeIndex - page);
    else if (e.key === 'Home') move(0);
    else if (e.key === 'End') move(rows.length - 1);
    else if (e.key === ' ' && rows[activeIndex]) {
      e.preventDefault();
      toggle(rows[activeIndex]!.id, activeIndex, e.shiftKey);
    } else if (e.key === 'Enter' && rows[activeIndex]) {
      e.preventDefault();
      onOpen(rows[activeIndex]!.id);
    } else if ((e.key === 'a' || e.key === 'A') && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      selectAllFiltered();
    }
  };

  useEffect(() => {
    const onSlash = (e: globalThis.KeyboardEvent) => {
      const target = e.target as HTMLElement | null;
      if (e.key !== '/' || target?.closest('input, textarea, select')) return;
      e.preventDefault();
      filterRef.current?.focus();
    };
    window.addEventListener('keydown', onSlash);
    return () => window.removeEventListener('keydown', onSlash);
  }, []);

  const set = (patch: Partial<FleetUi>) => setUi((old) => ({ ...old, ...patch }));
  const filtered = ui.text !== '' || ui.kind !== '' || ui.state !== '' || ui.tag !== '';
  const filter: FleetFilter = { text: ui.text, kind: ui.kind, state: ui.state, tag: ui.tag };
  const setColumns = (next: FleetColumnPrefs) => {
    columnPrefs.set(next);
    // A removed metric column no longer orders the table.
    const metric = metricOfSortKey(ui.sort);
    if (metric !== null && !next.metrics.includes(metric)) set({ sort: 'id', descending: false });
  };
  // What the chart may draw, in the table's order; worked out only while it is open.
  const chartSelected = useMemo(
    () =>
      chartOpen && ui.selected.size > 0 ? ordered.filter((r) => ui.selected.has(r.id)).map((r) => r.id) : [],
    [chartOpen, ordered, ui.selected],
  );
  const chartShown = useMemo(() => (chartOpen ? rows.map((r) => r.id) : []), [chartOpen, rows]);

  if (!ready) return <Waiting what="the fleet" />;

  return (
    <div className="view fleet">
      <ClusterShareNote remoteRows={remote.rows.size} remoteError={remote.error} />
      <div className="toolbar">
        <AddDeviceButton />
        <input
          ref={filterRef}
          type="search"
          className="filter-text"
          placeholder="Filter by id, name, firmware, tag  ( / )"
          aria-label="Filter devices"
          value={ui.text}
          onChange={(e) => set({ text: e.target.value })}
        />
        <select aria-label="Kind" value={ui.kind} onChange={(e) => set({ kind: e.target.value })}>
          <option value="">All kinds</option>
          {facets.kinds.map((k) => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
        <select aria-label="State" value={ui.state} onChange={(e) => set({ state: e.target.value })}>
          <option value="">All states</option>
          {facets.states.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
          <option value="health:failed">failed (supervisor gave up)</option>
        </select>
        <select aria-label="Tag" value={ui.tag} onChange={(e) => set({ tag: e.target.value })}>
          <option value="">All tags</option>
          {facets.tags.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
        {filtered ? (
          <button
            type="button"
            className="btn ghost"
            onClick={() => set({ text: '', kind: '', state: '', tag: '' })}
          >
            Clear filters
          </button>
        ) : null}
        <SavedFilters current={filter} onRecall={(f) => set(f)} />
        <ColumnChooser prefs={prefs} onChange={setColumns} />
        <button
          type="button"
          className={`btn${chartOpen ? ' pressed' : ''}`}
          aria-pressed={chartOpen}
          title="Chart one metric of the selected devices (or the first shown) over the last hour"
          onClick={() => setChartOpen((o) => !o)}
          data-testid="fleet-chart-button"
        >
          Chart
        </button>
        <span className="spacer" />
        <span className="counts" aria-live="polite">
          <strong>{rows.length.toLocaleString('en-US')}</strong>
          {filtered ? ` of ${devices.size.toLocaleString('en-US')}` : ''} devices ·{' '}
          <span className="tone-text-ok" data-testid="online-count">
            {shownCounts.online.toLocaleString('en-US')} online
          </span>
          {shownCounts.failed > 0 ? (
            <span className="tone-text-err"> · {shownCounts.failed} failed</span>
          ) : null}
        </span>
      </div>

      {ui.selected.size > 0 ? (
        <section className="action-bar" aria-label="Actions on the selection">
          <div className="selection-summary">
            <strong>{ui.selected.size.toLocaleString('en-US')}</strong> selected
            <button
              type="button"
              className="btn ghost small"
              onClick={() => set({ selected: new Set(), anchor: null })}
            >
              Clear
            </button>
            {!allFilteredSelected && rows.length > 0 ? (
              <button type="button" className="btn ghost small" onClick={selectAllFiltered}>
                Select all {rows.length.toLocaleString('en-US')} shown
              </button>
            ) : null}
          </div>
          {kinds.status === 'error' ? (
            <span className="tone-text-err">Could not load the actions: {kinds.message}</span>
          ) : (
            <ActionForm
              choices={choices}
              target={`${selectedRows.length} device${selectedRows.length === 1 ? '' : 's'}`}
              onSend={send}
              disabled={kinds.status === 'loading'}
            />
          )}
        </section>
      ) : null}

      {chartOpen ? (
        <FleetChartPanel
          selected={chartSelected}
          shown={chartShown}
          filterKey={`${ui.text}\u0000${ui.kind}\u0000${ui.state}\u0000${ui.tag}\u0000${ui.sort}\u0000${ui.descending}`}
          preferred={prefs.metrics}
          onClose={() => setChartOpen(false)}
        />
      ) : null}

      <div className="table">
        <div
          className="tbody"
          ref={win.ref}
          role="grid"
          aria-label="Devices"
          aria-rowcount={rows.length + 1}
          aria-multiselectable="true"
          tabIndex={0}
          onKeyDown={onKeyDown}
          aria-activedescendant={rows[activeIndex] ? `fleet-row-${rows[activeIndex]!.id}` : undefined}
          data-testid="fleet-scroll"
        >
          <div className="thead fleet-cols" role="row" aria-rowindex={1} style={grid}>
            <span role="columnheader" className="cell check">
              <input
                type="checkbox"
                aria-label="Select all shown devices"
                checked={allFilteredSelected}
                ref={(el) => {
                  if (el) el.indeterminate = someFilteredSelected;
                }}
                onChange={selectAllFiltered}
                data-testid="select-all"
              />
            </span>
            {columns.map((c) => (
              <span
                key={c.key}
                role="columnheader"
                className={`cell ${c.numeric ? 'num' : ''}`}
                title={
                  c.metric !== undefined
                    ? `Latest ${c.metric}${c.unit ? ` (${c.unit})` : ''} per device`
                    : undefined
                }
                data-testid={c.metric !== undefined ? 'metric-header' : undefined}
                data-metric={c.metric}
                aria-sort={ui.sort === c.key ? (ui.descending ? 'descending' : 'ascending') : 'none'}
              >
                <button
                  type="button"
                  className="sort"
                  onClick={() => set({ sort: c.key, descending: ui.sort === c.key ? !ui.descending : false })}
                >
                  {c.label}
                  {c.unit ? <span className="metric-unit"> {c.unit}</span> : null}
                  {ui.sort === c.key ? (ui.descending ? ' ▾' : ' ▴') : ''}
                </button>
              </span>
            ))}
          </div>
          {devices.size === 0 ? (
            <div data-testid="fleet-empty">
              <Empty title="No devices in the fleet yet">
                {waiting > 0 ? (
                  <p data-testid="fleet-empty-waiting">
                    <strong>
                      {formatNumber(waiting)} {waiting === 1 ? 'device waits' : 'devices wait'} for adoption.
                    </strong>{' '}
                    <button type="button" className="btn small primary" onClick={onOpenDiscovered}>
                      Review and adopt
                    </button>
                  </p>
                ) : null}
                <p>
                  Started with <code>--no-demo</code>, Fleetvisor adopts devices manually: a device that says
                  hello over MQTT or a serial port waits under{' '}
                  <button type="button" className="btn small" onClick={onOpenDiscovered}>
                    ⊕ Discovered
                  </button>{' '}
                  until you adopt it there (<code>--adopt auto</code> adds every device of a known kind).
                </p>
                <p>
                  No devices at hand? <SimHint count={10} /> simulates some on the host's broker; plain{' '}
                  <code>npm start</code> runs a demo fleet.
                </p>
              </Empty>
            </div>
          ) : rows.length === 0 ? (
            <Empty title="No device matches the filter">
              <button
                type="button"
                className="btn"
                onClick={() => set({ text: '', kind: '', state: '', tag: '' })}
              >
                Clear filters
              </button>
            </Empty>
          ) : (
            <div style={{ height: win.totalHeight, position: 'relative' }}>
              <div style={{ transform: `translateY(${win.offset}px)` }}>
                {rows.slice(win.start, win.end).map((row, i) => {
                  const index = win.start + i;
                  return (
                    <FleetRow
                      // biome-ignore lint/suspicious/noArrayIndexKey: keyed by slot in the visible window on purpose: a new order or filter updates the ~37 rows in place instead of unmounting and mounting them; FleetRow holds no state of its own
                      key={i}
                      row={row}
                      index={index}
                      now={now}
                      update={updating.get(row.id)}
                      selected={ui.selected.has(row.id)}
                      active={index === activeIndex}
                      columns={columns}
                      grid={grid}
                      latest={latest}
                      latestVersion={latestVersion}
                      onToggle={toggle}
                      onOpen={onOpen}
                      onFocusRow={setActive}
                    />
                  );
                })}
              </div>
            </div>
          )}
        </div>
      </div>

      {ui.results ? (
        <ActResults
          action={ui.results.action}
          results={ui.results.items}
          error={ui.results.error}
          onOpen={onOpen}
          onClose={() => set({ results: null })}
        />
      ) : null}
    </div>
  );
}

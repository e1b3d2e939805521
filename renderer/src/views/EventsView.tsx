/**
 * The event log. Live: the last 500 pushed events, newest first, filtered in the client (pause
 * to read without the list moving). History: the stored log paged from the host (`events` with
 * a cursor), filtered there by device, kind and time. Both lists are virtualized.
 *
 * @example
 * <EventsView initialDevice="pump-0007" onOpenDevice={(id) => go({ view: 'device', id })} />
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import type { EventView } from '../../../src/host/contract.js';
import { ExportButtons } from '../components/ExportButtons.js';
import { Empty, ErrorState, Loading, Waiting } from '../components/States.js';
import { eventDataForDisplay } from '../lib/commands.js';
import { formatDateTime, formatTime, jsonPreview } from '../lib/format.js';
import { useVirtualRows } from '../lib/hooks.js';
import { useClient, useLive } from '../store/use-live.js';

const ROW_HEIGHT = 26;
const PAGE = 200;
/** Most history rows kept in the page (older pages beyond it are dropped from the top). */
const MAX_LOADED = 5_000;

const RANGES = [
  { label: 'Any time', ms: 0 },
  { label: 'Last 5 min', ms: 5 * 60_000 },
  { label: 'Last hour', ms: 3_600_000 },
  { label: 'Last 24 h', ms: 86_400_000 },
] as const;

type Mode = 'live' | 'history';

export function EventsView({
  initialDevice = '',
  onOpenDevice,
}: {
  readonly initialDevice?: string;
  readonly onOpenDevice: (id: string) => void;
}) {
  const [mode, setMode] = useState<Mode>(initialDevice ? 'history' : 'live');
  const [device, setDevice] = useState(initialDevice);
  const [kind, setKind] = useState('');
  const [rangeMs, setRangeMs] = useState<number>(0);
  const [paused, setPaused] = useState<readonly EventView[] | null>(null);
  const live = useLive((s) => s.events);
  const ready = useLive((s) => s.ready);
  const client = useClient();

  useEffect(() => setDevice(initialDevice), [initialDevice]);

  const knownKinds = useMemo(() => [...new Set(live.map((e) => e.kind))].sort(), [live]);

  // History paging.
  const [page, setPage] = useState<{
    items: EventView[];
    next: number | null;
    status: 'idle' | 'loading' | 'ok' | 'error';
    error?: string;
  }>({ items: [], next: null, status: 'idle' });
  const requestRef = useRef(0);

  const load = async (cursor: number | undefined) => {
    const request = ++requestRef.current;
    setPage((p) => ({ ...p, status: 'loading' }));
    const now = Date.now();
    const args = {
      limit: PAGE,
      ...(device.trim() ? { id: device.trim() } : {}),
      ...(kind.trim() ? { kind: kind.trim() } : {}),
      ...(rangeMs > 0 ? { fromMs: now - rangeMs } : {}),
      ...(cursor !== undefined ? { cursor } : {}),
    };
    try {
      const r = await client.call('events', args);
      if (request !== requestRef.current) return;
      if (!r.ok) setPage((p) => ({ ...p, status: 'error', error: r.error.message }));
      else
        setPage((p) => {
          const items = cursor === undefined ? [...r.value.items] : [...p.items, ...r.value.items];
          return { items: items.slice(-MAX_LOADED), next: r.value.next, status: 'ok' };
        });
    } catch (error) {
      if (request === requestRef.current)
        setPage((p) => ({
          ...p,
          status: 'error',
          error: error instanceof Error ? error.message : String(error),
        }));
    }
  };

  // biome-ignore lint/correctness/useExhaustiveDependencies: reload the first page when the filters change
  useEffect(() => {
    if (mode !== 'history') return;
    const t = window.setTimeout(() => void load(undefined), 250);
    return () => window.clearTimeout(t);
  }, [mode, device, kind, rangeMs]);

  const liveRows = useMemo(() => {
    const source = paused ?? live;
    const from = rangeMs > 0 ? Date.now() - rangeMs : 0;
    const d = device.trim().toLowerCase();
    const k = kind.trim();
    const out: EventView[] = [];
    for (let i = source.length - 1; i >= 0; i--) {
      const e = source[i]!;
      if (d && !(e.deviceId ?? '').toLowerCase().includes(d)) continue;
      if (k && !e.kind.startsWith(k)) continue;
      if (e.at < from) continue;
      out.push(e);
    }
    return out;
  }, [live, paused, device, kind, rangeMs]);

  const rows = mode === 'live' ? liveRows : page.items;
  const win = useVirtualRows(rows.length, ROW_HEIGHT, { headerHeight: 31 });

  // Near the end of the loaded history: fetch the next page (the status guard prevents repeats).
  // biome-ignore lint/correctness/useExhaustiveDependencies: load changes every render; the page state says when
  useEffect(() => {
    if (mode === 'history' && page.status === 'ok' && page.next !== null && win.end >= rows.length - 20)
      void load(page.next);
  }, [mode, page.status, page.next, win.end, rows.length]);

  if (!ready && mode === 'live') return <Waiting what="the event stream" />;

  return (
    <div className="view events">
      <div className="toolbar">
        <div className="segmented" role="radiogroup" aria-label="Source">
          {(['live', 'history'] as const).map((m) => (
            <button
              key={m}
              type="button"
              role="radio"
              aria-checked={mode === m}
              className={mode === m ? 'on' : ''}
              onClick={() => setMode(m)}
            >
              {m === 'live' ? 'Live' : 'History'}
            </button>
          ))}
        </div>
        <input
          type="search"
          placeholder="Device id"
          aria-label="Filter by device"
          value={device}
          onChange={(e) => setDevice(e.target.value)}
          data-testid="events-device"
        />
        <input
          type="search"
          placeholder="Kind (prefix)"
          aria-label="Filter by kind"
          list="event-kinds"
          value={kind}
          onChange={(e) => setKind(e.target.value)}
        />
        <datalist id="event-kinds">
          {knownKinds.map((k) => (
            <option key={k} value={k} />
          ))}
        </datalist>
        <select aria-label="Time" value={rangeMs} onChange={(e) => setRangeMs(Number(e.target.value))}>
          {RANGES.map((r) => (
            <option key={r.ms} value={r.ms}>
              {r.label}
            </option>
          ))}
        </select>
        {mode === 'live' ? (
          <button
            type="button"
            className="btn"
            onClick={() => setPaused(paused ? null : live)}
            aria-pressed={paused !== null}
          >
            {paused ? '▶ Resume' : '❚❚ Pause'}
          </button>
        ) : (
          <button type="button" className="btn" onClick={() => void load(undefined)}>
            Reload
          </button>
        )}
        <ExportButtons
          kind="events"
          title="The stored event log with these filters (device and kind matched exactly), as a file"
          params={() => ({
            device: device.trim(),
            kind: kind.trim(),
            from: rangeMs > 0 ? String(Date.now() - rangeMs) : undefined,
          })}
        />
        <span className="spacer" />
        <span className="muted small-text" aria-live="polite">
          {mode === 'live'
            ? `${rows.length} of the last ${live.length} pushed${paused ? ' (paused)' : ''}`
            : `${rows.length} loaded${page.next !== null ? ', more on scroll' : page.status === 'ok' ? ', end of log' : ''}`}
        </span>
      </div>

      <div className="table events-table">
        <div className="tbody" ref={win.ref} role="table" aria-label="Events" data-testid="events-scroll">
          <div className="thead event-cols" role="row">
            <span role="columnheader" className="cell">
              Time
            </span>
            <span role="columnheader" className="cell">
              Device
            </span>
            <span role="columnheader" className="cell">
              Kind
            </span>
            <span role="columnheader" className="cell">
              Data
            </span>
          </div>
          {rows.length === 0 ? (
            mode === 'history' && page.status === 'loading' ? (
              <Loading label="Reading the event log…" />
            ) : mode === 'history' && page.status === 'error' ? (
              <ErrorState
                title="Could not read the event log"
                message={page.error ?? ''}
                onRetry={() => void load(undefined)}
              />
            ) : (
              <Empty title={mode === 'live' ? 'No event yet' : 'No event matches'}>
                {mode === 'live'
                  ? 'Events appear here as devices change state, connect, and answer commands.'
                  : 'Widen the filters or the time range.'}
              </Empty>
            )
          ) : (
            <div style={{ height: win.totalHeight, position: 'relative' }}>
              <div style={{ transform: `translateY(${win.offset}px)` }}>
                {rows.slice(win.start, win.end).map((e) => (
                  <div
                    key={e.seq}
                    className="tr event-cols"
                    role="row"
                    data-testid="event-row"
                    data-kind={e.kind}
                  >
                    <span role="cell" className="cell mono muted" title={formatDateTime(e.at)}>
                      {formatTime(e.at)}
                    </span>
                    <span role="cell" className="cell mono">
                      {e.deviceId ? (
                        <button
                          type="button"
                          className="linklike mono"
                          onClick={() => onOpenDevice(e.deviceId!)}
                        >
                          {e.deviceId}
                        </button>
                      ) : (
                        <span className="muted">host</span>
                      )}
                    </span>
                    <span role="cell" className={`cell mono event-kind kind-${e.kind.split('.')[0]}`}>
                      {e.kind}
                    </span>
                    <span role="cell" className="cell mono event-data" title={jsonPreview(e.data, 2000)}>
                      {jsonPreview(eventDataForDisplay(e.data), 300)}
                    </span>
                  </div>
                ))}
              </div>
            </div>
          )}
        </div>
        {mode === 'history' && page.status === 'loading' && rows.length > 0 ? (
          <div className="loading-more muted">Loading older…</div>
        ) : null}
      </div>
    </div>
  );
}

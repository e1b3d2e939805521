/**
 * Devices that said hello but are not in the fleet (manual adoption, the default with
 * `--no-demo`, or a kind the fleet does not know): what each said (kind, firmware), over which
 * link, when first and last heard, and why it waits. Adopt one, the selected ones or all that match
 * the filter (after a confirmation), or ignore one (hidden in this browser). Adopted devices leave
 * the list and appear in the fleet, connected.
 *
 * @example
 * <DiscoveredView onOpenDevice={(id) => go({ section: 'fleet', device: id })} />
 */
import { useMemo, useState } from 'react';
import type { DiscoveredView as Discovered } from '../../../src/host/contract.js';
import { ConfirmDialog } from '../components/ConfirmDialog.js';
import { Empty, ErrorState, Loading } from '../components/States.js';
import type { AdoptOutcome } from '../lib/discovered.js';
import {
  adoptMany,
  matchesDiscovered,
  refreshDiscovered,
  setIgnored,
  useDiscoveredList,
  useIgnored,
} from '../lib/discovered.js';
import { formatAgo, formatDateTime } from '../lib/format.js';
import { useNow } from '../lib/hooks.js';
import { useClient } from '../store/use-live.js';

/** Most rows drawn at once; the filter narrows the rest. */
const MAX_ROWS = 500;

const REASONS: Readonly<Record<string, string>> = {
  manual: 'waits for adoption',
  unknownKind: 'unknown kind: cannot be adopted',
  adoptionPaused: 'automatic adoption paused',
  ignored: 'ignored',
};

function reasonText(reason: string): string {
  return REASONS[reason] ?? reason;
}

export function DiscoveredView({ onOpenDevice }: { readonly onOpenDevice: (id: string) => void }) {
  const client = useClient();
  const list = useDiscoveredList();
  const ignored = useIgnored();
  const now = useNow(1_000);
  const [text, setText] = useState('');
  const [showIgnored, setShowIgnored] = useState(false);
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const [asking, setAsking] = useState<readonly string[] | null>(null);
  const [busy, setBusy] = useState<{ done: number; of: number } | null>(null);
  const [results, setResults] = useState<readonly AdoptOutcome[] | null>(null);

  const all = list.value ?? [];
  const ignoredCount = all.filter((d) => ignored.has(d.id)).length;
  const rows = useMemo(
    () =>
      all
        .filter((d) => (showIgnored ? ignored.has(d.id) : !ignored.has(d.id)) && matchesDiscovered(d, text))
        .sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true })),
    [all, ignored, showIgnored, text],
  );
  const adoptable = rows.filter((d) => d.reason !== 'unknownKind');
  const chosen = rows.filter((d) => selected.has(d.id) && d.reason !== 'unknownKind').map((d) => d.id);

  const adopt = async (ids: readonly string[]) => {
    setAsking(null);
    setBusy({ done: 0, of: ids.length });
    const outcome = await adoptMany(client, ids, (done) => setBusy({ done, of: ids.length }));
    setBusy(null);
    setResults(outcome);
    setSelected((old) => new Set([...old].filter((id) => !ids.includes(id))));
    refreshDiscovered();
  };

  const toggle = (id: string) =>
    setSelected((old) => {
      const next = new Set(old);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  if (list.status === 'loading' && list.value === undefined) return <Loading label="Asking the host…" />;
  if (list.status === 'error' && list.value === undefined)
    return (
      <ErrorState title="Could not list discovered devices" message={list.message} onRetry={list.reload} />
    );

  return (
    <div className="view discovered">
      <p className="muted intro">
        Devices that made themselves known and are not in the fleet yet: a hello of our own protocol over MQTT
        or a serial port, a Homie device&apos;s announcement, a Sparkplug birth. With <code>--no-demo</code>{' '}
        (or <code>--adopt manual</code>) Fleetvisor adopts nobody by itself, whatever the convention: an
        operator adopts them here. <code>--adopt auto</code> adds every device whose kind is known.
      </p>
      <div className="toolbar">
        <input
          type="search"
          className="filter-text"
          placeholder="Filter by id, kind, firmware, link"
          aria-label="Filter discovered devices"
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
        <button
          type="button"
          className="btn primary"
          disabled={chosen.length === 0 || busy !== null}
          onClick={() => setAsking(chosen)}
          data-testid="adopt-selected"
        >
          Adopt {chosen.length} selected
        </button>
        <button
          type="button"
          className="btn"
          disabled={adoptable.length === 0 || busy !== null || showIgnored}
          onClick={() => setAsking(adoptable.map((d) => d.id))}
          data-testid="adopt-all-matching"
        >
          Adopt all {adoptable.length.toLocaleString('en-US')}
          {text ? ' matching' : ''}
        </button>
        <span className="spacer" />
        <span className="counts" aria-live="polite">
          <strong>{(all.length - ignoredCount).toLocaleString('en-US')}</strong> waiting ·{' '}
          <button
            type="button"
            className="linklike"
            onClick={() => setShowIgnored((s) => !s)}
            data-testid="discovered-ignored"
            title="Ignored devices are hidden in this browser; the host still lists them"
          >
            {ignoredCount} ignored{showIgnored ? ' (showing)' : ''}
          </button>
        </span>
      </div>
      {busy ? (
        <div className="muted" role="status">
          Adopting… {busy.done}/{busy.of}
        </div>
      ) : null}
      {results ? (
        <AdoptResults results={results} onOpen={onOpenDevice} onClose={() => setResults(null)} />
      ) : null}
      {rows.length === 0 ? (
        all.length === 0 ? (
          <Empty title="No device waits for adoption">
            A device appears here when it says hello (protocol v1 over MQTT or serial) and the fleet does not
            know its id. <code>npm run sim -- --mqtt 10 --url mqtt://127.0.0.1:1883</code> simulates some.
          </Empty>
        ) : (
          <Empty
            title={showIgnored ? 'No ignored device matches' : 'No discovered device matches the filter'}
          />
        )
      ) : (
        <div className="table discovered-table">
          <div className="tbody" role="grid" aria-label="Discovered devices" aria-rowcount={rows.length + 1}>
            <div className="thead discovered-cols" role="row">
              <span role="columnheader" className="cell check">
                <input
                  type="checkbox"
                  aria-label="Select all shown"
                  checked={adoptable.length > 0 && adoptable.every((d) => selected.has(d.id))}
                  onChange={(e) =>
                    setSelected(e.target.checked ? new Set(adoptable.map((d) => d.id)) : new Set())
                  }
                />
              </span>
              <span role="columnheader" className="cell">
                ID
              </span>
              <span role="columnheader" className="cell">
                Kind
              </span>
              <span role="columnheader" className="cell">
                Firmware
              </span>
              <span role="columnheader" className="cell">
                Link
              </span>
              <span role="columnheader" className="cell num">
                First heard
              </span>
              <span role="columnheader" className="cell num">
                Last heard
              </span>
              <span role="columnheader" className="cell">
                Why it waits
              </span>
              <span role="columnheader" className="cell" />
            </div>
            {rows.slice(0, MAX_ROWS).map((d) => (
              <DiscoveredRow
                key={d.id}
                d={d}
                now={now}
                selected={selected.has(d.id)}
                ignored={ignored.has(d.id)}
                busy={busy !== null}
                onToggle={toggle}
                onAdopt={(id) => void adopt([id])}
              />
            ))}
            {rows.length > MAX_ROWS ? (
              <div className="muted more-rows">
                {(rows.length - MAX_ROWS).toLocaleString('en-US')} more: narrow the filter, or adopt all
                matching.
              </div>
            ) : null}
          </div>
        </div>
      )}
      <ConfirmDialog
        open={asking !== null}
        title={`Adopt ${asking?.length ?? 0} device${asking?.length === 1 ? '' : 's'}?`}
        confirmLabel="Adopt"
        danger={false}
        onConfirm={() => void adopt(asking ?? [])}
        onCancel={() => setAsking(null)}
      >
        They join the fleet under their own ids, get a supervisor each and are kept in the database.{' '}
        {asking && asking.length <= 5 ? (
          <span className="mono">{asking.join(', ')}</span>
        ) : (
          <span>
            First: <span className="mono">{asking?.slice(0, 3).join(', ')}</span> …
          </span>
        )}
      </ConfirmDialog>
    </div>
  );
}

function DiscoveredRow({
  d,
  now,
  selected,
  ignored,
  busy,
  onToggle,
  onAdopt,
}: {
  readonly d: Discovered;
  readonly now: number;
  readonly selected: boolean;
  readonly ignored: boolean;
  readonly busy: boolean;
  readonly onToggle: (id: string) => void;
  readonly onAdopt: (id: string) => void;
}) {
  const adoptable = d.reason !== 'unknownKind';
  return (
    <div
      className={`tr discovered-cols${selected ? ' selected' : ''}`}
      role="row"
      aria-selected={selected}
      data-testid="discovered-row"
      data-device-id={d.id}
    >
      <span role="gridcell" className="cell check">
        <input
          type="checkbox"
          aria-label={`Select ${d.id}`}
          checked={selected}
          disabled={!adoptable}
          onChange={() => onToggle(d.id)}
        />
      </span>
      <span role="gridcell" className="cell mono strong" title={d.id}>
        {d.id}
      </span>
      <span role="gridcell" className="cell mono" title={`${d.kind} (${d.convention})`}>
        <span className={`convention convention-${d.convention}`}>{d.convention}</span> {d.kind}
      </span>
      <span role="gridcell" className="cell mono" title={d.firmware || 'the convention reports no firmware'}>
        {d.firmware || '—'}
      </span>
      <span role="gridcell" className="cell" title={d.via}>
        {d.via}
      </span>
      <span role="gridcell" className="cell num muted" title={formatDateTime(d.firstSeen)}>
        {formatAgo(d.firstSeen, now)}
      </span>
      <span role="gridcell" className="cell num muted" title={formatDateTime(d.lastSeen)}>
        {formatAgo(d.lastSeen, now)}
      </span>
      <span
        role="gridcell"
        className={`cell${adoptable ? ' muted' : ' tone-text-warn'}`}
        title={reasonText(d.reason)}
      >
        {reasonText(d.reason)}
      </span>
      <span role="gridcell" className="cell actions">
        <button
          type="button"
          className="btn small primary"
          disabled={!adoptable || busy}
          onClick={() => onAdopt(d.id)}
        >
          Adopt
        </button>
        <button type="button" className="btn small ghost" onClick={() => setIgnored([d.id], !ignored)}>
          {ignored ? 'Unignore' : 'Ignore'}
        </button>
      </span>
    </div>
  );
}

function AdoptResults({
  results,
  onOpen,
  onClose,
}: {
  readonly results: readonly AdoptOutcome[];
  readonly onOpen: (id: string) => void;
  readonly onClose: () => void;
}) {
  const failed = results.filter((r) => !r.ok);
  return (
    <section className="act-results" aria-label="Adoption results">
      <header>
        <strong>adopt</strong> —{' '}
        <span className="tone-text-ok">{results.length - failed.length} adopted</span>
        {failed.length > 0 ? <span className="tone-text-err"> · {failed.length} failed</span> : null}
        <button type="button" className="btn ghost small" onClick={onClose} aria-label="Close results">
          ✕
        </button>
      </header>
      <ul>
        {[...failed, ...results.filter((r) => r.ok)].map((r) => (
          <li key={r.id} data-testid="adopt-result" data-ok={r.ok} className={r.ok ? 'ok' : 'err'}>
            <span className={`dot tone-${r.ok ? 'ok' : 'err'}`} aria-hidden="true" />
            <button type="button" className="linklike mono" onClick={() => onOpen(r.id)} disabled={!r.ok}>
              {r.id}
            </button>
            <span className="result-text">{r.ok ? 'in the fleet' : r.message}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

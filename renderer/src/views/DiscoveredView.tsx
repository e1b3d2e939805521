/**
 * Devices that said hello but are not in the fleet (manual adoption, the default with
 * `--no-demo`, or a kind the fleet does not know): what each said (kind, firmware), over which
 * link, when first and last heard, and why it waits. Adopt one, or the selected ones or all that
 * match the filter (after a confirmation) as one job on the host (`adoptBulk`): its progress line
 * shows done/total and failures, with a Cancel button, and survives a reload or leaving the view,
 * since the host runs it, and a host restart, since the host keeps it: it says when it resumed and
 * how many devices it waits to hear from again; when it ends it says the result ("1,976 adopted,
 * 0 failed"). Ignore one
 * (hidden in this browser). Adopted devices leave the list and appear in the fleet, connected.
 *
 * @example
 * <DiscoveredView onOpenDevice={(id) => go({ section: 'fleet', device: id })} />
 */
import { memo, useCallback, useMemo, useState } from 'react';
import type { AdoptBulkView, DiscoveredView as Discovered } from '../../../src/host/contract.js';
import { ConfirmDialog } from '../components/ConfirmDialog.js';
import { SimHint } from '../components/SimHint.js';
import { Empty, ErrorState, Loading } from '../components/States.js';
import {
  adoptJobSelection,
  adoptJobSummary,
  dismissJob,
  matchesDiscovered,
  refreshDiscovered,
  setIgnored,
  useAdoptJob,
  useDiscoveredList,
  useDismissedJob,
  useIgnored,
} from '../lib/discovered.js';
import { formatAgo, formatDateTime } from '../lib/format.js';
import { useNow } from '../lib/hooks.js';
import { useClient } from '../store/use-live.js';

/**
 * Most rows drawn at once; the filter narrows the rest. 500 unvirtualized rows, drawn again at each
 * tick and poll, kept a busy machine's page from answering for seconds with 2,000 waiting.
 */
const MAX_ROWS = 200;
/** How often "first/last heard … ago" is brought up to date. */
const AGO_TICK_MS = 5_000;

const REASONS: Readonly<Record<string, string>> = {
  manual: 'waits for adoption',
  unknownKind: 'unknown kind: cannot be adopted',
  adoptionPaused: 'automatic adoption paused',
  ignored: 'ignored',
};

function reasonText(reason: string): string {
  return REASONS[reason] ?? reason;
}

/** What the confirmation asks: the ids it names, and the filter when it is "all matching". */
interface Asking {
  readonly ids: readonly string[];
  readonly filter?: { readonly text: string; readonly except: readonly string[] };
}

export function DiscoveredView({ onOpenDevice }: { readonly onOpenDevice: (id: string) => void }) {
  const client = useClient();
  const list = useDiscoveredList();
  const ignored = useIgnored();
  const job = useAdoptJob();
  const dismissed = useDismissedJob();
  const now = useNow(AGO_TICK_MS);
  const [text, setText] = useState('');
  const [showIgnored, setShowIgnored] = useState(false);
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const [asking, setAsking] = useState<Asking | null>(null);
  const [pending, setPending] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);

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
  const current = job.value ?? null;
  const busy = pending || current?.state === 'running';

  /** Starts the host's bulk adoption; the progress line follows it from the host. */
  const adoptMany = async (ask: Asking) => {
    setAsking(null);
    setProblem(null);
    setPending(true);
    const r = await client.call(
      'adoptBulk',
      ask.filter
        ? { filter: { text: ask.filter.text, except: [...ask.filter.except] } }
        : { ids: [...ask.ids] },
    );
    setPending(false);
    if (r.ok) {
      const started = new Set(ask.ids);
      setSelected((old) => new Set([...old].filter((id) => !started.has(id))));
    } else setProblem(`Adoption not started: ${r.error.message}`);
    job.reload();
  };

  const adoptOne = useCallback(
    async (id: string) => {
      setProblem(null);
      setPending(true);
      const r = await client.call('adopt', { id });
      setPending(false);
      if (!r.ok) setProblem(`${id} not adopted: ${r.error.code}: ${r.error.message}`);
      refreshDiscovered();
    },
    [client],
  );

  const cancelJob = async () => {
    const r = await client.call('adoptBulkCancel', {});
    if (!r.ok) setProblem(`Not cancelled: ${r.error.message}`);
    job.reload();
    refreshDiscovered();
  };

  const toggle = useCallback(
    (id: string) =>
      setSelected((old) => {
        const next = new Set(old);
        if (next.has(id)) next.delete(id);
        else next.add(id);
        return next;
      }),
    [],
  );

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
          disabled={chosen.length === 0 || busy}
          onClick={() => setAsking({ ids: chosen })}
          data-testid="adopt-selected"
        >
          Adopt {chosen.length} selected
        </button>
        <button
          type="button"
          className="btn"
          disabled={adoptable.length === 0 || busy || showIgnored}
          onClick={() =>
            setAsking({
              ids: adoptable.map((d) => d.id),
              // The host selects as this view does; what is ignored here stays out.
              filter: { text, except: all.filter((d) => ignored.has(d.id)).map((d) => d.id) },
            })
          }
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
      {problem ? (
        <div className="tone-text-err" role="alert" data-testid="adopt-problem">
          {problem}
        </div>
      ) : null}
      {current && (current.state === 'running' || current.id !== dismissed) ? (
        <AdoptJob
          job={current}
          onCancel={() => void cancelJob()}
          onClose={() => dismissJob(current.id)}
          onOpen={onOpenDevice}
        />
      ) : null}
      {rows.length === 0 ? (
        all.length === 0 ? (
          <Empty title="No device waits for adoption">
            A device appears here when it says hello (protocol v1 over MQTT or serial) and the fleet does not
            know its id. <SimHint count={10} /> simulates some.
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
                busy={busy}
                onToggle={toggle}
                onAdopt={adoptOne}
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
        title={`Adopt ${(asking?.ids.length ?? 0).toLocaleString('en-US')} device${asking?.ids.length === 1 ? '' : 's'}?`}
        confirmLabel="Adopt"
        danger={false}
        onConfirm={() => asking && void adoptMany(asking)}
        onCancel={() => setAsking(null)}
      >
        They join the fleet under their own ids, get a supervisor each and are kept in the database. The host
        adopts them: closing or reloading this page does not stop it.{' '}
        {asking && asking.ids.length <= 5 ? (
          <span className="mono">{asking.ids.join(', ')}</span>
        ) : (
          <span>
            First: <span className="mono">{asking?.ids.slice(0, 3).join(', ')}</span> …
          </span>
        )}
      </ConfirmDialog>
    </div>
  );
}

interface RowProps {
  readonly d: Discovered;
  readonly now: number;
  readonly selected: boolean;
  readonly ignored: boolean;
  readonly busy: boolean;
  readonly onToggle: (id: string) => void;
  readonly onAdopt: (id: string) => Promise<void>;
}

/** Drawn again only when what it shows changed (each poll brings new objects for the same rows). */
function sameRow(a: RowProps, b: RowProps): boolean {
  const x = a.d;
  const y = b.d;
  return (
    a.selected === b.selected &&
    a.ignored === b.ignored &&
    a.busy === b.busy &&
    a.onToggle === b.onToggle &&
    a.onAdopt === b.onAdopt &&
    x.id === y.id &&
    x.convention === y.convention &&
    x.kind === y.kind &&
    x.firmware === y.firmware &&
    x.via === y.via &&
    x.reason === y.reason &&
    x.firstSeen === y.firstSeen &&
    x.lastSeen === y.lastSeen &&
    formatAgo(x.firstSeen, a.now) === formatAgo(y.firstSeen, b.now) &&
    formatAgo(x.lastSeen, a.now) === formatAgo(y.lastSeen, b.now)
  );
}

const DiscoveredRow = memo(function DiscoveredRow({
  d,
  now,
  selected,
  ignored,
  busy,
  onToggle,
  onAdopt,
}: RowProps) {
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
          onClick={() => void onAdopt(d.id)}
        >
          Adopt
        </button>
        <button type="button" className="btn small ghost" onClick={() => setIgnored([d.id], !ignored)}>
          {ignored ? 'Unignore' : 'Ignore'}
        </button>
      </span>
    </div>
  );
}, sameRow);

/** The host's bulk adoption: progress while it runs (with Cancel), its result once it ended. */
function AdoptJob({
  job,
  onCancel,
  onClose,
  onOpen,
}: {
  readonly job: AdoptBulkView;
  readonly onCancel: () => void;
  readonly onClose: () => void;
  readonly onOpen: (id: string) => void;
}) {
  const running = job.state === 'running';
  const fraction = job.total > 0 ? job.done / job.total : 1;
  const n = (x: number) => x.toLocaleString('en-US');
  const title = running ? 'Adopting' : job.state === 'cancelled' ? 'Adoption cancelled' : 'Adoption finished';
  return (
    <section
      className="act-results adopt-job"
      aria-label="Bulk adoption"
      data-testid="adopt-job"
      data-state={job.state}
      data-job-id={job.id}
    >
      <header>
        <strong>{title}</strong>&nbsp;
        <span className="muted">
          {adoptJobSelection(job)} · started by {job.startedBy} {formatDateTime(job.startedAt)}
          {job.resumedAt !== undefined ? (
            <span data-testid="adopt-job-resumed">
              {' '}
              · resumed after a host restart {formatDateTime(job.resumedAt)}
            </span>
          ) : null}
          {job.finishedAt !== null ? ` · ended ${formatDateTime(job.finishedAt)}` : ''}
          {job.cancelledBy ? ` · cancelled by ${job.cancelledBy}` : ''}
        </span>
        {running ? (
          <button type="button" className="btn small" onClick={onCancel} data-testid="adopt-job-cancel">
            Cancel
          </button>
        ) : (
          <button type="button" className="btn ghost small" onClick={onClose} aria-label="Close result">
            ✕
          </button>
        )}
      </header>
      <div className="fw-progress adopt-job-progress">
        <div
          className="bar"
          role="progressbar"
          aria-label="Devices adopted"
          aria-valuemin={0}
          aria-valuemax={job.total}
          aria-valuenow={job.done}
        >
          <div
            className={`bar-fill${job.failed > 0 ? ' tone-err' : job.state === 'finished' ? ' tone-ok' : ''}`}
            style={{ transform: `scaleX(${fraction})` }}
          />
        </div>
        <span className="fw-progress-text" data-testid="adopt-job-progress">
          <strong>
            {n(job.done)} / {n(job.total)}
          </strong>{' '}
          <span className={job.failed > 0 ? 'tone-text-err' : 'muted'} data-testid="adopt-job-result">
            {adoptJobSummary(job)}
          </span>
          {running && (job.waiting ?? 0) > 0 ? (
            <span className="muted" data-testid="adopt-job-waiting">
              {' '}
              · waiting for {n(job.waiting ?? 0)} to be heard again after the restart
            </span>
          ) : null}
        </span>
      </div>
      {job.failures.length > 0 ? (
        <ul>
          {job.failures.map((f) => (
            <li key={f.code} className="err" data-testid="adopt-job-failure" data-code={f.code}>
              <span className="dot tone-err" aria-hidden="true" />
              <span className="mono">{f.code}</span>
              <span>× {n(f.count)}</span>
              <span className="result-text" title={f.message}>
                {f.message}
              </span>
              {f.ids.map((id) => (
                <button key={id} type="button" className="linklike mono" onClick={() => onOpen(id)}>
                  {id}
                </button>
              ))}
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}

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
import { useCallback, useMemo, useState } from 'react';
import { ConfirmDialog } from '../components/ConfirmDialog.js';
import { SimHint } from '../components/SimHint.js';
import { Empty, ErrorState, Loading } from '../components/States.js';
import {
  dismissJob,
  matchesDiscovered,
  refreshDiscovered,
  useAdoptJob,
  useDiscoveredList,
  useDismissedJob,
  useIgnored,
} from '../lib/discovered.js';
import { useNow } from '../lib/hooks.js';
import { useClient } from '../store/use-live.js';
import { AdoptJob } from './AdoptJob.js';
import { DiscoveredRow } from './DiscoveredRow.js';

/**
 * Most rows drawn at once; the filter narrows the rest. 500 unvirtualized rows, drawn again at each
 * tick and poll, kept a busy machine's page from answering for seconds with 2,000 waiting.
 */
const MAX_ROWS = 200;
/** How often "first/last heard … ago" is brought up to date. */
const AGO_TICK_MS = 5_000;

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

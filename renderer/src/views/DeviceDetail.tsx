/**
 * One device, live: header (state, link, firmware, last seen, restarts), a failure banner with a
 * restart button when its supervisor gave up, the state machine with the current state lit,
 * running timers counting down, the last transitions, the machine's inspector (context, last
 * events, an event sent by hand: DeviceInspector.tsx), telemetry charts over a chosen window,
 * spec vs reported status with drift highlighted, attributes, actions (the generated form), its
 * commands with their outcomes (status, round trip, reply or reason), and its recent events.
 *
 * The row from the push stream keeps the header and timers live; the full detail is fetched
 * again whenever the row says the state changed (and every 10 s for what rows don't carry). A
 * device another cluster instance supervises has no live row here: its detail is fetched again
 * whenever the stream pushes its row (its owner signalled a change, docs/scale-out.md), and every
 * {@link REMOTE_DETAIL_POLL_MS} for a push that was missed.
 *
 * @example
 * <DeviceDetailView id="pump-0007" onBack={() => go({ view: 'fleet' })} />
 */
import { useEffect, useMemo, useState } from 'react';
import type { ActionView, ActResult, DeviceDetail, EventView, Json } from '../../../src/host/contract.js';
import type { ActArgs } from '../api/client.js';
import { messageOf } from '../api/client.js';
import { ActionForm } from '../components/ActionForm.js';
import { ActResults } from '../components/ActResults.js';
import { ConfirmDialog } from '../components/ConfirmDialog.js';
import { DeviceExports } from '../components/DeviceExports.js';
import { MachineDiagram } from '../components/MachineDiagram.js';
import { LinkBadge, StateBadge } from '../components/StateBadge.js';
import { ErrorState, Loading } from '../components/States.js';
import { TelemetryChart } from '../components/TelemetryChart.js';
import { TimerBars } from '../components/TimerBars.js';
import { describeCommand, eventDataForDisplay, formatCommandId, isFinal, toneOf } from '../lib/commands.js';
import type { UpdateEntry } from '../lib/firmware-jobs.js';
import { percentOf, stepLabel, updateHistory, useFirmwareJobs } from '../lib/firmware-jobs.js';
import {
  formatAgo,
  formatBytes,
  formatDateTime,
  formatDuration,
  formatTime,
  jsonPretty,
  jsonPreview,
} from '../lib/format.js';
import { useCall, useNow } from '../lib/hooks.js';
import { useRemotePushes } from '../store/remote-rows.js';
import { useClient, useLive } from '../store/use-live.js';
import { CommandGuards } from './CommandGuards.js';
import { DeviceAdminBar } from './DeviceAdmin.js';
import { DeviceInspector } from './DeviceInspector.js';
import { HomieProperties } from './HomieProperties.js';

/** An own device's detail is read again this often, for what its live row does not carry. */
const OWN_DETAIL_POLL_MS = 10_000;
/**
 * Another instance's device's detail is read again when its row is pushed; this often besides,
 * as a safety net for a push that was missed.
 */
export const REMOTE_DETAIL_POLL_MS = 30_000;

const WINDOWS = [
  { label: '5 min', ms: 5 * 60_000 },
  { label: '1 h', ms: 3_600_000 },
  { label: '24 h', ms: 86_400_000 },
] as const;

export function DeviceDetailView({
  id,
  onBack,
  onOpenEvents,
}: {
  readonly id: string;
  readonly onBack: () => void;
  readonly onOpenEvents?: (id: string) => void;
}) {
  const client = useClient();
  const now = useNow(1_000);
  const row = useLive((s) => s.devices.get(id));
  // Another instance's device (no live row here): read again when the stream pushes its row.
  const remotePushes = useRemotePushes(id);
  const detail = useCall(
    (c) => c.call('device', { id }),
    [id, row?.state, row?.stateEnteredAt, row?.drift, row?.health, row?.breaker, row ? 0 : remotePushes],
    {
      refreshMs: row ? OWN_DETAIL_POLL_MS : REMOTE_DETAIL_POLL_MS,
    },
  );
  const [windowMs, setWindowMs] = useState<number>(WINDOWS[0].ms);
  const [results, setResults] = useState<{
    action: string;
    items: readonly ActResult[];
    error?: string;
  } | null>(null);
  const [restartAsk, setRestartAsk] = useState(false);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && !(e.target as HTMLElement | null)?.closest('dialog, input, textarea, select'))
        onBack();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [onBack]);

  const d: DeviceDetail | undefined = detail.value;
  if (!d && detail.status === 'loading') return <Loading label={`Loading ${id}…`} />;
  if (!d && detail.status === 'error')
    return (
      <div className="view">
        <BackBar onBack={onBack} />
        <ErrorState
          title={detail.code === 'notFound' ? `${id} is not in the fleet` : `Could not load ${id}`}
          message={detail.message}
          onRetry={detail.reload}
        />
      </div>
    );
  if (!d) return null;
  // The pushed row is newer than the fetched detail for everything a row carries.
  const live = row ? { ...d, ...row } : d;

  const send = async (action: ActionView, args: Record<string, Json>) => {
    try {
      const r = await client.call('act', { ids: [id], action: action.name, args: args as ActArgs });
      setResults(
        r.ok
          ? { action: action.name, items: r.value }
          : { action: action.name, items: [], error: `${r.error.code}: ${r.error.message}` },
      );
    } catch (error) {
      setResults({ action: action.name, items: [], error: messageOf(error) });
    }
    detail.reload();
  };

  const restart = async () => {
    setRestartAsk(false);
    const r = await client.call('restartDevice', { id });
    if (!r.ok) setResults({ action: 'restart', items: [], error: `${r.error.code}: ${r.error.message}` });
    detail.reload();
  };

  return (
    <div className="view detail">
      <BackBar onBack={onBack} />
      <header className="detail-header">
        <div className="detail-title">
          <h1 className="mono">{live.id}</h1>
          <span className="detail-name">{live.name}</span>
          <StateBadge state={live.state} health={live.health} />
          <DeviceAdminBar device={d} onChanged={detail.reload} onRemoved={onBack} />
        </div>
        <dl className="facts">
          <Fact label="Kind" value={live.kind} />
          <div>
            <dt>Link</dt>
            <dd>
              <LinkBadge link={live.link} />
              {!live.link.up && live.link.reason ? (
                <span className="muted"> ({live.link.reason})</span>
              ) : null}
            </dd>
          </div>
          <Fact label="Firmware" value={live.firmware ?? '—'} mono />
          <Fact label="In state for" value={formatDuration(Math.max(0, now - live.stateEnteredAt))} />
          <Fact label="Last seen" value={formatAgo(live.lastSeen, now)} />
          <Fact label="Restarts" value={String(live.restarts)} />
          <Fact label="Tags" value={live.tags.join(', ') || '—'} />
        </dl>
        {detail.status === 'error' ? (
          <span className="tone-text-warn small-text">Showing the last known detail: {detail.message}</span>
        ) : null}
      </header>

      {live.failure ? (
        <div className="banner err" role="alert">
          <div>
            <strong>Failed: {live.failure.code}</strong> — {live.failure.message}
          </div>
          <button type="button" className="btn" onClick={() => setRestartAsk(true)}>
            Restart device
          </button>
        </div>
      ) : null}

      <div className="grid two">
        <section className="panel">
          <h2>State machine</h2>
          {d.machine ? (
            <div className="diagram-scroll">
              <MachineDiagram machine={d.machine} current={live.state} />
            </div>
          ) : (
            <p className="muted">This device kind has no state machine.</p>
          )}
        </section>
        <div className="stack">
          <section className="panel">
            <h2>Timers</h2>
            <TimerBars timers={live.timers} />
          </section>
          <section className="panel">
            <h2>Last transitions</h2>
            {d.transitions.length === 0 ? (
              <p className="muted small-text">None recorded.</p>
            ) : (
              <ol className="transitions">
                {d.transitions.slice(0, 8).map((t) => (
                  <li key={`${t.at}-${t.from}-${t.to}`}>
                    <span className="muted mono">{formatTime(t.at)}</span>{' '}
                    <span className={t.from ? 'mono' : 'muted'}>{t.from || 'start'}</span>
                    <span className="muted"> → </span>
                    <span className="mono strong">{t.to}</span>
                  </li>
                ))}
              </ol>
            )}
          </section>
        </div>
      </div>

      {d.machine ? (
        <DeviceInspector
          id={id}
          state={live.state}
          stateEnteredAt={live.stateEnteredAt}
          onSent={detail.reload}
        />
      ) : null}

      <section className="panel">
        <div className="panel-head">
          <h2>Telemetry</h2>
          <div className="segmented" role="radiogroup" aria-label="Time window">
            {WINDOWS.map((w) => (
              <button
                key={w.label}
                type="button"
                role="radio"
                aria-checked={windowMs === w.ms}
                className={windowMs === w.ms ? 'on' : ''}
                onClick={() => setWindowMs(w.ms)}
              >
                {w.label}
              </button>
            ))}
          </div>
        </div>
        {d.metrics.length === 0 ? (
          <p className="muted">This device reports no metrics.</p>
        ) : (
          <div className="charts">
            {d.metrics.map((m) => (
              <TelemetryChart key={m} deviceId={id} metric={m} windowMs={windowMs} />
            ))}
          </div>
        )}
        <DeviceExports id={id} windowMs={windowMs} />
      </section>

      <HomieProperties id={id} status={d.status} onChanged={detail.reload} />

      <div className="grid two">
        <div className="stack">
          <section className="panel">
            <h2>Actions</h2>
            <ActionForm
              choices={d.actions.map((action) => ({ action, applies: 1, of: 1 }))}
              target={id}
              onSend={send}
            />
            {results ? (
              <ActResults
                action={results.action}
                results={results.items}
                error={results.error}
                onOpen={() => {}}
                onClose={() => setResults(null)}
              />
            ) : null}
          </section>
          <section className="panel">
            <h2>Commands</h2>
            <Commands id={id} now={now} onChanged={detail.reload} />
          </section>
          <section className="panel">
            <h2>Command guards</h2>
            <CommandGuards guards={d.guards} now={now} />
          </section>
        </div>
        <section className="panel">
          <h2>Spec and status</h2>
          <SpecStatus detail={d} />
          <h3>Attributes</h3>
          <pre className="json">{jsonPretty(d.attributes)}</pre>
        </section>
      </div>

      <section className="panel fw-history" aria-labelledby="fw-history-title" data-testid="device-updates">
        <h2 id="fw-history-title">Updates</h2>
        <UpdateHistory
          id={id}
          kind={live.kind}
          convention={live.convention ?? 'own'}
          status={d.status}
          now={now}
        />
      </section>

      <section className="panel">
        <div className="panel-head">
          <h2>Recent events</h2>
          {onOpenEvents ? (
            <button type="button" className="btn ghost small" onClick={() => onOpenEvents(id)}>
              All events of {id} →
            </button>
          ) : null}
        </div>
        <DeviceEvents id={id} refreshKey={`${row?.state}/${row?.stateEnteredAt}`} />
      </section>

      <ConfirmDialog
        open={restartAsk}
        title={`Restart ${id}?`}
        confirmLabel="Restart"
        onConfirm={() => void restart()}
        onCancel={() => setRestartAsk(false)}
      >
        Its supervisor starts it again from its persisted state; the failure count starts over.
      </ConfirmDialog>
    </div>
  );
}

function BackBar({ onBack }: { readonly onBack: () => void }) {
  return (
    <div className="backbar">
      <button type="button" className="btn ghost" onClick={onBack}>
        ← Back <span className="muted small-text">(Esc)</span>
      </button>
    </div>
  );
}

function Fact({
  label,
  value,
  mono,
}: {
  readonly label: string;
  readonly value: string;
  readonly mono?: boolean;
}) {
  return (
    <div>
      <dt>{label}</dt>
      <dd className={mono ? 'mono' : undefined}>{value}</dd>
    </div>
  );
}

function SpecStatus({ detail }: { readonly detail: DeviceDetail }) {
  const drift = new Map(detail.driftItems.map((i) => [i.field, i]));
  const spec = isRecord(detail.spec) ? detail.spec : {};
  const status = isRecord(detail.status) ? detail.status : {};
  const fields = [...new Set([...Object.keys(spec), ...Object.keys(status), ...drift.keys()])];
  if (fields.length === 0) return <p className="muted">No spec or status reported.</p>;
  return (
    <table className="kv">
      <thead>
        <tr>
          <th>Field</th>
          <th>Desired (spec)</th>
          <th>Reported (status)</th>
        </tr>
      </thead>
      <tbody>
        {fields.map((f) => {
          const item = drift.get(f);
          return (
            <tr key={f} className={item ? 'drift' : undefined}>
              <td className="mono">
                {f}
                {item ? <span className="badge tone-warn small">drift</span> : null}
              </td>
              <CellJson value={item ? item.desired : spec[f]} />
              <CellJson value={item ? item.reported : status[f]} />
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function CellJson({ value }: { readonly value: Json | undefined }) {
  const text = jsonPreview(value, 2_000);
  return (
    <td className="mono" title={text.length > 40 ? text : undefined}>
      {text || <span className="muted">—</span>}
    </td>
  );
}

/** How often the device's command log is asked again while the detail is open. */
const COMMANDS_REFRESH_MS = 1_000;

function Commands({
  id,
  now,
  onChanged,
}: {
  readonly id: string;
  readonly now: number;
  readonly onChanged: () => void;
}) {
  const client = useClient();
  const [error, setError] = useState('');
  const list = useCall((c) => c.call('commands', { id, limit: 20 }), [id], {
    refreshMs: COMMANDS_REFRESH_MS,
  });
  const items = list.value?.items ?? [];
  if (items.length === 0 && list.status === 'loading') return <Loading label="Loading commands…" />;
  if (items.length === 0 && list.status === 'error')
    return <ErrorState title="Could not load commands" message={list.message} onRetry={list.reload} />;
  if (items.length === 0) return <p className="muted small-text">No command sent to this device yet.</p>;
  return (
    <>
      {error ? <p className="tone-text-err small-text">{error}</p> : null}
      <table className="kv commands">
        <thead>
          <tr>
            <th>Command</th>
            <th>Status</th>
            <th>Outcome</th>
            <th>Asked</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {items.map((c) => {
            const { status, text } = describeCommand(c);
            return (
              <tr key={c.commandId} data-testid="command-row" data-status={status}>
                <td>
                  <span className="mono strong">{c.action}</span>{' '}
                  <span className="mono muted" title={c.commandId} data-testid="command-id">
                    {formatCommandId(c.commandId)}
                  </span>
                  {jsonPreview(c.args, 40) !== '{}' ? (
                    <div className="mono muted small-text">{jsonPreview(c.args, 40)}</div>
                  ) : null}
                </td>
                <td>
                  <span className={`badge small tone-${toneOf(status)}`}>{status}</span>
                </td>
                <td className="small-text">{text}</td>
                <td className="muted" title={formatDateTime(c.requestedAt)}>
                  {formatAgo(c.requestedAt, now)}
                  {c.expiresAt && !isFinal(c.status)
                    ? ` · expires in ${formatDuration(Math.max(0, c.expiresAt - now))}`
                    : ''}
                  {c.actor ? <div className="small-text">by {c.actor}</div> : null}
                </td>
                <td>
                  {isFinal(c.status) ? null : (
                    <button
                      type="button"
                      className="btn ghost small"
                      onClick={async () => {
                        const r = await client.call('cancelCommand', { commandId: c.commandId });
                        setError(r.ok ? '' : r.error.message);
                        list.reload();
                        onChanged();
                      }}
                    >
                      Cancel
                    </button>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </>
  );
}

function DeviceEvents({ id, refreshKey }: { readonly id: string; readonly refreshKey: string }) {
  const history = useCall((c) => c.call('events', { id, limit: 50 }), [id, refreshKey]);
  const liveEvents = useLive((s) => s.events);
  const events = useMemo(() => {
    const bySeq = new Map<number, EventView>();
    for (const e of history.value?.items ?? []) bySeq.set(e.seq, e);
    for (const e of liveEvents) if (e.deviceId === id) bySeq.set(e.seq, e);
    return [...bySeq.values()].sort((a, b) => b.seq - a.seq).slice(0, 50);
  }, [history.value, liveEvents, id]);
  if (events.length === 0 && history.status === 'loading') return <Loading label="Loading events…" />;
  if (events.length === 0 && history.status === 'error')
    return <ErrorState title="Could not load events" message={history.message} onRetry={history.reload} />;
  if (events.length === 0) return <p className="muted small-text">No events recorded for this device.</p>;
  return (
    <ol className="event-list compact">
      {events.map((e) => (
        <li key={e.seq}>
          <span className="muted mono">{formatTime(e.at)}</span>
          <span className="event-kind mono">{e.kind}</span>
          <span className="mono event-data">{jsonPreview(eventDataForDisplay(e.data), 200)}</span>
        </li>
      ))}
    </ol>
  );
}

/** Whether the device can be updated: it announced the `fw` capability in its hello. */
function firmwareSupport(convention: string, status: Json): 'yes' | 'no' | 'unknown' {
  const caps = isRecord(status) ? status.capabilities : undefined;
  if (Array.isArray(caps)) return caps.includes('fw') ? 'yes' : 'no';
  // Homie, Sparkplug and Modbus devices have no firmware channel; a protocol device that never
  // said hello has not told yet.
  return convention === 'own' ? 'unknown' : 'no';
}

function resultOf(e: UpdateEntry): { tone: string; text: string } {
  if (e.running) return { tone: e.step === 'rollingBack' ? 'warn' : 'info', text: stepLabel(e.step) };
  if (e.step === 'succeeded') return { tone: 'ok', text: 'succeeded' };
  if (e.step === 'cancelled') return { tone: 'idle', text: 'cancelled' };
  return { tone: 'err', text: stepLabel(e.step) };
}

/** The device's firmware updates, newest first, the running one live at the top. */
function UpdateHistory({
  id,
  kind,
  convention,
  status,
  now,
}: {
  readonly id: string;
  readonly kind: string;
  /** From the device row: `own` for Fleetvisor's protocol. */
  readonly convention: string;
  readonly status: Json;
  readonly now: number;
}) {
  const job = useFirmwareJobs().jobs?.find((j) => j.deviceId === id);
  // Asked again whenever the live job moves to another step; the push stream adds the rest.
  const events = useCall(
    (c) => c.call('events', { id, kind: 'firmware.update', limit: 1000 }),
    [id, job?.transferId, job?.step],
  );
  const liveEvents = useLive((s) => s.events);
  const entries = useMemo(() => {
    const bySeq = new Map<number, EventView>();
    for (const e of events.value?.items ?? []) bySeq.set(e.seq, e);
    for (const e of liveEvents) if (e.deviceId === id && e.kind === 'firmware.update') bySeq.set(e.seq, e);
    return updateHistory([...bySeq.values()], job);
  }, [events.value, liveEvents, id, job]);
  const support = firmwareSupport(convention, status);
  const unsupported =
    support === 'no' ? (
      <p className="muted small-text" data-testid="fw-not-supported">
        Firmware update not supported:{' '}
        {convention === 'own'
          ? `${id} does not announce the 'fw' capability in its hello.`
          : `${kind} devices have no firmware channel.`}
      </p>
    ) : null;

  if (entries.length === 0 && events.status === 'loading') return <Loading label="Loading updates…" />;
  if (entries.length === 0 && events.status === 'error')
    return <ErrorState title="Could not load the updates" message={events.message} onRetry={events.reload} />;
  if (entries.length === 0)
    return (
      <>
        <p className="muted small-text" data-testid="fw-history-empty">
          No firmware updates yet.
        </p>
        {unsupported}
      </>
    );
  return (
    <>
      {unsupported}
      <table className="kv fw-history-table">
        <thead>
          <tr>
            <th>Version</th>
            <th>From</th>
            <th>Result</th>
            <th>Started</th>
            <th>Ended</th>
            <th className="num">Duration</th>
            <th>By</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => {
            const result = resultOf(e);
            const end = e.endedAt ?? (e.running ? now : null);
            return (
              <tr
                key={e.key}
                className={e.running ? 'fw-history-running' : undefined}
                data-testid="fw-history-row"
                data-step={e.step}
                data-version={e.version}
              >
                <td className="mono strong" title={e.transferId}>
                  {e.version}
                </td>
                <td className="mono">{e.from ?? <span className="muted">—</span>}</td>
                <td className="fw-history-result">
                  <span className={`badge tone-${result.tone}`} data-testid="fw-history-result">
                    {result.text}
                  </span>
                  {e.running ? (
                    <span className="small-text fw-history-live">
                      {e.step === 'transferring' || e.offset < e.size ? (
                        <>
                          <strong>{percentOf(e)} %</strong>{' '}
                          <span className="muted">
                            {formatBytes(e.offset)} of {formatBytes(e.size)}
                          </span>
                        </>
                      ) : null}
                      {e.deadline !== null && (e.step === 'rebooting' || e.step === 'onTrial') ? (
                        <span className="muted">
                          {' '}
                          {Math.ceil(Math.max(0, e.deadline - now) / 1000)} s{' '}
                          {e.step === 'onTrial' ? 'of trial' : 'to reboot'}
                        </span>
                      ) : null}
                    </span>
                  ) : null}
                  {e.error && e.step !== 'cancelled' ? (
                    <div
                      className="small-text fw-job-error"
                      title={`${e.error.step} · ${e.error.code}: ${e.error.message}`}
                    >
                      <span className="muted">at {stepLabel(e.error.step)}:</span>{' '}
                      <strong className="mono">{e.error.code}</strong> {e.error.message}
                    </div>
                  ) : null}
                </td>
                <td className="muted" title={e.startedAt !== null ? formatDateTime(e.startedAt) : undefined}>
                  {e.startedAt !== null ? formatDateTime(e.startedAt) : '—'}
                </td>
                <td className="muted">{e.endedAt !== null ? formatDateTime(e.endedAt) : '—'}</td>
                <td className="num">
                  {e.startedAt !== null && end !== null
                    ? formatDuration(Math.max(0, end - e.startedAt))
                    : '—'}
                </td>
                <td className="muted">{e.actor ?? '—'}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </>
  );
}

function isRecord(v: Json): v is { readonly [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

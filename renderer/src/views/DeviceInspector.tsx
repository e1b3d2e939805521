/**
 * The machine inspector of one device (issue 13, after Stately's): the machine's current context
 * (JSON, collapsible), the last events it processed with their payloads and the transition each
 * caused, and a form that sends one of the events its current state accepts, with a JSON payload.
 *
 * The host validates and audits what is sent (`device.eventSent`, with the operator's name); the
 * form checks the payload first only to say what is wrong sooner. The inspection is asked again
 * when the state changes, after a send, and every few seconds (events that change only the
 * context move no row).
 *
 * @example
 * <DeviceInspector id="pump-0007" state={row.state} stateEnteredAt={row.stateEnteredAt} onSent={detail.reload} />
 */
import type { FormEvent } from 'react';
import { useEffect, useId, useState } from 'react';
import type { ArgsOf, DeviceInspection, Json, MachineEventView } from '../../../src/host/contract.js';
import { messageOf } from '../api/client.js';
import { ErrorState, Loading } from '../components/States.js';
import { formatDateTime, formatTime, jsonPretty, jsonPreview } from '../lib/format.js';
import { useCall } from '../lib/hooks.js';
import { useClient } from '../store/use-live.js';

/** How often the inspection is asked again while it is open. */
const REFRESH_MS = 3_000;

/** The payload as typed: a JSON object (empty text is `{}`), or why not. */
export function parsePayload(
  text: string,
  maxChars: number,
): { ok: true; value: { [key: string]: Json } } | { ok: false; error: string } {
  if (text.trim() === '') return { ok: true, value: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: `not JSON: ${messageOf(error)}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return { ok: false, error: 'the payload must be a JSON object, e.g. {"firmware": "2.1.0"}' };
  if (Object.hasOwn(value, 'type'))
    return { ok: false, error: "leave 'type' out: the event's name is its type" };
  const size = JSON.stringify(value).length;
  if (size > maxChars)
    return { ok: false, error: `${size} characters as JSON, over the ${maxChars} allowed` };
  return { ok: true, value: value as { [key: string]: Json } };
}

export function DeviceInspector({
  id,
  state,
  stateEnteredAt,
  onSent,
}: {
  readonly id: string;
  /** From the live row: a change asks for the inspection again. */
  readonly state: string;
  readonly stateEnteredAt: number;
  /** After an event went in (the detail has moved too). */
  readonly onSent?: () => void;
}) {
  const inspection = useCall((c) => c.call('deviceInspect', { id }), [id, state, stateEnteredAt], {
    refreshMs: REFRESH_MS,
  });
  const m = inspection.value;

  return (
    <section className="panel inspector" data-testid="device-inspector" data-state={m?.state}>
      <div className="panel-head">
        <h2>Inspector</h2>
        <span className="muted small-text">
          {m ? (
            <>
              state{' '}
              <span className="mono strong" data-testid="inspector-state">
                {m.state}
              </span>
              {m.running ? '' : ' · not running'}
            </>
          ) : null}
        </span>
      </div>
      {!m && inspection.status === 'loading' ? <Loading label="Inspecting…" /> : null}
      {!m && inspection.status === 'error' ? (
        <ErrorState
          title="Could not inspect the machine"
          message={inspection.message}
          onRetry={inspection.reload}
        />
      ) : null}
      {m ? (
        <>
          <div className="grid two">
            <details className="inspector-context" open data-testid="inspector-context">
              <summary>
                Context <span className="muted small-text">{contextSummary(m.context)}</span>
              </summary>
              <pre className="json" data-testid="inspector-context-json">
                {jsonPretty(m.context)}
              </pre>
            </details>
            <SendEvent
              id={id}
              inspection={m}
              onSent={() => {
                inspection.reload();
                onSent?.();
              }}
            />
          </div>
          <h3 className="inspector-title">Last events</h3>
          <LastEvents events={m.lastEvents} since={m.recordedSince} />
        </>
      ) : null}
    </section>
  );
}

function contextSummary(context: Json): string {
  if (context === null) return 'none yet';
  if (typeof context === 'object' && !Array.isArray(context)) {
    const n = Object.keys(context).length;
    return `${n} field${n === 1 ? '' : 's'}`;
  }
  return '';
}

function SendEvent({
  id,
  inspection,
  onSent,
}: {
  readonly id: string;
  readonly inspection: DeviceInspection;
  readonly onSent: () => void;
}) {
  const client = useClient();
  const formId = useId();
  const [event, setEvent] = useState('');
  const [payload, setPayload] = useState('');
  const [sending, setSending] = useState(false);
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string } | null>(null);
  const { accepts } = inspection;
  // The state moved on: an event it no longer accepts is not offered any more.
  useEffect(() => {
    if (event !== '' && !accepts.includes(event)) setEvent('');
  }, [accepts, event]);

  const check = parsePayload(payload, inspection.maxPayloadChars);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (event === '' || !check.ok) return;
    setSending(true);
    try {
      const r = await client.call('sendEvent', {
        id,
        event,
        payload: check.value as ArgsOf<'sendEvent'>['payload'],
      });
      setOutcome(
        r.ok
          ? {
              ok: !r.value.crashed,
              text: r.value.crashed
                ? `${event}: the machine crashed on it; its supervisor restarts it`
                : `${event}: ${r.value.from} → ${r.value.to}`,
            }
          : { ok: false, text: `${r.error.code}: ${r.error.message}` },
      );
      if (r.ok) onSent();
    } catch (error) {
      setOutcome({ ok: false, text: messageOf(error) });
    } finally {
      setSending(false);
    }
  };

  return (
    <form className="inspector-send" onSubmit={submit} data-testid="inspector-send">
      <h3 className="inspector-title first">Send event</h3>
      <div className="action-form">
        <div className="field">
          <label htmlFor={`${formId}-event`}>Event</label>
          <select
            id={`${formId}-event`}
            data-testid="inspector-event"
            value={event}
            disabled={!inspection.running || accepts.length === 0}
            onChange={(e) => {
              setEvent(e.target.value);
              setOutcome(null);
            }}
          >
            <option value="">
              {!inspection.running
                ? 'Not running'
                : accepts.length === 0
                  ? `Nothing accepted while ${inspection.state}`
                  : 'Choose an event…'}
            </option>
            {accepts.map((type) => (
              <option key={type} value={type}>
                {type}
              </option>
            ))}
          </select>
        </div>
        <div className="field grow">
          <label htmlFor={`${formId}-payload`}>
            Payload (JSON object) <span className="muted">— optional</span>
          </label>
          <textarea
            id={`${formId}-payload`}
            data-testid="inspector-payload"
            rows={2}
            spellCheck={false}
            placeholder='{"firmware": "2.1.0"}'
            value={payload}
            onChange={(e) => {
              setPayload(e.target.value);
              setOutcome(null);
            }}
            aria-invalid={check.ok ? undefined : true}
          />
          {check.ok ? null : <span className="field-error">{check.error}</span>}
        </div>
        <div className="field submit">
          <button
            type="submit"
            className="btn primary"
            data-testid="inspector-submit"
            disabled={event === '' || !check.ok || sending}
          >
            {sending ? 'Sending…' : event ? `Send ${event}` : 'Send'}
          </button>
        </div>
      </div>
      <p className="field-hint">
        {inspection.events.length > 0
          ? `Offered: what ${inspection.state || 'this state'} accepts, of ${inspection.events.join(', ')}. `
          : 'This host lists no events for this machine. '}
        Sent by hand, validated and audited with your name.
      </p>
      {outcome ? (
        <p
          className={`small-text ${outcome.ok ? 'tone-text-ok' : 'tone-text-err'}`}
          role={outcome.ok ? 'status' : 'alert'}
          data-testid="inspector-outcome"
        >
          {outcome.text}
        </p>
      ) : null}
    </form>
  );
}

function LastEvents({
  events,
  since,
}: {
  readonly events: readonly MachineEventView[];
  readonly since: number;
}) {
  const [open, setOpen] = useState<string | null>(null);
  return (
    <>
      {events.length === 0 ? (
        <p className="muted small-text">No event processed since {formatDateTime(since)}.</p>
      ) : (
        <table className="kv inspector-events">
          <colgroup>
            <col className="inspector-col-time" />
            <col className="inspector-col-event" />
            <col className="inspector-col-transition" />
            <col />
          </colgroup>
          <thead>
            <tr>
              <th>Time</th>
              <th>Event</th>
              <th>Transition</th>
              <th>Payload</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e, i) => {
              const key = `${e.at}-${i}-${e.type}`;
              const preview = jsonPreview(e.payload, 60);
              const expandable = preview !== '{}' && preview.length > 0;
              return (
                <tr key={key} data-testid="inspector-event-row" data-event={e.type}>
                  <td className="muted mono" title={formatDateTime(e.at)}>
                    {formatTime(e.at)}
                  </td>
                  <td className="mono strong inspector-event-type" title={e.type}>
                    {e.type}
                  </td>
                  <td className="mono wrap" data-testid="inspector-transition">
                    {e.from === e.to ? (
                      <span className="muted">{e.to || '—'} (stayed)</span>
                    ) : (
                      <>
                        <span className={e.from ? undefined : 'muted'}>{e.from || 'start'}</span>
                        <span className="muted"> → </span>
                        <span className="strong">{e.to}</span>
                      </>
                    )}
                  </td>
                  <td className={`mono small-text${open === key ? ' wrap' : ''}`}>
                    {expandable ? (
                      open === key ? (
                        <button type="button" className="linklike" onClick={() => setOpen(null)}>
                          <pre className="json">
                            {typeof e.payload === 'string' ? e.payload : jsonPretty(e.payload)}
                          </pre>
                        </button>
                      ) : (
                        <button
                          type="button"
                          className="linklike"
                          title="Show the whole payload"
                          onClick={() => setOpen(key)}
                        >
                          {preview}
                        </button>
                      )
                    ) : (
                      <span className="muted">—</span>
                    )}
                    {e.truncated ? <span className="muted"> (cut)</span> : null}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {events.length > 0 ? (
        <p className="field-hint">
          Newest first; kept by this host since {formatDateTime(since)}, at most 20.
        </p>
      ) : null}
    </>
  );
}

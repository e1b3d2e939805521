/**
 * Alarms (src/alarms): the alarms, newest first, filtered by state (open, unacknowledged,
 * shelved, cleared, all), severity and device, polled every 2 s; each open alarm with Acknowledge
 * and Shelve (15 min, 1 h, 8 h; Unshelve), who did it and when in its row. Below, the rules with
 * their status (a rule that threw shows `crashed` and its error) and an editor: a form per rule
 * type; the host validates it and a refusal names the field in place. The notifications button
 * asks the browser for permission only when pressed.
 *
 * @example
 * <AlarmsView onOpenDevice={(id) => open(id)} />
 */
import { useState } from 'react';
import type { AlarmRuleView, AlarmView, ArgsOf } from '../../../src/host/contract.js';
import { Empty, ErrorState, Loading } from '../components/States.js';
import {
  ALARMS_REFRESH_MS,
  disableNotifications,
  enableNotifications,
  useNotifyState,
} from '../lib/alarms.js';
import { formatDateTime } from '../lib/format.js';
import { useCall } from '../lib/hooks.js';
import { useClient } from '../store/use-live.js';

const STATES = ['active', 'unacked', 'shelved', 'cleared', 'all'] as const;
type StateFilter = (typeof STATES)[number];
const STATE_LABELS: Record<StateFilter, string> = {
  active: 'Open',
  unacked: 'Unacknowledged',
  shelved: 'Shelved',
  cleared: 'Cleared',
  all: 'All',
};
const SEVERITIES = ['critical', 'major', 'minor', 'warning'] as const;
const SEVERITY_TONE: Record<string, string> = {
  critical: 'tone-err',
  major: 'tone-err',
  minor: 'tone-warn',
  warning: 'tone-info',
};
const SHELVE_FOR: readonly { label: string; ms: number }[] = [
  { label: '15 min', ms: 15 * 60_000 },
  { label: '1 h', ms: 3_600_000 },
  { label: '8 h', ms: 8 * 3_600_000 },
];

function stateOf(a: AlarmView, now: number): string {
  if (a.clearedAt !== null) return 'cleared';
  if (a.shelvedUntil !== null && a.shelvedUntil > now) return 'shelved';
  return a.ackedAt !== null ? 'acknowledged' : 'open';
}

export function AlarmsView({ onOpenDevice }: { readonly onOpenDevice: (id: string) => void }) {
  const client = useClient();
  const [state, setState] = useState<StateFilter>('active');
  const [severity, setSeverity] = useState('');
  const [device, setDevice] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const list = useCall(
    (c) =>
      c.call('alarms', {
        state,
        limit: 200,
        ...(severity ? { severity: severity as (typeof SEVERITIES)[number] } : {}),
        ...(device.trim() ? { deviceId: device.trim() } : {}),
      }),
    [state, severity, device],
    { refreshMs: ALARMS_REFRESH_MS },
  );
  const rules = useCall((c) => c.call('alarmRules', {}), [], { refreshMs: 5_000 });
  const [editing, setEditing] = useState<AlarmRuleView['rule'] | 'new' | null>(null);

  const act = async (run: () => Promise<{ ok: boolean; error?: { message: string } }>) => {
    const r = await run();
    setProblem(r.ok ? null : (r.error?.message ?? 'failed'));
    list.reload();
    rules.reload();
  };
  const now = Date.now();
  const items = list.value?.items ?? [];
  const counts = list.value?.counts;

  return (
    <div className="alarms-view">
      <div className="toolbar">
        <label>
          <span className="sr-only">State</span>
          <select
            aria-label="State"
            data-testid="alarms-state"
            value={state}
            onChange={(e) => setState(e.target.value as StateFilter)}
          >
            {STATES.map((s) => (
              <option key={s} value={s}>
                {STATE_LABELS[s]}
              </option>
            ))}
          </select>
        </label>
        <select aria-label="Severity" value={severity} onChange={(e) => setSeverity(e.target.value)}>
          <option value="">Any severity</option>
          {SEVERITIES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
        <input
          type="search"
          aria-label="Device"
          placeholder="Device id"
          value={device}
          onChange={(e) => setDevice(e.target.value)}
        />
        {counts ? (
          <span className="counts" data-testid="alarms-counts">
            <strong>{counts.active}</strong> open · <strong>{counts.unacked}</strong> unacknowledged ·{' '}
            <strong>{counts.shelved}</strong> shelved
          </span>
        ) : null}
        <span className="spacer" />
        <NotifyButton />
      </div>
      {problem ? (
        <div className="banner err" role="alert">
          {problem}
        </div>
      ) : null}
      {list.status === 'loading' && !list.value ? (
        <Loading />
      ) : list.status === 'error' && !list.value ? (
        <ErrorState title="Alarms unavailable" message={list.message} onRetry={list.reload} />
      ) : items.length === 0 ? (
        <Empty title="No alarms">Nothing matches these filters.</Empty>
      ) : (
        <table className="kv alarms-table" data-testid="alarms-table">
          <thead>
            <tr>
              <th>Severity</th>
              <th>Device</th>
              <th>Rule</th>
              <th>Message</th>
              <th>Raised</th>
              <th>State</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {items.map((a) => {
              const s = stateOf(a, now);
              return (
                <tr key={a.id} data-testid={`alarm-${a.id}`} data-state={s}>
                  <td>
                    <span className={`badge small ${SEVERITY_TONE[a.severity] ?? ''}`}>{a.severity}</span>
                  </td>
                  <td>
                    <button type="button" className="linklike mono" onClick={() => onOpenDevice(a.deviceId)}>
                      {a.deviceId}
                    </button>
                  </td>
                  <td className="mono">{a.ruleId}</td>
                  <td>{a.message}</td>
                  <td className="small-text">{formatDateTime(a.raisedAt)}</td>
                  <td className="small-text" data-testid="alarm-state">
                    {s}
                    {a.ackedBy ? <div className="muted">acked by {a.ackedBy}</div> : null}
                    {s === 'shelved' && a.shelvedUntil ? (
                      <div className="muted">
                        by {a.shelvedBy} until {formatDateTime(a.shelvedUntil)}
                      </div>
                    ) : null}
                    {a.clearedAt ? (
                      <div className="muted">
                        {a.clearedBy} {formatDateTime(a.clearedAt)}
                      </div>
                    ) : null}
                  </td>
                  <td>
                    <div className="alarms-actions">
                      {a.ackedAt === null ? (
                        <button
                          type="button"
                          className="btn small primary"
                          onClick={() => act(() => client.call('alarmAck', { id: a.id }))}
                        >
                          Acknowledge
                        </button>
                      ) : null}
                      {a.clearedAt === null ? (
                        s === 'shelved' ? (
                          <button
                            type="button"
                            className="btn small"
                            onClick={() => act(() => client.call('alarmShelve', { id: a.id, forMs: 0 }))}
                          >
                            Unshelve
                          </button>
                        ) : (
                          <select
                            aria-label={`Shelve alarm ${a.id}`}
                            value=""
                            onChange={(e) => {
                              const forMs = Number(e.target.value);
                              if (forMs > 0) void act(() => client.call('alarmShelve', { id: a.id, forMs }));
                            }}
                          >
                            <option value="">Shelve…</option>
                            {SHELVE_FOR.map((o) => (
                              <option key={o.ms} value={o.ms}>
                                {o.label}
                              </option>
                            ))}
                          </select>
                        )
                      ) : null}
                    </div>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}

      <section className="panel" aria-labelledby="alarm-rules-title" data-testid="alarm-rules">
        <div className="panel-head">
          <h2 id="alarm-rules-title">Rules</h2>
          <button
            type="button"
            className="btn small"
            onClick={() => setEditing('new')}
            data-testid="rule-new"
          >
            New rule
          </button>
        </div>
        {editing ? (
          <RuleEditor
            initial={editing === 'new' ? undefined : editing}
            onDone={() => {
              setEditing(null);
              rules.reload();
            }}
          />
        ) : null}
        {(rules.value ?? []).length === 0 ? (
          <p className="muted">No rules yet. Rules also load from alarm-rules.json in the data folder.</p>
        ) : (
          <table className="kv">
            <thead>
              <tr>
                <th>Rule</th>
                <th>Severity</th>
                <th>Condition</th>
                <th>Status</th>
                <th>Open</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {(rules.value ?? []).map((r) => (
                <tr key={r.rule.id} data-testid={`rule-${r.rule.id}`}>
                  <td className="mono">{r.rule.id}</td>
                  <td>
                    <span className={`badge small ${SEVERITY_TONE[r.rule.severity] ?? ''}`}>
                      {r.rule.severity}
                    </span>
                  </td>
                  <td>{r.description}</td>
                  <td className={r.status === 'crashed' ? 'tone-text-err' : ''} title={r.error ?? undefined}>
                    {r.status}
                    {r.error ? <div className="small-text">{r.error}</div> : null}
                    <div className="muted small-text">
                      {r.updatedBy}, {formatDateTime(r.updatedAt)}
                    </div>
                  </td>
                  <td>{r.active}</td>
                  <td>
                    <div className="alarms-actions">
                      <button type="button" className="btn small" onClick={() => setEditing(r.rule)}>
                        Edit
                      </button>
                      <button
                        type="button"
                        className="btn small danger"
                        onClick={() => act(() => client.call('alarmRuleDelete', { id: r.rule.id }))}
                      >
                        Delete
                      </button>
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}

function NotifyButton() {
  const state = useNotifyState();
  if (state === 'unsupported' || state === 'shell') return null;
  if (state === 'denied')
    return <span className="muted small-text">Notifications are blocked in this browser's settings</span>;
  return state === 'on' ? (
    <button type="button" className="btn small" onClick={disableNotifications} data-testid="alarms-notify">
      Notifications on — turn off
    </button>
  ) : (
    <button
      type="button"
      className="btn small"
      onClick={() => void enableNotifications()}
      data-testid="alarms-notify"
    >
      Enable notifications
    </button>
  );
}

const TYPES = ['threshold', 'rateOfChange', 'noData', 'offline', 'crashLoop', 'drift', 'stuck'] as const;
/** The fields each type has, beyond id, severity and enabled. */
const FIELDS: Record<(typeof TYPES)[number], readonly string[]> = {
  threshold: ['metric', 'op', 'value', 'forMs', 'hysteresis'],
  rateOfChange: ['metric', 'maxPerSecond', 'hysteresis'],
  noData: ['metric', 'forMs'],
  offline: ['forMs'],
  crashLoop: [],
  drift: ['forMs'],
  stuck: [],
};
const NUMERIC = new Set(['value', 'forMs', 'hysteresis', 'maxPerSecond']);
const LABELS: Record<string, string> = {
  metric: 'Metric',
  op: 'Condition',
  value: 'Value',
  forMs: 'For (ms)',
  hysteresis: 'Hysteresis',
  maxPerSecond: 'Max change per second',
};

function RuleEditor({
  initial,
  onDone,
}: {
  readonly initial: AlarmRuleView['rule'] | undefined;
  readonly onDone: () => void;
}) {
  const client = useClient();
  const [type, setType] = useState<(typeof TYPES)[number]>(
    (initial?.type as (typeof TYPES)[number] | undefined) ?? 'threshold',
  );
  const [values, setValues] = useState<Record<string, string>>(() => {
    const v: Record<string, string> = { id: '', severity: 'major', op: 'above' };
    if (initial) for (const [k, x] of Object.entries(initial)) if (typeof x !== 'object') v[k] = String(x);
    const scope = initial?.scope as { kind?: string; tag?: string } | undefined;
    v.scopeKind = scope?.kind ?? '';
    v.scopeTag = scope?.tag ?? '';
    v.enabled = initial?.enabled === false ? 'false' : 'true';
    return v;
  });
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const set = (k: string, x: string) => setValues((v) => ({ ...v, [k]: x }));

  const save = async () => {
    const rule: ArgsOf<'alarmRuleSet'>['rule'] = {
      id: values.id ?? '',
      type,
      severity: values.severity ?? 'major',
    };
    for (const f of FIELDS[type]) {
      const raw = values[f];
      if (raw === undefined || raw === '') continue;
      rule[f] = NUMERIC.has(f) ? Number(raw) : raw;
    }
    // The scope: the kind and tag fields; device ids only from the config file or the API (kept).
    const ids = (initial?.scope as { deviceIds?: string[] } | undefined)?.deviceIds;
    const scope = {
      ...(ids ? { deviceIds: ids } : {}),
      ...(values.scopeKind ? { kind: values.scopeKind } : {}),
      ...(values.scopeTag ? { tag: values.scopeTag } : {}),
    };
    if (Object.keys(scope).length > 0) rule.scope = scope;
    rule.enabled = values.enabled !== 'false';
    setSaving(true);
    const r = await client.call('alarmRuleSet', { rule });
    setSaving(false);
    if (r.ok) onDone();
    else setError(r.error.message);
  };

  return (
    <form
      className="alarm-rule-form"
      data-testid="rule-form"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <label>
        Id
        <input
          type="text"
          value={values.id ?? ''}
          readOnly={initial !== undefined}
          onChange={(e) => set('id', e.target.value)}
          data-testid="rule-id"
        />
      </label>
      <label>
        Type
        <select value={type} onChange={(e) => setType(e.target.value as typeof type)} data-testid="rule-type">
          {TYPES.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
      </label>
      <label>
        Severity
        <select
          value={values.severity}
          onChange={(e) => set('severity', e.target.value)}
          data-testid="rule-severity"
        >
          {SEVERITIES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      {FIELDS[type].map((f) =>
        f === 'op' ? (
          <label key={f}>
            {LABELS[f]}
            <select value={values.op} onChange={(e) => set('op', e.target.value)} data-testid="rule-op">
              <option value="above">above</option>
              <option value="below">below</option>
            </select>
          </label>
        ) : (
          <label key={f}>
            {LABELS[f]}
            <input
              type={NUMERIC.has(f) ? 'number' : 'text'}
              step="any"
              value={values[f] ?? ''}
              onChange={(e) => set(f, e.target.value)}
              data-testid={`rule-${f}`}
            />
          </label>
        ),
      )}
      <label>
        Device kind
        <input
          type="text"
          placeholder="any"
          value={values.scopeKind ?? ''}
          onChange={(e) => set('scopeKind', e.target.value)}
          data-testid="rule-scope-kind"
        />
      </label>
      <label>
        Device tag
        <input
          type="text"
          placeholder="any"
          value={values.scopeTag ?? ''}
          onChange={(e) => set('scopeTag', e.target.value)}
          data-testid="rule-scope-tag"
        />
      </label>
      <label className="alarm-rule-enabled">
        <input
          type="checkbox"
          checked={values.enabled !== 'false'}
          onChange={(e) => set('enabled', e.target.checked ? 'true' : 'false')}
          data-testid="rule-enabled"
        />
        Enabled
      </label>
      <div className="alarm-rule-buttons">
        <button type="submit" className="btn small primary" disabled={saving} data-testid="rule-save">
          Save rule
        </button>
        <button type="button" className="btn small ghost" onClick={onDone}>
          Cancel
        </button>
      </div>
      {error ? (
        <div className="banner err" role="alert" data-testid="rule-error">
          {error}
        </div>
      ) : null}
    </form>
  );
}

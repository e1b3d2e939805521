/**
 * Settings: what is a start flag today (broker, serial ports, adoption, firmware drift, retention,
 * the UI's port, logging), edited in a form grouped by topic and saved to the data folder's
 * settings.json (`settingsSave`, checked by the host as a start would). Every setting applies at
 * the next start; the view says which saved values differ from the running ones ("restart to
 * apply") and which ones the command line, the environment or `--config` set (they win).
 *
 * @example
 * <SettingsView />
 */
import { useEffect, useId, useState } from 'react';
import type { SettingsView as Settings } from '../../../src/host/contract.js';
import { messageOf } from '../api/client.js';
import { ErrorState, Loading } from '../components/States.js';
import { useCall } from '../lib/hooks.js';
import { useClient } from '../store/use-live.js';

type Value = string | number | boolean;
type Field = Settings['fields'][number];

/** The form's text for a value (numbers as text; booleans stay booleans). */
const asText = (v: Value | undefined): string | boolean =>
  typeof v === 'boolean' ? v : v === undefined ? '' : String(v);

/** The form's values as the API takes them: empty text is "not set"; numbers as numbers. */
export function formValues(fields: readonly Field[], form: Readonly<Record<string, string | boolean>>) {
  const out: Record<string, Value> = {};
  for (const f of fields) {
    const v = form[f.name];
    if (v === undefined || v === '' || v === false) continue;
    if (f.kind === 'number') {
      const n = Number(v);
      out[f.name] = typeof v === 'string' && v.trim() !== '' && Number.isFinite(n) ? n : String(v);
    } else out[f.name] = v;
  }
  return out;
}

export function SettingsView() {
  const client = useClient();
  const state = useCall((c) => c.call('settings', {}), []);
  const [form, setForm] = useState<Record<string, string | boolean>>({});
  const [saved, setSaved] = useState<Settings | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const current = saved ?? (state.status === 'ok' ? state.value : undefined);

  useEffect(() => {
    if (state.status !== 'ok') return;
    const initial: Record<string, string | boolean> = {};
    for (const f of state.value.fields) initial[f.name] = asText(state.value.saved[f.name]);
    setForm(initial);
  }, [state.status, state.value]);

  if (!current) {
    if (state.status === 'error')
      return (
        <ErrorState title="Could not load the settings" message={state.message} onRetry={state.reload} />
      );
    return <Loading />;
  }

  const groups = [...new Set(current.fields.map((f) => f.group))];
  const save = async () => {
    setBusy(true);
    setError(null);
    try {
      const r = await client.call('settingsSave', { values: formValues(current.fields, form) });
      if (r.ok) setSaved(r.value);
      else setError(`${r.error.code}: ${r.error.message}`);
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="view settings">
      <section className="panel">
        <p className="muted small-text">
          Saved to <span className="mono">{current.file}</span>. Each setting applies at the next start of
          Fleetvisor; the command line, the environment and <span className="mono">--config</span> win over
          this file.
        </p>
        {current.restartNeeded.length > 0 ? (
          <div className="banner warn settings-restart" role="status" data-testid="settings-restart">
            Restart Fleetvisor to apply:{' '}
            {current.restartNeeded
              .map((n) => current.fields.find((f) => f.name === n)?.label ?? n)
              .join(', ')}
            .
          </div>
        ) : null}
        <form
          className="settings-form"
          aria-label="Settings"
          onSubmit={(e) => {
            e.preventDefault();
            void save();
          }}
        >
          {groups.map((g) => (
            <fieldset key={g} className="settings-group">
              <legend>{g}</legend>
              {current.fields
                .filter((f) => f.group === g)
                .map((f) => (
                  <SettingRow
                    key={f.name}
                    field={f}
                    value={form[f.name] ?? ''}
                    running={current.running[f.name]}
                    overridden={current.overridden.includes(f.name)}
                    onChange={(v) => {
                      setForm((old) => ({ ...old, [f.name]: v }));
                      setError(null);
                    }}
                  />
                ))}
            </fieldset>
          ))}
          {error ? (
            <div className="banner err" role="alert" data-testid="settings-error">
              {error}
            </div>
          ) : null}
          <div className="settings-actions">
            <button type="submit" className="btn primary" disabled={busy} data-testid="settings-save">
              Save
            </button>
            {saved && !error ? (
              <span className="muted small-text" data-testid="settings-saved">
                {' '}
                Saved.
              </span>
            ) : null}
          </div>
        </form>
      </section>
    </div>
  );
}

function SettingRow({
  field: f,
  value,
  running,
  overridden,
  onChange,
}: {
  readonly field: Field;
  readonly value: string | boolean;
  readonly running: Value | undefined;
  readonly overridden: boolean;
  readonly onChange: (v: string | boolean) => void;
}) {
  const id = useId();
  const input =
    f.kind === 'boolean' ? (
      <input id={id} type="checkbox" checked={value === true} onChange={(e) => onChange(e.target.checked)} />
    ) : f.kind === 'choice' ? (
      <select
        id={id}
        value={typeof value === 'string' ? value : ''}
        onChange={(e) => onChange(e.target.value)}
      >
        <option value="">default</option>
        {(f.choices ?? []).map((c) => (
          <option key={c} value={c}>
            {c}
          </option>
        ))}
      </select>
    ) : (
      <input
        id={id}
        type="text"
        inputMode={f.kind === 'number' ? 'numeric' : undefined}
        className={f.kind === 'number' ? 'settings-num' : 'settings-text'}
        value={typeof value === 'string' ? value : ''}
        onChange={(e) => onChange(e.target.value)}
      />
    );
  return (
    <div className="settings-row" data-testid="setting" data-name={f.name}>
      <label htmlFor={id}>{f.label}</label>
      <div>
        {input}
        <div className="muted small-text">
          {f.help}
          {' · '}
          <span data-testid="setting-running">
            running: {running === undefined ? 'default' : String(running)}
            {overridden ? ' (set on the command line or --config: wins over this)' : ''}
          </span>
        </div>
      </div>
    </div>
  );
}

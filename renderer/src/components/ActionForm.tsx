/**
 * Choose an action, fill in its arguments, send it. The argument form is generated from the
 * action's JSON Schema (see lib/schema-form.ts); a destructive action asks for confirmation
 * first. Used by the fleet's action bar (many devices) and the device detail (one).
 *
 * @example
 * <ActionForm choices={[{ action, applies: 3, of: 3 }]} target="3 devices" onSend={(a, args) => act(a.name, args)} />
 */
import type { FormEvent, ReactNode } from 'react';
import { useEffect, useId, useMemo, useState } from 'react';
import type { ActionView, Json } from '../../../src/host/contract.js';
import type { FormField, FormValues } from '../lib/schema-form.js';
import { buildArgs, initialValues, planForm } from '../lib/schema-form.js';
import { ConfirmDialog } from './ConfirmDialog.js';

export interface ActionChoice {
  readonly action: ActionView;
  /** How many of the targets accept it (kinds differ in a mixed selection). */
  readonly applies: number;
  readonly of: number;
}

export function ActionForm({
  choices,
  target,
  onSend,
  disabled = false,
}: {
  readonly choices: readonly ActionChoice[];
  /** Who receives it, in words: "3 devices", "pump-0007". */
  readonly target: string;
  readonly onSend: (action: ActionView, args: Record<string, Json>) => Promise<void>;
  readonly disabled?: boolean;
}) {
  const [name, setName] = useState('');
  const choice = choices.find((c) => c.action.name === name);
  // Keyed by content, not identity: live updates rebuild `choices` every few frames, and the
  // operator's half-typed arguments must survive that.
  const schemaKey = choice ? `${choice.action.name}\u0000${JSON.stringify(choice.action.argsSchema)}` : '';
  // biome-ignore lint/correctness/useExhaustiveDependencies: schemaKey stands for the chosen action's schema
  const plan = useMemo(() => (choice ? planForm(choice.action.argsSchema) : null), [schemaKey]);
  const [values, setValues] = useState<FormValues>({});
  const [errors, setErrors] = useState<Readonly<Record<string, string>>>({});
  const [confirming, setConfirming] = useState<Record<string, Json> | null>(null);
  const [sending, setSending] = useState(false);
  const selectId = useId();

  useEffect(() => {
    setValues(plan ? initialValues(plan) : {});
    setErrors({});
  }, [plan]);
  useEffect(() => {
    if (name !== '' && !choices.some((c) => c.action.name === name)) setName('');
  }, [choices, name]);

  const send = async (args: Record<string, Json>) => {
    if (!choice) return;
    setConfirming(null);
    setSending(true);
    try {
      await onSend(choice.action, args);
    } finally {
      setSending(false);
    }
  };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!choice || !plan) return;
    const built = buildArgs(plan, values);
    if (!built.ok) {
      setErrors(built.errors);
      return;
    }
    setErrors({});
    if (choice.action.destructive) setConfirming(built.args);
    else void send(built.args);
  };

  const applies =
    choice && choice.applies < choice.of ? ` (${choice.applies} of ${choice.of} accept it)` : '';

  return (
    <form className="action-form" onSubmit={submit}>
      <div className="field">
        <label htmlFor={selectId}>Action</label>
        <select
          id={selectId}
          data-testid="action-select"
          value={name}
          disabled={disabled || choices.length === 0}
          onChange={(e) => setName(e.target.value)}
        >
          <option value="">{choices.length === 0 ? 'No actions' : 'Choose an action…'}</option>
          {choices.map((c) => (
            <option key={c.action.name} value={c.action.name}>
              {c.action.name}
              {c.action.destructive ? ' ⚠' : ''}
              {c.applies < c.of ? ` (${c.applies}/${c.of})` : ''}
            </option>
          ))}
        </select>
      </div>
      {plan?.mode === 'fields'
        ? plan.fields.map((f) => (
            <FieldInput
              key={f.name}
              field={f}
              value={values[f.name]}
              error={errors[f.name]}
              onChange={(v) => setValues((old) => ({ ...old, [f.name]: v }))}
            />
          ))
        : null}
      {plan?.mode === 'json' ? (
        <div className="field grow">
          <label htmlFor={`${selectId}-json`}>
            Arguments (JSON) <span className="muted">— {plan.reason}</span>
          </label>
          <textarea
            id={`${selectId}-json`}
            rows={3}
            spellCheck={false}
            value={String(values.json ?? '')}
            onChange={(e) => setValues({ json: e.target.value })}
            aria-invalid={errors.json ? true : undefined}
          />
          {errors.json ? <span className="field-error">{errors.json}</span> : null}
        </div>
      ) : null}
      <div className="field submit">
        <button
          type="submit"
          className={`btn ${choice?.action.destructive ? 'danger' : 'primary'}`}
          data-testid="action-submit"
          disabled={disabled || !choice || sending}
          title={choice?.action.description}
        >
          {sending ? 'Sending…' : choice ? `Send ${choice.action.name} to ${target}` : 'Send'}
        </button>
      </div>
      {choice ? (
        <p className="action-description muted">
          {choice.action.description}
          {applies}
        </p>
      ) : null}
      <ConfirmDialog
        open={confirming !== null}
        title={`${choice?.action.name ?? ''} ${target}?`}
        confirmLabel={`Send ${choice?.action.name ?? ''}`}
        onConfirm={() => confirming && void send(confirming)}
        onCancel={() => setConfirming(null)}
      >
        <p>
          <strong>{choice?.action.name}</strong> is destructive: {choice?.action.description}.
        </p>
        <p>
          It goes to <strong>{target}</strong>
          {applies}.
        </p>
        {confirming && Object.keys(confirming).length > 0 ? (
          <pre className="json">{JSON.stringify(confirming, null, 2)}</pre>
        ) : null}
      </ConfirmDialog>
    </form>
  );
}

function FieldInput({
  field,
  value,
  error,
  onChange,
}: {
  readonly field: FormField;
  readonly value: string | boolean | undefined;
  readonly error: string | undefined;
  readonly onChange: (value: string | boolean) => void;
}) {
  const id = useId();
  const hint = [
    field.minimum !== undefined ? `≥ ${field.minimum}` : '',
    field.maximum !== undefined ? `≤ ${field.maximum}` : '',
    field.description ?? '',
  ]
    .filter(Boolean)
    .join(' · ');
  const label = (
    <label htmlFor={id}>
      {field.name}
      {field.required ? '' : <span className="muted"> (optional)</span>}
    </label>
  );
  let input: ReactNode;
  if (field.kind === 'boolean') {
    return (
      <div className="field checkbox">
        <input
          id={id}
          type="checkbox"
          checked={value === true}
          onChange={(e) => onChange(e.target.checked)}
        />
        {label}
      </div>
    );
  }
  if (field.kind === 'enum') {
    input = (
      <select id={id} value={String(value ?? '')} onChange={(e) => onChange(e.target.value)}>
        {field.required ? null : <option value="">—</option>}
        {field.options!.map((o, i) => (
          <option key={String(o)} value={String(i)}>
            {String(o)}
          </option>
        ))}
      </select>
    );
  } else {
    const numeric = field.kind === 'number' || field.kind === 'integer';
    input = (
      <input
        id={id}
        type={numeric ? 'number' : 'text'}
        inputMode={numeric ? 'decimal' : undefined}
        step={field.kind === 'integer' ? 1 : 'any'}
        min={field.minimum}
        max={field.maximum}
        value={String(value ?? '')}
        placeholder={field.description ?? (field.pattern ? `pattern ${field.pattern}` : '')}
        aria-invalid={error ? true : undefined}
        onChange={(e) => onChange(e.target.value)}
      />
    );
  }
  return (
    <div className="field">
      {label}
      {input}
      {error ? (
        <span className="field-error">{error}</span>
      ) : hint ? (
        <span className="field-hint">{hint}</span>
      ) : null}
    </div>
  );
}

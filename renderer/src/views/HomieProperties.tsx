/**
 * A Homie device's properties, one row each, as the device described them (`status.properties`:
 * name, datatype, format, unit, settable) with the value it last published (`status.values`), and
 * a form per settable property typed by its datatype: a number field bounded by an integer or
 * float `$format` (`0:100`), a choice for enums (`eco,comfort,off`) and booleans, text otherwise.
 * A set goes through the kind's `set` action (the one command lifecycle: audited, confirmed by the
 * device echoing the value); its outcome follows it live (sent → succeeded, or timed out and why).
 * Renders nothing for a device with no described properties (every other kind).
 *
 * Numbers are telemetry (metric `node/property`, not in `status.values`): their value is the last
 * point of the last ten minutes, then each live point as it arrives.
 *
 * @example
 * <HomieProperties id="boiler" status={detail.status} />
 */
import { useEffect, useState } from 'react';
import type { Json } from '../../../src/host/contract.js';
import type { ActArgs } from '../api/client.js';
import { messageOf } from '../api/client.js';
import { describeCommand, toneOf, useCommandOutcomes } from '../lib/commands.js';
import { useClient, useStore } from '../store/use-live.js';

export interface HomieProperty {
  readonly key: string;
  readonly node: string;
  readonly property: string;
  readonly name: string;
  readonly datatype: string;
  readonly format: string | null;
  readonly unit: string | null;
  readonly settable: boolean;
}

const isRecord = (v: Json | undefined): v is { readonly [k: string]: Json } =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The properties a Homie device described, in node/property order; [] for any other status. */
export function homieProperties(status: Json): HomieProperty[] {
  if (!isRecord(status) || !isRecord(status.properties)) return [];
  const out: HomieProperty[] = [];
  for (const [key, p] of Object.entries(status.properties)) {
    if (!isRecord(p) || typeof p.node !== 'string' || typeof p.property !== 'string') continue;
    out.push({
      key,
      node: p.node,
      property: p.property,
      name: typeof p.name === 'string' && p.name ? p.name : p.property,
      datatype: typeof p.datatype === 'string' ? p.datatype : 'string',
      format: typeof p.format === 'string' && p.format ? p.format : null,
      unit: typeof p.unit === 'string' && p.unit ? p.unit : null,
      settable: p.settable === true,
    });
  }
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

/** `0:100` → bounds; anything else → none. */
function range(format: string | null): { min?: number; max?: number } {
  const m = format?.match(/^(-?\d+(?:\.\d+)?):(-?\d+(?:\.\d+)?)$/);
  return m ? { min: Number(m[1]), max: Number(m[2]) } : {};
}

/**
 * The text of a form field as the JSON value the set takes, or why it cannot be: numbers for
 * integer and float (inside the format's range), booleans for boolean, an option for enum.
 */
export function setValueOf(p: HomieProperty, text: string): { value: Json } | { error: string } {
  const t = text.trim();
  switch (p.datatype) {
    case 'integer':
    case 'float': {
      const n = Number(t);
      if (t === '' || !Number.isFinite(n)) return { error: `${p.name}: a number` };
      if (p.datatype === 'integer' && !Number.isInteger(n)) return { error: `${p.name}: a whole number` };
      const { min, max } = range(p.format);
      if ((min !== undefined && n < min) || (max !== undefined && n > max))
        return { error: `${p.name}: from ${min} to ${max}` };
      return { value: n };
    }
    case 'boolean':
      if (t !== 'true' && t !== 'false') return { error: `${p.name}: true or false` };
      return { value: t === 'true' };
    case 'enum': {
      const options = (p.format ?? '').split(',');
      if (!options.includes(t)) return { error: `${p.name}: one of ${options.join(', ')}` };
      return { value: t };
    }
    default:
      return { value: text };
  }
}

const isNumeric = (p: HomieProperty) => p.datatype === 'integer' || p.datatype === 'float';

/** The latest value of a metric: the newest stored point of the last 10 min, then live points. */
function useLatestValue(id: string, metric: string, enabled: boolean): number | undefined {
  const client = useClient();
  const store = useStore();
  const [value, setValue] = useState<number | undefined>(undefined);
  useEffect(() => {
    if (!enabled) return;
    let live = false;
    const watch = store.watchSeries(id, metric, (series) => {
      const [, v] = series.columns();
      if (v.length === 0) return;
      live = true;
      setValue(v[v.length - 1]);
    });
    const [, already] = watch.series.columns();
    if (already.length > 0) {
      live = true;
      setValue(already[already.length - 1]);
    }
    void (async () => {
      const toMs = Date.now();
      const r = await client.call('telemetry', { id, metric, fromMs: toMs - 600_000, toMs, buckets: 2000 });
      if (!r.ok || live) return;
      const last = r.value.filter((b) => b.count > 0).at(-1);
      if (last) setValue(last.max === last.min ? last.max : last.avg);
    })().catch(() => {});
    return () => watch.stop();
  }, [client, store, id, metric, enabled]);
  return value;
}

/** The stylesheet's text tones for a command status. */
function textTone(status: string): string {
  const t = toneOf(status);
  return t === 'muted' ? 'idle' : t;
}

function shown(v: Json | undefined): string {
  if (v === undefined || v === null) return '—';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export function HomieProperties({
  id,
  status,
  onChanged,
}: {
  readonly id: string;
  readonly status: Json;
  /** A set succeeded: the detail reloads, so text values (enums, strings) show the device's echo. */
  readonly onChanged?: () => void;
}) {
  const properties = homieProperties(status);
  const values = isRecord(status) && isRecord(status.values) ? status.values : {};
  if (properties.length === 0) return null;
  return (
    <section className="panel" aria-labelledby="homie-props-title" data-testid="homie-properties">
      <h2 id="homie-props-title">Properties</h2>
      <table className="kv homie-props">
        <thead>
          <tr>
            <th>Property</th>
            <th>Value</th>
            <th>Set</th>
          </tr>
        </thead>
        <tbody>
          {properties.map((p) => (
            <tr key={p.key} data-testid="homie-prop" data-prop={p.key}>
              <td>
                {p.name} <span className="muted small-text mono">{p.key}</span>
              </td>
              <PropertyCells id={id} p={p} text={values[p.key]} onChanged={onChanged} />
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function PropertyCells({
  id,
  p,
  text,
  onChanged,
}: {
  readonly id: string;
  readonly p: HomieProperty;
  readonly text: Json | undefined;
  readonly onChanged: (() => void) | undefined;
}) {
  const number = useLatestValue(id, p.key, isNumeric(p));
  const current: Json | undefined = isNumeric(p) ? number : text;
  return (
    <>
      <td className="mono" data-testid="homie-value">
        {shown(current)}
        {p.unit && current !== undefined ? ` ${p.unit}` : ''}
      </td>
      <td>
        {p.settable ? (
          <SetForm id={id} p={p} current={current} onChanged={onChanged} />
        ) : (
          <span className="muted">read only</span>
        )}
      </td>
    </>
  );
}

function SetForm({
  id,
  p,
  current,
  onChanged,
}: {
  readonly id: string;
  readonly p: HomieProperty;
  readonly current: Json | undefined;
  readonly onChanged: (() => void) | undefined;
}) {
  const client = useClient();
  const initial = current === undefined || current === null ? '' : String(current);
  const [text, setText] = useState(
    p.datatype === 'enum' && !initial
      ? ((p.format ?? '').split(',')[0] ?? '')
      : p.datatype === 'boolean' && !initial
        ? 'true'
        : initial,
  );
  const [sent, setSent] = useState<{ commandId: string } | { error: string } | null>(null);
  const outcomes = useCommandOutcomes(
    sent && 'commandId' in sent ? [{ deviceId: id, commandId: sent.commandId }] : [],
  );
  const parsed = setValueOf(p, text);
  const label = `${p.name} (${p.key})`;

  const submit = async () => {
    if ('error' in parsed) return;
    try {
      const r = await client.call('act', {
        ids: [id],
        action: 'set',
        args: { node: p.node, property: p.property, value: parsed.value } as ActArgs,
      });
      if (!r.ok) setSent({ error: `${r.error.code}: ${r.error.message}` });
      else {
        const item = r.value[0];
        if (item?.ok && item.commandId) setSent({ commandId: item.commandId });
        else setSent({ error: item?.error ? `${item.error.code}: ${item.error.message}` : 'not sent' });
      }
    } catch (error) {
      setSent({ error: messageOf(error) });
    }
  };

  const { min, max } = range(p.format);
  const outcome = sent && 'commandId' in sent ? outcomes.get(sent.commandId) : undefined;
  const succeeded = outcome?.status === 'succeeded';
  useEffect(() => {
    if (!succeeded || !onChanged) return;
    // The bridge reports the echoed value in the device's status a moment after the echo.
    onChanged();
    const again = setTimeout(onChanged, 800);
    return () => clearTimeout(again);
  }, [succeeded, onChanged]);
  return (
    <form
      className="homie-set"
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      {p.datatype === 'enum' || p.datatype === 'boolean' ? (
        <select
          aria-label={label}
          value={text}
          data-testid="homie-input"
          onChange={(e) => setText(e.target.value)}
        >
          {(p.datatype === 'boolean' ? ['true', 'false'] : (p.format ?? '').split(',')).map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
      ) : (
        <input
          aria-label={label}
          type={p.datatype === 'integer' || p.datatype === 'float' ? 'number' : 'text'}
          {...(min !== undefined ? { min } : {})}
          {...(max !== undefined ? { max } : {})}
          step={p.datatype === 'float' ? 'any' : undefined}
          value={text}
          data-testid="homie-input"
          onChange={(e) => setText(e.target.value)}
        />
      )}{' '}
      <button type="submit" className="btn" disabled={'error' in parsed} data-testid="homie-set">
        Set
      </button>
      {'error' in parsed && text !== '' ? (
        <span className="small-text tone-text-err" data-testid="homie-invalid">
          {' '}
          {parsed.error}
        </span>
      ) : null}
      {sent && 'error' in sent ? (
        <div className="small-text tone-text-err" data-testid="homie-outcome" data-status="refused">
          {sent.error}
        </div>
      ) : null}
      {sent && 'commandId' in sent ? (
        <div
          className={`small-text tone-text-${textTone(outcome?.status ?? 'sent')}`}
          data-testid="homie-outcome"
          data-status={outcome?.status ?? 'sent'}
        >
          {outcome
            ? `${outcome.status}${describeCommand(outcome).text ? ` · ${describeCommand(outcome).text}` : ''}`
            : 'sent'}
        </div>
      ) : null}
    </form>
  );
}

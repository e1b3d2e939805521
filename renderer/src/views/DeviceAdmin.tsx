/**
 * Devices managed from the app: "Add device" (from the fleet view), "Edit" and "Remove" (from the
 * device detail). The form follows the kind's attribute schema (the `kinds` API; lib/schema-form.ts
 * plans it); a Modbus device gets its own fields — port and line settings, slave id, timing and a
 * register map table — and a "Test read" that reads the slave once through the bridge and shows
 * the values before anything is saved. The host validates again and names the field.
 *
 * @example
 * <AddDeviceButton onAdded={(id) => go({ view: 'device', id })} />
 * <DeviceAdminBar device={detail} onChanged={reload} onRemoved={() => go({ view: 'fleet' })} />
 */
import type { FormEvent } from 'react';
import { useEffect, useId, useMemo, useRef, useState } from 'react';
import type { ArgsOf, DeviceDetail, Json } from '../../../src/host/contract.js';
import { messageOf } from '../api/client.js';
import { ConfirmDialog } from '../components/ConfirmDialog.js';
import { useCall } from '../lib/hooks.js';
import type { FormField, FormPlan, FormValues } from '../lib/schema-form.js';
import { buildArgs, initialValues, planForm } from '../lib/schema-form.js';
import { useClient } from '../store/use-live.js';

const MODBUS_KIND = 'modbus.device';
type Attrs = Record<string, Json>;
/** Attributes as the API takes them (zod's JSON type is the same JSON, mutable). */
type ApiAttrs = ArgsOf<'modbusTestRead'>['attributes'];
const forApi = (a: Attrs) => a as ApiAttrs;

interface RegisterRow {
  name: string;
  table: string;
  address: string;
  type: string;
  scale: string;
  unit: string;
  writable: boolean;
}

interface ModbusValues {
  port: string;
  slaveId: string;
  baudRate: string;
  parity: string;
  dataBits: string;
  stopBits: string;
  pollMs: string;
  timeoutMs: string;
  retries: string;
  registers: RegisterRow[];
}

const NEW_REGISTER: RegisterRow = {
  name: '',
  table: 'holding',
  address: '0',
  type: '',
  scale: '1',
  unit: '',
  writable: false,
};

function modbusValuesOf(a: Attrs | undefined): ModbusValues {
  const s = (v: Json | undefined, d: string) => (v === undefined || v === null ? d : String(v));
  const regs = Array.isArray(a?.registers) ? (a.registers as Attrs[]) : [];
  return {
    port: s(a?.port, ''),
    slaveId: s(a?.slaveId, '1'),
    baudRate: s(a?.baudRate, '9600'),
    parity: s(a?.parity, 'none'),
    dataBits: s(a?.dataBits, '8'),
    stopBits: s(a?.stopBits, '1'),
    pollMs: s(a?.pollMs, '1000'),
    timeoutMs: s(a?.timeoutMs, '500'),
    retries: s(a?.retries, '1'),
    registers:
      regs.length > 0
        ? regs.map((r) => ({
            name: s(r.name, ''),
            table: s(r.table, 'holding'),
            address: s(r.address, '0'),
            type: s(r.type, ''),
            scale: s(r.scale, '1'),
            unit: s(r.unit, ''),
            writable: r.writable === true,
          }))
        : [{ ...NEW_REGISTER }],
  };
}

/** The attributes object; the host checks ranges and names a bad field. */
function modbusAttributes(v: ModbusValues): Attrs {
  const n = (t: string) => (t.trim() === '' ? Number.NaN : Number(t));
  return {
    port: v.port.trim(),
    slaveId: n(v.slaveId),
    baudRate: n(v.baudRate),
    parity: v.parity,
    dataBits: n(v.dataBits),
    stopBits: n(v.stopBits),
    pollMs: n(v.pollMs),
    timeoutMs: n(v.timeoutMs),
    retries: n(v.retries),
    registers: v.registers
      .filter((r) => r.name.trim() !== '')
      .map((r) => ({
        name: r.name.trim(),
        table: r.table,
        address: n(r.address),
        ...(r.type ? { type: r.type } : {}),
        ...(r.scale.trim() !== '' && r.scale.trim() !== '1' ? { scale: n(r.scale) } : {}),
        ...(r.unit.trim() ? { unit: r.unit.trim() } : {}),
        writable: r.writable,
      })),
  };
}

/** The plan's values from stored attributes (edit), over the schema's defaults. */
function valuesFrom(plan: FormPlan, a: Attrs | undefined): FormValues {
  const base = { ...initialValues(plan) };
  if (!a) return base;
  if (plan.mode === 'json') return { json: JSON.stringify(a, null, 2) };
  for (const f of plan.fields) {
    const v = a[f.name];
    if (v === undefined) continue;
    if (f.kind === 'boolean') base[f.name] = v === true;
    else if (f.kind === 'enum') base[f.name] = String(f.options!.indexOf(v as never));
    else base[f.name] = v === null ? '' : String(v);
  }
  return base;
}

const splitTags = (t: string) =>
  t
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');

/** The add/edit form, in a modal dialog. */
function DeviceForm({
  device,
  onDone,
  onCancel,
}: {
  /** Edit this device; absent: add one. */
  readonly device?: DeviceDetail;
  readonly onDone: (id: string) => void;
  readonly onCancel: () => void;
}) {
  const client = useClient();
  const kinds = useCall((c) => c.call('kinds', {}), []);
  const ref = useRef<HTMLDialogElement>(null);
  const uid = useId();
  const editing = device !== undefined;
  const [kind, setKind] = useState(device?.kind ?? MODBUS_KIND);
  const [id, setId] = useState(device?.id ?? '');
  const [name, setName] = useState(device?.name ?? '');
  const [tags, setTags] = useState(device?.tags.join(', ') ?? '');
  const stored = device?.attributes as Attrs | undefined;
  const [modbus, setModbus] = useState<ModbusValues>(() => modbusValuesOf(stored));
  const schema = kinds.value?.find((k) => k.kind === kind)?.attributesSchema;
  const schemaKey = JSON.stringify(schema ?? null);
  // biome-ignore lint/correctness/useExhaustiveDependencies: schemaKey stands for the kind's schema
  const plan = useMemo(() => (schema === undefined ? null : planForm(schema)), [schemaKey]);
  const [values, setValues] = useState<FormValues>({});
  const [errors, setErrors] = useState<Readonly<Record<string, string>>>({});
  const [problem, setProblem] = useState<string | null>(null);
  const [read, setRead] = useState<{ ok: boolean; text: string; values?: Record<string, number> } | null>(
    null,
  );
  const [busy, setBusy] = useState<'' | 'test' | 'save'>('');

  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => dialog?.close();
  }, []);
  // biome-ignore lint/correctness/useExhaustiveDependencies: reset when the kind's plan changes only
  useEffect(() => {
    if (plan) setValues(valuesFrom(plan, kind === device?.kind ? stored : undefined));
  }, [plan]);

  const attributes = (): Attrs | null => {
    if (kind === MODBUS_KIND) return modbusAttributes(modbus);
    if (!plan) return {};
    const built = buildArgs(plan, values);
    if (!built.ok) {
      setErrors(built.errors);
      return null;
    }
    setErrors({});
    return built.args;
  };

  const testRead = async () => {
    setBusy('test');
    setRead(null);
    try {
      const r = await client.call('modbusTestRead', { attributes: forApi(modbusAttributes(modbus)) });
      setRead(
        r.ok
          ? { ok: true, text: 'Read', values: r.value.values }
          : { ok: false, text: `${r.error.code}: ${r.error.message}` },
      );
    } catch (error) {
      setRead({ ok: false, text: messageOf(error) });
    } finally {
      setBusy('');
    }
  };

  const save = async (e: FormEvent) => {
    e.preventDefault();
    const a = attributes();
    if (!a) return;
    setBusy('save');
    setProblem(null);
    try {
      const r = editing
        ? await client.call('deviceEdit', {
            id: device.id,
            name: name.trim() || device.id,
            tags: splitTags(tags),
            attributes: forApi(a),
          })
        : await client.call('deviceAdd', {
            id: id.trim(),
            kind,
            ...(name.trim() ? { name: name.trim() } : {}),
            tags: splitTags(tags),
            attributes: forApi(a),
          });
      if (r.ok) onDone(editing ? device.id : id.trim());
      else setProblem(`${r.error.code}: ${r.error.message}`);
    } catch (error) {
      setProblem(messageOf(error));
    } finally {
      setBusy('');
    }
  };

  const setM = (patch: Partial<ModbusValues>) => setModbus((m) => ({ ...m, ...patch }));
  const setReg = (i: number, patch: Partial<RegisterRow>) =>
    setModbus((m) => ({ ...m, registers: m.registers.map((r, j) => (j === i ? { ...r, ...patch } : r)) }));
  const text = (label: string, key: keyof Omit<ModbusValues, 'registers'>, numeric = true) => (
    <div className="field">
      <label htmlFor={`${uid}-${key}`}>{label}</label>
      <input
        id={`${uid}-${key}`}
        data-testid={`modbus-${key}`}
        type={numeric ? 'number' : 'text'}
        value={modbus[key]}
        onChange={(e) => setM({ [key]: e.target.value })}
      />
    </div>
  );
  const choice = (label: string, key: 'parity' | 'dataBits' | 'stopBits', options: string[]) => (
    <div className="field">
      <label htmlFor={`${uid}-${key}`}>{label}</label>
      <select id={`${uid}-${key}`} value={modbus[key]} onChange={(e) => setM({ [key]: e.target.value })}>
        {options.map((o) => (
          <option key={o}>{o}</option>
        ))}
      </select>
    </div>
  );

  return (
    <dialog
      ref={ref}
      className="dialog device-form"
      aria-labelledby={`${uid}-title`}
      data-testid="device-form"
      onCancel={(e) => {
        e.preventDefault();
        onCancel();
      }}
    >
      <form onSubmit={save}>
        <h2 id={`${uid}-title`}>{editing ? `Edit ${device.id}` : 'Add device'}</h2>
        <div className="device-form-grid">
          <div className="field">
            <label htmlFor={`${uid}-kind`}>Kind</label>
            <select
              id={`${uid}-kind`}
              data-testid="device-kind"
              value={kind}
              disabled={editing}
              onChange={(e) => {
                setKind(e.target.value);
                setRead(null);
              }}
            >
              {(kinds.value ?? [{ kind, title: kind }]).map((k) => (
                <option key={k.kind} value={k.kind}>
                  {k.title} ({k.kind})
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor={`${uid}-id`}>Id</label>
            <input
              id={`${uid}-id`}
              data-testid="device-id"
              value={id}
              disabled={editing}
              required
              onChange={(e) => setId(e.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor={`${uid}-name`}>
              Name <span className="muted">(optional)</span>
            </label>
            <input
              id={`${uid}-name`}
              data-testid="device-name"
              value={name}
              onChange={(e) => setName(e.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor={`${uid}-tags`}>
              Tags <span className="muted">(comma-separated)</span>
            </label>
            <input
              id={`${uid}-tags`}
              data-testid="device-tags"
              value={tags}
              onChange={(e) => setTags(e.target.value)}
            />
          </div>
        </div>

        {kind === MODBUS_KIND ? (
          <fieldset className="device-form-section">
            <legend>Serial port and slave</legend>
            <div className="device-form-grid">
              {text('Port', 'port', false)}
              {text('Slave id', 'slaveId')}
              {text('Baud rate', 'baudRate')}
              {choice('Parity', 'parity', ['none', 'even', 'odd'])}
              {choice('Data bits', 'dataBits', ['8', '7'])}
              {choice('Stop bits', 'stopBits', ['1', '2'])}
              {text('Poll every (ms)', 'pollMs')}
              {text('Reply timeout (ms)', 'timeoutMs')}
              {text('Retries', 'retries')}
            </div>
            <table className="register-map" data-testid="register-map">
              <thead>
                <tr>
                  <th>Register</th>
                  <th>Table</th>
                  <th>Address</th>
                  <th>Type</th>
                  <th>Scale</th>
                  <th>Unit</th>
                  <th>Writable</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {modbus.registers.map((r, i) => (
                  // biome-ignore lint/suspicious/noArrayIndexKey: rows are edited in place, by position
                  <tr key={i}>
                    <td>
                      <input
                        aria-label={`register ${i + 1} name`}
                        value={r.name}
                        onChange={(e) => setReg(i, { name: e.target.value })}
                      />
                    </td>
                    <td>
                      <select
                        aria-label={`register ${i + 1} table`}
                        value={r.table}
                        onChange={(e) => setReg(i, { table: e.target.value })}
                      >
                        {['holding', 'input', 'coil', 'discrete'].map((t) => (
                          <option key={t}>{t}</option>
                        ))}
                      </select>
                    </td>
                    <td>
                      <input
                        aria-label={`register ${i + 1} address`}
                        type="number"
                        className="narrow"
                        value={r.address}
                        onChange={(e) => setReg(i, { address: e.target.value })}
                      />
                    </td>
                    <td>
                      <select
                        aria-label={`register ${i + 1} type`}
                        value={r.type}
                        onChange={(e) => setReg(i, { type: e.target.value })}
                      >
                        <option value="">default</option>
                        {['bool', 'uint16', 'int16', 'uint32', 'int32', 'float32'].map((t) => (
                          <option key={t}>{t}</option>
                        ))}
                      </select>
                    </td>
                    <td>
                      <input
                        aria-label={`register ${i + 1} scale`}
                        className="narrow"
                        value={r.scale}
                        onChange={(e) => setReg(i, { scale: e.target.value })}
                      />
                    </td>
                    <td>
                      <input
                        aria-label={`register ${i + 1} unit`}
                        className="narrow"
                        value={r.unit}
                        onChange={(e) => setReg(i, { unit: e.target.value })}
                      />
                    </td>
                    <td>
                      <input
                        aria-label={`register ${i + 1} writable`}
                        type="checkbox"
                        checked={r.writable}
                        onChange={(e) => setReg(i, { writable: e.target.checked })}
                      />
                    </td>
                    <td>
                      <button
                        type="button"
                        className="btn small ghost"
                        aria-label={`remove register ${i + 1}`}
                        disabled={modbus.registers.length === 1}
                        onClick={() => setM({ registers: modbus.registers.filter((_, j) => j !== i) })}
                      >
                        ✕
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <div className="device-form-row">
              <button
                type="button"
                className="btn small"
                data-testid="add-register"
                onClick={() => setM({ registers: [...modbus.registers, { ...NEW_REGISTER }] })}
              >
                + Register
              </button>
              <button
                type="button"
                className="btn"
                data-testid="test-read"
                disabled={busy !== ''}
                onClick={() => void testRead()}
              >
                {busy === 'test' ? 'Reading…' : 'Test read'}
              </button>
            </div>
            {read ? (
              <div
                className={`banner ${read.ok ? 'ok' : 'err'}`}
                role="status"
                data-testid="test-read-result"
              >
                {read.ok ? (
                  <span>
                    Read:{' '}
                    {Object.entries(read.values ?? {})
                      .map(([k, v]) => `${k} = ${v}`)
                      .join(', ')}
                  </span>
                ) : (
                  <span>Test read failed — {read.text}</span>
                )}
              </div>
            ) : null}
          </fieldset>
        ) : plan ? (
          <fieldset className="device-form-section">
            <legend>Attributes</legend>
            {plan.mode === 'json' ? (
              <textarea
                aria-label="Attributes (JSON)"
                rows={6}
                spellCheck={false}
                value={String(values.json ?? '')}
                onChange={(e) => setValues({ json: e.target.value })}
              />
            ) : (
              <div className="device-form-grid">
                {plan.fields.map((f) => (
                  <PlainField
                    key={f.name}
                    field={f}
                    value={values[f.name]}
                    error={errors[f.name]}
                    onChange={(v) => setValues((old) => ({ ...old, [f.name]: v }))}
                  />
                ))}
              </div>
            )}
            {errors.json ? <span className="field-error">{errors.json}</span> : null}
          </fieldset>
        ) : null}

        {problem ? (
          <div className="banner err" role="alert" data-testid="device-form-error">
            {problem}
          </div>
        ) : null}
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onCancel}>
            Cancel
          </button>
          <button type="submit" className="btn primary" data-testid="device-save" disabled={busy !== ''}>
            {busy === 'save' ? 'Saving…' : editing ? 'Save' : 'Add'}
          </button>
        </div>
      </form>
    </dialog>
  );
}

function PlainField({
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
  return (
    <div className={`field${field.kind === 'boolean' ? ' checkbox' : ''}`}>
      <label htmlFor={id}>
        {field.name}
        {field.required ? '' : <span className="muted"> (optional)</span>}
      </label>
      {field.kind === 'boolean' ? (
        <input
          id={id}
          type="checkbox"
          checked={value === true}
          onChange={(e) => onChange(e.target.checked)}
        />
      ) : field.kind === 'enum' ? (
        <select id={id} value={String(value ?? '')} onChange={(e) => onChange(e.target.value)}>
          {field.options!.map((o, i) => (
            <option key={String(o)} value={String(i)}>
              {String(o)}
            </option>
          ))}
        </select>
      ) : (
        <input
          id={id}
          type={field.kind === 'string' ? 'text' : 'number'}
          value={String(value ?? '')}
          aria-invalid={error ? true : undefined}
          onChange={(e) => onChange(e.target.value)}
        />
      )}
      {error ? <span className="field-error">{error}</span> : null}
    </div>
  );
}

/** The fleet view's "Add device" button and its form. */
export function AddDeviceButton({ onAdded }: { readonly onAdded?: (id: string) => void }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button type="button" className="btn primary" data-testid="add-device" onClick={() => setOpen(true)}>
        Add device
      </button>
      {open ? (
        <DeviceForm
          onCancel={() => setOpen(false)}
          onDone={(id) => {
            setOpen(false);
            onAdded?.(id);
          }}
        />
      ) : null}
    </>
  );
}

/** Edit and Remove, for the device detail. */
export function DeviceAdminBar({
  device,
  onChanged,
  onRemoved,
}: {
  readonly device: DeviceDetail;
  readonly onChanged: () => void;
  readonly onRemoved: () => void;
}) {
  const client = useClient();
  const [editing, setEditing] = useState(false);
  const [removing, setRemoving] = useState(false);
  const [purge, setPurge] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);

  const remove = async () => {
    setRemoving(false);
    try {
      const r = await client.call('deviceRemove', { id: device.id, purge });
      if (r.ok) onRemoved();
      else setProblem(`${r.error.code}: ${r.error.message}`);
    } catch (error) {
      setProblem(messageOf(error));
    }
  };

  return (
    <div className="device-admin">
      <button type="button" className="btn" data-testid="device-edit" onClick={() => setEditing(true)}>
        Edit
      </button>
      <button
        type="button"
        className="btn danger"
        data-testid="device-remove"
        onClick={() => {
          setPurge(false);
          setRemoving(true);
        }}
      >
        Remove
      </button>
      {problem ? (
        <span className="tone-text-warn small-text" role="alert">
          {problem}
        </span>
      ) : null}
      {editing ? (
        <DeviceForm
          device={device}
          onCancel={() => setEditing(false)}
          onDone={() => {
            setEditing(false);
            onChanged();
          }}
        />
      ) : null}
      <ConfirmDialog
        open={removing}
        title={`Remove ${device.id} from the fleet?`}
        confirmLabel={purge ? 'Remove and delete its history' : 'Remove'}
        onConfirm={() => void remove()}
        onCancel={() => setRemoving(false)}
      >
        <p>
          Its processes stop and it leaves the fleet
          {device.kind === MODBUS_KIND ? ' (the slave is no longer polled)' : ''}.
        </p>
        <p data-testid="remove-kept">
          {purge
            ? 'Its telemetry, events and commands are deleted too.'
            : 'Kept: its telemetry, its events and its command history (the removal is recorded too).'}
        </p>
        <label className="checkbox-line">
          <input
            type="checkbox"
            data-testid="remove-purge"
            checked={purge}
            onChange={(e) => setPurge(e.target.checked)}
          />{' '}
          Also delete its history
        </label>
      </ConfirmDialog>
    </div>
  );
}

/**
 * The "Roll out…" form under an image's row in the Firmware view (docs/firmware.md §8): tag and
 * running-version filters with the live count of matching devices (computed here from `devices`
 * as the host does: the image's kinds, not on its version yet); waves as "1, 5%, 25%, 100%" — an
 * integer is a device count, N% a share — with jobs at a time per wave, the failure share, pause
 * or abort on failure, the soak between waves, each device's trial, the maintenance window and the
 * trial's telemetry checks (RolloutTrialChecks.tsx); confirmed, then `rolloutCreate`; a refusal
 * shows in place. The fields are read and checked in lib/rollouts.ts.
 *
 * @example
 * <RolloutForm image={image} colSpan={9} onStarted={refresh} onClose={close} />
 */
import { useId, useState } from 'react';
import type { ArgsOf, FirmwareImageView, RolloutView } from '../../../src/host/contract.js';
import { ConfirmDialog } from '../components/ConfirmDialog.js';
import { usePolling } from '../lib/hooks.js';
import {
  type Candidate,
  checkRolloutForm,
  initialRolloutFormText,
  matchingDevices,
  type RolloutFormCheck,
  type RolloutFormText,
} from '../lib/rollouts.js';
import { useClient } from '../store/use-live.js';
import { splitTrialChecks, TrialChecksField } from './RolloutTrialChecks.js';

/** How often the form lists the fleet's devices again (the count stays live). */
const DEVICES_POLL_MS = 3_000;

/** The fleet's devices of the given kinds (one `devices` call per kind), listed again every few seconds. */
function useFleetOfKinds(kinds: readonly string[]): Candidate[] | null {
  const client = useClient();
  const [found, setFound] = useState<Candidate[] | null>(null);
  const key = kinds.join('\n');
  usePolling(
    async (alive) => {
      const all: Candidate[] = [];
      for (const kind of key.split('\n')) {
        const r = await client.call('devices', { kind, limit: 10_000 });
        if (r.ok)
          for (const d of r.value.items)
            all.push({ id: d.id, online: d.link.up, firmware: d.firmware, tags: d.tags });
      }
      if (alive()) setFound(all);
      return DEVICES_POLL_MS;
    },
    [client, key],
  );
  return found;
}

/** One field changed (the refusal shown, if any, goes). */
type Edit = <K extends keyof RolloutFormText>(field: K, value: RolloutFormText[K]) => void;
/** Each field's element id. */
type FieldIds = Readonly<Record<keyof RolloutFormText, string>>;

function useFieldIds(): FieldIds {
  return {
    tag: useId(),
    running: useId(),
    waves: useId(),
    concurrent: useId(),
    fail: useId(),
    onFailure: useId(),
    soak: useId(),
    trial: useId(),
    window: useId(),
    checks: useId(),
  };
}

/** `rolloutCreate`'s arguments from the form; null when a field does not read. */
function rolloutCreateArgs(
  sha256: string,
  text: RolloutFormText,
  check: RolloutFormCheck,
): ArgsOf<'rolloutCreate'> | null {
  const { parsed, failPercent, soak, trial } = check;
  if ('error' in parsed || failPercent === null || soak === null || trial === null) return null;
  const t = text.tag.trim();
  const rv = text.running.trim();
  return {
    sha256,
    ...(t ? { tag: t } : {}),
    ...(rv ? { runningVersion: rv } : {}),
    waves: parsed.waves,
    maxFailureShare: failPercent / 100,
    onFailure: text.onFailure,
    soakMs: soak * 1000,
    trialMs: trial * 1000,
    // The host checks each and refuses a bad one, named (shown in place).
    ...(splitTrialChecks(text.checks).length > 0 ? { trialChecks: splitTrialChecks(text.checks) } : {}),
    ...(text.window.trim() ? { window: text.window.trim() } : {}),
  };
}

/** The form row under an image's row: filters, waves and policy, Start (confirmed), the refusal in place. */
export function RolloutForm({
  image,
  colSpan,
  onStarted,
  onClose,
}: {
  readonly image: FirmwareImageView;
  readonly colSpan: number;
  readonly onStarted: (rollout: RolloutView) => void;
  readonly onClose: () => void;
}) {
  const client = useClient();
  const fleet = useFleetOfKinds(image.kinds);
  // The image's own soak and trial (its signed manifest's) until the operator types others.
  const [text, setText] = useState<RolloutFormText>(() => initialRolloutFormText(image));
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ code: string; message: string } | null>(null);
  const ids = useFieldIds();

  const matching = fleet ? matchingDevices(fleet, text.tag.trim(), text.running.trim(), image.version) : null;
  const online = matching?.filter((d) => d.online).length ?? 0;
  const check = checkRolloutForm(text);
  const { parsed, concurrent, failPercent, problem } = check;
  const edit: Edit = (field, value) => {
    setText((before) => ({ ...before, [field]: value }));
    setError(null);
  };

  const start = async () => {
    setAsking(false);
    const args = rolloutCreateArgs(image.sha256, text, check);
    if (args === null) return;
    setBusy(true);
    setError(null);
    try {
      const r = await client.call('rolloutCreate', args);
      if (r.ok) onStarted(r.value);
      else setError(r.error);
    } finally {
      setBusy(false);
    }
  };

  return (
    <tr className="fw-update-row ro-form-row">
      <td colSpan={colSpan}>
        <form
          className="ro-form"
          aria-label={`Roll ${image.version} out`}
          data-testid="ro-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (!problem) setAsking(true);
          }}
        >
          <div className="ro-form-head">
            <strong>Roll {image.version} out</strong>{' '}
            <span className="muted small-text">to the devices of {image.kinds.join(', ')} not on it yet</span>
          </div>
          <FilterFields ids={ids} text={text} edit={edit} matching={matching} online={online} />
          <div className="ro-fields">
            <WaveFields ids={ids} text={text} edit={edit} />
            <TimingFields ids={ids} text={text} edit={edit} image={image} />
          </div>
          <WindowFields ids={ids} text={text} edit={edit} />
          <RolloutHint id={`${ids.waves}-hint`} image={image} />
          <FormActions busy={busy} problem={problem} error={error} onClose={onClose} />
        </form>
        <ConfirmDialog
          open={asking}
          title={`Roll ${image.version} out to ${matching?.length ?? 0} device(s)?`}
          confirmLabel="Start rollout"
          danger={false}
          onConfirm={() => void start()}
          onCancel={() => setAsking(false)}
        >
          {'waves' in parsed ? `${parsed.waves.length} wave(s), ${concurrent} at a time` : ''}; on more than{' '}
          {failPercent}% failures the rollout {text.onFailure === 'abort' ? 'aborts' : 'pauses'}. The device
          list is fixed now: devices that join later are not included.
        </ConfirmDialog>
      </td>
    </tr>
  );
}

interface FieldsProps {
  readonly ids: FieldIds;
  readonly text: RolloutFormText;
  readonly edit: Edit;
}

/** One labelled number field of the form (the waves' share and size, the soak, the trial). */
function NumberField({
  field,
  label,
  min,
  max,
  title,
  testId,
  ids,
  text,
  edit,
}: FieldsProps & {
  readonly field: 'concurrent' | 'fail' | 'soak' | 'trial';
  readonly label: string;
  readonly min: number;
  readonly max: number;
  readonly title?: string;
  readonly testId: string;
}) {
  return (
    <>
      <label htmlFor={ids[field]}>{label}</label>
      <input
        id={ids[field]}
        type="number"
        className="ro-num"
        min={min}
        max={max}
        value={text[field]}
        title={title}
        data-testid={testId}
        onChange={(e) => edit(field, e.target.value)}
      />
    </>
  );
}

/** One labelled text field of the form (filters, waves): no autocomplete, no spell check. */
function TextField({
  field,
  label,
  placeholder,
  className,
  describedBy,
  testId,
  ids,
  text,
  edit,
}: FieldsProps & {
  readonly field: 'tag' | 'running' | 'waves';
  readonly label: string;
  readonly placeholder?: string;
  readonly className?: string;
  readonly describedBy?: string;
  readonly testId: string;
}) {
  return (
    <>
      <label htmlFor={ids[field]}>{label}</label>
      <input
        id={ids[field]}
        type="text"
        className={className}
        value={text[field]}
        placeholder={placeholder}
        autoComplete="off"
        spellCheck={false}
        aria-describedby={describedBy}
        data-testid={testId}
        onChange={(e) => edit(field, e.target.value)}
      />
    </>
  );
}

/** Tag and running version, with the live count of the devices they match. */
function FilterFields({
  ids,
  text,
  edit,
  matching,
  online,
}: FieldsProps & { readonly matching: readonly Candidate[] | null; readonly online: number }) {
  return (
    <div className="ro-fields">
      <TextField
        field="tag"
        label="Tag"
        placeholder="any"
        testId="ro-tag"
        ids={ids}
        text={text}
        edit={edit}
      />
      <TextField
        field="running"
        label="Running version"
        placeholder="any"
        testId="ro-running"
        ids={ids}
        text={text}
        edit={edit}
      />
      <output className="ro-match" aria-live="polite">
        {matching === null ? (
          <span className="muted">listing devices…</span>
        ) : (
          <>
            <strong data-testid="ro-match-count">{matching.length}</strong>{' '}
            {matching.length === 1 ? 'device matches' : 'devices match'}
            <span className="muted"> ({online} online)</span>
          </>
        )}
      </output>
    </div>
  );
}

/** Waves, jobs at a time, the failure share and what happens past it. */
function WaveFields({ ids, text, edit }: FieldsProps) {
  return (
    <>
      <TextField
        field="waves"
        label="Waves"
        className="ro-waves"
        describedBy={`${ids.waves}-hint`}
        testId="ro-waves"
        ids={ids}
        text={text}
        edit={edit}
      />
      <NumberField
        field="concurrent"
        label="At a time"
        min={1}
        max={1000}
        testId="ro-concurrent"
        ids={ids}
        text={text}
        edit={edit}
      />
      <NumberField
        field="fail"
        label="Failure share %"
        min={0}
        max={100}
        testId="ro-fail-share"
        ids={ids}
        text={text}
        edit={edit}
      />
      <label htmlFor={ids.onFailure}>On failure</label>
      <select
        id={ids.onFailure}
        value={text.onFailure}
        data-testid="ro-on-failure"
        onChange={(e) => edit('onFailure', e.target.value === 'abort' ? 'abort' : 'pause')}
      >
        <option value="pause">pause</option>
        <option value="abort">abort</option>
      </select>
    </>
  );
}

/** The soak between waves and each device's trial, titled with the image's own if it declares them. */
function TimingFields({ ids, text, edit, image }: FieldsProps & { readonly image: FirmwareImageView }) {
  return (
    <>
      <NumberField
        field="soak"
        label="Soak s"
        min={0}
        max={86_400}
        title={
          image.soakSeconds !== null
            ? `this image declares a soak of ${image.soakSeconds} s between waves`
            : 'seconds between the end of a wave and the start of the next'
        }
        testId="ro-soak"
        ids={ids}
        text={text}
        edit={edit}
      />
      <NumberField
        field="trial"
        label="Trial s"
        min={1}
        max={86_400}
        title={
          image.trialSeconds !== null
            ? `this image declares ${image.trialSeconds} s on trial before a device confirms it`
            : 'seconds each device runs the new image unconfirmed (healthy) before it is confirmed'
        }
        testId="ro-trial"
        ids={ids}
        text={text}
        edit={edit}
      />
    </>
  );
}

/** The maintenance window and the trial's telemetry checks. */
function WindowFields({ ids, text, edit }: FieldsProps) {
  return (
    <div className="ro-fields">
      <label htmlFor={ids.window}>Window</label>
      <input
        id={ids.window}
        type="text"
        className="ro-window"
        placeholder="any time (e.g. mon-fri 02:00-04:00 utc)"
        value={text.window}
        data-testid="ro-window"
        onChange={(e) => edit('window', e.target.value)}
      />
      <TrialChecksField id={ids.checks} value={text.checks} onChange={(checks) => edit('checks', checks)} />
    </div>
  );
}

/** What the waves, the soak, the trial, the failure share and the window mean. */
function RolloutHint({ id, image }: { readonly id: string; readonly image: FirmwareImageView }) {
  return (
    <p id={id} className="muted small-text ro-hint">
      Waves are cumulative: an integer is a number of devices, N% a share of the list. The next wave starts
      when the last one succeeded, after the soak
      {image.soakSeconds !== null ? ` (this image's own: ${image.soakSeconds} s)` : ''}. Each device runs the
      new image on trial (unconfirmed, watched for health) before it is confirmed
      {image.trialSeconds !== null ? ` (this image's own trial: ${image.trialSeconds} s)` : ''}, its telemetry
      judged by the trial checks if any; past the failure share the rollout pauses or aborts. With a
      maintenance window, jobs start only inside it (host time unless utc); running ones finish.
    </p>
  );
}

/** Start (disabled while a field does not read), Close, the field at fault, the host's refusal. */
function FormActions({
  busy,
  problem,
  error,
  onClose,
}: {
  readonly busy: boolean;
  readonly problem: string | null;
  readonly error: { code: string; message: string } | null;
  readonly onClose: () => void;
}) {
  return (
    <div className="ro-actions">
      <button
        type="submit"
        className="btn primary"
        disabled={busy || problem !== null}
        data-testid="ro-start"
      >
        {busy ? 'Starting…' : 'Start rollout…'}
      </button>
      <button type="button" className="btn" onClick={onClose}>
        Close
      </button>
      {problem ? (
        <span className="fw-update-error" role="alert" data-testid="ro-invalid">
          {problem}
        </span>
      ) : null}
      {error ? (
        <span className="fw-update-error" role="alert" data-testid="ro-error">
          <strong className="mono">{error.code}</strong>: {error.message}
        </span>
      ) : null}
    </div>
  );
}

/**
 * Firmware updates in the Firmware view: the "Update device…" form under an image's row (a device
 * id picked from the fleet's devices of the image's kinds, confirmed, then `firmwareUpdate`; a
 * refusal shows the host's message in place), and the "Updates" table of every device's current or
 * last job (`firmwareJobs`, polled by the view): step, transfer progress and rate, the countdown of
 * a reboot or trial, the error (on trial without one: the trial's telemetry checks), and Cancel for
 * a job whose image is not applied yet.
 *
 * @example
 * <UpdateForm image={image} colSpan={9} onStarted={refreshJobs} onClose={close} />
 * <UpdateJobs jobs={jobs} error={null} onChanged={refreshJobs} />
 */
import { useEffect, useId, useState } from 'react';
import type { FirmwareImageView, FirmwareJobView } from '../../../src/host/contract.js';
import { ConfirmDialog } from '../components/ConfirmDialog.js';
import { formatBytes } from '../lib/format.js';
import { useNow } from '../lib/hooks.js';
import { useClient } from '../store/use-live.js';

/** Steps after which nothing runs (src/firmware/update-job.ts). */
export const FINAL_STEPS: ReadonlySet<string> = new Set(['succeeded', 'rolledBack', 'failed', 'cancelled']);
/** Steps before the image is applied: the only ones `firmwareCancel` takes. */
const CANCELLABLE: ReadonlySet<string> = new Set(['queued', 'transferring', 'verifying']);
/** Steps with a deadline the device must meet. */
const TIMED: ReadonlySet<string> = new Set(['rebooting', 'onTrial']);

const STEP_LABEL: Readonly<Record<string, string>> = {
  onTrial: 'on trial',
  rollingBack: 'rolling back',
  rolledBack: 'rolled back',
};

function stepTone(step: string): string {
  if (step === 'succeeded') return 'tone-ok';
  if (step === 'failed' || step === 'rolledBack') return 'tone-err';
  if (step === 'cancelled') return '';
  if (step === 'rollingBack') return 'tone-warn';
  return 'tone-info';
}

interface Candidate {
  readonly id: string;
  readonly online: boolean;
  readonly firmware: string | null;
}

/** The fleet's devices of the given kinds (one `devices` call per kind). */
function useCandidates(kinds: readonly string[]): Candidate[] | null {
  const client = useClient();
  const [found, setFound] = useState<Candidate[] | null>(null);
  const key = kinds.join('\n');
  useEffect(() => {
    let live = true;
    void (async () => {
      const all: Candidate[] = [];
      for (const kind of key.split('\n')) {
        const r = await client.call('devices', { kind, limit: 10_000 });
        if (r.ok)
          for (const d of r.value.items) all.push({ id: d.id, online: d.link.up, firmware: d.firmware });
      }
      all.sort((a, b) => a.id.localeCompare(b.id));
      if (live) setFound(all);
    })();
    return () => {
      live = false;
    };
  }, [client, key]);
  return found;
}

/** The form row under an image's row: device id, Start (confirmed), the refusal in place. */
export function UpdateForm({
  image,
  colSpan,
  onStarted,
  onClose,
}: {
  readonly image: FirmwareImageView;
  readonly colSpan: number;
  readonly onStarted: (job: FirmwareJobView) => void;
  readonly onClose: () => void;
}) {
  const client = useClient();
  const candidates = useCandidates(image.kinds);
  const [deviceId, setDeviceId] = useState('');
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ code: string; message: string } | null>(null);
  const inputId = useId();
  const listId = useId();
  const id = deviceId.trim();
  const known = candidates?.find((c) => c.id === id);

  const start = async () => {
    setAsking(false);
    setBusy(true);
    setError(null);
    try {
      const r = await client.call('firmwareUpdate', { deviceId: id, sha256: image.sha256 });
      if (r.ok) onStarted(r.value);
      else setError(r.error);
    } finally {
      setBusy(false);
    }
  };

  return (
    <tr className="fw-update-row">
      <td colSpan={colSpan}>
        <form
          className="toolbar"
          aria-label={`Update a device to ${image.version}`}
          onSubmit={(e) => {
            e.preventDefault();
            if (id) setAsking(true);
          }}
        >
          <label htmlFor={inputId}>Device to update to {image.version}</label>
          <input
            id={inputId}
            type="text"
            className="fw-update-device"
            list={listId}
            value={deviceId}
            placeholder={
              candidates === null ? 'listing devices…' : `${candidates.length} of ${image.kinds.join(', ')}`
            }
            autoComplete="off"
            spellCheck={false}
            data-testid="fw-update-device"
            onChange={(e) => {
              setDeviceId(e.target.value);
              setError(null);
            }}
          />
          <datalist id={listId}>
            {(candidates ?? []).map((c) => (
              <option key={c.id} value={c.id}>
                {`${c.online ? 'online' : 'offline'}${c.firmware ? `, running ${c.firmware}` : ''}`}
              </option>
            ))}
          </datalist>
          <button type="submit" className="btn primary" disabled={!id || busy} data-testid="fw-update-start">
            {busy ? 'Starting…' : 'Start update…'}
          </button>
          <button type="button" className="btn" onClick={onClose}>
            Close
          </button>
          {known ? (
            <span className="muted small-text">
              {known.online ? 'online' : 'offline'}
              {known.firmware ? `, running ${known.firmware}` : ''}
            </span>
          ) : id && candidates !== null ? (
            <span className="muted small-text">not a device of {image.kinds.join(', ')} in the fleet</span>
          ) : null}
          {error ? (
            <span className="fw-update-error" role="alert" data-testid="fw-update-error">
              <strong className="mono">{error.code}</strong>: {error.message}
            </span>
          ) : null}
        </form>
        <ConfirmDialog
          open={asking}
          title={`Update ${id} to ${image.version}?`}
          confirmLabel="Update"
          danger={false}
          onConfirm={() => void start()}
          onCancel={() => setAsking(false)}
        >
          The device receives the {formatBytes(image.size)} image, applies it and reboots into it on trial; it
          keeps the new version only if it comes back healthy, else it rolls back.
        </ConfirmDialog>
      </td>
    </tr>
  );
}

/** The "Updates" table: each device's current or last job. */
export function UpdateJobs({
  jobs,
  error,
  onChanged,
}: {
  readonly jobs: readonly FirmwareJobView[] | null;
  readonly error: string | null;
  readonly onChanged: () => void;
}) {
  const client = useClient();
  const now = useNow(250);
  const [asking, setAsking] = useState<FirmwareJobView | null>(null);
  const [cancelError, setCancelError] = useState<string | null>(null);

  const cancel = async (job: FirmwareJobView) => {
    setAsking(null);
    setCancelError(null);
    const r = await client.call('firmwareCancel', { deviceId: job.deviceId });
    if (!r.ok) setCancelError(`${job.deviceId}: ${r.error.code}: ${r.error.message}`);
    onChanged();
  };

  const sorted = [...(jobs ?? [])].sort(
    (a, b) =>
      Number(FINAL_STEPS.has(a.step)) - Number(FINAL_STEPS.has(b.step)) ||
      a.deviceId.localeCompare(b.deviceId),
  );

  return (
    <section className="panel fw-jobs" aria-labelledby="fw-jobs-title" data-testid="fw-jobs">
      <h2 id="fw-jobs-title">Updates</h2>
      {error ? <div className="banner err">Could not read the update jobs: {error}</div> : null}
      {cancelError ? (
        <div className="banner err" role="alert" data-testid="fw-cancel-error">
          {cancelError}
        </div>
      ) : null}
      {jobs === null ? (
        <p className="muted small-text">Asking the host…</p>
      ) : sorted.length === 0 ? (
        <p className="muted small-text">No update yet: start one with “Update device…” on an image’s row.</p>
      ) : (
        <table className="kv fw-jobs-table">
          <thead>
            <tr>
              <th className="fw-col-device">Device</th>
              <th className="fw-col-version">Version</th>
              <th className="fw-col-step">Step</th>
              <th className="fw-col-progress">Progress</th>
              <th className="fw-col-left">Time left</th>
              <th>Error</th>
              <th className="fw-col-actions">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {sorted.map((j) => (
              <JobRow key={j.deviceId} job={j} now={now} onCancel={() => setAsking(j)} />
            ))}
          </tbody>
        </table>
      )}
      <ConfirmDialog
        open={asking !== null}
        title={`Cancel the update of ${asking?.deviceId ?? ''}?`}
        confirmLabel="Cancel update"
        onConfirm={() => asking && void cancel(asking)}
        onCancel={() => setAsking(null)}
      >
        The transfer stops before the image is applied; the device keeps running the firmware it has now.
      </ConfirmDialog>
    </section>
  );
}

function JobRow({
  job: j,
  now,
  onCancel,
}: {
  readonly job: FirmwareJobView;
  readonly now: number;
  readonly onCancel: () => void;
}) {
  const fraction = j.size > 0 ? Math.min(1, j.offset / j.size) : 0;
  const percent = Math.floor(fraction * 100);
  const transferring = j.step === 'transferring';
  const remaining = j.deadline !== null && TIMED.has(j.step) ? Math.max(0, j.deadline - now) : null;
  return (
    <tr data-testid="fw-job-row" data-device-id={j.deviceId} data-step={j.step}>
      <td className="mono" title={j.deviceId}>
        {j.deviceId}
      </td>
      <td className="mono" title={j.sha256}>
        {j.version}
      </td>
      <td>
        <span className={`badge ${stepTone(j.step)}`} data-testid="fw-job-step" data-step={j.step}>
          {STEP_LABEL[j.step] ?? j.step}
        </span>
      </td>
      <td>
        <div className="fw-progress">
          <div
            className="bar"
            role="progressbar"
            aria-label={`${j.deviceId} transfer`}
            aria-valuemin={0}
            aria-valuemax={j.size}
            aria-valuenow={j.offset}
            aria-valuetext={`${percent}%`}
          >
            <div
              className={`bar-fill${FINAL_STEPS.has(j.step) ? ` ${stepTone(j.step)}` : ''}`}
              style={{ transform: `scaleX(${fraction})` }}
            />
          </div>
          <span className="fw-progress-text small-text">
            <strong>{percent}%</strong>{' '}
            <span className="muted">
              {formatBytes(j.offset)} of {formatBytes(j.size)}
              {transferring ? ` · ${(j.bytesPerSecond / 1024).toFixed(1)} KiB/s` : ''}
              {j.resumedFrom > 0 ? ` · resumed at ${formatBytes(j.resumedFrom)}` : ''}
              {j.resent > 0 ? ` · ${j.resent} resent` : ''}
            </span>
          </span>
        </div>
      </td>
      <td className="fw-left" data-testid="fw-job-left">
        {remaining !== null ? (
          <span
            title={`${j.step === 'onTrial' ? 'Trial' : 'Reboot'} ends at ${new Date(j.deadline!).toLocaleTimeString()}`}
          >
            <strong className="fw-left-n">{Math.ceil(remaining / 1000)} s</strong>{' '}
            <span className="muted small-text">{j.step === 'onTrial' ? 'of trial' : 'to reboot'}</span>
          </span>
        ) : (
          <span className="muted">—</span>
        )}
      </td>
      <td title={j.error ? `${j.error.step} · ${j.error.code}: ${j.error.message}` : undefined}>
        {j.error ? (
          <span className="fw-job-error">
            <span className="muted">at {STEP_LABEL[j.error.step] ?? j.error.step}:</span>{' '}
            <strong className="mono">{j.error.code}</strong> {j.error.message}
          </span>
        ) : j.step === 'onTrial' && j.trialChecks.length > 0 ? (
          <span
            className="muted small-text"
            data-testid="fw-job-checks"
            title="the telemetry checks of its trial"
          >
            checks <span className="mono">{j.trialChecks.join(', ')}</span>
          </span>
        ) : (
          <span className="muted">—</span>
        )}
      </td>
      <td className="fw-col-actions">
        {CANCELLABLE.has(j.step) ? (
          <button type="button" className="btn small" onClick={onCancel} data-testid="fw-job-cancel">
            Cancel…
          </button>
        ) : null}
      </td>
    </tr>
  );
}

/**
 * Rollouts in the Firmware view (docs/firmware.md §8): the "Roll out…" form under an image's row
 * (tag and running-version filters with the live count of matching devices, computed here from
 * `devices` as the host does: the image's kinds, not on its version yet; waves as "1, 5%, 25%,
 * 100%" — an integer is a device count, N% a share — with jobs at a time per wave, the failure
 * share, pause or abort on failure, the soak between waves, each device's trial and its telemetry
 * checks (RolloutTrialChecks.tsx); confirmed, then `rolloutCreate`; a
 * refusal shows in place), and the "Rollouts" table (`rollouts`, polled every second while the
 * view is open): each rollout's state and reason, per-wave progress, counts, who started it and
 * when, Pause / Resume / Cancel by state, and its frozen device list on demand. A damaged rollout
 * (its saved JSON does not read back) is a row of its own: the field at fault and the message,
 * and Delete… (confirmed, then `rolloutDelete`).
 *
 * @example
 * <RolloutForm image={image} colSpan={9} onStarted={refresh} onClose={close} />
 * <Rollouts refresh={n} />
 */
import { Fragment, useCallback, useId, useRef, useState } from 'react';
import type { FirmwareImageView, RolloutView } from '../../../src/host/contract.js';
import { ConfirmDialog } from '../components/ConfirmDialog.js';
import { formatDateTime } from '../lib/format.js';
import { usePolling } from '../lib/hooks.js';
import { useClient } from '../store/use-live.js';
import { splitTrialChecks, TrialChecksField, TrialChecksNote } from './RolloutTrialChecks.js';

/** How often the "Rollouts" table asks for the rollouts while the view is open. */
const ROLLOUTS_POLL_MS = 1_000;
/** How often the form lists the fleet's devices again (the count stays live). */
const DEVICES_POLL_MS = 3_000;
/** Devices shown in a rollout's expanded list. */
const MAX_LISTED = 1_000;

export const DEFAULT_WAVES_TEXT = '1, 5%, 25%, 100%';
/** A job's trial when neither the rollout nor its image sets one (src/firmware/update-job-types.ts). */
const DEFAULT_TRIAL_SECONDS = 10;

interface Wave {
  readonly count?: number;
  readonly share?: number;
  readonly maxConcurrent: number;
}

/** "1, 5%, 25%, 100%" → waves; a message when the text does not parse. */
export function parseWaves(text: string, maxConcurrent: number): { waves: Wave[] } | { error: string } {
  const parts = text
    .split(/[,;\s]+/)
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (parts.length === 0) return { error: 'at least one wave' };
  if (parts.length > 20) return { error: 'at most 20 waves' };
  const waves: Wave[] = [];
  for (const p of parts) {
    const share = /^(\d+(?:\.\d+)?)%$/.exec(p);
    if (share) {
      const n = Number(share[1]);
      if (!(n > 0 && n <= 100)) return { error: `${p}: a share is more than 0 % and at most 100 %` };
      waves.push({ share: n / 100, maxConcurrent });
    } else if (/^\d+$/.test(p) && Number(p) >= 1) {
      waves.push({ count: Number(p), maxConcurrent });
    } else return { error: `${p}: a device count (e.g. 1) or a share (e.g. 25%)` };
  }
  return { waves };
}

interface Candidate {
  readonly id: string;
  readonly online: boolean;
  readonly firmware: string | null;
  readonly tags: readonly string[];
}

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

/** A whole number from a text field, or null. */
/** The shape of a maintenance window (the host checks it fully). */
const WINDOW_SHAPE = /^([a-z,-]+\s+)?\d{1,2}:\d{2}-\d{1,2}:\d{2}(\s+(utc|local))?$/i;

function whole(text: string, min: number, max: number): number | null {
  if (!/^\s*\d+\s*$/.test(text)) return null;
  const n = Number(text);
  return n >= min && n <= max ? n : null;
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
  const [tag, setTag] = useState('');
  const [running, setRunning] = useState('');
  const [wavesText, setWavesText] = useState(DEFAULT_WAVES_TEXT);
  const [concurrentText, setConcurrentText] = useState('10');
  const [failText, setFailText] = useState('20');
  const [onFailure, setOnFailure] = useState<'pause' | 'abort'>('pause');
  // The image's own soak (its signed manifest's) until the operator types another.
  const [soakText, setSoakText] = useState(String(image.soakSeconds ?? 0));
  // Each device's time on trial: the image's own (else the job's 10 s) until the operator types another.
  const [trialText, setTrialText] = useState(String(image.trialSeconds ?? DEFAULT_TRIAL_SECONDS));
  const [windowText, setWindowText] = useState('');
  const [checksText, setChecksText] = useState('');
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ code: string; message: string } | null>(null);
  const ids = {
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

  const t = tag.trim();
  const rv = running.trim();
  const matching =
    fleet?.filter(
      (d) =>
        (t === '' || d.tags.includes(t)) && (rv === '' || d.firmware === rv) && d.firmware !== image.version,
    ) ?? null;
  const online = matching?.filter((d) => d.online).length ?? 0;

  const concurrent = whole(concurrentText, 1, 1000);
  const failPercent = whole(failText, 0, 100);
  const soak = whole(soakText, 0, 86_400);
  const trial = whole(trialText, 1, 86_400);
  const parsed = parseWaves(wavesText, concurrent ?? 10);
  const problem =
    'error' in parsed
      ? `Waves: ${parsed.error}`
      : concurrent === null
        ? 'At a time: a whole number from 1 to 1000'
        : failPercent === null
          ? 'Failure share: a whole percentage from 0 to 100'
          : soak === null
            ? 'Soak: whole seconds from 0 to 86400'
            : trial === null
              ? 'Trial: whole seconds from 1 to 86400'
              : windowText.trim() !== '' && !WINDOW_SHAPE.test(windowText.trim())
                ? 'Window: hours as HH:MM-HH:MM, after days if wanted (mon-fri 02:00-04:00 utc)'
                : null;
  const changed = () => setError(null);

  const start = async () => {
    setAsking(false);
    if ('error' in parsed || failPercent === null || soak === null || trial === null) return;
    setBusy(true);
    setError(null);
    try {
      const r = await client.call('rolloutCreate', {
        sha256: image.sha256,
        ...(t ? { tag: t } : {}),
        ...(rv ? { runningVersion: rv } : {}),
        waves: parsed.waves,
        maxFailureShare: failPercent / 100,
        onFailure,
        soakMs: soak * 1000,
        trialMs: trial * 1000,
        // The host checks each and refuses a bad one, named (shown in place).
        ...(splitTrialChecks(checksText).length > 0 ? { trialChecks: splitTrialChecks(checksText) } : {}),
        ...(windowText.trim() ? { window: windowText.trim() } : {}),
      });
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
          <div className="ro-fields">
            <label htmlFor={ids.tag}>Tag</label>
            <input
              id={ids.tag}
              type="text"
              value={tag}
              placeholder="any"
              autoComplete="off"
              spellCheck={false}
              data-testid="ro-tag"
              onChange={(e) => {
                setTag(e.target.value);
                changed();
              }}
            />
            <label htmlFor={ids.running}>Running version</label>
            <input
              id={ids.running}
              type="text"
              value={running}
              placeholder="any"
              autoComplete="off"
              spellCheck={false}
              data-testid="ro-running"
              onChange={(e) => {
                setRunning(e.target.value);
                changed();
              }}
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
          <div className="ro-fields">
            <label htmlFor={ids.waves}>Waves</label>
            <input
              id={ids.waves}
              type="text"
              className="ro-waves"
              value={wavesText}
              autoComplete="off"
              spellCheck={false}
              aria-describedby={`${ids.waves}-hint`}
              data-testid="ro-waves"
              onChange={(e) => {
                setWavesText(e.target.value);
                changed();
              }}
            />
            <label htmlFor={ids.concurrent}>At a time</label>
            <input
              id={ids.concurrent}
              type="number"
              className="ro-num"
              min={1}
              max={1000}
              value={concurrentText}
              data-testid="ro-concurrent"
              onChange={(e) => {
                setConcurrentText(e.target.value);
                changed();
              }}
            />
            <label htmlFor={ids.fail}>Failure share %</label>
            <input
              id={ids.fail}
              type="number"
              className="ro-num"
              min={0}
              max={100}
              value={failText}
              data-testid="ro-fail-share"
              onChange={(e) => {
                setFailText(e.target.value);
                changed();
              }}
            />
            <label htmlFor={ids.onFailure}>On failure</label>
            <select
              id={ids.onFailure}
              value={onFailure}
              data-testid="ro-on-failure"
              onChange={(e) => {
                setOnFailure(e.target.value === 'abort' ? 'abort' : 'pause');
                changed();
              }}
            >
              <option value="pause">pause</option>
              <option value="abort">abort</option>
            </select>
            <label htmlFor={ids.soak}>Soak s</label>
            <input
              id={ids.soak}
              type="number"
              className="ro-num"
              min={0}
              max={86_400}
              value={soakText}
              title={
                image.soakSeconds !== null
                  ? `this image declares a soak of ${image.soakSeconds} s between waves`
                  : 'seconds between the end of a wave and the start of the next'
              }
              data-testid="ro-soak"
              onChange={(e) => {
                setSoakText(e.target.value);
                changed();
              }}
            />
            <label htmlFor={ids.trial}>Trial s</label>
            <input
              id={ids.trial}
              type="number"
              className="ro-num"
              min={1}
              max={86_400}
              value={trialText}
              title={
                image.trialSeconds !== null
                  ? `this image declares ${image.trialSeconds} s on trial before a device confirms it`
                  : 'seconds each device runs the new image unconfirmed (healthy) before it is confirmed'
              }
              data-testid="ro-trial"
              onChange={(e) => {
                setTrialText(e.target.value);
                changed();
              }}
            />
          </div>
          <div className="ro-fields">
            <label htmlFor={ids.window}>Window</label>
            <input
              id={ids.window}
              type="text"
              className="ro-window"
              placeholder="any time (e.g. mon-fri 02:00-04:00 utc)"
              value={windowText}
              data-testid="ro-window"
              onChange={(e) => {
                setWindowText(e.target.value);
                changed();
              }}
            />
            <TrialChecksField
              id={ids.checks}
              value={checksText}
              onChange={(text) => {
                setChecksText(text);
                changed();
              }}
            />
          </div>
          <p id={`${ids.waves}-hint`} className="muted small-text ro-hint">
            Waves are cumulative: an integer is a number of devices, N% a share of the list. The next wave
            starts when the last one succeeded, after the soak
            {image.soakSeconds !== null ? ` (this image's own: ${image.soakSeconds} s)` : ''}. Each device
            runs the new image on trial (unconfirmed, watched for health) before it is confirmed
            {image.trialSeconds !== null ? ` (this image's own trial: ${image.trialSeconds} s)` : ''}, its
            telemetry judged by the trial checks if any; past the failure share the rollout pauses or aborts.
            With a maintenance window, jobs start only inside it (host time unless utc); running ones finish.
          </p>
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
          {failPercent}% failures the rollout {onFailure === 'abort' ? 'aborts' : 'pauses'}. The device list
          is fixed now: devices that join later are not included.
        </ConfirmDialog>
      </td>
    </tr>
  );
}

const STATE_TONE: Readonly<Record<string, string>> = {
  running: 'tone-info',
  paused: 'tone-warn',
  completed: 'tone-ok',
  aborted: 'tone-err',
  cancelled: '',
  damaged: 'tone-err',
};

const ACTIVE: ReadonlySet<string> = new Set(['running', 'paused']);

const DEVICE_TONE: Readonly<Record<string, string>> = {
  pending: '',
  updating: 'tone-info',
  waitingRetry: 'tone-warn',
  succeeded: 'tone-ok',
  failed: 'tone-err',
  skipped: 'tone-warn',
};

const DEVICE_LABEL: Readonly<Record<string, string>> = { waitingRetry: 'waiting to retry' };

const COUNT_ORDER = ['succeeded', 'updating', 'waitingRetry', 'pending', 'failed', 'skipped'];

/**
 * The "Rollouts" section: polls `rollouts` every second; `refresh` changing asks at once;
 * `onEnded` runs when a rollout is seen to end (what the images run on changed).
 */
export function Rollouts({ refresh, onEnded }: { readonly refresh: number; readonly onEnded?: () => void }) {
  const client = useClient();
  const [list, setList] = useState<readonly RolloutView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [cancelling, setCancelling] = useState<RolloutView | null>(null);
  const [deleting, setDeleting] = useState<RolloutView | null>(null);
  const [open, setOpen] = useState<ReadonlySet<string>>(new Set());
  const ended = useRef<Set<string> | null>(null);
  const endedRef = useRef(onEnded);
  endedRef.current = onEnded;

  const load = useCallback(async () => {
    const r = await client.call('rollouts', {});
    if (!r.ok) {
      setError(`${r.error.code}: ${r.error.message}`);
      return;
    }
    setList(r.value);
    setError(null);
    const now = new Set(r.value.filter((x) => !ACTIVE.has(x.state)).map((x) => x.id));
    const before = ended.current;
    ended.current = now;
    if (before && [...now].some((id) => !before.has(id))) endedRef.current?.();
  }, [client]);
  // `refresh` restarts the polling at once.
  usePolling(async () => {
    await load();
    return ROLLOUTS_POLL_MS;
  }, [load, refresh]);

  const act = async (
    method: 'rolloutPause' | 'rolloutResume' | 'rolloutCancel' | 'rolloutDelete',
    r: RolloutView,
  ) => {
    setActionError(null);
    const answer = await client.call(method, { id: r.id });
    if (!answer.ok) setActionError(`${r.id}: ${answer.error.code}: ${answer.error.message}`);
    await load();
  };

  const toggle = (id: string) =>
    setOpen((o) => {
      const next = new Set(o);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  return (
    <section className="panel ro-panel" aria-labelledby="ro-title" data-testid="ro-list">
      <h2 id="ro-title">Rollouts</h2>
      {error ? <div className="banner err">Could not read the rollouts: {error}</div> : null}
      {actionError ? (
        <div className="banner err" role="alert" data-testid="ro-action-error">
          {actionError}
        </div>
      ) : null}
      {list === null ? (
        <p className="muted small-text">Asking the host…</p>
      ) : list.length === 0 ? (
        <p className="muted small-text">No rollout yet: start one with “Roll out…” on an image’s row.</p>
      ) : (
        <table className="kv ro-table">
          <thead>
            <tr>
              <th className="ro-col-version">Version</th>
              <th className="ro-col-state">State</th>
              <th className="ro-col-waves">Waves</th>
              <th>Devices</th>
              <th className="ro-col-created">Started</th>
              <th className="ro-col-actions">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.map((r) =>
              r.damage ? (
                <DamagedRow key={r.id} rollout={r} damage={r.damage} onDelete={() => setDeleting(r)} />
              ) : (
                <Fragment key={r.id}>
                  <RolloutRow
                    rollout={r}
                    expanded={open.has(r.id)}
                    onToggle={() => toggle(r.id)}
                    onPause={() => void act('rolloutPause', r)}
                    onResume={() => void act('rolloutResume', r)}
                    onCancel={() => setCancelling(r)}
                  />
                  {open.has(r.id) ? <RolloutDevices rollout={r} /> : null}
                </Fragment>
              ),
            )}
          </tbody>
        </table>
      )}
      <ConfirmDialog
        open={cancelling !== null}
        title={`Cancel rollout ${cancelling?.id ?? ''} of ${cancelling?.version ?? ''}?`}
        confirmLabel="Cancel rollout"
        onConfirm={() => {
          const r = cancelling;
          setCancelling(null);
          if (r) void act('rolloutCancel', r);
        }}
        onCancel={() => setCancelling(null)}
      >
        Updates not applied yet are cancelled and no further device is started; devices already updated keep
        the new version.
      </ConfirmDialog>
      <ConfirmDialog
        open={deleting !== null}
        title={`Delete damaged rollout ${deleting?.id ?? ''}?`}
        confirmLabel="Delete rollout"
        onConfirm={() => {
          const r = deleting;
          setDeleting(null);
          if (r) void act('rolloutDelete', r);
        }}
        onCancel={() => setDeleting(null)}
      >
        Its saved record cannot be read back, so it cannot be continued. Deleting it removes the record (the
        event log keeps its history); devices it already updated keep their version.
      </ConfirmDialog>
    </section>
  );
}

interface WaveStat {
  readonly total: number;
  readonly succeeded: number;
  readonly failed: number;
}

function waveStats(r: RolloutView): WaveStat[] {
  let start = 0;
  return r.waveEnds.map((end) => {
    let succeeded = 0;
    let failed = 0;
    for (const id of r.order.slice(start, end)) {
      const s = r.devices[id]?.state;
      if (s === 'succeeded') succeeded++;
      else if (s === 'failed' || s === 'skipped') failed++;
    }
    const stat = { total: end - start, succeeded, failed };
    start = end;
    return stat;
  });
}

function RolloutRow({
  rollout: r,
  expanded,
  onToggle,
  onPause,
  onResume,
  onCancel,
}: {
  readonly rollout: RolloutView;
  readonly expanded: boolean;
  readonly onToggle: () => void;
  readonly onPause: () => void;
  readonly onResume: () => void;
  readonly onCancel: () => void;
}) {
  const stats = waveStats(r);
  const active = r.state === 'running' || r.state === 'paused';
  return (
    <tr data-testid="ro-row" data-rollout-id={r.id} data-state={r.state}>
      <td>
        <span className="mono">{r.version}</span> <span className="muted small-text mono">{r.id}</span>
      </td>
      <td className="ro-state-cell">
        <span className={`badge ${STATE_TONE[r.state] ?? ''}`} data-testid="ro-state" data-state={r.state}>
          {r.state}
        </span>
        {r.window && active ? (
          <div
            className="ro-reason small-text"
            data-testid="ro-window-state"
            title={`maintenance window ${r.window}`}
          >
            {r.windowOpensAt !== null
              ? `waiting for its window (${r.window}), opens ${new Date(r.windowOpensAt).toLocaleString()}`
              : `window ${r.window}: open`}
          </div>
        ) : null}
        {r.soakEndsAt !== null && active ? (
          <div className="ro-reason small-text" data-testid="ro-soak-state">
            soaking: wave {Math.min(r.wave + 2, stats.length)} starts{' '}
            {new Date(r.soakEndsAt).toLocaleString()}
          </div>
        ) : null}
        {r.reason && (r.state === 'paused' || r.state === 'aborted') ? (
          <div className="ro-reason small-text" data-testid="ro-reason" title={r.reason}>
            {r.reason}
          </div>
        ) : null}
      </td>
      <td>
        <div className="small-text ro-wave-now">
          wave {Math.min(r.wave + 1, stats.length)} of {stats.length}
        </div>
        <div className="ro-waves-bars">
          {stats.map((s, k) => (
            <div
              // biome-ignore lint/suspicious/noArrayIndexKey: waves are positional
              key={k}
              className={`ro-wave${k === r.wave && active ? ' current' : ''}`}
              title={`Wave ${k + 1}: ${s.succeeded} succeeded, ${s.failed} failed of ${s.total}`}
            >
              <div
                className="ro-wave-bar"
                role="img"
                aria-label={`Wave ${k + 1}: ${s.succeeded} succeeded, ${s.failed} failed of ${s.total}`}
              >
                <span
                  className="ro-seg tone-ok"
                  style={{ width: `${s.total ? (s.succeeded / s.total) * 100 : 0}%` }}
                />
                <span
                  className="ro-seg tone-err"
                  style={{ width: `${s.total ? (s.failed / s.total) * 100 : 0}%` }}
                />
              </div>
              <span className="ro-wave-text">
                {s.succeeded}
                {s.failed > 0 ? <span className="tone-text-err">/{s.failed}</span> : null}
                <span className="muted">/{s.total}</span>
              </span>
            </div>
          ))}
        </div>
      </td>
      <td className="small-text ro-counts" data-testid="ro-counts">
        <strong>{r.order.length}</strong>:{' '}
        {COUNT_ORDER.filter((s) => (r.counts[s] ?? 0) > 0).map((s, i) => (
          <Fragment key={s}>
            {i > 0 ? ', ' : ''}
            <span className={s === 'failed' ? 'tone-text-err' : s === 'succeeded' ? 'tone-text-ok' : ''}>
              {r.counts[s]} {DEVICE_LABEL[s] ?? s}
            </span>
          </Fragment>
        ))}
      </td>
      <td className="small-text">
        {formatDateTime(r.createdAt)} <span className="muted">by {r.createdBy}</span>
      </td>
      <td className="ro-col-actions">
        <button
          type="button"
          className="btn small"
          aria-expanded={expanded}
          onClick={onToggle}
          data-testid="ro-expand"
        >
          {expanded ? 'Hide devices' : 'Devices'}
        </button>
        {r.state === 'running' ? (
          <button type="button" className="btn small" onClick={onPause} data-testid="ro-pause">
            Pause
          </button>
        ) : null}
        {r.state === 'paused' ? (
          <button type="button" className="btn small" onClick={onResume} data-testid="ro-resume">
            Resume
          </button>
        ) : null}
        {active ? (
          <button type="button" className="btn small" onClick={onCancel} data-testid="ro-cancel">
            Cancel…
          </button>
        ) : null}
      </td>
    </tr>
  );
}

/** A damaged rollout: what its row still says, the field at fault with the message, Delete…. */
function DamagedRow({
  rollout: r,
  damage,
  onDelete,
}: {
  readonly rollout: RolloutView;
  readonly damage: NonNullable<RolloutView['damage']>;
  readonly onDelete: () => void;
}) {
  return (
    <tr data-testid="ro-row" data-rollout-id={r.id} data-state="damaged">
      <td>
        <span className="mono">{r.version || '—'}</span> <span className="muted small-text mono">{r.id}</span>
      </td>
      <td className="ro-state-cell">
        <span className={`badge ${STATE_TONE.damaged}`} data-testid="ro-state" data-state="damaged">
          damaged
        </span>
        <div className="ro-reason small-text">
          <code className="mono" data-testid="ro-damage-field" title="the field at fault">
            {damage.field}
          </code>
        </div>
      </td>
      <td colSpan={2} className="small-text ro-damage-cell">
        <div className="ro-damage-message" data-testid="ro-damage">
          {damage.message}
        </div>
        <div className="muted">
          Its saved record does not read back: it does not run
          {damage.savedState ? ` (it was ${damage.savedState})` : ''} and holds no image.
        </div>
      </td>
      <td className="small-text">
        {r.createdAt > 0 ? formatDateTime(r.createdAt) : '—'}
        {r.createdBy ? <span className="muted"> by {r.createdBy}</span> : null}
      </td>
      <td className="ro-col-actions">
        <button type="button" className="btn small danger" onClick={onDelete} data-testid="ro-delete">
          Delete…
        </button>
      </td>
    </tr>
  );
}

function RolloutDevices({ rollout: r }: { readonly rollout: RolloutView }) {
  const shown = r.order.slice(0, MAX_LISTED);
  return (
    <tr className="fw-update-row ro-devices-row">
      <td colSpan={6}>
        <table className="kv ro-devices" data-testid="ro-devices" aria-label={`Devices of rollout ${r.id}`}>
          <thead>
            <tr>
              <th className="ro-col-n num">#</th>
              <th>Device</th>
              <th className="ro-col-wave">Wave</th>
              <th className="ro-col-dstate">State</th>
              <th className="ro-col-attempts num">Attempts</th>
              <th>Last step</th>
              <th>Error</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((id, n) => {
              const d = r.devices[id];
              return (
                <tr key={id} data-testid="ro-device" data-device-id={id} data-state={d?.state ?? ''}>
                  <td className="num muted">{n + 1}</td>
                  <td className="mono" title={id}>
                    {id}
                  </td>
                  <td>{d ? d.wave + 1 : '—'}</td>
                  <td>
                    {d ? (
                      <span className={`badge ${DEVICE_TONE[d.state] ?? ''}`}>
                        {DEVICE_LABEL[d.state] ?? d.state}
                      </span>
                    ) : (
                      '—'
                    )}
                  </td>
                  <td className="num">{d?.attempts ?? 0}</td>
                  <td>{d?.step ?? <span className="muted">—</span>}</td>
                  <td title={d?.error ? `${d.error.code}: ${d.error.message}` : undefined}>
                    {d?.error ? (
                      <span className="fw-job-error">
                        <strong className="mono">{d.error.code}</strong> {d.error.message}
                      </span>
                    ) : (
                      <span className="muted">—</span>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
        <TrialChecksNote checks={r.trialChecks} />
        {r.order.length > shown.length ? (
          <p className="muted small-text">
            {r.order.length - shown.length} more device(s) not listed (the first {MAX_LISTED} are shown).
          </p>
        ) : null}
      </td>
    </tr>
  );
}

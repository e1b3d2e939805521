/**
 * A rollout's row in the "Rollouts" table of the Firmware view (docs/firmware.md §8): its version
 * and id; its state with, while it runs or is paused, its maintenance window, its soak and the
 * reason it paused or aborted; the wave it is on and each wave's progress; its device counts by
 * state; who started it and when, and in a cluster the instance that runs it when another does;
 * and its buttons: Devices / Hide devices, and on the instance that runs it Pause, Resume, Cancel….
 *
 * @example
 * <RolloutRow rollout={r} expanded={false} onToggle={toggle} onPause={pause} onResume={resume} onCancel={ask} />
 */
import { Fragment } from 'react';
import type { RolloutView } from '../../../src/host/contract.js';
import { formatDateTime } from '../lib/format.js';
import { COUNT_ORDER, DEVICE_LABEL, STATE_TONE, type WaveStat, waveStats } from '../lib/rollouts.js';

export function RolloutRow({
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
  // Another instance of the cluster runs it: shown here, changed there.
  const here = r.runsOn === null;
  return (
    <tr data-testid="ro-row" data-rollout-id={r.id} data-state={r.state}>
      <td>
        <span className="mono">{r.version}</span> <span className="muted small-text mono">{r.id}</span>
      </td>
      <StateCell rollout={r} stats={stats} active={active} />
      <WavesCell rollout={r} stats={stats} active={active} />
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
        {r.runsOn !== null ? (
          <div
            className="muted"
            data-testid="ro-runs-on"
            title="pause, resume or cancel it in that instance's UI"
          >
            runs on instance {r.runsOn}
          </div>
        ) : null}
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
        {here && r.state === 'running' ? (
          <button type="button" className="btn small" onClick={onPause} data-testid="ro-pause">
            Pause
          </button>
        ) : null}
        {here && r.state === 'paused' ? (
          <button type="button" className="btn small" onClick={onResume} data-testid="ro-resume">
            Resume
          </button>
        ) : null}
        {here && active ? (
          <button type="button" className="btn small" onClick={onCancel} data-testid="ro-cancel">
            Cancel…
          </button>
        ) : null}
      </td>
    </tr>
  );
}

interface CellProps {
  readonly rollout: RolloutView;
  readonly stats: readonly WaveStat[];
  /** Running or paused. */
  readonly active: boolean;
}

/** The state's badge; while active its window and soak; the reason it paused or aborted. */
function StateCell({ rollout: r, stats, active }: CellProps) {
  return (
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
          soaking: wave {Math.min(r.wave + 2, stats.length)} starts {new Date(r.soakEndsAt).toLocaleString()}
        </div>
      ) : null}
      {r.reason && (r.state === 'paused' || r.state === 'aborted') ? (
        <div className="ro-reason small-text" data-testid="ro-reason" title={r.reason}>
          {r.reason}
        </div>
      ) : null}
    </td>
  );
}

/** The wave it is on, and a bar per wave: succeeded and failed of its devices. */
function WavesCell({ rollout: r, stats, active }: CellProps) {
  return (
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
  );
}

/**
 * A damaged rollout's row in the "Rollouts" table of the Firmware view (docs/firmware.md §8): its
 * saved JSON does not read back, so it does not run; the row says what it still can (version, id,
 * when and by whom it was started), the field at fault with the message, and Delete… (the table
 * confirms, then `rolloutDelete`).
 *
 * @example
 * <DamagedRow rollout={r} damage={r.damage} onDelete={() => setDeleting(r)} />
 */
import type { RolloutView } from '../../../src/host/contract.js';
import { formatDateTime } from '../lib/format.js';
import { STATE_TONE } from '../lib/rollouts.js';

/** A damaged rollout: what its row still says, the field at fault with the message, Delete…. */
export function DamagedRow({
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

/**
 * Rollouts in the Firmware view (docs/firmware.md §8): the "Roll out…" form under an image's row
 * (RolloutForm.tsx: filters with the live count of matching devices, waves, policy, soak, trial,
 * window and trial checks; confirmed, then `rolloutCreate`; a refusal shows in place), and here the
 * "Rollouts" table (`rollouts`, polled every second while the view is open): a row per rollout
 * (RolloutRow.tsx: state and reason, per-wave progress, counts, who started it and when, Pause /
 * Resume / Cancel by state), its frozen device list on demand (RolloutDevices.tsx), and a damaged
 * rollout (its saved JSON does not read back) as a row of its own (RolloutDamagedRow.tsx: the field
 * at fault and the message, and Delete…); Cancel and Delete are confirmed here, then
 * `rolloutCancel` / `rolloutDelete`.
 *
 * @example
 * <RolloutForm image={image} colSpan={9} onStarted={refresh} onClose={close} />
 * <Rollouts refresh={n} />
 */
import { Fragment, useCallback, useRef, useState } from 'react';
import type { RolloutView } from '../../../src/host/contract.js';
import { ConfirmDialog } from '../components/ConfirmDialog.js';
import { usePolling } from '../lib/hooks.js';
import { ACTIVE } from '../lib/rollouts.js';
import { useClient } from '../store/use-live.js';
import { DamagedRow } from './RolloutDamagedRow.js';
import { RolloutDevices } from './RolloutDevices.js';
import { RolloutRow } from './RolloutRow.js';

// The form and the waves' parsing moved to RolloutForm.tsx and lib/rollouts.ts; importers of this
// module keep their names.
export { DEFAULT_WAVES_TEXT, parseWaves } from '../lib/rollouts.js';
export { RolloutForm } from './RolloutForm.js';

/** How often the "Rollouts" table asks for the rollouts while the view is open. */
const ROLLOUTS_POLL_MS = 1_000;

/**
 * The rollouts, asked for every second (`refresh` changing asks at once); `load` asks now.
 * `onEnded` runs when a rollout is seen to end.
 */
function useRolloutList(refresh: number, onEnded: (() => void) | undefined) {
  const client = useClient();
  const [list, setList] = useState<readonly RolloutView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
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
  return { list, error, load };
}

/**
 * The "Rollouts" section: polls `rollouts` every second; `refresh` changing asks at once;
 * `onEnded` runs when a rollout is seen to end (what the images run on changed).
 */
export function Rollouts({ refresh, onEnded }: { readonly refresh: number; readonly onEnded?: () => void }) {
  const client = useClient();
  const { list, error, load } = useRolloutList(refresh, onEnded);
  const [actionError, setActionError] = useState<string | null>(null);
  const [cancelling, setCancelling] = useState<RolloutView | null>(null);
  const [deleting, setDeleting] = useState<RolloutView | null>(null);
  const [open, setOpen] = useState<ReadonlySet<string>>(new Set());
  const toggle = (id: string) =>
    setOpen((o) => {
      const next = new Set(o);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  const act = async (
    method: 'rolloutPause' | 'rolloutResume' | 'rolloutCancel' | 'rolloutDelete',
    r: RolloutView,
  ) => {
    setActionError(null);
    const answer = await client.call(method, { id: r.id });
    if (!answer.ok) setActionError(`${r.id}: ${answer.error.code}: ${answer.error.message}`);
    await load();
  };

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
        <RolloutsTable
          list={list}
          open={open}
          onToggle={toggle}
          onPause={(r) => void act('rolloutPause', r)}
          onResume={(r) => void act('rolloutResume', r)}
          onCancel={setCancelling}
          onDelete={setDeleting}
        />
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

/** The table of rollouts: a row each (a damaged one's own), and the device lists shown. */
function RolloutsTable({
  list,
  open,
  onToggle,
  onPause,
  onResume,
  onCancel,
  onDelete,
}: {
  readonly list: readonly RolloutView[];
  /** The rollouts whose devices are shown, by id. */
  readonly open: ReadonlySet<string>;
  readonly onToggle: (id: string) => void;
  readonly onPause: (r: RolloutView) => void;
  readonly onResume: (r: RolloutView) => void;
  readonly onCancel: (r: RolloutView) => void;
  readonly onDelete: (r: RolloutView) => void;
}) {
  return (
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
            <DamagedRow key={r.id} rollout={r} damage={r.damage} onDelete={() => onDelete(r)} />
          ) : (
            <Fragment key={r.id}>
              <RolloutRow
                rollout={r}
                expanded={open.has(r.id)}
                onToggle={() => onToggle(r.id)}
                onPause={() => onPause(r)}
                onResume={() => onResume(r)}
                onCancel={() => onCancel(r)}
              />
              {open.has(r.id) ? <RolloutDevices rollout={r} /> : null}
            </Fragment>
          ),
        )}
      </tbody>
    </table>
  );
}

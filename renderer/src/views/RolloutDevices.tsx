/**
 * A rollout's frozen device list, shown under its row in the "Rollouts" table of the Firmware view
 * (docs/firmware.md §8) when its Devices button is pressed: each device in the rollout's order
 * with its wave, state, attempts, last step and error (the first 1,000; a line says how many more),
 * then the telemetry checks each device's trial is judged by (RolloutTrialChecks.tsx).
 *
 * @example
 * {open.has(r.id) ? <RolloutDevices rollout={r} /> : null}
 */
import type { RolloutView } from '../../../src/host/contract.js';
import { DEVICE_LABEL, DEVICE_TONE } from '../lib/rollouts.js';
import { TrialChecksNote } from './RolloutTrialChecks.js';

/** Devices shown in a rollout's expanded list. */
const MAX_LISTED = 1_000;

export function RolloutDevices({ rollout: r }: { readonly rollout: RolloutView }) {
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
            {shown.map((id, n) => (
              <DeviceRow key={id} id={id} n={n} device={r.devices[id]} />
            ))}
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

/** The `n`th device of the list (0-based); `device` undefined: the rollout has no entry for it. */
function DeviceRow({
  id,
  n,
  device: d,
}: {
  readonly id: string;
  readonly n: number;
  readonly device: RolloutView['devices'][string] | undefined;
}) {
  return (
    <tr data-testid="ro-device" data-device-id={id} data-state={d?.state ?? ''}>
      <td className="num muted">{n + 1}</td>
      <td className="mono" title={id}>
        {id}
      </td>
      <td>{d ? d.wave + 1 : '—'}</td>
      <td>
        {d ? (
          <span className={`badge ${DEVICE_TONE[d.state] ?? ''}`}>{DEVICE_LABEL[d.state] ?? d.state}</span>
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
}

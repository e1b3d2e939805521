/**
 * The telemetry checks of a rollout's trials in the Firmware view (docs/firmware.md §8): the
 * "Trial checks" field of the rollout form (comma-separated, `temp<=90, rssi`; sent as the
 * `trialChecks` array, the host checks each and a refusal shows in the form's error, in place) and
 * the line naming them under a rollout's devices.
 *
 * @example
 * splitTrialChecks('temp<=90, rssi'); // ['temp<=90', 'rssi']
 * <TrialChecksField id={id} value={text} onChange={setText} />
 * <TrialChecksNote checks={rollout.trialChecks} />
 */

/** The field's text as the API's `trialChecks`: split at commas, trimmed, empty parts dropped. */
export function splitTrialChecks(text: string): string[] {
  return text
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '');
}

/** The label and input of the form's "Trial checks" field. */
export function TrialChecksField({
  id,
  value,
  onChange,
}: {
  readonly id: string;
  readonly value: string;
  readonly onChange: (text: string) => void;
}) {
  return (
    <>
      <label htmlFor={id}>Trial checks</label>
      <input
        id={id}
        type="text"
        className="ro-window"
        placeholder="none (e.g. temp<=90, rssi)"
        value={value}
        autoComplete="off"
        spellCheck={false}
        title="telemetry checks of each device's trial, comma-separated: METRIC<=N, METRIC>=N, or METRIC (read at least once); a reading past a limit rolls the device back at once, a metric never read at the trial's end"
        data-testid="ro-checks"
        onChange={(e) => onChange(e.target.value)}
      />
    </>
  );
}

/** Under a rollout's devices: the checks each device's trial is judged by. */
export function TrialChecksNote({ checks }: { readonly checks: readonly string[] }) {
  return (
    <p className="muted small-text" data-testid="ro-trial-checks">
      Trial checks:{' '}
      {checks.length > 0 ? (
        <span className="mono">{checks.join(', ')}</span>
      ) : (
        'none (healthy: online and no reboot on trial)'
      )}
    </p>
  );
}

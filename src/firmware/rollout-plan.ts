/**
 * A rollout's plan, pure (docs/firmware.md §8): the waves cut from the frozen device list, each
 * wave's concurrency, the devices' states counted, the failure bounds, and what a wave whose
 * devices all ended means (below the success threshold, the next wave, or the end). The rollout
 * (rollout-process.ts) starts the jobs and keeps the timers; this decides, with no job running.
 *
 * @example
 * waveEnds(100, DEFAULT_WAVES); // [1, 5, 25, 100]
 * waveOutcome(['succeeded', 'failed'], { wave: 0, waves: 4, successThreshold: 1, waived: -1 });
 * // { kind: 'belowThreshold', reason: 'wave 1: 1 of 2 succeeded, below the 100 % needed' }
 */
import type {
  RolloutDevice,
  RolloutDeviceState,
  RolloutPolicy,
  RolloutSnapshot,
  RolloutWave,
} from './rollout-types.js';

export const DEFAULT_WAVES: readonly RolloutWave[] = [
  { count: 1, maxConcurrent: 1 },
  { share: 0.05 },
  { share: 0.25 },
  { share: 1 },
];

/** Each wave's end index in a list of `n` devices: cumulative, increasing, the last one `n`. */
export function waveEnds(n: number, waves: readonly RolloutWave[]): number[] {
  const ends: number[] = [];
  let last = 0;
  for (const w of waves) {
    const end = Math.min(n, w.count ?? Math.ceil((w.share ?? 1) * n));
    if (end > last) {
      ends.push(end);
      last = end;
    }
  }
  if (last < n) ends.push(n);
  return ends;
}

/** Jobs at a time in wave `w` (a wave past the policy's list takes the last one's); default 10. */
export function waveConcurrency(waves: readonly RolloutWave[], w: number): number {
  return waves[Math.min(w, waves.length - 1)]?.maxConcurrent ?? 10;
}

/** A device of a running rollout, as the rollout changes it. */
export interface RolloutDeviceEntry {
  state: RolloutDeviceState;
  wave: number;
  attempts: number;
  step?: string;
  error?: { code: string; message: string };
}

/**
 * The devices of the frozen list, `order`, each in its wave (`ends` from {@link waveEnds}),
 * pending; a rollout saved before an app restart gets back each device's state, attempts, step
 * and error.
 */
export function initialDevices(
  order: readonly string[],
  ends: readonly number[],
  restored?: Readonly<Record<string, RolloutDevice>>,
): Map<string, RolloutDeviceEntry> {
  const devices = new Map<string, RolloutDeviceEntry>();
  ends.forEach((end, w) => {
    for (let i = w === 0 ? 0 : ends[w - 1]!; i < end; i++)
      devices.set(order[i]!, { state: 'pending', wave: w, attempts: 0 });
  });
  for (const [deviceId, saved] of Object.entries(restored ?? {})) {
    const d = devices.get(deviceId);
    if (!d) continue;
    d.state = saved.state;
    d.attempts = saved.attempts;
    if (saved.step !== undefined) d.step = saved.step;
    if (saved.error !== undefined) d.error = { ...saved.error };
  }
  return devices;
}

/** The devices as the snapshot shows them. */
export function devicesView(devices: ReadonlyMap<string, RolloutDeviceEntry>): Record<string, RolloutDevice> {
  const out: Record<string, RolloutDevice> = {};
  for (const [k, d] of devices)
    out[k] = { state: d.state, wave: d.wave, attempts: d.attempts, step: d.step, error: d.error };
  return out;
}

/** How many devices are in each state. */
export function countDevices(
  devices: Iterable<{ readonly state: RolloutDeviceState }>,
): Record<RolloutDeviceState, number> {
  const c: Record<RolloutDeviceState, number> = {
    pending: 0,
    updating: 0,
    waitingRetry: 0,
    succeeded: 0,
    failed: 0,
    skipped: 0,
  };
  for (const d of devices) c[d.state]++;
  return c;
}

/**
 * Failure bounds over the devices tried so far (finished ones): why the rollout must stop
 * (pause or abort, by its policy), or undefined while within them. `maxFailureShare` defaults to 0.2.
 */
export function pastFailureBounds(
  c: RolloutSnapshot['counts'],
  policy: Pick<RolloutPolicy, 'maxFailures' | 'maxFailureShare'>,
): string | undefined {
  const maxFailureShare = policy.maxFailureShare ?? 0.2;
  const tried = c.succeeded + c.failed;
  if (policy.maxFailures !== undefined && c.failed > policy.maxFailures)
    return `${c.failed} devices failed, more than the ${policy.maxFailures} allowed`;
  if (tried > 0 && c.failed / tried > maxFailureShare && c.failed > 0)
    return `${c.failed} of ${tried} devices failed (${Math.round((c.failed / tried) * 100)} %), more than the ${Math.round(maxFailureShare * 100)} % allowed`;
  return undefined;
}

/**
 * What a wave is at, from its devices' states:
 * - `open`: a device is pending, updating or waiting for a retry;
 * - `belowThreshold`: all ended, too few succeeded (unless the operator waived this wave by resuming);
 * - `completed`: the last wave ended well; `nextWave`: another wave follows.
 */
export type WaveOutcome =
  | { readonly kind: 'open' }
  | { readonly kind: 'belowThreshold'; readonly reason: string }
  | { readonly kind: 'completed' }
  | { readonly kind: 'nextWave' };

export function waveOutcome(
  states: readonly RolloutDeviceState[],
  at: {
    /** 0-based index of the wave. */
    readonly wave: number;
    /** How many waves there are. */
    readonly waves: number;
    readonly successThreshold: number;
    /** The wave whose threshold the operator waived, -1 for none. */
    readonly waived: number;
  },
): WaveOutcome {
  if (states.some((s) => s === 'pending' || s === 'updating' || s === 'waitingRetry'))
    return { kind: 'open' };
  const ok = states.filter((s) => s === 'succeeded').length;
  const share = states.length === 0 ? 1 : ok / states.length;
  if (share < at.successThreshold && at.waived !== at.wave)
    return {
      kind: 'belowThreshold',
      reason: `wave ${at.wave + 1}: ${ok} of ${states.length} succeeded, below the ${Math.round(at.successThreshold * 100)} % needed`,
    };
  return at.wave + 1 >= at.waves ? { kind: 'completed' } : { kind: 'nextWave' };
}

/**
 * The pure part of the Firmware view's rollouts (docs/firmware.md §8): the rollout form's fields
 * read and checked (waves as "1, 5%, 25%, 100%" — an integer is a device count, N% a share — whole
 * numbers in their bounds, the maintenance window's shape), the devices the form's filters match
 * (the image's kinds, not on its version yet, as the host does), and what the "Rollouts" table
 * shows of a rollout: the tone of a state, each wave's progress, the labels of device states.
 *
 * @example
 * parseWaves('1, 25%', 10); // { waves: [{ count: 1, maxConcurrent: 10 }, { share: 0.25, maxConcurrent: 10 }] }
 * checkRolloutForm(text).problem; // null, or 'Soak: whole seconds from 0 to 86400'
 * waveStats(rollout); // [{ total: 1, succeeded: 1, failed: 0 }, …]
 */
import type { RolloutView } from '../../../src/host/contract.js';

export const DEFAULT_WAVES_TEXT = '1, 5%, 25%, 100%';
/** A job's trial when neither the rollout nor its image sets one (src/firmware/update-job-types.ts). */
export const DEFAULT_TRIAL_SECONDS = 10;

/** The shape of a maintenance window (the host checks it fully). */
const WINDOW_SHAPE = /^([a-z,-]+\s+)?\d{1,2}:\d{2}-\d{1,2}:\d{2}(\s+(utc|local))?$/i;

export interface Wave {
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

/** A whole number from a text field, or null. */
function whole(text: string, min: number, max: number): number | null {
  if (!/^\s*\d+\s*$/.test(text)) return null;
  const n = Number(text);
  return n >= min && n <= max ? n : null;
}

/** The rollout form's fields as typed. */
export interface RolloutFormText {
  readonly tag: string;
  readonly running: string;
  readonly waves: string;
  readonly concurrent: string;
  readonly fail: string;
  readonly onFailure: 'pause' | 'abort';
  readonly soak: string;
  readonly trial: string;
  readonly window: string;
  readonly checks: string;
}

/** The form's fields when it opens: the image's own soak and trial (else none and the job's 10 s). */
export function initialRolloutFormText(image: {
  readonly soakSeconds: number | null;
  readonly trialSeconds: number | null;
}): RolloutFormText {
  return {
    tag: '',
    running: '',
    waves: DEFAULT_WAVES_TEXT,
    concurrent: '10',
    fail: '20',
    onFailure: 'pause',
    soak: String(image.soakSeconds ?? 0),
    trial: String(image.trialSeconds ?? DEFAULT_TRIAL_SECONDS),
    window: '',
    checks: '',
  };
}

/** The form's fields read: the numbers (null out of bounds), the waves, and the first problem (null: none). */
export interface RolloutFormCheck {
  readonly concurrent: number | null;
  readonly failPercent: number | null;
  readonly soak: number | null;
  readonly trial: number | null;
  readonly parsed: { waves: Wave[] } | { error: string };
  readonly problem: string | null;
}

export function checkRolloutForm(text: RolloutFormText): RolloutFormCheck {
  const concurrent = whole(text.concurrent, 1, 1000);
  const failPercent = whole(text.fail, 0, 100);
  const soak = whole(text.soak, 0, 86_400);
  const trial = whole(text.trial, 1, 86_400);
  const parsed = parseWaves(text.waves, concurrent ?? 10);
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
              : text.window.trim() !== '' && !WINDOW_SHAPE.test(text.window.trim())
                ? 'Window: hours as HH:MM-HH:MM, after days if wanted (mon-fri 02:00-04:00 utc)'
                : null;
  return { concurrent, failPercent, soak, trial, parsed, problem };
}

/** A device of the image's kinds, as the form counts it. */
export interface Candidate {
  readonly id: string;
  readonly online: boolean;
  readonly firmware: string | null;
  readonly tags: readonly string[];
}

/** The devices a rollout would take: the tag and running version if given (trimmed), not on `version` yet. */
export function matchingDevices(
  fleet: readonly Candidate[],
  tag: string,
  runningVersion: string,
  version: string,
): Candidate[] {
  return fleet.filter(
    (d) =>
      (tag === '' || d.tags.includes(tag)) &&
      (runningVersion === '' || d.firmware === runningVersion) &&
      d.firmware !== version,
  );
}

/** A rollout's state → its badge's tone. */
export const STATE_TONE: Readonly<Record<string, string>> = {
  running: 'tone-info',
  paused: 'tone-warn',
  completed: 'tone-ok',
  aborted: 'tone-err',
  cancelled: '',
  damaged: 'tone-err',
};

/** The states of a rollout that has not ended. */
export const ACTIVE: ReadonlySet<string> = new Set(['running', 'paused']);

/** A device's state in a rollout → its badge's tone. */
export const DEVICE_TONE: Readonly<Record<string, string>> = {
  pending: '',
  updating: 'tone-info',
  waitingRetry: 'tone-warn',
  succeeded: 'tone-ok',
  failed: 'tone-err',
  skipped: 'tone-warn',
};

/** A device's state in words where its name is not. */
export const DEVICE_LABEL: Readonly<Record<string, string>> = { waitingRetry: 'waiting to retry' };

/** The order of a rollout's counts by device state. */
export const COUNT_ORDER = ['succeeded', 'updating', 'waitingRetry', 'pending', 'failed', 'skipped'];

export interface WaveStat {
  readonly total: number;
  readonly succeeded: number;
  readonly failed: number;
}

/** Each wave's devices: how many, how many succeeded, how many failed or were skipped. */
export function waveStats(r: RolloutView): WaveStat[] {
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

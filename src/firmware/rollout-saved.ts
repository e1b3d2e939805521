/**
 * A rollout as the store holds it (`firmware_rollouts.body`: its last snapshot and its policy),
 * checked by a zod schema before a restarted app lists or continues it: a damaged row, or one
 * saved in an older shape, is refused with the rollout and the field named, and never reaches
 * `createRollout`. The schema only checks: the body is returned as it was saved.
 *
 * @example
 * const saved = readSavedRollout('ro-1a2b3c4d', row.body);
 * if (!saved.ok) log.error(saved.error.message); // "rollout ro-1a2b3c4d: saved snapshot.wave must be a whole number >= 0, got -1"
 * else createRollout({ ..., policy: saved.value.policy, restore: saved.value.snapshot });
 */
import { z } from 'zod';
import { fraction, nonEmptyString, nonNegativeInt, optionsProblem, positiveInt } from '../lib/options.js';
import { type Failure, ok, type Result } from '../lib/result.js';
import type { RolloutPolicy, RolloutSnapshot } from './rollout-types.js';
import { MAX_TRIAL_CHECKS, parseTrialCheck } from './trial-checks.js';

const ROLLOUT_STATES = ['running', 'paused', 'completed', 'aborted', 'cancelled'] as const;
const DEVICE_STATES = ['pending', 'updating', 'waitingRetry', 'succeeded', 'failed', 'skipped'] as const;

const aString = z.string({ error: 'must be a string' });
const aNumber = z.number({ error: 'must be a number' });

/** A saved rollout without trial checks (saved before they existed) still reads: the field is optional. */
const trialChecksSchema = z
  .array(
    aString.refine((t) => parseTrialCheck(t).ok, {
      error: 'must be a trial check (METRIC<=N, METRIC>=N or METRIC)',
    }),
    { error: 'must be an array' },
  )
  .max(MAX_TRIAL_CHECKS, { error: `must have at most ${MAX_TRIAL_CHECKS} checks` });

const deviceSchema = z.object({
  state: z.enum(DEVICE_STATES, { error: `must be one of ${DEVICE_STATES.join(', ')}` }),
  wave: nonNegativeInt,
  attempts: nonNegativeInt,
  step: aString.optional(),
  error: z.object({ code: aString, message: aString }, { error: 'must be an object' }).optional(),
});

const snapshotSchema = z.object(
  {
    id: nonEmptyString,
    version: nonEmptyString,
    sha256: nonEmptyString,
    state: z.enum(ROLLOUT_STATES, { error: `must be one of ${ROLLOUT_STATES.join(', ')}` }),
    reason: aString.optional(),
    window: aString.optional(),
    windowOpensAt: aNumber.optional(),
    soakEndsAt: aNumber.optional(),
    trialChecks: trialChecksSchema.optional(),
    wave: nonNegativeInt,
    waveEnds: z.array(nonNegativeInt, { error: 'must be an array' }),
    order: z.array(nonEmptyString, { error: 'must be an array' }),
    devices: z.record(aString, deviceSchema, { error: 'must be an object' }),
    counts: z.record(aString, nonNegativeInt, { error: 'must be an object' }),
    createdBy: aString,
    createdAt: aNumber,
  },
  { error: 'must be an object' },
);

const windowSchema = z.object(
  {
    startMinute: nonNegativeInt.max(1439, { error: 'must be a minute of the day, 0…1439' }),
    durationMinutes: positiveInt.max(1440, { error: 'must be 1…1440 minutes' }),
    days: z
      .array(nonNegativeInt.max(6, { error: 'must be a weekday, 0…6' }), { error: 'must be an array' })
      .optional(),
    zone: z.enum(['local', 'utc'], { error: "must be 'local' or 'utc'" }).optional(),
  },
  { error: 'must be an object' },
);

const policySchema = z.object(
  {
    waves: z
      .array(
        z.object(
          {
            share: fraction.optional(),
            count: positiveInt.optional(),
            maxConcurrent: positiveInt.optional(),
          },
          { error: 'must be an object' },
        ),
        { error: 'must be an array' },
      )
      .optional(),
    successThreshold: fraction.optional(),
    maxFailures: nonNegativeInt.optional(),
    maxFailureShare: fraction.optional(),
    onFailure: z.enum(['pause', 'abort'], { error: "must be 'pause' or 'abort'" }).optional(),
    soakMs: nonNegativeInt.optional(),
    trialMs: positiveInt.optional(),
    trialChecks: trialChecksSchema.optional(),
    retries: nonNegativeInt.optional(),
    retryDelayMs: nonNegativeInt.optional(),
    window: windowSchema.optional(),
  },
  { error: 'must be an object' },
);

/** The body of a `firmware_rollouts` row. */
export const savedRolloutSchema = z.object({ snapshot: snapshotSchema, policy: policySchema });

export interface SavedRollout {
  readonly snapshot: RolloutSnapshot;
  readonly policy: RolloutPolicy;
}

/** Why a stored rollout cannot be read back: the message names the rollout and `field`. */
export interface SavedRolloutProblem extends Failure<'badRollout'> {
  /** The first field at fault, as the message names it (`snapshot.wave`, `policy.waves[0].share`). */
  readonly field: string;
}

/**
 * The snapshot and policy of stored rollout `id`, or `badRollout` naming the rollout and the
 * first field that is wrong (a snapshot of another rollout's id is one).
 */
export function readSavedRollout(id: string, body: unknown): Result<SavedRollout, SavedRolloutProblem> {
  const found =
    optionsProblem(savedRolloutSchema, body) ??
    ((body as { snapshot: { id: string } }).snapshot.id === id
      ? undefined
      : `snapshot.id is another rollout's, got ${JSON.stringify((body as { snapshot: { id: string } }).snapshot.id.slice(0, 80))}`);
  if (found === undefined) return ok(body as SavedRollout);
  // optionsProblem says "<field> <what is wrong>"; the whole body is its "options".
  const problem = found.startsWith('options ') ? `body${found.slice('options'.length)}` : found;
  const field = problem.slice(0, problem.indexOf(' '));
  return { ok: false, error: { code: 'badRollout', message: `rollout ${id}: saved ${problem}`, field } };
}

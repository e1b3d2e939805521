/**
 * Bulk adoption jobs in the store (the host's `adoptBulk`, src/host/api/bulk-adopt.ts): what was
 * asked (the ids in order, the selection, who and when) and how far it got (ids `[0, done)` had
 * their turn; adopted, failed, skipped; the failures by code; a cancel asked). Kept so a host
 * restart resumes a running job instead of forgetting it. Engine-neutral: the types, the checks
 * going in and the row parsing coming out; the SQL is in sqlite-adopt-jobs.ts and
 * postgres-adopt-jobs.ts.
 *
 * One job per owner (the instance that runs it: `local`, or a cluster instance's id) is kept:
 * creating one replaces the owner's job before it. The ids are written once, at the create, in a
 * table of their own: the progress row rewritten after every batch stays small at 10,000 ids.
 *
 * @example
 * await store.createAdoptJob({ id: 'adopt-1', owner: 'local', ids, selection: { ids: 2 }, startedBy: 'ana', startedAt, progress });
 * await store.updateAdoptJob('adopt-1', { ...progress, done: 16, adopted: 16 });
 * const job = await store.loadAdoptJob('local'); // { ok: true, value: { id: 'adopt-1', ids, progress, … } }
 */
import { isJsonObject, MAX_NAME_LENGTH, messageOf, parseJson, parseStringArray } from './records.js';
import type { JsonObject, RowResult, StoreResult } from './store.js';
import { StoreError } from './store.js';

export type AdoptJobState = 'running' | 'finished' | 'cancelled';

export const ADOPT_JOB_STATES: readonly AdoptJobState[] = ['running', 'finished', 'cancelled'];

/** Most ids one job takes. */
export const MAX_ADOPT_JOB_IDS = 1_000_000;

/** The devices that failed with one code: how many, the first message, the first few ids. */
export interface AdoptJobFailure {
  readonly code: string;
  readonly count: number;
  readonly message: string;
  readonly ids: readonly string[];
}

/** How far a job got. `adopted + failed + skipped` is `done`. */
export interface AdoptJobProgress {
  readonly state: AdoptJobState;
  /** The ids `[0, done)` had their turn; the rest are left. */
  readonly done: number;
  readonly adopted: number;
  readonly failed: number;
  readonly skipped: number;
  readonly failures: readonly AdoptJobFailure[];
  /** Who asked it to stop (it stops after the batch in flight); null: nobody. */
  readonly cancelledBy: string | null;
  readonly finishedAt: number | null;
}

/** What {@link AdoptJobStore.createAdoptJob} takes. */
export interface AdoptJobInput {
  readonly id: string;
  /** The instance that runs it: `local`, or a cluster instance's id. */
  readonly owner: string;
  /** The devices to adopt, in their order; the total is their count. */
  readonly ids: readonly string[];
  /** What was asked (explicit ids, or a filter), as the host describes it. */
  readonly selection: JsonObject;
  readonly startedBy: string;
  readonly startedAt: number;
  readonly progress: AdoptJobProgress;
}

export interface AdoptJobRecord extends AdoptJobInput {
  readonly updatedAt: number;
}

/** The part of the {@link Store} that keeps bulk adoption jobs. */
export interface AdoptJobStore {
  /**
   * Stores a new job and its ids (`'full'`), replacing the job its owner had before (only the
   * latest is kept). `alreadyRecorded` if a job with this id is stored (nothing changed).
   */
  createAdoptJob(job: AdoptJobInput): Promise<StoreResult<void, 'alreadyRecorded'>>;
  /**
   * Records how far a job got (`'full'`). `notFound` if no job with that id is stored (it was
   * replaced by a newer one of its owner).
   */
  updateAdoptJob(id: string, progress: AdoptJobProgress): Promise<StoreResult<void, 'notFound'>>;
  /** The owner's job, or undefined when it has none; `badRecord` if its row does not parse. */
  loadAdoptJob(owner: string): Promise<RowResult<AdoptJobRecord> | undefined>;
}

// ---------------------------------------------------------------------------------------------
// Going in: misuse throws `invalidArgument` naming the field.

function invalid(field: string, message: string): StoreError {
  return new StoreError('invalidArgument', `${field} ${message}`, { field });
}

function name(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_NAME_LENGTH)
    throw invalid(field, `must be a non-empty string of at most ${MAX_NAME_LENGTH} characters`);
  return value;
}

function count(value: unknown, field: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max)
    throw invalid(field, `must be an integer in [0, ${max}]`);
  return value;
}

function time(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(Math.round(value)))
    throw invalid(field, 'must be a finite time in milliseconds');
  return Math.round(value);
}

function json(value: unknown, field: string): string {
  try {
    return JSON.stringify(value);
  } catch (cause) {
    throw new StoreError('invalidArgument', `${field} is not JSON-serializable: ${messageOf(cause)}`, {
      field,
      cause,
    });
  }
}

/** The progress columns, in order: state, done, adopted, failed, skipped, failures, cancelled_by, finished_at. */
export type AdoptProgressParams = [
  string,
  number,
  number,
  number,
  number,
  string,
  string | null,
  number | null,
];

/** Checks a progress (of a job of at most `total` ids) and returns its columns. */
export function adoptProgressParams(
  p: AdoptJobProgress,
  total = MAX_ADOPT_JOB_IDS,
  field = 'progress',
): AdoptProgressParams {
  if (p === null || typeof p !== 'object') throw invalid(field, 'must be an object');
  if (!ADOPT_JOB_STATES.includes(p.state))
    throw invalid(`${field}.state`, `must be one of ${ADOPT_JOB_STATES.join(', ')}`);
  const done = count(p.done, `${field}.done`, total);
  const adopted = count(p.adopted, `${field}.adopted`, total);
  const failed = count(p.failed, `${field}.failed`, total);
  const skipped = count(p.skipped, `${field}.skipped`, total);
  if (adopted + failed + skipped !== done)
    throw invalid(`${field}.done`, `must be adopted + failed + skipped (${adopted + failed + skipped})`);
  if (!Array.isArray(p.failures)) throw invalid(`${field}.failures`, 'must be an array');
  p.failures.forEach((f, i) => {
    const at = `${field}.failures[${i}]`;
    if (!isJsonObject(f)) throw invalid(at, 'must be { code, count, message, ids }');
    name(f.code, `${at}.code`);
    count(f.count, `${at}.count`, total);
    if (typeof f.message !== 'string') throw invalid(`${at}.message`, 'must be a string');
    if (!Array.isArray(f.ids) || !f.ids.every((id) => typeof id === 'string'))
      throw invalid(`${at}.ids`, 'must be an array of strings');
  });
  const cancelledBy = p.cancelledBy === null ? null : name(p.cancelledBy, `${field}.cancelledBy`);
  const finishedAt = p.finishedAt === null ? null : time(p.finishedAt, `${field}.finishedAt`);
  return [
    p.state,
    done,
    adopted,
    failed,
    skipped,
    json(p.failures, `${field}.failures`),
    cancelledBy,
    finishedAt,
  ];
}

/** A checked new job: its columns and its ids as JSON text. */
export interface AdoptJobParams {
  readonly id: string;
  readonly owner: string;
  readonly selection: string;
  readonly startedBy: string;
  readonly startedAt: number;
  readonly total: number;
  readonly ids: string;
  readonly progress: AdoptProgressParams;
}

export function adoptJobParams(job: AdoptJobInput): AdoptJobParams {
  if (job === null || typeof job !== 'object') throw invalid('job', 'must be an object');
  if (!Array.isArray(job.ids) || job.ids.length > MAX_ADOPT_JOB_IDS)
    throw invalid('ids', `must be an array of at most ${MAX_ADOPT_JOB_IDS} device ids`);
  job.ids.forEach((id, i) => {
    name(id, `ids[${i}]`);
  });
  if (!isJsonObject(job.selection)) throw invalid('selection', 'must be a plain object');
  return {
    id: name(job.id, 'id'),
    owner: name(job.owner, 'owner'),
    selection: json(job.selection, 'selection'),
    startedBy: name(job.startedBy, 'startedBy'),
    startedAt: time(job.startedAt, 'startedAt'),
    total: job.ids.length,
    ids: json(job.ids, 'ids'),
    progress: adoptProgressParams(job.progress, job.ids.length),
  };
}

// ---------------------------------------------------------------------------------------------
// Coming out: never throws; a row that does not parse is `badRecord`.

/** The stored job: its row joined with its ids. */
export interface AdoptJobRow {
  id: string;
  owner: unknown;
  selection: unknown;
  started_by: unknown;
  started_at: unknown;
  total: unknown;
  state: unknown;
  done: unknown;
  adopted: unknown;
  failed: unknown;
  skipped: unknown;
  failures: unknown;
  cancelled_by: unknown;
  finished_at: unknown;
  updated_at: unknown;
  ids: unknown;
}

/** Thrown only inside this module, to leave a row's parsing at its first problem. */
class RowProblem {
  constructor(readonly reason: string) {}
}

function text(value: unknown, column: string): string {
  if (typeof value !== 'string') throw new RowProblem(`${column} is not text`);
  return value;
}

function int(value: unknown, column: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw new RowProblem(`${column} is not a count or time`);
  return value;
}

function failuresFrom(value: unknown): AdoptJobFailure[] {
  const parsed = parseJson(value);
  if (!parsed.ok) throw new RowProblem(`failures ${parsed.error}`);
  const list = parsed.value;
  if (!Array.isArray(list)) throw new RowProblem('failures is not a JSON array');
  return list.map((f, i) => {
    if (
      !isJsonObject(f) ||
      typeof f.code !== 'string' ||
      typeof f.message !== 'string' ||
      !Number.isInteger(f.count) ||
      !Array.isArray(f.ids) ||
      !f.ids.every((id) => typeof id === 'string')
    )
      throw new RowProblem(`failures[${i}] is not { code, count, message, ids }`);
    return { code: f.code, count: f.count as number, message: f.message, ids: f.ids as string[] };
  });
}

function progressFrom(row: AdoptJobRow, total: number): AdoptJobProgress {
  const state = row.state;
  if (typeof state !== 'string' || !(ADOPT_JOB_STATES as readonly string[]).includes(state))
    throw new RowProblem(`state ${JSON.stringify(state)} is not a job state`);
  const done = int(row.done, 'done');
  const adopted = int(row.adopted, 'adopted');
  const failed = int(row.failed, 'failed');
  const skipped = int(row.skipped, 'skipped');
  if (done > total || adopted + failed + skipped !== done)
    throw new RowProblem(`done ${done} does not add up (total ${total})`);
  return {
    state: state as AdoptJobState,
    done,
    adopted,
    failed,
    skipped,
    failures: failuresFrom(row.failures),
    cancelledBy: row.cancelled_by === null ? null : text(row.cancelled_by, 'cancelled_by'),
    finishedAt: row.finished_at === null ? null : int(row.finished_at, 'finished_at'),
  };
}

export function adoptJobFromRow(row: AdoptJobRow): RowResult<AdoptJobRecord> {
  try {
    const ids = parseStringArray(row.ids);
    if (!ids.ok) throw new RowProblem(`ids ${ids.error}`);
    const selection = parseJson(row.selection);
    if (!selection.ok || !isJsonObject(selection.value))
      throw new RowProblem('selection is not a JSON object');
    const total = int(row.total, 'total');
    if (total !== ids.value.length) throw new RowProblem(`total ${total} is not the ${ids.value.length} ids`);
    return {
      ok: true,
      value: {
        id: row.id,
        owner: text(row.owner, 'owner'),
        ids: ids.value,
        selection: selection.value,
        startedBy: text(row.started_by, 'started_by'),
        startedAt: int(row.started_at, 'started_at'),
        progress: progressFrom(row, total),
        updatedAt: int(row.updated_at, 'updated_at'),
      },
    };
  } catch (e) {
    const reason = e instanceof RowProblem ? e.reason : messageOf(e);
    return {
      ok: false,
      id: row.id,
      error: { code: 'badRecord', message: `stored bulk adoption '${row.id}': ${reason}` },
    };
  }
}

export function adoptJobCreated(changed: number, id: string): StoreResult<void, 'alreadyRecorded'> {
  return changed > 0
    ? { ok: true, value: undefined }
    : { ok: false, error: { code: 'alreadyRecorded', message: `bulk adoption '${id}' is already stored` } };
}

/**
 * `updateAdoptJob`'s answer for what its write returned: rows changed, or `-(total + 1)` when the
 * progress's `done` is above the stored job's total (misuse: throws naming the field).
 */
export function adoptJobUpdated(
  changed: number,
  id: string,
  progress: AdoptJobProgress,
): StoreResult<void, 'notFound'> {
  if (changed < 0) adoptProgressParams(progress, -changed - 1);
  return changed > 0
    ? { ok: true, value: undefined }
    : { ok: false, error: { code: 'notFound', message: `no bulk adoption '${id}' is stored` } };
}

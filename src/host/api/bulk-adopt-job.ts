/**
 * One bulk adoption job's steps (src/host/api/bulk-adopt.ts): its batches through the single
 * adopt, each adopted device audited, its progress saved in the store after every batch
 * (src/store/adopt-jobs.ts) and its start and end in the event log.
 *
 * What is saved is always a batch boundary: the ids `[0, done)` had their turn and the counts add
 * up to `done`. A batch cut short by the host stopping is not saved: the job is not over, it
 * resumes at the next start from the last saved batch (src/host/api/bulk-adopt-resume.ts), and
 * finds there which of that batch's devices it already adopted.
 *
 * @example
 * const job = await startJob(ctx, view, ids, (j) => { current = j; });
 * await job.ended;
 */
import type { AdoptOutcome } from '../../devices/sighting.js';
import type { AdoptJobProgress } from '../../store/adopt-jobs.js';
import type { EventInput, JsonObject } from '../../store/store.js';
import { StoreError } from '../../store/store.js';
import type { App } from '../app.js';
import type { AdoptBulkView, DiscoveredView } from '../contract.js';
import type { ResumeState } from './bulk-adopt-resume.js';
import { settleResumed, waitForReturn } from './bulk-adopt-resume.js';
import { DEVICE_AUDIT_EVENT } from './device-changes.js';
import { ApiFailure } from './handlers.js';

/** Devices adopted side by side before the job yields to the event loop. */
export const BATCH_SIZE = 16;
/** Ids kept per failure code in the job's view. */
const FAILED_IDS_KEPT = 10;
/** The event kind of a bulk adoption's start and end. */
export const ADOPT_BULK_EVENT = 'fleet.adoptBulk';
/** Who cancelled a job the host stopped under: it is not over, it resumes at the next start. */
export const HOST_STOPPING = 'host stopping';

/** What a bulk adoption needs of the host: the discovered list and the single adopt. */
export interface BulkAdoptSources {
  /** Every convention's discovered devices. */
  list(): readonly DiscoveredView[];
  /** The single-device adopt; may throw an ApiFailure (e.g. `unavailable` without links). */
  adopt(id: string): Promise<AdoptOutcome>;
}

export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export interface Job {
  view: Mutable<AdoptBulkView>;
  /** Every id of the job, in order; `view.done` of them had their turn. */
  readonly ids: readonly string[];
  failures: Map<string, { count: number; message: string; ids: string[] }>;
  cancelBy: string | undefined;
  ended: Promise<void>;
  /** Set when the job resumed after a host restart. */
  resumed: ResumeState | undefined;
  /** False when the store did not take the job: it runs, but a restart forgets it. */
  saved: boolean;
}

/** What a job's steps need of the host. */
export interface BulkContext {
  readonly app: App;
  readonly sources: BulkAdoptSources;
  readonly now: () => number;
  /** The app stopped: nothing more is written. */
  readonly stopping: () => boolean;
}

/** What a device's turn came to: adopted (to audit, unless it already is), or not. */
export type Turn =
  | { readonly id: string; readonly kind: string | null; readonly audit: JsonObject }
  | undefined;

export function snapshot(j: Job): AdoptBulkView {
  return {
    ...j.view,
    failures: [...j.failures].map(([code, f]) => ({
      code,
      count: f.count,
      message: f.message,
      ids: [...f.ids],
    })),
  };
}

/** The job's progress as the store keeps it. */
export function progressOf(j: Job): AdoptJobProgress {
  const v = snapshot(j);
  return {
    state: v.state,
    done: v.done,
    adopted: v.adopted,
    failed: v.failed,
    skipped: v.skipped,
    failures: v.failures,
    cancelledBy: j.cancelBy ?? v.cancelledBy,
    finishedAt: v.finishedAt,
  };
}

/** Saves the job's progress; a store that stopped under a stopping host is not worth a report. */
export async function saveProgress(ctx: BulkContext, j: Job, progress = progressOf(j)): Promise<void> {
  if (!j.saved || ctx.stopping()) return;
  try {
    const r = await ctx.app.store.updateAdoptJob(j.view.id, progress);
    if (!r.ok) ctx.app.runtime.report(`adoptBulk: ${r.error.message}`, new Error(r.error.code));
  } catch (error) {
    if (!(error instanceof StoreError && error.code === 'closed'))
      ctx.app.runtime.report('adoptBulk: could not save the job', error);
  }
}

export async function logJob(ctx: BulkContext, data: JsonObject): Promise<void> {
  try {
    await ctx.app.store.appendEvents([{ at: ctx.now(), kind: ADOPT_BULK_EVENT, data }], {
      durability: 'full',
    });
  } catch (error) {
    ctx.app.runtime.report('adoptBulk: could not log the job', error);
  }
}

/** Counts a device that was not adopted: skipped when gone, failed (by code) otherwise. */
export function countRefusal(j: Job, id: string, code: string, message: string): void {
  const v = j.view;
  v.done++;
  if (code === 'notFound') {
    v.skipped++;
    return;
  }
  v.failed++;
  const f = j.failures.get(code) ?? { count: 0, message, ids: [] };
  f.count++;
  if (f.ids.length < FAILED_IDS_KEPT) f.ids.push(id);
  j.failures.set(code, f);
  // The fleet refuses everything once it stops: the rest would only fail the same way.
  if (code === 'stopped') j.cancelBy ??= HOST_STOPPING;
}

/** One device through the single adopt; its outcome counted, its audit returned when adopted. */
async function adoptOne(ctx: BulkContext, j: Job, id: string): Promise<Turn> {
  let r: AdoptOutcome;
  try {
    r = await ctx.sources.adopt(id);
  } catch (error) {
    if (!(error instanceof ApiFailure)) ctx.app.runtime.report(`adoptBulk: adopting '${id}' failed`, error);
    const code = error instanceof ApiFailure ? error.code : 'internal';
    r = { ok: false, error: { code, message: (error as Error).message } };
  }
  if (!r.ok) {
    countRefusal(j, id, r.error.code, r.error.message);
    return undefined;
  }
  j.view.done++;
  j.view.adopted++;
  return { id, kind: ctx.app.fleet.device(id)?.kind ?? null, audit: {} };
}

async function audit(ctx: BulkContext, j: Job, turns: readonly Turn[]): Promise<void> {
  const events: EventInput[] = turns.flatMap((t) =>
    t
      ? [
          {
            at: ctx.now(),
            deviceId: t.id,
            kind: DEVICE_AUDIT_EVENT,
            data: { action: 'adopt', actor: j.view.startedBy, kind: t.kind, job: j.view.id, ...t.audit },
          },
        ]
      : [],
  );
  if (events.length === 0) return;
  // Written even while the host stops (the store closes last): a lost audit is written again at
  // the resume, but only once the device is found adopted without one.
  await ctx.app.store.appendEvents(events, { durability: 'full' }).catch((error: unknown) => {
    if (!(error instanceof StoreError && error.code === 'closed'))
      ctx.app.runtime.report('adoptBulk: could not audit adopted devices', error);
  });
}

/** The job's batches from where it is, each saved after its devices are audited; then its end. */
export async function runJob(ctx: BulkContext, j: Job): Promise<void> {
  const { ids } = j;
  while (j.view.done < ids.length && j.cancelBy === undefined && !ctx.stopping()) {
    const batch = ids.slice(j.view.done, j.view.done + BATCH_SIZE);
    if (j.resumed) await waitForReturn(ctx, j, batch);
    if (j.cancelBy !== undefined || ctx.stopping()) break;
    const turns = await Promise.all(
      batch.map((id) =>
        j.resumed && ctx.app.fleet.has(id) ? settleResumed(ctx, j, id) : adoptOne(ctx, j, id),
      ),
    );
    await audit(ctx, j, turns);
    if (j.cancelBy === HOST_STOPPING) break;
    await saveProgress(ctx, j);
    // A turn of the event loop: the links' messages and the API's calls go between batches.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await endJob(ctx, j);
}

/** Ends the job: saved and logged before it says it ended, unless the host stopped under it. */
export async function endJob(ctx: BulkContext, j: Job): Promise<void> {
  const v = j.view;
  if (ctx.stopping()) j.cancelBy ??= HOST_STOPPING;
  const cancelledBy = j.cancelBy ?? null;
  const state = cancelledBy === null ? 'finished' : 'cancelled';
  const finishedAt = ctx.now();
  if (cancelledBy !== HOST_STOPPING) {
    // Whoever sees it ended finds its end in the store and the event log.
    await saveProgress(ctx, j, { ...progressOf(j), state, cancelledBy, finishedAt });
    await logJob(ctx, {
      action: state,
      job: v.id,
      actor: cancelledBy ?? v.startedBy,
      total: v.total,
      adopted: v.adopted,
      failed: v.failed,
      skipped: v.skipped,
    });
  }
  v.cancelledBy = cancelledBy;
  v.finishedAt = finishedAt;
  v.state = state;
}

/**
 * Starts a job: it is there (and busy) at once, runs once it is stored and its start is in the
 * log (a cancel asked meanwhile waits for that too), and a failure of its own ends it cancelled
 * with the error. `begin` stores and logs it (a new job) or logs the resume (a resumed one).
 */
export function launchJob(ctx: BulkContext, j: Job, begin: () => Promise<void>): Promise<void> {
  j.ended = begin()
    .then(() => runJob(ctx, j))
    .catch((error: unknown) => {
      ctx.app.runtime.report('adoptBulk: the job failed', error);
      j.view.state = 'cancelled';
      j.view.cancelledBy = `error: ${(error as Error).message}`;
      j.view.finishedAt = ctx.now();
    });
  return j.ended;
}

/** The owner of this host's jobs in the store: a cluster instance's id, else `local`. */
export function jobOwner(app: App): string {
  return app.cluster?.keeper.instanceId ?? 'local';
}

/** Stores a new job and logs its start; a store that refuses it leaves the job running, unsaved. */
export async function beginNewJob(ctx: BulkContext, j: Job): Promise<void> {
  const v = j.view;
  try {
    const r = await ctx.app.store.createAdoptJob({
      id: v.id,
      owner: jobOwner(ctx.app),
      ids: j.ids,
      selection: v.selection as JsonObject,
      startedBy: v.startedBy,
      startedAt: v.startedAt,
      progress: progressOf(j),
    });
    j.saved = r.ok;
    if (!r.ok) ctx.app.runtime.report(`adoptBulk: ${r.error.message}`, new Error(r.error.code));
  } catch (error) {
    j.saved = false;
    ctx.app.runtime.report('adoptBulk: could not store the job (a restart will forget it)', error);
  }
  await logJob(ctx, {
    action: 'started',
    job: v.id,
    actor: v.startedBy,
    total: v.total,
    selection: v.selection as JsonObject,
  });
}

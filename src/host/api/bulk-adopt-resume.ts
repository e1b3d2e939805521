/**
 * A bulk adoption that was running when the host stopped (or died) goes on at the next start
 * (issue 13): loaded from the store (src/store/adopt-jobs.ts) with the same id, counts and
 * failures, it adopts what is left from its last saved batch.
 *
 * After a restart the discovered lists start empty: devices are heard again as they reconnect or
 * as the broker hands back their retained hello. So before each batch the resumed job waits for
 * the batch's devices to be heard again (discovered, or in the fleet), for as long as devices of
 * the job keep coming back: once {@link RESUME_QUIET_MS} pass without one more of them heard (or
 * {@link RESUME_MAX_WAIT_MS} since the resume), it stops waiting, and a device still not heard is
 * counted as the job counts any device gone from the list: skipped (`notFound`). Meanwhile the
 * job's view says how many it waits for (`waiting`).
 *
 * A device of the job found in the fleet at its turn: if it was created after the job started and
 * before the resume, this job adopted it before the restart, in the batch the stop cut short
 * (counted adopted; not audited again when its audit names the job; audited now, `recovered`, when
 * the host stopped between the adopt and the audit and it has none), unless its audit says someone
 * adopted it by hand meanwhile. Anything else was adopted by someone else (skipped). So each device
 * is adopted, and audited, once.
 *
 * @example
 * const job = await loadJob(ctx);   // a running job resumes; an ended one is shown as it ended
 */
import type { AdoptJobRecord } from '../../store/adopt-jobs.js';
import type { JsonValue } from '../../store/store.js';
import type { AdoptBulkView } from '../contract.js';
import type { BulkContext, Job, Turn } from './bulk-adopt-job.js';
import { countRefusal, jobOwner, launchJob, logJob } from './bulk-adopt-job.js';
import { DEVICE_AUDIT_EVENT } from './device-changes.js';

/** A resumed job stops waiting for its devices once none more came back for this long. */
export const RESUME_QUIET_MS = 15_000;
/** …or this long after it resumed, whatever still comes back. */
export const RESUME_MAX_WAIT_MS = 10 * 60_000;
/** How often the waiting job looks at the discovered lists again. */
const POLL_MS = 250;

export interface ResumeState {
  readonly at: number;
  /** When one more of the job's devices was last heard again (or the resume). */
  lastArrival: number;
  /** The job's devices left not heard again, at the last look. */
  missing: number;
  /** Devices of the job are no longer waited for. */
  waitOver: boolean;
  /** The discovered ids at the last look, and when. */
  discovered: ReadonlySet<string>;
  lookedAt: number;
}

/** The adoption audits of one device since the job started: the jobs they name (null: none). */
async function adoptionsOf(ctx: BulkContext, id: string, fromMs: number): Promise<(string | null)[]> {
  const page = await ctx.app.store.queryEvents({
    deviceId: id,
    kind: DEVICE_AUDIT_EVENT,
    fromMs,
    limit: 100,
  });
  return page.items.flatMap((item) => {
    const data = item.ok ? (item.value.data as { [key: string]: JsonValue } | null) : null;
    return data?.action === 'adopt' ? [typeof data.job === 'string' ? data.job : null] : [];
  });
}

/** A device of a resumed job already in the fleet at its turn: see the module doc. */
export async function settleResumed(ctx: BulkContext, j: Job, id: string): Promise<Turn> {
  const r = j.resumed;
  const stored = await ctx.app.store.getDevice(id).catch(() => undefined);
  // Adopted while the job ran before the restart: by the job, unless an audit says by hand.
  // Adopted since the resume: not by the job, whose turn it is only now.
  if (r && stored?.ok && stored.value.createdAt >= j.view.startedAt && stored.value.createdAt < r.at) {
    const jobs = await adoptionsOf(ctx, id, j.view.startedAt);
    if (jobs.includes(j.view.id) || jobs.length === 0) {
      j.view.done++;
      j.view.adopted++;
      return jobs.length === 0 ? { id, kind: stored.value.kind, audit: { recovered: true } } : undefined;
    }
  }
  countRefusal(j, id, 'notFound', `'${id}' was adopted by someone else`);
  return undefined;
}

/**
 * Waits until every device of `batch` is heard again (discovered or in the fleet), or until the
 * job's devices stopped coming back; keeps the view's `waiting` count.
 */
export async function waitForReturn(ctx: BulkContext, j: Job, batch: readonly string[]): Promise<void> {
  const r = j.resumed;
  if (!r) return;
  const { fleet } = ctx.app;
  const heard = (id: string) => fleet.has(id) || r.discovered.has(id);
  while (!r.waitOver && j.cancelBy === undefined && !ctx.stopping()) {
    const now = ctx.now();
    if (now - r.lookedAt >= POLL_MS) {
      r.discovered = new Set(ctx.sources.list().map((d) => d.id));
      r.lookedAt = now;
    }
    let missing = 0;
    for (let i = j.view.done; i < j.ids.length; i++) if (!heard(j.ids[i]!)) missing++;
    if (missing < r.missing) r.lastArrival = now;
    r.missing = missing;
    if (missing === 0 || now - r.lastArrival >= RESUME_QUIET_MS || now - r.at >= RESUME_MAX_WAIT_MS)
      r.waitOver = true;
    else if (batch.every(heard)) {
      j.view.waiting = missing;
      return;
    } else await new Promise<void>((resolve) => setTimeout(resolve, POLL_MS).unref());
    j.view.waiting = r.waitOver ? 0 : missing;
  }
  j.view.waiting = 0;
}

function selectionOf(stored: AdoptJobRecord['selection']): AdoptBulkView['selection'] {
  const s = stored as {
    ids?: unknown;
    text?: unknown;
    kind?: unknown;
    convention?: unknown;
    except?: unknown;
  };
  if (typeof s.ids === 'number') return { ids: s.ids };
  return {
    text: typeof s.text === 'string' ? s.text : '',
    ...(typeof s.kind === 'string' ? { kind: s.kind } : {}),
    ...(typeof s.convention === 'string' ? { convention: s.convention } : {}),
    except: typeof s.except === 'number' ? s.except : 0,
  };
}

/** The stored job as a job of this host, at its last saved batch. */
function jobFromRecord(rec: AdoptJobRecord): Job {
  const p = rec.progress;
  return {
    view: {
      id: rec.id,
      state: p.state,
      selection: selectionOf(rec.selection),
      total: rec.ids.length,
      done: p.done,
      adopted: p.adopted,
      failed: p.failed,
      skipped: p.skipped,
      failures: [],
      startedBy: rec.startedBy,
      startedAt: rec.startedAt,
      finishedAt: p.finishedAt,
      cancelledBy: p.state === 'running' ? null : p.cancelledBy,
    },
    ids: rec.ids,
    failures: new Map(
      p.failures.map((f) => [f.code, { count: f.count, message: f.message, ids: [...f.ids] }]),
    ),
    // A cancel asked before the restart is carried out now: the job ends without another batch.
    cancelBy: p.state === 'running' ? (p.cancelledBy ?? undefined) : undefined,
    ended: Promise.resolve(),
    resumed: undefined,
    saved: true,
  };
}

/**
 * This host's job from the store: a running one resumes (its wait, then its batches), an ended one
 * is shown as it ended; undefined when there is none or its row does not load (reported).
 */
export async function loadJob(ctx: BulkContext): Promise<Job | undefined> {
  const loaded = await ctx.app.store.loadAdoptJob(jobOwner(ctx.app));
  if (loaded === undefined) return undefined;
  if (!loaded.ok) {
    ctx.app.runtime.report(`adoptBulk: ${loaded.error.message}`, new Error(loaded.error.code));
    return undefined;
  }
  const j = jobFromRecord(loaded.value);
  if (j.view.state !== 'running') return j;
  const at = ctx.now();
  j.view.resumedAt = at;
  j.resumed = {
    at,
    lastArrival: at,
    missing: Number.POSITIVE_INFINITY,
    waitOver: false,
    discovered: new Set(),
    lookedAt: Number.NEGATIVE_INFINITY,
  };
  void launchJob(ctx, j, async () => {
    await logJob(ctx, {
      action: 'resumed',
      job: j.view.id,
      actor: j.view.startedBy,
      total: j.view.total,
      done: j.view.done,
    });
  });
  return j;
}

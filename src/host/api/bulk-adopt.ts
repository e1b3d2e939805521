/**
 * Adopting many discovered devices as one job on the host (`adoptBulk`, `adoptBulkStatus`,
 * `adoptBulkCancel`): the page only starts it and reads its progress, so leaving the view or
 * reloading the page no longer stops it after the devices adopted so far (it ran in the page, one
 * `adopt` call per device, and stopped silently — 163 of 1,976 in one try).
 *
 * Each device goes through the same adopt as the single `adopt` call (the link hub first, then the
 * convention bridges: own, Homie and Sparkplug alike) and is audited the same way (`device.audit`,
 * action `adopt`, with who started the job); the job's start and end are in the event log as
 * `fleet.adoptBulk`. One job at a time: a second start while one runs is refused `busy`, naming
 * it. The devices go in batches of {@link BATCH_SIZE}, adopted side by side, with a turn of the
 * event loop between batches, so 2,000 adoptions do not starve the links and the API. Cancelling
 * stops it after the batch in flight; so does the app stopping (`cancelledBy: 'host stopping'`).
 * The job lives in memory: a host restart forgets it (the discovered lists are in memory too).
 *
 * @example
 * await api.call('adoptBulk', { filter: { text: 'pump-', except: ['pump-13'] } }); // { state: 'running', total: 1976, … }
 * await api.call('adoptBulkStatus', {}); // { state: 'finished', adopted: 1976, failed: 0, … }
 */
import type { AdoptOutcome } from '../../devices/sighting.js';
import type { JsonObject } from '../../store/store.js';
import type { App } from '../app.js';
import type { AdoptBulkView, DiscoveredView, ParsedArgsOf } from '../contract.js';
import { DEVICE_AUDIT_EVENT } from './device-changes.js';
import type { Handlers } from './handlers.js';
import { ApiFailure } from './handlers.js';

/** Devices adopted side by side before the job yields to the event loop. */
export const BATCH_SIZE = 16;
/** Ids kept per failure code in the job's view. */
const FAILED_IDS_KEPT = 10;
/** The event kind of a bulk adoption's start and end. */
export const ADOPT_BULK_EVENT = 'fleet.adoptBulk';
const DEFAULT_ACTOR = 'api';

/** What a bulk adoption needs of the host: the discovered list and the single adopt. */
export interface BulkAdoptSources {
  /** Every convention's discovered devices. */
  list(): readonly DiscoveredView[];
  /** The single-device adopt; may throw an ApiFailure (e.g. `unavailable` without links). */
  adopt(id: string): Promise<AdoptOutcome>;
}

type Filter = NonNullable<ParsedArgsOf<'adoptBulk'>['filter']>;

/** Whether a discovered row matches the Discovered view's text filter (the view's own rule). */
export function matchesDiscoveredText(d: DiscoveredView, text: string): boolean {
  if (!text) return true;
  const q = text.toLowerCase();
  return [d.id, d.convention, d.kind, d.firmware, d.via, d.reason].some((s) => s.toLowerCase().includes(q));
}

/** The adoptable rows a filter selects, as the view's "Adopt all N": an unknown kind cannot be adopted. */
export function selectDiscovered(list: readonly DiscoveredView[], filter: Filter): string[] {
  const except = new Set(filter.except);
  return list
    .filter(
      (d) =>
        d.reason !== 'unknownKind' &&
        !except.has(d.id) &&
        (filter.kind === undefined || d.kind === filter.kind) &&
        (filter.convention === undefined || d.convention === filter.convention) &&
        matchesDiscoveredText(d, filter.text),
    )
    .map((d) => d.id);
}

interface Job {
  view: Mutable<AdoptBulkView>;
  failures: Map<string, { count: number; message: string; ids: string[] }>;
  cancelBy: string | undefined;
  ended: Promise<void>;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** What a job's steps need of the host. */
interface BulkContext {
  readonly app: App;
  readonly sources: BulkAdoptSources;
  readonly now: () => number;
  /** The app is stopping: nothing more is written. */
  readonly stopping: () => boolean;
}

function snapshot(j: Job): AdoptBulkView {
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

async function logJob(ctx: BulkContext, data: JsonObject): Promise<void> {
  try {
    await ctx.app.store.appendEvents([{ at: ctx.now(), kind: ADOPT_BULK_EVENT, data }], {
      durability: 'full',
    });
  } catch (error) {
    ctx.app.runtime.report('adoptBulk: could not log the job', error);
  }
}

/** One device through the single adopt; its outcome counted, its audit returned when adopted. */
async function adoptOne(
  ctx: BulkContext,
  j: Job,
  id: string,
): Promise<{ id: string; kind: string | null } | undefined> {
  let r: AdoptOutcome;
  try {
    r = await ctx.sources.adopt(id);
  } catch (error) {
    if (!(error instanceof ApiFailure)) ctx.app.runtime.report(`adoptBulk: adopting '${id}' failed`, error);
    const code = error instanceof ApiFailure ? error.code : 'internal';
    r = { ok: false, error: { code, message: (error as Error).message } };
  }
  const v = j.view;
  v.done++;
  if (r.ok) {
    v.adopted++;
    return { id, kind: ctx.app.fleet.device(id)?.kind ?? null };
  }
  if (r.error.code === 'notFound') {
    v.skipped++;
    return undefined;
  }
  v.failed++;
  const f = j.failures.get(r.error.code) ?? { count: 0, message: r.error.message, ids: [] };
  f.count++;
  if (f.ids.length < FAILED_IDS_KEPT) f.ids.push(id);
  j.failures.set(r.error.code, f);
  // The fleet refuses everything once it stops: the rest would only fail the same way.
  if (r.error.code === 'stopped') j.cancelBy ??= 'host stopping';
  return undefined;
}

/** The job's batches, each adopted device audited with who started it; then its end logged. */
async function runJob(ctx: BulkContext, j: Job, ids: readonly string[]): Promise<void> {
  const actor = j.view.startedBy;
  for (let i = 0; i < ids.length && j.cancelBy === undefined; i += BATCH_SIZE) {
    const adopted = await Promise.all(ids.slice(i, i + BATCH_SIZE).map((id) => adoptOne(ctx, j, id)));
    const audits = adopted.flatMap((a) =>
      a
        ? [
            {
              at: ctx.now(),
              deviceId: a.id,
              kind: DEVICE_AUDIT_EVENT,
              data: { action: 'adopt', actor, kind: a.kind, job: j.view.id },
            },
          ]
        : [],
    );
    if (audits.length > 0 && !ctx.stopping())
      await ctx.app.store.appendEvents(audits, { durability: 'full' }).catch((error: unknown) => {
        ctx.app.runtime.report('adoptBulk: could not audit adopted devices', error);
      });
    // A turn of the event loop: the links' messages and the API's calls go between batches.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const v = j.view;
  const cancelledBy = j.cancelBy ?? null;
  const state = cancelledBy === null ? 'finished' : 'cancelled';
  const finishedAt = ctx.now();
  // Logged before the job says it ended: whoever sees it ended finds its end in the event log.
  if (!ctx.stopping())
    await logJob(ctx, {
      action: state,
      job: v.id,
      actor: cancelledBy ?? actor,
      total: v.total,
      adopted: v.adopted,
      failed: v.failed,
      skipped: v.skipped,
    });
  v.cancelledBy = cancelledBy;
  v.finishedAt = finishedAt;
  v.state = state;
}

/** A new job's view: what was asked, nothing done yet. */
function newJobView(
  a: ParsedArgsOf<'adoptBulk'>,
  ids: readonly string[],
  startedBy: string,
  startedAt: number,
): Mutable<AdoptBulkView> {
  return {
    id: `adopt-${startedAt}`,
    state: 'running',
    selection: a.ids
      ? { ids: ids.length }
      : {
          text: a.filter!.text,
          ...(a.filter!.kind !== undefined ? { kind: a.filter!.kind } : {}),
          ...(a.filter!.convention !== undefined ? { convention: a.filter!.convention } : {}),
          except: a.filter!.except.length,
        },
    total: ids.length,
    done: 0,
    adopted: 0,
    failed: 0,
    skipped: 0,
    failures: [],
    startedBy,
    startedAt,
    finishedAt: null,
    cancelledBy: null,
  };
}

/**
 * Starts a job: it is there (and busy) at once, runs once its start is in the log (a cancel asked
 * meanwhile waits for that too), and a failure of its own ends it cancelled with the error.
 */
async function startJob(
  ctx: BulkContext,
  view: Mutable<AdoptBulkView>,
  ids: readonly string[],
  set: (j: Job) => void,
): Promise<Job> {
  let logged!: () => void;
  const started = new Promise<void>((resolve) => {
    logged = resolve;
  });
  const j: Job = { view, failures: new Map(), cancelBy: undefined, ended: started };
  j.ended = started
    .then(() => runJob(ctx, j, ids))
    .catch((error: unknown) => {
      ctx.app.runtime.report('adoptBulk: the job failed', error);
      view.state = 'cancelled';
      view.cancelledBy = `error: ${(error as Error).message}`;
      view.finishedAt = ctx.now();
    });
  set(j);
  await logJob(ctx, {
    action: 'started',
    job: view.id,
    actor: view.startedBy,
    total: view.total,
    selection: view.selection as JsonObject,
  });
  logged();
  return j;
}

export function bulkAdoptHandlers(
  app: App,
  sources: BulkAdoptSources,
): Pick<Handlers, 'adoptBulk' | 'adoptBulkStatus' | 'adoptBulkCancel'> {
  let job: Job | undefined;
  let stopping = false;
  const ctx: BulkContext = { app, sources, now: () => app.runtime.clock.wallNow(), stopping: () => stopping };
  void app.whenStopped().then(() => {
    stopping = true;
    if (job && job.view.state === 'running') job.cancelBy ??= 'host stopping';
  });

  return {
    adoptBulk: async (a, context) => {
      if (job?.view.state === 'running') {
        const v = job.view;
        throw new ApiFailure(
          'busy',
          `bulk adoption ${v.id} is running (started by ${v.startedBy} at ${new Date(v.startedAt).toISOString()}, ` +
            `${v.done}/${v.total} done): wait for it or cancel it`,
        );
      }
      if (stopping) throw new ApiFailure('unavailable', 'the host is stopping');
      const ids = a.ids ? [...new Set(a.ids)] : selectDiscovered(sources.list(), a.filter!);
      if (ids.length === 0)
        throw new ApiFailure('notFound', 'no adoptable discovered device matches the filter');
      const view = newJobView(a, ids, context.actor ?? DEFAULT_ACTOR, ctx.now());
      return snapshot(
        await startJob(ctx, view, ids, (j) => {
          job = j;
        }),
      );
    },

    adoptBulkStatus: async () => (job ? snapshot(job) : null),

    adoptBulkCancel: async (_a, context) => {
      const j = job;
      if (j?.view.state !== 'running') throw new ApiFailure('notFound', 'no bulk adoption is running');
      j.cancelBy ??= context.actor ?? DEFAULT_ACTOR;
      await j.ended;
      return snapshot(j);
    },
  };
}

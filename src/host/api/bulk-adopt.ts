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
 * stops it after the batch in flight.
 *
 * The job is kept in the store, its progress saved after every batch (src/host/api/bulk-adopt-job.ts):
 * when the host stops (or dies) under it, the next start resumes it with the same id from its
 * last saved batch, once its devices are heard again (src/host/api/bulk-adopt-resume.ts), and the
 * status answers it, as the last job's result after it ended. The job is the app's, whichever API
 * handle asks: handles made for one app share it.
 *
 * @example
 * await api.call('adoptBulk', { filter: { text: 'pump-', except: ['pump-13'] } }); // { state: 'running', total: 1976, … }
 * await api.call('adoptBulkStatus', {}); // { state: 'finished', adopted: 1976, failed: 0, … }
 */
import type { App } from '../app.js';
import type { AdoptBulkView, DiscoveredView, ParsedArgsOf } from '../contract.js';
import type { BulkAdoptSources, BulkContext, Job, Mutable } from './bulk-adopt-job.js';
import { beginNewJob, HOST_STOPPING, launchJob, saveProgress, snapshot } from './bulk-adopt-job.js';
import { loadJob } from './bulk-adopt-resume.js';
import type { Handlers } from './handlers.js';
import { ApiFailure } from './handlers.js';

export type { BulkAdoptSources } from './bulk-adopt-job.js';
export { ADOPT_BULK_EVENT, BATCH_SIZE } from './bulk-adopt-job.js';
export { RESUME_QUIET_MS } from './bulk-adopt-resume.js';

const DEFAULT_ACTOR = 'api';

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

/** One app's bulk adoption: its job (the stored one, until a new one starts) and whether it stops. */
interface BulkState {
  job: Job | undefined;
  readonly ctx: BulkContext;
  /** The stored job is loaded (and resumed when it was running). */
  readonly loaded: Promise<void>;
}

/** Per app, so two API handles over one app do not run (or resume) two jobs. */
const states = new WeakMap<App, BulkState>();

function stateOf(app: App, sources: BulkAdoptSources): BulkState {
  const known = states.get(app);
  if (known) return known;
  let stopping = false;
  const ctx: BulkContext = { app, sources, now: () => app.runtime.clock.wallNow(), stopping: () => stopping };
  const state: BulkState = {
    job: undefined,
    ctx,
    loaded: loadJob(ctx).then(
      (j) => {
        state.job ??= j;
      },
      (error: unknown) => app.runtime.report('adoptBulk: could not load the stored job', error),
    ),
  };
  states.set(app, state);
  void app.whenStopped().then(() => {
    stopping = true;
    if (state.job?.view.state === 'running') state.job.cancelBy ??= HOST_STOPPING;
  });
  return state;
}

export function bulkAdoptHandlers(
  app: App,
  sources: BulkAdoptSources,
): Pick<Handlers, 'adoptBulk' | 'adoptBulkStatus' | 'adoptBulkCancel'> {
  const state = stateOf(app, sources);
  const { ctx } = state;

  return {
    adoptBulk: async (a, context) => {
      await state.loaded;
      const running = state.job?.view.state === 'running' ? state.job.view : undefined;
      if (running)
        throw new ApiFailure(
          'busy',
          `bulk adoption ${running.id} is running (started by ${running.startedBy} at ${new Date(running.startedAt).toISOString()}, ` +
            `${running.done}/${running.total} done): wait for it or cancel it`,
        );
      if (ctx.stopping()) throw new ApiFailure('unavailable', 'the host is stopping');
      const ids = a.ids ? [...new Set(a.ids)] : selectDiscovered(sources.list(), a.filter!);
      if (ids.length === 0)
        throw new ApiFailure('notFound', 'no adoptable discovered device matches the filter');
      const j: Job = {
        view: newJobView(a, ids, context.actor ?? DEFAULT_ACTOR, ctx.now()),
        ids,
        failures: new Map(),
        cancelBy: undefined,
        ended: Promise.resolve(),
        resumed: undefined,
        saved: false,
      };
      state.job = j;
      // The job is there (and busy) at once; it runs once it is stored and its start logged.
      let begun!: () => void;
      const started = new Promise<void>((resolve) => {
        begun = resolve;
      });
      void launchJob(ctx, j, async () => {
        await beginNewJob(ctx, j);
        begun();
      });
      await Promise.race([started, j.ended]);
      return snapshot(j);
    },

    adoptBulkStatus: async () => {
      await state.loaded;
      return state.job ? snapshot(state.job) : null;
    },

    adoptBulkCancel: async (_a, context) => {
      await state.loaded;
      const j = state.job;
      if (j?.view.state !== 'running') throw new ApiFailure('notFound', 'no bulk adoption is running');
      if (j.cancelBy === undefined) {
        j.cancelBy = context.actor ?? DEFAULT_ACTOR;
        // Kept at once: a restart before the batch in flight ends still finds the job cancelled.
        await saveProgress(ctx, j);
      }
      await j.ended;
      return snapshot(j);
    },
  };
}

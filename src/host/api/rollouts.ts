/**
 * Rollouts over the API: `rolloutCreate` resolves the devices (explicit ids, or every device of
 * the image's kinds matching a kind, a tag and a running version), freezes the list and starts
 * the waves; `rollouts` lists them, the damaged ones first (state `damaged`, with the field at
 * fault); `rolloutPause`, `rolloutResume`, `rolloutCancel`; `rolloutDelete` removes a damaged one.
 * Every change of a rollout's state is written to the event log (`firmware.rollout`) with who
 * asked; a deletion as `firmware.rolloutDeleted`.
 *
 * @example
 * await api.call('rolloutCreate', { sha256, tag: 'site-a', waves: [{ count: 1 }, { share: 1, maxConcurrent: 20 }] });
 */

import { readRolloutCandidates } from '../../cluster/fleet-reads.js';
import { readOtherRollouts, rolloutInstance } from '../../cluster/shared-rollouts.js';
import { rolloutSoakMs } from '../../firmware/image-soak.js';
import { jobTrialMs } from '../../firmware/image-trial.js';
import type { MaintenanceWindow, RolloutSnapshot } from '../../firmware/rollout.js';
import { parseMaintenanceWindow } from '../../firmware/rollout.js';
import type { DamagedRollout } from '../../firmware/rollout-damage.js';
import type { App } from '../app.js';
import type { ParsedArgsOf, RolloutView } from '../contract.js';
import { requestTrialChecks } from './firmware.js';
import type { Handlers } from './handlers.js';
import { ApiFailure } from './handlers.js';

const DEFAULT_ACTOR = 'api';

export function rolloutView(s: RolloutSnapshot, runsOn: string | null = null): RolloutView {
  const devices: Record<string, RolloutView['devices'][string]> = {};
  for (const [id, d] of Object.entries(s.devices))
    devices[id] = {
      state: d.state,
      wave: d.wave,
      attempts: d.attempts,
      step: d.step ?? null,
      error: d.error ?? null,
    };
  return {
    id: s.id,
    version: s.version,
    sha256: s.sha256,
    state: s.state,
    reason: s.reason ?? null,
    window: s.window ?? null,
    windowOpensAt: s.windowOpensAt ?? null,
    soakEndsAt: s.soakEndsAt ?? null,
    trialChecks: s.trialChecks ?? [],
    wave: s.wave,
    waveEnds: s.waveEnds,
    order: s.order,
    devices,
    counts: s.counts,
    createdBy: s.createdBy,
    createdAt: s.createdAt,
    runsOn,
    damage: null,
  };
}

/** A damaged rollout as a row of the list: what its row still says, no waves, no devices. */
export function damagedRolloutView(d: DamagedRollout): RolloutView {
  return {
    id: d.id,
    version: d.version ?? '',
    sha256: d.sha256 ?? '',
    state: 'damaged',
    reason: d.message,
    window: null,
    windowOpensAt: null,
    soakEndsAt: null,
    trialChecks: [],
    wave: 0,
    waveEnds: [],
    order: [],
    devices: {},
    counts: {},
    createdBy: d.createdBy ?? '',
    createdAt: d.createdAt ?? 0,
    runsOn: null,
    damage: { field: d.field, message: d.message, savedState: d.savedState },
  };
}

/** This instance's rollout; in a cluster, one another instance runs is `notOwner`, naming it. */
async function find(app: App, id: string) {
  const r = app.rollouts.all.get(id);
  if (r) return r;
  const there = app.cluster ? await rolloutInstance(app.cluster.db, id).catch(() => undefined) : undefined;
  if (there !== undefined && there !== app.cluster?.keeper.instanceId)
    throw new ApiFailure(
      'notOwner',
      `rollout '${id}' runs on instance ${there}: pause, resume or cancel it there`,
    );
  throw new ApiFailure('notFound', `no rollout '${id}'`);
}

/** In a cluster, the rollouts the other instances run, as they last wrote them (none alone, or unreadable). */
async function othersRollouts(app: App): Promise<RolloutView[]> {
  const cluster = app.cluster;
  if (!cluster) return [];
  try {
    const mine = app.rollouts.all;
    return (await readOtherRollouts(cluster.db, cluster.keeper.instanceId))
      .filter((o) => !mine.has(o.snapshot.id))
      .map((o) => rolloutView(o.snapshot, o.instance));
  } catch (error) {
    app.runtime.logger.warn('cluster: the other instances’ rollouts not read', { error: String(error) });
    return [];
  }
}

export function rolloutHandlers(
  app: App,
): Pick<
  Handlers,
  'rolloutCreate' | 'rollouts' | 'rolloutPause' | 'rolloutResume' | 'rolloutCancel' | 'rolloutDelete'
> {
  return {
    rolloutCreate: async (a, context) => {
      if (!app.firmware.ok)
        throw new ApiFailure('unavailable', `firmware images are unavailable: ${app.firmware.error.message}`);
      const images = app.firmware.value.images;
      const trialChecks = requestTrialChecks(a.trialChecks);
      let window: MaintenanceWindow | undefined;
      if (a.window !== undefined) {
        const w = parseMaintenanceWindow(a.window);
        if (!w.ok) throw new ApiFailure(w.error.code, w.error.message);
        window = w.value;
      }
      const listing = (await images.list()).images.find((l) => l.image.sha256 === a.sha256);
      if (!listing) throw new ApiFailure('notFound', `no stored image with SHA-256 ${a.sha256}`);
      const devices = await rolloutDevices(app, a, listing.image);
      if (devices.length === 0) throw new ApiFailure('noDevices', 'no device matches: nothing to roll out');
      const bytes = await images.readImage(a.sha256);
      if (!bytes.ok) throw new ApiFailure(bytes.error.code, bytes.error.message);
      // Its own soak, else the one its image declares (frozen into the policy, saved with it).
      const soakMs = rolloutSoakMs(a.soakMs, listing.image);
      // Each device's trial: its own, else the one its image declares, frozen the same way (else the job's default).
      const trialMs = jobTrialMs(a.trialMs, listing.image);
      const started = await app.rollouts.start({
        sha256: a.sha256,
        version: listing.image.version,
        image: bytes.value,
        devices,
        policy: {
          ...(a.waves ? { waves: a.waves } : {}),
          ...(a.successThreshold !== undefined ? { successThreshold: a.successThreshold } : {}),
          ...(a.maxFailures !== undefined ? { maxFailures: a.maxFailures } : {}),
          ...(a.maxFailureShare !== undefined ? { maxFailureShare: a.maxFailureShare } : {}),
          ...(a.onFailure ? { onFailure: a.onFailure } : {}),
          ...(soakMs !== undefined ? { soakMs } : {}),
          ...(trialMs !== undefined ? { trialMs } : {}),
          // Every job of the rollout judges its trial by them (as written, spaces removed).
          ...(trialChecks ? { trialChecks: trialChecks.map((c) => c.text) } : {}),
          ...(a.retries !== undefined ? { retries: a.retries } : {}),
          ...(window ? { window } : {}),
        },
        actor: context.actor ?? DEFAULT_ACTOR,
      });
      if (!started.ok) throw new ApiFailure(started.error.code, started.error.message);
      return rolloutView(started.value.snapshot());
    },

    rollouts: async () => {
      const { rollouts, damaged } = await app.rollouts.list();
      const others = await othersRollouts(app);
      const elsewhere = new Set(others.map((o) => o.id));
      // A rollout another instance took over is shown as that one writes it, not as saved here.
      const mine = rollouts
        .filter((r) => app.rollouts.all.has(r.id) || !elsewhere.has(r.id))
        .map((r) => rolloutView(r));
      const all = [...mine, ...others].sort((x, y) => y.createdAt - x.createdAt);
      return [...damaged.map(damagedRolloutView), ...all];
    },

    rolloutPause: async (a) => {
      const r = await find(app, a.id);
      r.pause();
      await app.rollouts.saved(r.id); // answered once saved: a restart keeps it
      return rolloutView(r.snapshot());
    },
    rolloutResume: async (a) => {
      const r = await find(app, a.id);
      r.resume();
      await app.rollouts.saved(r.id); // answered once saved: a restart keeps it
      return rolloutView(r.snapshot());
    },
    rolloutCancel: async (a) => {
      const r = await find(app, a.id);
      r.cancel();
      await app.rollouts.saved(r.id); // answered once saved: a restart keeps it
      return rolloutView(r.snapshot());
    },
    rolloutDelete: async (a, context) => {
      const r = await app.rollouts.deleteDamaged(a.id, context.actor ?? DEFAULT_ACTOR);
      if (!r.ok) throw new ApiFailure(r.error.code, r.error.message);
      return { deleted: a.id };
    },
  };
}

type RolloutCreateArgs = ParsedArgsOf<'rolloutCreate'>;

/** A device as a rollout's selection sees it, wherever it runs. */
interface Candidate {
  readonly id: string;
  readonly kind: string;
  readonly tags: readonly string[];
  readonly firmware: string | undefined;
}

/**
 * The devices a rollout takes, frozen: the ids given (each in the fleet, of one of the image's
 * kinds), or every device of the image's kinds that matches the kind, tag and running version
 * asked and does not run the image's version yet. In a cluster the whole fleet is selected: the
 * devices other instances run are read from the shared database, and their jobs run on them
 * (src/host/rollout-remote-jobs.ts).
 */
async function rolloutDevices(
  app: App,
  a: Pick<RolloutCreateArgs, 'devices' | 'kind' | 'tag' | 'runningVersion'>,
  image: { readonly version: string; readonly kinds: readonly string[] },
): Promise<string[]> {
  const kinds = new Set(image.kinds);
  const local = (id: string): Candidate | undefined => {
    const d = app.fleet.device(id);
    const firmware = d?.status.firmware;
    return (
      d && { id, kind: d.kind, tags: d.tags, firmware: typeof firmware === 'string' ? firmware : undefined }
    );
  };
  const remote = async (
    which: { readonly ids: readonly string[] } | { readonly kinds: readonly string[] },
  ): Promise<Candidate[]> => {
    if (!app.cluster) return [];
    try {
      return await readRolloutCandidates(app.cluster.db, which);
    } catch (error) {
      throw new ApiFailure(
        'unavailable',
        `cannot read the fleet's other devices from the shared database: ${(error as Error).message}`,
      );
    }
  };
  if (a.devices) {
    const unknown = a.devices.filter((id) => !app.fleet.has(id));
    const elsewhere = new Map((await remote({ ids: unknown })).map((c) => [c.id, c]));
    const missing = unknown.filter((id) => !elsewhere.has(id));
    if (missing.length > 0)
      throw new ApiFailure(
        'notFound',
        `not in the fleet: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}`,
      );
    const wrong = a.devices.filter((id) => !kinds.has((local(id) ?? elsewhere.get(id))?.kind ?? ''));
    if (wrong.length > 0)
      throw new ApiFailure(
        'wrongKind',
        `image ${image.version} is for ${[...kinds].join(', ')}; not: ${wrong.slice(0, 10).join(', ')}`,
      );
    return [...a.devices];
  }
  const here = app.fleet
    .list()
    .map((d) => local(d.id))
    .filter((c): c is Candidate => c !== undefined);
  const others = (await remote({ kinds: [...kinds] })).filter((c) => !app.fleet.has(c.id));
  return [...here, ...others]
    .filter(
      (d) =>
        kinds.has(d.kind) &&
        (a.kind === undefined || d.kind === a.kind) &&
        (a.tag === undefined || d.tags.includes(a.tag)) &&
        (a.runningVersion === undefined || d.firmware === a.runningVersion) &&
        d.firmware !== image.version,
    )
    .map((d) => d.id)
    .sort();
}

/**
 * The app's rollouts (src/firmware/rollout.ts): each one saved in the database at every change
 * of its state or of a device's (`firmware_rollouts`, its snapshot and policy), audited in the
 * event log (`firmware.rollout`), and continued by a restarted app where it was — paused ones
 * stay paused, the update jobs they had running continue with them (restored first). In a
 * cluster, a rollout's devices other instances run get their jobs there (rollout-remote-jobs.ts),
 * followed from here, and a restored rollout follows them again. A stored
 * rollout that cannot be read back is damaged (src/firmware/rollout-damage.ts): listed apart,
 * continued never, holding no image, deletable.
 *
 * @example
 * const runner = createRolloutRunner({ runtime, store, firmware, updates, fleet, logger });
 * await runner.restore();                       // once the links are up
 * await runner.start({ sha256, version, image, devices, policy: {}, actor: 'ana' }); // saved, then started
 */
import { randomBytes } from 'node:crypto';
import type { RolloutMirror } from '../cluster/shared-rollouts.js';
import type { Fleet } from '../devices/fleet.js';
import type { FirmwareUpdates } from '../firmware/firmware-updates.js';
import type { OpenedFirmware } from '../firmware/open-firmware.js';
import type { Rollout, RolloutPolicy, RolloutSnapshot } from '../firmware/rollout.js';
import { createRollout } from '../firmware/rollout.js';
import type { DamagedRollout } from '../firmware/rollout-damage.js';
import { deleteDamagedRollout, readStoredRollouts, sortStoredRollouts } from '../firmware/rollout-damage.js';
import type { RolloutJob, RolloutJobs } from '../firmware/rollout-types.js';
import type { UpdateJob, UpdateJobStep } from '../firmware/update-job.js';
import type { JsonObject } from '../lib/json.js';
import type { Failure, Result } from '../lib/result.js';
import type { Logger, Runtime } from '../runtime/runtime.js';
import type { EventInput, Store } from '../store/store.js';
import type { RemoteRolloutJobs } from './rollout-remote-jobs.js';

/** What a rollout is started with (and restored from). */
export interface RolloutStart {
  readonly sha256: string;
  readonly version: string;
  readonly image: Uint8Array;
  readonly devices: readonly string[];
  readonly policy: RolloutPolicy;
  readonly actor: string;
}

export interface RolloutRunner {
  /** This app's rollouts by id, the restored ones included. */
  readonly all: ReadonlyMap<string, Rollout>;
  /**
   * Starts a rollout once it is saved: an app killed right after the answer continues it on
   * restart. Refused `unavailable` (nothing started) when it cannot be saved.
   */
  start(what: RolloutStart): Promise<Result<Rollout, Failure<'unavailable'>>>;
  /** Resolves when every save of the rollout asked for so far is done: whether the last one took. */
  saved(id: string): Promise<boolean>;
  /** Continues the rollouts an earlier run left running or paused (not those another instance took over). */
  restore(): Promise<void>;
  /**
   * Continues a rollout another instance of the cluster ran (it took it over,
   * src/host/rollout-takeover.ts): saved here, then run as after a restart.
   */
  adopt(id: string, what: RolloutStart, snapshot: RolloutSnapshot): Promise<Rollout>;
  /** Another instance took this rollout over: it is let go here (see {@link Rollout.release}). */
  release(id: string): void;
  /**
   * Every rollout, newest first: this app's as they run, and the stored ones it does not run —
   * those that ended before a restart (history), and those a restarted app has not continued
   * yet (its links are not up) — as last saved; and apart, the damaged ones.
   */
  list(): Promise<{ readonly rollouts: RolloutSnapshot[]; readonly damaged: readonly DamagedRollout[] }>;
  /** Deletes a damaged stored rollout (`notDamaged` for one that reads: cancel it instead). */
  deleteDamaged(
    id: string,
    actor: string,
  ): Promise<Result<DamagedRollout, Failure<'notFound' | 'notDamaged'>>>;
}

export interface RolloutRunnerOptions {
  /**
   * In a cluster: the instance that runs a stored rollout now, when another took it over (this one
   * does not continue it at its restart); undefined: this one, or no cluster.
   */
  readonly runsElsewhere?: (id: string) => Promise<string | undefined>;
  readonly runtime: Runtime;
  readonly store: Pick<Store, 'appendEvents'>;
  readonly firmware: OpenedFirmware | undefined;
  readonly updates: FirmwareUpdates;
  readonly fleet: Pick<Fleet, 'device' | 'has'>;
  /**
   * In a cluster: the jobs of the devices other instances run (src/host/rollout-remote-jobs.ts).
   * A device this instance runs, or has a job of, gets its job here.
   */
  readonly remote?: RemoteRolloutJobs;
  /** In a cluster: every saved snapshot is also written for the other instances' UIs. */
  readonly mirror?: RolloutMirror;
  /**
   * Calls `listener` at each step a device's job here moves to, until it ends (the app's job
   * changes, src/host/app/firmware.ts): the rollout's device list shows the step its job is at.
   */
  readonly watchStep?: (deviceId: string, listener: (step: UpdateJobStep) => void) => void;
}

/** A job of this instance as a rollout follows it, its steps told when `watchStep` is given. */
function localJob(
  deviceId: string,
  job: UpdateJob,
  watchStep: RolloutRunnerOptions['watchStep'],
): RolloutJob {
  return watchStep
    ? { snapshot: () => job.snapshot(), done: job.done, onStep: (l) => watchStep(deviceId, l) }
    : job;
}

/**
 * Where a rollout's jobs run: here for the devices this instance runs (or has a job of), else on
 * the device's owner in a cluster.
 */
function rolloutJobs(
  updates: FirmwareUpdates,
  fleet: Pick<Fleet, 'has'>,
  remote: RemoteRolloutJobs | undefined,
  sha256: string,
  watchStep: RolloutRunnerOptions['watchStep'],
): RolloutJobs {
  const startHere: RolloutJobs['start'] = (deviceId, what) => {
    const r = updates.start(deviceId, what);
    return r.ok ? { ok: true, value: localJob(deviceId, r.value, watchStep) } : r;
  };
  if (!remote) return { start: startHere, cancel: (deviceId) => updates.cancel(deviceId) };
  const here = (deviceId: string) => fleet.has(deviceId) || updates.get(deviceId) !== undefined;
  return {
    start: (deviceId, what) =>
      fleet.has(deviceId)
        ? startHere(deviceId, what)
        : remote.start(deviceId, {
            sha256,
            version: what.version,
            actor: what.actor ?? 'api',
            ...(what.settings ? { settings: what.settings } : {}),
          }),
    cancel: (deviceId) => (here(deviceId) ? updates.cancel(deviceId) : remote.cancel(deviceId)),
  };
}

const ENDED = ['completed', 'aborted', 'cancelled'];

/** The firmware a device runs, as a rollout counts it: a confirmed image only (one on trial still needs its confirm; a job does it). */
function confirmedFirmware(status: JsonObject | undefined): string | undefined {
  const v = status?.firmware;
  return typeof v === 'string' && status?.confirmed !== false ? v : undefined;
}

/** Saves a rollout at a change of its state or of a device's (an ended one lets go of its image); whether it took. */
function saveRollout(
  firmware: OpenedFirmware,
  id: string,
  what: RolloutStart,
  s: RolloutSnapshot,
  log: Logger,
): Promise<boolean> {
  return firmware.store
    .saveRollout(
      {
        id,
        sha256: s.sha256,
        version: s.version,
        state: s.state,
        body: { snapshot: s, policy: what.policy } as unknown as JsonObject,
        actor: what.actor,
        createdAt: s.createdAt,
        updatedAt: Date.now(),
      },
      ENDED.includes(s.state),
    )
    .then(
      () => true,
      (e: unknown) => {
        log.warn('rollout not saved', { rollout: id, error: String(e) });
        return false;
      },
    );
}

/** The `firmware.rollout` audit event of a change of state or wave. */
function rolloutEvent(id: string, s: RolloutSnapshot, actor: string): EventInput {
  return {
    at: Date.now(),
    kind: 'firmware.rollout',
    data: {
      rollout: id,
      state: s.state,
      wave: s.wave,
      version: s.version,
      devices: s.order.length,
      ...(s.reason ? { reason: s.reason } : {}),
      actor,
    },
  };
}

/** Every rollout, newest first (see {@link RolloutRunner.list}). */
async function listRollouts(
  firmware: OpenedFirmware | undefined,
  all: ReadonlyMap<string, Rollout>,
): ReturnType<RolloutRunner['list']> {
  const byId = new Map<string, RolloutSnapshot>();
  const stored = firmware ? sortStoredRollouts(await firmware.store.listRollouts()) : undefined;
  for (const { record, saved } of stored?.good ?? [])
    if (!all.has(record.id)) byId.set(record.id, saved.snapshot);
  for (const [id, r] of all) byId.set(id, r.snapshot());
  const rollouts = [...byId.values()].sort((a, b) => b.createdAt - a.createdAt);
  // A rollout this app runs is not damaged, whatever its row says meanwhile.
  return { rollouts, damaged: (stored?.damaged ?? []).filter((d) => !all.has(d.id)) };
}

/**
 * Continues the stored rollouts that had not ended and this app does not run yet. Each damaged
 * row is refused, named with its field, and lets go of its image; the other rollouts still continue.
 */
async function restoreRollouts(
  firmware: OpenedFirmware,
  all: ReadonlyMap<string, Rollout>,
  log: Logger,
  make: (id: string, what: RolloutStart, restore: RolloutSnapshot) => Rollout,
  runsElsewhere: RolloutRunnerOptions['runsElsewhere'],
): Promise<void> {
  const { good, damaged } = await readStoredRollouts(firmware.store);
  for (const d of damaged) log.error(`${d.message}; not continued`, { rollout: d.id });
  for (const { record: r, saved } of good) {
    if (ENDED.includes(r.state) || all.has(r.id)) continue;
    const there = await runsElsewhere?.(r.id).catch((e: unknown) => {
      log.warn('rollout: which instance runs it could not be read; continued here', {
        rollout: r.id,
        error: String(e),
      });
      return undefined;
    });
    if (there !== undefined) {
      log.info(`rollout ${r.id} is run by instance ${there} now (it took it over): not continued here`);
      continue;
    }
    const image = await firmware.images.readImage(r.sha256);
    if (!image.ok) {
      log.warn('rollout cannot continue: its image is gone', { rollout: r.id, sha256: r.sha256 });
      continue;
    }
    const what: RolloutStart = {
      sha256: r.sha256,
      version: r.version,
      image: image.value,
      devices: saved.snapshot.order,
      policy: saved.policy,
      actor: r.actor,
    };
    try {
      make(r.id, what, saved.snapshot).start();
    } catch (error) {
      log.warn('rollout cannot continue: its saved state does not parse', {
        rollout: r.id,
        error: String(error),
      });
    }
  }
}

export function createRolloutRunner(options: RolloutRunnerOptions): RolloutRunner {
  const { runtime, store, firmware, updates, fleet, remote } = options;
  const log = runtime.logger;
  const all = new Map<string, Rollout>();
  /** Each rollout's saves so far, as one promise (the store takes them in order). */
  const saves = new Map<string, Promise<boolean>>();

  function save(id: string, what: RolloutStart, s: RolloutSnapshot): Promise<boolean> {
    options.mirror?.saved({ snapshot: s, policy: what.policy, actor: what.actor });
    if (!firmware) return Promise.resolve(true);
    const before = saves.get(id) ?? Promise.resolve(true);
    const now = saveRollout(firmware, id, what, s, log);
    const both = Promise.all([before, now]).then(([, last]) => last);
    saves.set(id, both);
    return both;
  }

  function make(id: string, what: RolloutStart, restore?: RolloutSnapshot): Rollout {
    let lastState = '';
    const rollout = createRollout({
      runtime,
      updates: rolloutJobs(updates, fleet, remote, what.sha256, options.watchStep),
      id,
      image: what.image,
      version: what.version,
      sha256: what.sha256,
      devices: what.devices,
      policy: what.policy,
      actor: what.actor,
      // A job restored here, else (in a cluster) the device's job on the instance that runs it.
      findJob: (deviceId) => {
        const job = updates.job(deviceId);
        if (job) return localJob(deviceId, job, options.watchStep);
        return remote && !fleet.has(deviceId)
          ? remote.follow(deviceId, what.sha256, what.version)
          : undefined;
      },
      runningVersion: (deviceId) => confirmedFirmware(fleet.device(deviceId)?.status),
      ...(restore ? { restore } : {}),
      onChange: (s) => {
        void save(id, what, s);
        const key = `${s.state} ${s.wave}`;
        if (key === lastState) return;
        lastState = key;
        void store.appendEvents([rolloutEvent(id, s, what.actor)]).catch(() => {});
      },
    });
    all.set(id, rollout);
    return rollout;
  }

  return {
    all,
    list: () => listRollouts(firmware, all),
    async deleteDamaged(id, actor) {
      if (!firmware) return { ok: false, error: { code: 'notFound', message: `no stored rollout '${id}'` } };
      if (all.has(id))
        return { ok: false, error: { code: 'notDamaged', message: `rollout ${id} runs: cancel it instead` } };
      const r = await deleteDamagedRollout(firmware.store, id, actor);
      if (r.ok) log.info('damaged rollout deleted', { rollout: id, actor, damage: r.value.message });
      return r;
    },
    async start(what) {
      const id = `ro-${randomBytes(4).toString('hex')}`;
      const rollout = make(id, what);
      // Saved before its first job starts and before the answer: nothing acknowledged is lost.
      if (!(await save(id, what, rollout.snapshot()))) {
        all.delete(id);
        saves.delete(id);
        return {
          ok: false,
          error: {
            code: 'unavailable',
            message: `rollout ${id} could not be saved: nothing started (see the log)`,
          },
        };
      }
      rollout.start();
      return { ok: true, value: rollout };
    },
    saved: (id) => saves.get(id) ?? Promise.resolve(true),
    async restore() {
      if (firmware) await restoreRollouts(firmware, all, log, make, options.runsElsewhere);
    },
    async adopt(id, what, snapshot) {
      const existing = all.get(id);
      if (existing) return existing;
      const rollout = make(id, what, snapshot);
      rollout.start(); // as after a restart: the jobs under way are followed, the rest started
      await save(id, what, rollout.snapshot());
      return rollout;
    },
    release(id) {
      const rollout = all.get(id);
      if (!rollout) return;
      rollout.release();
      all.delete(id);
      saves.delete(id);
    },
  };
}

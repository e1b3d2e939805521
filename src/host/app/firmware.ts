/**
 * Firmware in the app (docs/firmware.md): the images of this database, the update jobs (each step
 * saved, so a restarted app continues a job, and written to the event log), the rollouts in
 * waves, the drift updater when the policy is `update`, and the jobs an earlier run left
 * unfinished, continued once the links run.
 *
 * @example
 * const fw = await openAppFirmware(setup, { file, demo, store, fleet, links, jobEnded: () => drift?.kick() });
 * const drift = createDriftUpdater(setup, { ...fw, store, fleet });
 * await restoreUpdates(setup, fw); // once the links are attached
 */

import type pg from 'pg';
import { findSharedImages, readSharedImage, shareImage } from '../../cluster/shared-images.js';
import { createRolloutMirror, rolloutInstance } from '../../cluster/shared-rollouts.js';
import type { Fleet } from '../../devices/fleet.js';
import type { FirmwareDriftUpdater } from '../../firmware/drift-updater.js';
import { createFirmwareDriftUpdater, RECONCILER_ACTOR } from '../../firmware/drift-updater.js';
import type { FirmwareUpdates } from '../../firmware/firmware-updates.js';
import { createFirmwareUpdates, trialSettings } from '../../firmware/firmware-updates.js';
import { jobTrialMs } from '../../firmware/image-trial.js';
import type { OpenedFirmware } from '../../firmware/index.js';
import { openFirmware } from '../../firmware/index.js';
import { sortStoredRollouts } from '../../firmware/rollout-damage.js';
import type { TrialCheck } from '../../firmware/trial-checks.js';
import { parseTrialChecks } from '../../firmware/trial-checks.js';
import type { UpdateJobSnapshot, UpdateJobStep } from '../../firmware/update-job.js';
import { FINAL_UPDATE_STEPS } from '../../firmware/update-job.js';
import type { Logger } from '../../runtime/runtime.js';
import type { FirmwareJobRecord, FirmwareStore } from '../../store/firmware-store.js';
import { postgresDevicesByFirmware } from '../../store/postgres-devices.js';
import type { Store } from '../../store/store.js';
import type { Links } from '../../transports/links.js';
import type { App } from '../app.js';
import type { RemoteCaller } from '../rollout-remote-jobs.js';
import { remoteRolloutJobs } from '../rollout-remote-jobs.js';
import type { RolloutRunner } from '../rollout-runner.js';
import { createRolloutRunner } from '../rollout-runner.js';
import type { AppSetup } from './setup.js';

/**
 * A device being updated takes no other command (a reboot on trial would roll it back): the
 * refusal, or undefined when no update of it is in progress.
 */
export function updateInProgress(
  updates: Pick<FirmwareUpdates, 'get'>,
  id: string,
): { readonly code: 'updating'; readonly message: string } | undefined {
  const job = updates.get(id);
  if (!job || FINAL_UPDATE_STEPS.includes(job.step)) return undefined;
  return {
    code: 'updating',
    message: `'${id}' is being updated to ${job.version} (${job.step}); commands wait until the update ends`,
  };
}

/**
 * A job's row in the firmware store, with its trial and checks, so a restarted app continues it
 * with them ({@link restoreUpdates}).
 */
function jobRecord(job: UpdateJobSnapshot, updatedAt: number): FirmwareJobRecord {
  return {
    deviceId: job.deviceId,
    sha256: job.sha256,
    transferId: job.transferId,
    version: job.version,
    step: job.step,
    offset: job.offset,
    boot: job.boot ?? null,
    deadline: job.deadline ?? null,
    error: job.error ? { ...job.error } : null,
    actor: job.actor,
    startedAt: job.startedAt,
    updatedAt,
    settings: {
      trialMs: job.trialMs,
      ...(job.trialChecks.length > 0 ? { trialChecks: job.trialChecks } : {}),
    },
  };
}

export interface AppFirmware {
  readonly firmware: App['firmware'];
  readonly updates: FirmwareUpdates;
  readonly rollouts: RolloutRunner;
  /** Resolves when every save of the device's update job asked for so far is done: whether the last one took. */
  readonly jobSaved: (deviceId: string) => Promise<boolean>;
}

/**
 * Puts a stored image in the cluster's shared table, for the instance that runs a rollout's device
 * to import (src/cluster/shared-images.ts; written once per image, the later calls are one read).
 */
async function shareStoredImage(
  firmware: OpenedFirmware,
  db: pg.Pool,
  sha256: string,
  by: string,
): Promise<void> {
  const row = await firmware.store.getImage(sha256);
  if (!row.ok) throw new Error(`image ${sha256.slice(0, 12)}… is not stored here: ${row.error.message}`);
  const bytes = await firmware.images.readImage(sha256);
  if (!bytes.ok) throw new Error(bytes.error.message);
  await shareImage(db, {
    sha256,
    manifest: JSON.stringify(row.value.manifest),
    image: bytes.value,
    by,
    allowDowngrade: row.value.downgradeFrom !== null,
  });
}

/**
 * Imports, through this instance's own checks (trust list, kinds, slots; a downgrade only when it
 * was imported as one where it was shared), the newest image another instance shared of `version`
 * for `kind`; true if one was imported. An image refused here is logged and the next is tried.
 */
export async function importSharedImage(
  firmware: OpenedFirmware,
  db: pg.Pool,
  version: string,
  kind: string,
  log: Logger,
): Promise<boolean> {
  for (const sha256 of await findSharedImages(db, version, kind)) {
    const shared = await readSharedImage(db, sha256).catch((e: unknown) => {
      log.warn('a shared firmware image does not read: skipped', { sha256, error: String(e) });
      return undefined;
    });
    if (!shared) continue;
    const imported = await firmware.images.importImage({
      manifest: shared.manifest,
      image: shared.image,
      actor: RECONCILER_ACTOR,
      ...(shared.allowDowngrade ? { allowDowngrade: true } : {}),
    });
    if (imported.ok) {
      log.info('firmware image imported from the cluster for the reconciler', {
        sha256,
        version,
        kind,
        sharedBy: shared.by,
      });
      return true;
    }
    if (imported.error.code === 'duplicateImage') return true;
    log.warn(
      `the shared image ${version} (${sha256.slice(0, 12)}…) is refused here: ${imported.error.message}`,
      {
        code: imported.error.code,
        sharedBy: shared.by,
      },
    );
  }
  return false;
}

/**
 * Opens the images (a trust list that does not load is logged and kept as the failure) and builds
 * the update jobs and rollouts; nothing runs until the links are attached. `jobEnded` is called
 * when a job reaches a final step.
 */
export async function openAppFirmware(
  setup: AppSetup,
  parts: {
    readonly file: string;
    readonly demo: boolean;
    readonly store: Store;
    readonly fleet: Fleet;
    readonly links: Links;
    readonly jobEnded: () => void;
    /** The fleet's database when it is PostgreSQL (its devices are there, not in `file`). */
    readonly sharedDb?: pg.Pool;
    /**
     * In a cluster: this instance's id and its router once it is up. A rollout's devices that
     * other instances run get their jobs there (src/host/rollout-remote-jobs.ts).
     */
    readonly cluster?: { readonly instanceId: string; readonly router: () => RemoteCaller | undefined };
  },
): Promise<AppFirmware> {
  const { options, runtime, log, stops } = setup;
  const { file, demo, store, fleet, links, sharedDb } = parts;
  const firmware = await openFirmware({
    dataDir: options.dataDir,
    databaseFile: file,
    demo,
    kinds: fleet.kinds,
    logger: log,
    ...(sharedDb ? { devicesByFirmware: () => postgresDevicesByFirmware(sharedDb) } : {}),
  });
  if (firmware.ok) stops.push(() => firmware.value.close());
  else log.error(`firmware images unavailable: ${firmware.error.message}`, { code: firmware.error.code });
  // Every step of every update is in the event log, so the device's history shows it.
  const lastStep = new Map<string, string>();
  const jobSaves = new Map<string, Promise<boolean>>();
  /** Who follows a device's job step by step (its rollout's device list), until the job ends. */
  const stepWatchers = new Map<string, (step: UpdateJobStep) => void>();
  const updates = createFirmwareUpdates({
    runtime,
    hub: () => links.hub,
    // A device whose command breaker is open gets no job; every job's end counts for its breaker.
    breaker: fleet.guards,
    onChange: (job) => {
      const key = `${job.deviceId} ${job.transferId}`;
      if (lastStep.get(key) === job.step) return; // progress within a step: live only
      lastStep.set(key, job.step);
      if (FINAL_UPDATE_STEPS.includes(job.step)) stepWatchers.delete(job.deviceId);
      else stepWatchers.get(job.deviceId)?.(job.step);
      if (FINAL_UPDATE_STEPS.includes(job.step)) parts.jobEnded();
      // Saved at every step, so a restarted app continues the job where it was.
      if (firmware.ok) {
        const saved = firmware.value.store
          .saveJob(jobRecord(job, runtime.clock.wallNow()), FINAL_UPDATE_STEPS.includes(job.step))
          .then(
            () => true,
            (e: unknown) => {
              log.warn('firmware job not saved', { deviceId: job.deviceId, error: String(e) });
              return false;
            },
          );
        const before = jobSaves.get(job.deviceId) ?? Promise.resolve(true);
        jobSaves.set(
          job.deviceId,
          Promise.all([before, saved]).then(([, last]) => last),
        );
      }
      void store
        .appendEvents([
          {
            at: runtime.clock.wallNow(),
            deviceId: job.deviceId,
            kind: 'firmware.update',
            data: {
              step: job.step,
              version: job.version,
              transferId: job.transferId,
              offset: job.offset,
              size: job.size,
              actor: job.actor,
              startedAt: job.startedAt,
              from: job.from,
              ...(job.error ? { error: { ...job.error } } : {}),
            },
          },
        ])
        .catch((e: unknown) => log.warn('firmware update event not written', { error: String(e) }));
    },
  });
  // The telemetry checks of a trial judge the device's readings (a Map lookup when none is on trial).
  const stopTelemetry = fleet.observe((a) => {
    if (a.type === 'telemetry') updates.telemetry(a.deviceId, a.values, a.at);
  });
  stops.push(async () => stopTelemetry());
  const cluster = parts.cluster;
  // A rollout another instance took over is let go here (the runner is made below).
  let release: (id: string) => void = () => {};
  const mirror =
    cluster && sharedDb
      ? createRolloutMirror({
          db: sharedDb,
          instanceId: cluster.instanceId,
          logger: log,
          onLost: (id) => release(id),
        })
      : undefined;
  if (mirror) stops.push(() => mirror.flush());
  const rollouts = createRolloutRunner({
    runtime,
    store,
    firmware: firmware.ok ? firmware.value : undefined,
    updates,
    fleet,
    watchStep: (deviceId, listener) => {
      stepWatchers.set(deviceId, listener);
    },
    ...(mirror && cluster && sharedDb
      ? {
          mirror,
          runsElsewhere: async (id: string) => {
            const there = await rolloutInstance(sharedDb, id);
            return there !== undefined && there !== cluster.instanceId ? there : undefined;
          },
        }
      : {}),
    ...(cluster && sharedDb && firmware.ok
      ? {
          remote: remoteRolloutJobs({
            router: cluster.router,
            share: (sha256) => shareStoredImage(firmware.value, sharedDb, sha256, cluster.instanceId),
            clock: runtime.clock,
            logger: log,
          }),
        }
      : {}),
  });
  release = (id) => rollouts.release(id);
  return { firmware, updates, rollouts, jobSaved: (id) => jobSaves.get(id) ?? Promise.resolve(true) };
}

/**
 * The drift updater when `firmwareDrift` is `update` and the images opened (not started yet);
 * undefined otherwise. A device in a running or paused rollout is left to the rollout.
 */
export function createDriftUpdater(
  setup: AppSetup,
  parts: Omit<AppFirmware, 'jobSaved'> & {
    readonly store: Store;
    readonly fleet: Fleet;
    /** In a cluster: imports a shared image of a version for a kind (see {@link importSharedImage}). */
    readonly importShared?: (version: string, kind: string) => Promise<boolean>;
  },
): FirmwareDriftUpdater | undefined {
  const { options, runtime, log } = setup;
  const { firmware, updates, rollouts, store, fleet } = parts;
  const firmwareDrift =
    options.firmwareDrift === 'update' && firmware.ok
      ? createFirmwareDriftUpdater({
          runtime,
          firmware: firmware.value,
          updates,
          ...(parts.importShared ? { importShared: parts.importShared } : {}),
          fleet,
          held: (id) =>
            [...rollouts.all.values()].some((r) => {
              const s = r.snapshot();
              return (s.state === 'running' || s.state === 'paused') && s.devices[id] !== undefined;
            }),
          audit: (deviceId, data) =>
            store
              .appendEvents(
                [{ at: runtime.clock.wallNow(), deviceId, kind: 'firmware.updateRequested', data }],
                { durability: 'full' },
              )
              .then(() => undefined),
        })
      : undefined;
  if (options.firmwareDrift === 'update' && !firmware.ok)
    log.warn('--firmware-drift update has no effect: firmware images are unavailable');
  return firmwareDrift;
}

/** The actor of a rollout's jobs: `rollout:<id>` (rollout-process.ts). */
const ROLLOUT_ACTOR = 'rollout:';

/** The trial checks of each stored rollout that reads, by id (a damaged one has none here). */
async function savedRolloutChecks(
  store: Pick<FirmwareStore, 'listRollouts'>,
): Promise<ReadonlyMap<string, readonly TrialCheck[]>> {
  const checks = new Map<string, readonly TrialCheck[]>();
  for (const { record, saved } of sortStoredRollouts(await store.listRollouts()).good) {
    const parsed = parseTrialChecks(saved.policy.trialChecks ?? []);
    if (parsed.ok) checks.set(record.id, parsed.value);
  }
  return checks;
}

/**
 * A saved job's own telemetry checks (issue 14), parsed; undefined when it has none, or when they
 * no longer parse (ignored, with a warning: the job continues without them).
 */
function savedJobChecks(
  job: Pick<FirmwareJobRecord, 'deviceId' | 'settings'>,
  log: Pick<Logger, 'warn'>,
): readonly TrialCheck[] | undefined {
  const texts = job.settings?.trialChecks;
  if (texts === undefined || texts.length === 0) return undefined;
  const parsed = parseTrialChecks(texts);
  if (parsed.ok) return parsed.value;
  log.warn('firmware job trial checks unreadable; the job continues without them', {
    deviceId: job.deviceId,
    message: parsed.error.message,
  });
  return undefined;
}

/**
 * Jobs an earlier run left unfinished continue at their step (docs/firmware.md §7), with the
 * trial and telemetry checks saved with them. A job on trial judges its checks afresh (readings
 * before the restart are not kept); a rollout's job without checks of its own gets its
 * rollout's back; a row saved before job settings were kept gets its image's trial again.
 */
export async function restoreUpdates(
  setup: Pick<AppSetup, 'log'>,
  parts: Pick<AppFirmware, 'firmware' | 'updates'>,
): Promise<void> {
  const { log } = setup;
  const { firmware, updates } = parts;
  if (!firmware.ok) return;
  const listed = new Map((await firmware.value.images.list()).images.map((l) => [l.image.sha256, l.image]));
  let rolloutChecks: ReadonlyMap<string, readonly TrialCheck[]> | undefined;
  for (const row of await firmware.value.store.listJobs()) {
    if (!row.ok) {
      log.warn('firmware job row unreadable', { deviceId: row.id, message: row.error.message });
      continue;
    }
    const j = row.value;
    if (FINAL_UPDATE_STEPS.includes(j.step as UpdateJobStep) || updates.get(j.deviceId)) continue;
    const image = await firmware.value.images.readImage(j.sha256);
    if (!image.ok) {
      log.warn('firmware job cannot continue: its image is gone', {
        deviceId: j.deviceId,
        sha256: j.sha256,
      });
      continue;
    }
    // Its own trial as saved; a row without one gets its image's again.
    const record = listed.get(j.sha256);
    const trialMs = j.settings?.trialMs ?? (record ? jobTrialMs(undefined, record) : undefined);
    // Its own checks as saved; a rollout's job without gets its rollout's (saved with its policy).
    let checks = savedJobChecks(j, log);
    if (checks === undefined && j.actor.startsWith(ROLLOUT_ACTOR)) {
      rolloutChecks ??= await savedRolloutChecks(firmware.value.store);
      checks = rolloutChecks.get(j.actor.slice(ROLLOUT_ACTOR.length));
    }
    const settings = trialSettings(trialMs, checks);
    updates.restore(j.deviceId, {
      image: image.value,
      version: j.version,
      actor: j.actor,
      ...(settings ? { settings } : {}),
      resume: {
        step: j.step as UpdateJobStep,
        boot: j.boot ?? undefined,
        deadline: j.deadline ?? undefined,
        startedAt: j.startedAt,
      },
    });
  }
}

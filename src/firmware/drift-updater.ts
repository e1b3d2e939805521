/**
 * Firmware drift, corrected by policy: a device whose spec asks for a firmware version it does not
 * run (`spec.firmware` ≠ `status.firmware`) is drift. The kind's reconciler reports it
 * (`device.drift` events, the device's drift list); with the policy `update`, this loop also starts
 * the update job for it, audited as `system:reconciler`, at most `maxConcurrent` at a time.
 *
 * It gives up on a device, and says so once, when the device's last job for that same version
 * ended without success (failed, rolled back or cancelled): flashing a version that failed again
 * and again is what a reconciler must not do. An operator starts it again by hand (or changes the
 * spec). Devices held by a running or paused rollout, and devices with a job running, are left
 * alone; a version with no stored image for the device's kind waits for one (in a cluster, one
 * another instance shared is imported first, `importShared`). What it does with
 * each device is drift-plan.ts's, pure.
 *
 * @example
 * const drift = createFirmwareDriftUpdater({ runtime, firmware, updates, fleet, held, audit });
 * drift.start(); // a pass now, every intervalMs, and soon after a device's spec changes
 * const report = await drift.pass(); // { started: ['pump-7'], gaveUp: [...], noImage: [...] }
 */

import type { DeviceView, FleetEvent } from '../devices/fleet/types.js';
import type { Runtime } from '../runtime/runtime.js';
import type { TimerRef } from '../runtime/timers.js';
import type { FirmwareJobRecord } from '../store/firmware-store.js';
import { planDriftDevice } from './drift-plan.js';
import type { FirmwareUpdates } from './firmware-updates.js';
import { trialSettings } from './firmware-updates.js';
import { jobTrialMs } from './image-trial.js';
import type { OpenedFirmware } from './open-firmware.js';
import { FINAL_UPDATE_STEPS } from './update-job.js';

/** `show`: drift is reported only; `update`: the reconciler also starts the update. */
export type FirmwareDriftPolicy = 'show' | 'update';

/** The actor of every job this loop starts. */
export const RECONCILER_ACTOR = 'system:reconciler';

export interface DriftPassReport {
  /** Jobs started in this pass. */
  readonly started: readonly string[];
  /** Drifting devices left for a later pass: a job or rollout holds them, or the cap is reached. */
  readonly waiting: readonly string[];
  /** Their last job for the wanted version ended without success. */
  readonly gaveUp: readonly { readonly deviceId: string; readonly version: string; readonly step: string }[];
  /** No stored image of the wanted version for the device's kind. */
  readonly noImage: readonly { readonly deviceId: string; readonly version: string }[];
}

export interface FirmwareDriftUpdaterOptions {
  readonly runtime: Pick<Runtime, 'clock' | 'logger' | 'timers'>;
  readonly firmware: Pick<OpenedFirmware, 'images' | 'store'>;
  readonly updates: Pick<FirmwareUpdates, 'start' | 'get'>;
  readonly fleet: {
    device(id: string): Pick<DeviceView, 'kind'> | undefined;
    /**
     * The fleet's event log as it is written: a `device.spec` kicks a pass, so a spec asking for
     * another version is acted on at once instead of at the next periodic pass.
     */
    watchEvents?(listener: (event: Pick<FleetEvent, 'kind'>) => void): () => void;
  };
  /** A rollout holds this device (running or paused): the reconciler keeps off it. */
  readonly held: (deviceId: string) => boolean;
  /** Writes the audit event of a job the reconciler started. */
  readonly audit: (
    deviceId: string,
    data: { version: string; sha256: string; actor: string },
  ) => Promise<void>;
  /**
   * In a cluster: imports an image of this version for this kind that another instance shared
   * (src/cluster/shared-images.ts), through this instance's own checks; true if one was imported.
   * Asked when no stored image fits a drifting device.
   */
  readonly importShared?: (version: string, kind: string) => Promise<boolean>;
  /** Between passes (default 15 s). */
  readonly intervalMs?: number;
  /** Jobs started by the reconciler running at once (default 10). */
  readonly maxConcurrent?: number;
}

export interface FirmwareDriftUpdater {
  /** One pass over every drifting device now. Passes never overlap: a second call waits for the first. */
  pass(): Promise<DriftPassReport>;
  /** A pass soon (after a job ended, a spec changed), coalesced. */
  kick(): void;
  /** A pass now and one every interval. */
  start(): void;
  stop(): void;
}

/** Says something about a device once (`gaveUp:1.2.0`, `noImage:1.2.0`), until it changes. */
function tellOnce(told: Map<string, string>, deviceId: string, what: string, say: () => void): void {
  if (told.get(deviceId) === what) return;
  told.set(deviceId, what);
  say();
}

/** One pass over every drifting device: each planned (drift-plan.ts), the updates started. */
async function driftPass(
  options: FirmwareDriftUpdaterOptions,
  told: Map<string, string>,
): Promise<DriftPassReport> {
  const { runtime, firmware, updates } = options;
  const maxConcurrent = options.maxConcurrent ?? 10;
  const log = runtime.logger;
  const started: string[] = [];
  const waiting: string[] = [];
  const gaveUp: { deviceId: string; version: string; step: string }[] = [];
  const noImage: { deviceId: string; version: string }[] = [];
  const drifting = (await firmware.store.devicesByFirmware()).filter(
    (d) => d.desired !== null && d.desired !== d.running,
  );
  if (drifting.length === 0) return { started, waiting, gaveUp, noImage };
  const lastJobs = new Map<string, FirmwareJobRecord>();
  for (const row of await firmware.store.listJobs()) if (row.ok) lastJobs.set(row.value.deviceId, row.value);
  let { images } = await firmware.images.list();
  /** Version and kind already looked for among the shared images in this pass. */
  const lookedFor = new Set<string>();
  const isRunning = (id: string) => {
    const j = updates.get(id);
    return j !== undefined && !FINAL_UPDATE_STEPS.includes(j.step);
  };
  let ours = 0;
  for (const [id] of lastJobs) if (isRunning(id) && updates.get(id)?.actor === RECONCILER_ACTOR) ours++;

  for (const d of drifting) {
    const version = d.desired as string;
    const device = options.fleet.device(d.deviceId);
    if (!device) continue;
    const planNow = () =>
      planDriftDevice({
        version,
        kind: device.kind,
        busy: isRunning(d.deviceId) || options.held(d.deviceId),
        last: updates.get(d.deviceId) ?? lastJobs.get(d.deviceId),
        images,
        ours,
        maxConcurrent,
      });
    let plan = planNow();
    const key = `${version}\n${device.kind}`;
    if (plan.kind === 'noImage' && options.importShared && !lookedFor.has(key)) {
      lookedFor.add(key);
      const imported = await options.importShared(version, device.kind).catch((e: unknown) => {
        log.warn(`firmware drift on ${d.deviceId}: the cluster's shared images could not be read`, {
          error: String(e),
        });
        return false;
      });
      if (imported) {
        images = (await firmware.images.list()).images;
        plan = planNow();
      }
    }
    switch (plan.kind) {
      case 'held':
      case 'full':
        waiting.push(d.deviceId);
        continue;
      case 'gaveUp':
        gaveUp.push({ deviceId: d.deviceId, version, step: plan.step });
        tellOnce(told, d.deviceId, `gaveUp:${version}`, () =>
          log.warn(
            `firmware drift on ${d.deviceId} left as it is: its last update to ${version} ended ${plan.step}; start it again by hand or change the device's spec`,
          ),
        );
        continue;
      case 'noImage':
        noImage.push({ deviceId: d.deviceId, version });
        tellOnce(told, d.deviceId, `noImage:${version}`, () =>
          log.warn(
            `firmware drift on ${d.deviceId}: its spec asks for ${version}, and no stored image of that version is for ${device.kind}; import one`,
          ),
        );
        continue;
      case 'start':
        break;
    }
    const sha256 = plan.image.image.sha256;
    const bytes = await firmware.images.readImage(sha256);
    if (!bytes.ok) {
      log.warn(`firmware drift on ${d.deviceId}: image ${version} unreadable (${bytes.error.message})`);
      continue;
    }
    // The image's declared trial (image-trial.ts), else the job's default. No telemetry checks
    // (trial-checks.ts): they are an operator's, given with a rollout or an update; the
    // reconciler's jobs are healthy when the device stays up on trial.
    const settings = trialSettings(jobTrialMs(undefined, plan.image.image), undefined);
    const r = updates.start(d.deviceId, {
      image: bytes.value,
      version,
      actor: RECONCILER_ACTOR,
      ...(settings ? { settings } : {}),
    });
    if (!r.ok) {
      // notSupported, busy: said once; a later pass tries again (the device may say hello with `fw`).
      tellOnce(told, d.deviceId, `${r.error.code}:${version}`, () =>
        log.warn(`firmware drift on ${d.deviceId}: update to ${version} not started (${r.error.message})`),
      );
      waiting.push(d.deviceId);
      continue;
    }
    ours++;
    told.delete(d.deviceId);
    started.push(d.deviceId);
    log.info(`firmware drift on ${d.deviceId}: update to ${version} started by the reconciler`);
    await options
      .audit(d.deviceId, { version, sha256, actor: RECONCILER_ACTOR })
      .catch((e: unknown) =>
        log.warn('reconciler update not audited', { deviceId: d.deviceId, error: String(e) }),
      );
  }
  return { started, waiting, gaveUp, noImage };
}

export function createFirmwareDriftUpdater(options: FirmwareDriftUpdaterOptions): FirmwareDriftUpdater {
  const { runtime } = options;
  const intervalMs = options.intervalMs ?? 15_000;
  const log = runtime.logger;
  /** What was said about a device (`gaveUp:1.2.0`, `noImage:1.2.0`), so it is said once. */
  const told = new Map<string, string>();
  let running: Promise<DriftPassReport> | undefined;
  let timer: TimerRef | undefined;
  let kicked: TimerRef | undefined;
  let unwatch: (() => void) | undefined;
  let stopped = true;

  function pass(): Promise<DriftPassReport> {
    const next = (running ?? Promise.resolve()).then(
      () => driftPass(options, told),
      () => driftPass(options, told),
    );
    running = next;
    return next;
  }

  const passLogged = () =>
    pass().catch((e: unknown) => log.warn('firmware drift pass failed', { error: String(e) }));

  const schedule = () => {
    if (stopped) return;
    timer = runtime.timers.schedule(
      intervalMs,
      () => {
        timer = undefined;
        void passLogged().finally(schedule);
      },
      { label: 'firmware-drift' },
    );
  };

  function kick(): void {
    if (stopped || kicked) return;
    kicked = runtime.timers.schedule(
      100,
      () => {
        kicked = undefined;
        void passLogged();
      },
      { label: 'firmware-drift-kick' },
    );
  }

  return {
    pass,
    kick,
    start() {
      if (!stopped) return;
      stopped = false;
      // The periodic pass stays as the safety net (a spec written by another instance, a device
      // that came back); the spec change itself does not wait for it.
      unwatch = options.fleet.watchEvents?.((e) => {
        if (e.kind === 'device.spec') kick();
      });
      void passLogged();
      schedule();
    },
    stop() {
      stopped = true;
      unwatch?.();
      unwatch = undefined;
      if (timer) runtime.timers.cancel(timer);
      if (kicked) runtime.timers.cancel(kicked);
      timer = kicked = undefined;
    },
  };
}

/**
 * The firmware images over the API: `firmwareList` (each image with the devices running and
 * wanting it) and `firmwareImport` (a manifest and the image's bytes in base64, size-capped by the
 * method's schema). A refused image answers the firmware layer's own code (`hashMismatch`,
 * `badSignature`, …; docs/firmware.md §3) with its message, and nothing is stored.
 *
 * @example
 * await api.call('firmwareImport', { manifest, image: bytes.toString('base64') });
 * // { ok: false, error: { code: 'hashMismatch', message: 'the image's SHA-256 is …' } }
 */

import { whereIs } from '../../cluster/routed-actions.js';
import { trialSettings } from '../../firmware/firmware-updates.js';
import { imageSoakSeconds } from '../../firmware/image-soak.js';
import { imageTrialSeconds, jobTrialMs } from '../../firmware/image-trial.js';
import type { ImageListing, ImportErrorCode } from '../../firmware/index.js';
import type { TrialCheck } from '../../firmware/trial-checks.js';
import { parseTrialChecks } from '../../firmware/trial-checks.js';
import type { UpdateJobSnapshot } from '../../firmware/update-job.js';
import type { App } from '../app.js';
import type { FirmwareImageView, FirmwareJobView, FirmwareRefusalCode } from '../contract.js';
import type { Handlers } from './handlers.js';
import { ApiFailure } from './handlers.js';

/**
 * The contract spells the firmware layer's codes out (it imports only zod and types of its own);
 * this fails to compile when the two closed sets differ.
 */
export const REFUSAL_CODES_MATCH: [ImportErrorCode] extends [FirmwareRefusalCode]
  ? [FirmwareRefusalCode] extends [ImportErrorCode]
    ? true
    : false
  : false = true;

/** The actor when the transport names none. */
const DEFAULT_ACTOR = 'api';

export function firmwareView(listing: ImageListing): FirmwareImageView {
  const i = listing.image;
  return {
    sha256: i.sha256,
    version: i.version,
    kinds: i.kinds,
    hardwareRevision: i.hardwareRevision,
    size: i.size,
    keyId: i.keyId,
    importedAt: i.importedAt,
    importedBy: i.importedBy,
    downgradeFrom: i.downgradeFrom,
    soakSeconds: imageSoakSeconds(i) ?? null,
    trialSeconds: imageTrialSeconds(i) ?? null,
    runningOn: listing.runningOn,
    wantedBy: listing.wantedBy,
  };
}

/**
 * The telemetry checks of a request (`trialChecks`), parsed: `badRequest` naming the first bad
 * check; undefined when none are given.
 */
export function requestTrialChecks(texts: readonly string[] | undefined): readonly TrialCheck[] | undefined {
  if (texts === undefined || texts.length === 0) return undefined;
  const parsed = parseTrialChecks(texts);
  if (!parsed.ok) throw new ApiFailure('badRequest', `trialChecks: ${parsed.error.message}`);
  return parsed.value;
}

export function firmwareJobView(j: UpdateJobSnapshot): FirmwareJobView {
  return {
    deviceId: j.deviceId,
    transferId: j.transferId,
    version: j.version,
    size: j.size,
    sha256: j.sha256,
    step: j.step,
    offset: j.offset,
    resumedFrom: j.resumedFrom,
    bytesPerSecond: j.bytesPerSecond,
    resent: j.resent,
    deadline: j.deadline ?? null,
    error: j.error ? { ...j.error } : null,
    trialChecks: j.trialChecks,
  };
}

/**
 * Why a firmware call on a device this app does not run is refused: `notFound` (no such device),
 * or, in a cluster, `notOwner` naming the instance that runs it. Images, jobs and rollouts are each
 * instance's own (docs/scale-out.md): the update is asked there, not routed.
 */
async function notHere(app: App, deviceId: string): Promise<ApiFailure> {
  const cluster = app.cluster;
  if (cluster) {
    const where = await whereIs(cluster.db, deviceId, cluster.keeper.shardOf(deviceId)).catch(
      () => undefined,
    );
    if (where?.known)
      return new ApiFailure(
        'notOwner',
        `'${deviceId}' runs on instance ${where.owner ?? '(none now: its owner is failing over)'}: ` +
          'firmware images, updates and rollouts are each instance’s own, so update it there (import the image there too)',
      );
  }
  return new ApiFailure('notFound', `no device '${deviceId}' in the fleet`);
}

function imagesOf(app: App) {
  if (!app.firmware.ok)
    throw new ApiFailure(
      'unavailable',
      `firmware images are unavailable: ${app.firmware.error.message} (fix the trusted keys in the data folder and restart)`,
    );
  return app.firmware.value.images;
}

export function firmwareHandlers(
  app: App,
): Pick<Handlers, 'firmwareList' | 'firmwareImport' | 'firmwareUpdate' | 'firmwareJobs' | 'firmwareCancel'> {
  return {
    firmwareUpdate: async (a, context) => {
      const images = imagesOf(app);
      const trialChecks = requestTrialChecks(a.trialChecks);
      const device = app.fleet.device(a.deviceId);
      if (!device) throw await notHere(app, a.deviceId);
      const listing = (await images.list()).images.find((l) => l.image.sha256 === a.sha256);
      if (!listing) throw new ApiFailure('notFound', `no stored image with SHA-256 ${a.sha256}`);
      if (!listing.image.kinds.includes(device.kind))
        throw new ApiFailure(
          'wrongKind',
          `image ${listing.image.version} is for ${listing.image.kinds.join(', ')}, not ${device.kind} ('${a.deviceId}')`,
        );
      const bytes = await images.readImage(a.sha256);
      if (!bytes.ok) throw new ApiFailure(bytes.error.code, bytes.error.message);
      const settings = trialSettings(jobTrialMs(a.trialMs, listing.image), trialChecks);
      const started = app.updates.start(a.deviceId, {
        image: bytes.value,
        version: listing.image.version,
        actor: context.actor ?? DEFAULT_ACTOR,
        ...(settings ? { settings } : {}),
      });
      if (!started.ok) throw new ApiFailure(started.error.code, started.error.message);
      // Answered once saved: an app killed right after continues the job on restart.
      if (!(await app.jobSaved(a.deviceId))) {
        app.updates.cancel(a.deviceId);
        throw new ApiFailure(
          'unavailable',
          `the update of '${a.deviceId}' could not be saved: cancelled (see the log)`,
        );
      }
      await app.store.appendEvents(
        [
          {
            at: Date.now(),
            deviceId: a.deviceId,
            kind: 'firmware.updateRequested',
            data: { version: listing.image.version, sha256: a.sha256, actor: context.actor ?? DEFAULT_ACTOR },
          },
        ],
        { durability: 'full' },
      );
      return firmwareJobView(started.value.snapshot());
    },

    firmwareJobs: async () => app.updates.list().map(firmwareJobView),

    firmwareCancel: async (a) => {
      if (app.cluster && !app.fleet.has(a.deviceId) && !app.updates.get(a.deviceId))
        throw await notHere(app, a.deviceId);
      const r = app.updates.cancel(a.deviceId);
      if (!r.ok) throw new ApiFailure(r.error.code, r.error.message);
      await app.jobSaved(a.deviceId);
      return firmwareJobView(r.value);
    },

    firmwareList: async () => {
      const listed = await imagesOf(app).list();
      return {
        images: listed.images.map(firmwareView),
        unreadable: listed.unreadable.map((f) => ({ code: f.code, message: f.message })),
      };
    },

    firmwareImport: async (a, context) => {
      const images = imagesOf(app);
      const imported = await images.importImage({
        manifest: a.manifest,
        image: new Uint8Array(Buffer.from(a.image, 'base64')),
        actor: context.actor ?? DEFAULT_ACTOR,
        allowDowngrade: a.allowDowngrade,
      });
      if (!imported.ok) throw new ApiFailure(imported.error.code, imported.error.message);
      const { image, created } = imported.value;
      const listing = (await images.list()).images.find((l) => l.image.sha256 === image.sha256);
      return { image: firmwareView(listing ?? { image, runningOn: [], wantedBy: [] }), created };
    },
  };
}

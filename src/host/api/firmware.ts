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
import { readSharedImage, shareImage } from '../../cluster/shared-images.js';
import { trialSettings } from '../../firmware/firmware-updates.js';
import { imageSoakSeconds } from '../../firmware/image-soak.js';
import { imageTrialSeconds, jobTrialMs } from '../../firmware/image-trial.js';
import type { ImageListing, ImportErrorCode } from '../../firmware/index.js';
import type { TrialCheck } from '../../firmware/trial-checks.js';
import { parseTrialChecks } from '../../firmware/trial-checks.js';
import type { UpdateJobSnapshot } from '../../firmware/update-job.js';
import type { FirmwareImageRecord } from '../../store/firmware-store.js';
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
 * or, in a cluster, `notOwner` naming the instance that runs it (an update and a cancel are routed
 * to the owner, src/host/api/routed.ts; this is the owner's answer when the device moved away
 * meanwhile).
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
        `'${deviceId}' runs on instance ${where.owner ?? '(none now: its owner is failing over)'}, not here: ask again (the call is routed to its owner)`,
      );
  }
  return new ApiFailure('notFound', `no device '${deviceId}' in the fleet`);
}

/**
 * In a cluster, puts a stored image in the shared table (src/cluster/shared-images.ts) so that the
 * instance running the device can import it; an image this instance does not have is left to the
 * owner (which may have it, else answers notFound).
 */
export async function shareForOwner(app: App, sha256: string): Promise<void> {
  const cluster = app.cluster;
  if (!cluster || !app.firmware.ok) return;
  const image = await storedImage(app, sha256);
  if (!image) return;
  const bytes = await app.firmware.value.images.readImage(sha256);
  if (!bytes.ok) throw new ApiFailure(bytes.error.code, bytes.error.message);
  try {
    await shareImage(cluster.db, {
      sha256,
      manifest: JSON.stringify(image.manifest),
      image: bytes.value,
      by: cluster.keeper.instanceId,
      allowDowngrade: image.downgradeFrom !== null,
    });
  } catch (error) {
    throw new ApiFailure(
      'routingFailed',
      `cannot share image ${sha256.slice(0, 12)}… with the device's instance: ${(error as Error).message}`,
    );
  }
}

/**
 * The stored image's row, by its key: one row read, where the listing of every image would also
 * read every device's firmware (on PostgreSQL, the whole device table). A row that does not read
 * is none, as in the listing.
 */
async function storedImage(app: App, sha256: string): Promise<FirmwareImageRecord | undefined> {
  if (!app.firmware.ok) return undefined;
  const row = await app.firmware.value.store.getImage(sha256);
  return row.ok ? row.value : undefined;
}

/**
 * The stored image with this SHA-256. In a cluster, one this instance lacks but another shared
 * (an update of a device this instance runs, asked elsewhere) is imported first, through this
 * instance's own checks: its trust list, kinds and slots, as if imported here by hand.
 */
async function imageOf(app: App, sha256: string, actor: string): Promise<FirmwareImageRecord | undefined> {
  const here = await storedImage(app, sha256);
  if (here || !app.cluster) return here;
  // One import per image at a time: the jobs of a rollout's devices ask for it together.
  let importing = imports.get(app)?.get(sha256);
  if (!importing) {
    importing = importShared(app, sha256, actor);
    const mine = imports.get(app) ?? new Map<string, Promise<FirmwareImageRecord | undefined>>();
    imports.set(app, mine);
    mine.set(sha256, importing);
    void importing.then(
      () => mine.delete(sha256),
      () => mine.delete(sha256),
    );
  }
  return importing;
}

/** The shared images each app is importing now, by SHA-256. */
const imports = new WeakMap<App, Map<string, Promise<FirmwareImageRecord | undefined>>>();

/** Imports the image another instance shared (see {@link imageOf}); undefined when none was. */
async function importShared(
  app: App,
  sha256: string,
  actor: string,
): Promise<FirmwareImageRecord | undefined> {
  const cluster = app.cluster;
  if (!cluster) return undefined;
  const images = imagesOf(app);
  const me = cluster.keeper.instanceId;
  let shared: Awaited<ReturnType<typeof readSharedImage>>;
  try {
    shared = await readSharedImage(cluster.db, sha256);
  } catch (error) {
    throw new ApiFailure(
      'corrupt',
      `instance ${me} cannot take the shared image: ${(error as Error).message}`,
    );
  }
  if (!shared) return undefined;
  // A downgrade its operator asked for explicitly where it was imported is one here too (audited).
  const imported = await images.importImage({
    manifest: shared.manifest,
    image: shared.image,
    actor,
    ...(shared.allowDowngrade ? { allowDowngrade: true } : {}),
  });
  if (!imported.ok) {
    // Stored meanwhile (an import by hand, or an earlier call's): used as stored.
    const stored = imported.error.code === 'duplicateImage' ? await storedImage(app, sha256) : undefined;
    if (stored) return stored;
    throw new ApiFailure(
      imported.error.code,
      `instance ${me}, which runs the device, refuses the image instance ${shared.by} shared: ${imported.error.message}`,
    );
  }
  app.runtime.logger.info('firmware image imported from the cluster', {
    sha256,
    version: imported.value.image.version,
    sharedBy: shared.by,
    ...(shared.allowDowngrade ? { downgrade: true } : {}),
    actor,
  });
  return imported.value.image;
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
      const image = await imageOf(app, a.sha256, context.actor ?? DEFAULT_ACTOR);
      if (!image) throw new ApiFailure('notFound', `no stored image with SHA-256 ${a.sha256}`);
      if (!image.kinds.includes(device.kind))
        throw new ApiFailure(
          'wrongKind',
          `image ${image.version} is for ${image.kinds.join(', ')}, not ${device.kind} ('${a.deviceId}')`,
        );
      const bytes = await images.readImage(a.sha256);
      if (!bytes.ok) throw new ApiFailure(bytes.error.code, bytes.error.message);
      const settings = trialSettings(jobTrialMs(a.trialMs, image), trialChecks);
      const started = app.updates.start(a.deviceId, {
        image: bytes.value,
        version: image.version,
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
            data: { version: image.version, sha256: a.sha256, actor: context.actor ?? DEFAULT_ACTOR },
          },
        ],
        { durability: 'full' },
      );
      return firmwareJobView(started.value.snapshot());
    },

    firmwareJobs: async (a) =>
      (a.deviceId === undefined
        ? app.updates.list()
        : app.updates.list().filter((j) => j.deviceId === a.deviceId)
      ).map(firmwareJobView),

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
      // In a cluster every instance can find it: a device's owner imports it for its reconciler.
      if (app.cluster)
        await shareForOwner(app, image.sha256).catch((error: unknown) =>
          app.runtime.logger.warn('firmware image not shared with the cluster (it is stored here)', {
            sha256: image.sha256,
            error: String(error instanceof ApiFailure ? error.message : error),
          }),
        );
      const listing = (await images.list()).images.find((l) => l.image.sha256 === image.sha256);
      return { image: firmwareView(listing ?? { image, runningOn: [], wantedBy: [] }), created };
    },
  };
}

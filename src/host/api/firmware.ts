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
import type { ImageListing, ImportErrorCode } from '../../firmware/index.js';
import type { App } from '../app.js';
import type { FirmwareImageView, FirmwareRefusalCode } from '../contract.js';
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
    runningOn: listing.runningOn,
    wantedBy: listing.wantedBy,
  };
}

function imagesOf(app: App) {
  if (!app.firmware.ok)
    throw new ApiFailure(
      'unavailable',
      `firmware images are unavailable: ${app.firmware.error.message} (fix the trusted keys in the data folder and restart)`,
    );
  return app.firmware.value.images;
}

export function firmwareHandlers(app: App): Pick<Handlers, 'firmwareList' | 'firmwareImport'> {
  return {
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

/**
 * The firmware layer's public surface: image manifests and their signatures, keys and trust,
 * the import checks, stored images, and the `fleetvisor firmware` command (docs/firmware.md).
 * Everything else in src/firmware is internal.
 *
 * @example
 * import { openFirmware } from './firmware/index.js';
 * const fw = await openFirmware({ dataDir, databaseFile, demo, kinds });
 */

export type { CheckedImage, CheckImageInput, ImageRefusal, KindSlot, StoredImageKey } from './check-image.js';
export { checkImage } from './check-image.js';
export { runFirmwareCli } from './cli.js';
export type { FirmwareImages, ImageListing, ImportErrorCode, ImportInput } from './firmware-images.js';
export { firmwareDirFor, openFirmwareImages } from './firmware-images.js';
export type { KeyErrorCode, SigningKeyPair, TrustedKey, TrustedKeySources, TrustedKeys } from './keys.js';
export {
  generateSigningKeyPair,
  keyIdOf,
  loadTrustedKeys,
  parsePrivateKey,
  parsePublicKey,
  SAMPLE_KEY_FILE,
  TRUSTED_KEYS_DIR,
  trustedKeySourcesFor,
} from './keys.js';
export type { FirmwareManifest, ManifestSignature, SignedManifest } from './manifest.js';
export {
  canonicalJson,
  describeImage,
  MANIFEST_FORMAT,
  parseManifest,
  sha256Hex,
  signManifest,
  verifyManifestSignature,
} from './manifest.js';
export type { OpenedFirmware, OpenFirmwareOptions } from './open-firmware.js';
export { openFirmware } from './open-firmware.js';
export { compareFirmwareVersions, parseFirmwareVersion } from './version.js';

/**
 * Every check an image passes before it is stored, as one pure function: the manifest parses and
 * is signed by a trusted key, the bytes are the ones it describes, its kinds exist and take an
 * image that big, its version does not clash with a stored image, and it is no downgrade unless
 * asked for. The first failing check is the answer, from a closed set of codes.
 *
 * @example
 * const r = checkImage({ manifest, image, trustedKeys, kinds, stored, allowDowngrade: false });
 * if (!r.ok) console.error(`${r.error.code}: ${r.error.message}`); // e.g. hashMismatch: …
 */
import { err, type Failure, ok, type Result } from '../lib/result.js';
import type { TrustedKey, TrustedKeys } from './keys.js';
import type { FirmwareManifest } from './manifest.js';
import { parseManifest, sha256Hex, verifyManifestSignature } from './manifest.js';
import { compareFirmwareVersions } from './version.js';

/** Why an image is refused. Nothing of a refused image is stored. */
export type ImageRefusal =
  /** The manifest is not JSON, or a field breaks its rule (the message names it); also a cut-off manifest. */
  | 'badManifest'
  /** The manifest carries no signature. */
  | 'unsigned'
  /** The signing key is not in the trusted keys (the message gives its key id). */
  | 'unknownKey'
  /** The signature does not verify: the manifest was changed after signing, or forged. */
  | 'badSignature'
  /** A target kind is not a kind this app knows. */
  | 'unknownKind'
  /** A target kind has no firmware channel (Homie, Sparkplug, Modbus devices). */
  | 'firmwareNotSupported'
  /** The image is bigger than a target kind's firmware slot. */
  | 'tooLarge'
  /** The image file is shorter than the manifest's size. */
  | 'truncated'
  /** The image file is longer than the manifest's size. */
  | 'sizeMismatch'
  /** The image's SHA-256 is not the manifest's. */
  | 'hashMismatch'
  /** A stored image has the same version for one of the kinds, with other bytes. */
  | 'versionConflict'
  /** These exact bytes are stored already under another version or other kinds. */
  | 'duplicateImage'
  /** A newer version is stored for one of the kinds; import with `allowDowngrade` to go back on purpose. */
  | 'downgrade';

/** What the check needs to know of a stored image. */
export interface StoredImageKey {
  readonly sha256: string;
  readonly version: string;
  readonly kinds: readonly string[];
}

/** What the check needs to know of a kind. */
export interface KindSlot {
  /** Omitted: the kind takes no firmware. */
  readonly firmwareSlotBytes?: number;
}

export interface CheckImageInput {
  /** The manifest file's text or bytes. */
  readonly manifest: string | Uint8Array;
  readonly image: Uint8Array;
  readonly trustedKeys: TrustedKeys;
  readonly kinds: ReadonlyMap<string, KindSlot>;
  /** The images stored so far. */
  readonly stored: readonly StoredImageKey[];
  /** Accept a version older than a stored one for the same kind (the import audits it). */
  readonly allowDowngrade: boolean;
}

export interface CheckedImage {
  readonly manifest: FirmwareManifest;
  readonly signer: TrustedKey;
  /** The same image (bytes, version, kinds) is stored already: importing it again changes nothing. */
  readonly alreadyStored: boolean;
  /** Set for an accepted downgrade: the newest stored version it goes back from. */
  readonly downgradeFrom?: string;
}

export function checkImage(input: CheckImageInput): Result<CheckedImage, Failure<ImageRefusal>> {
  const parsed = parseManifest(input.manifest);
  if (!parsed.ok) return parsed;
  const manifest = parsed.value;
  const m = manifest.signed;
  if (manifest.signature === undefined)
    return err(
      'unsigned',
      `the manifest of ${m.version} is not signed; sign it with \`fleetvisor firmware sign\``,
    );
  const signer = input.trustedKeys.get(manifest.signature.keyId);
  if (signer === undefined)
    return err(
      'unknownKey',
      `the manifest of ${m.version} is signed by key ${manifest.signature.keyId}, which is not among the ` +
        `${input.trustedKeys.size} trusted key(s); add its public key to the trusted keys to accept it`,
    );
  if (!verifyManifestSignature(manifest, signer))
    return err(
      'badSignature',
      `the signature of the manifest of ${m.version} does not verify with key ${signer.keyId} (${signer.source}): ` +
        'the manifest was changed after signing, or the signature is not that key’s',
    );

  for (const kind of m.kinds) {
    const k = input.kinds.get(kind);
    if (k === undefined)
      return err('unknownKind', `unknown kind '${kind}' (known: ${[...input.kinds.keys()].join(', ')})`);
    if (k.firmwareSlotBytes === undefined)
      return err(
        'firmwareNotSupported',
        `devices of kind '${kind}' have no firmware channel: firmware update not supported`,
      );
    if (m.size > k.firmwareSlotBytes)
      return err(
        'tooLarge',
        `the image is ${m.size} bytes; the firmware slot of kind '${kind}' takes ${k.firmwareSlotBytes} bytes at most`,
      );
  }

  if (input.image.byteLength < m.size)
    return err(
      'truncated',
      `the image file has ${input.image.byteLength} bytes, the manifest says ${m.size}: the file is cut off`,
    );
  if (input.image.byteLength > m.size)
    return err(
      'sizeMismatch',
      `the image file has ${input.image.byteLength} bytes, the manifest says ${m.size}: not the image it describes`,
    );
  const actual = sha256Hex(input.image);
  if (actual !== m.sha256)
    return err(
      'hashMismatch',
      `the image's SHA-256 is ${actual}, the manifest says ${m.sha256}: not the image it describes`,
    );

  const same = input.stored.find((s) => s.sha256 === m.sha256);
  if (same !== undefined) {
    if (same.version === m.version && sameSet(same.kinds, m.kinds))
      return ok({ manifest, signer, alreadyStored: true });
    return err(
      'duplicateImage',
      `these bytes are stored already as ${same.version} for ${same.kinds.join(', ')}; delete that image first to describe them anew`,
    );
  }
  const clash = input.stored.find((s) => s.version === m.version && s.kinds.some((k) => m.kinds.includes(k)));
  if (clash !== undefined)
    return err(
      'versionConflict',
      `version ${m.version} for ${clash.kinds.filter((k) => m.kinds.includes(k)).join(', ')} is stored already with other bytes ` +
        `(SHA-256 ${clash.sha256}); a new build needs a new version`,
    );

  let newest: string | undefined;
  for (const s of input.stored)
    if (s.kinds.some((k) => m.kinds.includes(k)) && compareFirmwareVersions(s.version, m.version) > 0)
      if (newest === undefined || compareFirmwareVersions(s.version, newest) > 0) newest = s.version;
  if (newest !== undefined && !input.allowDowngrade)
    return err(
      'downgrade',
      `${m.version} is older than the stored ${newest} for the same kind; import it as a downgrade explicitly ` +
        '(--allow-downgrade) if going back is intended',
    );
  return ok({
    manifest,
    signer,
    alreadyStored: false,
    ...(newest !== undefined ? { downgradeFrom: newest } : {}),
  });
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/**
 * The image manifest (docs/firmware.md): what an image is (version, target kinds, optional
 * hardware revision, size, SHA-256, and optionally the soak its rollouts wait between waves and the
 * trial each device gives it before confirming) in a
 * `signed` part, and one ed25519 signature over the canonical JSON of that part, with the id of
 * the key that made it.
 *
 * ```json
 * { "signed": { "format": "fleetvisor.firmware/1", "version": "1.1.0", "kinds": ["fleetvisor.generic"],
 *               "size": 65536, "sha256": "9f…" },
 *   "signature": { "keyId": "4c…", "ed25519": "base64…" } }
 * ```
 *
 * Canonical JSON: keys sorted at every depth, no whitespace, UTF-8. The `format` field inside the
 * signed part keeps a signature made for anything else from verifying as a manifest.
 *
 * @example
 * const manifest = signManifest(describeImage(bytes, { version: '1.1.0', kinds: ['fleetvisor.generic'] }), pem);
 * writeFileSync('app.bin.manifest.json', `${JSON.stringify(manifest, null, 2)}\n`);
 */
import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import type { JsonValue } from '../lib/json.js';
import { isJsonObject } from '../lib/json.js';
import { err, type Failure, ok, type Result } from '../lib/result.js';
import type { TrustedKey } from './keys.js';
import { keyIdOf } from './keys.js';
import { parseFirmwareVersion } from './version.js';

export const MANIFEST_FORMAT = 'fleetvisor.firmware/1';

/** What the signature covers. */
export interface SignedManifest {
  readonly format: typeof MANIFEST_FORMAT;
  readonly version: string;
  /** The device kinds the image is for (`fleetvisor.generic`, …), at least one, no repeats. */
  readonly kinds: readonly string[];
  /** Only devices of this hardware revision take the image; omitted: any revision. */
  readonly hardwareRevision?: string;
  /** Bytes. */
  readonly size: number;
  /** 64 lowercase hex digits. */
  readonly sha256: string;
  /**
   * The default soak of a rollout of this image: seconds between the end of a wave and the start
   * of the next (0 … {@link MAX_SOAK_SECONDS}). A rollout that sets its own soak wins. Omitted: none.
   */
  readonly soakSeconds?: number;
  /**
   * How long each device runs this image on trial before the update job confirms it: seconds
   * (1 … {@link MAX_TRIAL_SECONDS}). A rollout that sets its own trial wins. Omitted: the job's
   * default (10 s).
   */
  readonly trialSeconds?: number;
}

/** The longest soak an image may declare: a day, as a rollout's own `soakMs` at most. */
export const MAX_SOAK_SECONDS = 86_400;

/** The longest trial an image may declare: a day. */
export const MAX_TRIAL_SECONDS = 86_400;

export interface ManifestSignature {
  /** {@link keyIdOf} the signing key. */
  readonly keyId: string;
  /** The ed25519 signature of the canonical signed part, base64. */
  readonly ed25519: string;
}

export interface FirmwareManifest {
  readonly signed: SignedManifest;
  /** Absent in an unsigned manifest (which the import refuses). */
  readonly signature?: ManifestSignature;
}

const KIND = /^[a-z0-9][a-z0-9.-]{0,63}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const REVISION = /^[A-Za-z0-9._-]{1,32}$/;
/** No image is larger than this (a slot bounds it far below). */
const MAX_SIZE = 2 ** 40;

/** JSON with keys sorted at every depth and no whitespace: the bytes that are signed. */
export function canonicalJson(value: JsonValue): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  if (isJsonObject(value))
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k]!)}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

/** The signed part for an image's bytes. */
export function describeImage(
  image: Uint8Array,
  target: {
    readonly version: string;
    readonly kinds: readonly string[];
    readonly hardwareRevision?: string;
    readonly soakSeconds?: number;
    readonly trialSeconds?: number;
  },
): SignedManifest {
  return {
    format: MANIFEST_FORMAT,
    version: target.version,
    kinds: [...target.kinds],
    ...(target.hardwareRevision !== undefined ? { hardwareRevision: target.hardwareRevision } : {}),
    size: image.byteLength,
    sha256: sha256Hex(image),
    ...(target.soakSeconds !== undefined ? { soakSeconds: target.soakSeconds } : {}),
    ...(target.trialSeconds !== undefined ? { trialSeconds: target.trialSeconds } : {}),
  };
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Signs the signed part with an ed25519 private key (a KeyObject or PKCS#8 PEM). */
export function signManifest(signed: SignedManifest, privateKey: KeyObject | string): FirmwareManifest {
  const signature = sign(null, signedBytes(signed), privateKey);
  const keyId = keyIdOf(createPublicKey(privateKey));
  return { signed, signature: { keyId, ed25519: signature.toString('base64') } };
}

/** Whether the manifest's signature verifies with `key` (its key id must match, too). */
export function verifyManifestSignature(manifest: FirmwareManifest, key: TrustedKey): boolean {
  const s = manifest.signature;
  if (s === undefined || s.keyId !== key.keyId) return false;
  try {
    return verify(null, signedBytes(manifest.signed), key.publicKey, Buffer.from(s.ed25519, 'base64'));
  } catch {
    return false;
  }
}

function signedBytes(signed: SignedManifest): Buffer {
  return Buffer.from(canonicalJson(signed as unknown as JsonValue), 'utf8');
}

/**
 * A manifest from its JSON text, every field checked; `badManifest` names the first bad field.
 * A manifest without `signature` parses: refusing it (`unsigned`) is the import's decision.
 */
export function parseManifest(text: string | Uint8Array): Result<FirmwareManifest, Failure<'badManifest'>> {
  let value: unknown;
  try {
    value = JSON.parse(typeof text === 'string' ? text : Buffer.from(text).toString('utf8'));
  } catch (error) {
    return bad(`the manifest is not JSON (${(error as Error).message}); is the file complete?`);
  }
  if (!isJsonObject(value)) return bad('the manifest must be a JSON object');
  const extra = Object.keys(value).find((k) => k !== 'signed' && k !== 'signature');
  if (extra !== undefined) return bad(`unknown field '${extra}' (a manifest has signed and signature)`);
  const s = value.signed;
  if (!isJsonObject(s)) return bad('signed: missing, or not an object');
  if (s.format !== MANIFEST_FORMAT)
    return bad(`signed.format must be '${MANIFEST_FORMAT}', got ${show(s.format)}`);
  const allowed = [
    'format',
    'version',
    'kinds',
    'hardwareRevision',
    'size',
    'sha256',
    'soakSeconds',
    'trialSeconds',
  ];
  const unknown = Object.keys(s).find((k) => !allowed.includes(k));
  if (unknown !== undefined) return bad(`signed.${unknown}: unknown field (allowed: ${allowed.join(', ')})`);
  const version = parseFirmwareVersion(s.version);
  if (!version.ok) return bad(`signed.version: ${version.error.message}`);
  if (!Array.isArray(s.kinds) || s.kinds.length === 0 || s.kinds.length > 64)
    return bad('signed.kinds must be a list of 1 to 64 device kinds');
  for (const [i, k] of s.kinds.entries())
    if (typeof k !== 'string' || !KIND.test(k))
      return bad(`signed.kinds[${i}] must be a kind name like fleetvisor.generic, got ${show(k)}`);
  if (new Set(s.kinds).size !== s.kinds.length) return bad('signed.kinds names a kind twice');
  if (
    s.hardwareRevision !== undefined &&
    (typeof s.hardwareRevision !== 'string' || !REVISION.test(s.hardwareRevision))
  )
    return bad(
      `signed.hardwareRevision must be 1 to 32 of A-Z a-z 0-9 . _ -, got ${show(s.hardwareRevision)}`,
    );
  if (typeof s.size !== 'number' || !Number.isSafeInteger(s.size) || s.size < 1 || s.size > MAX_SIZE)
    return bad(`signed.size must be a whole number of bytes above 0, got ${show(s.size)}`);
  if (typeof s.sha256 !== 'string' || !HEX64.test(s.sha256))
    return bad(`signed.sha256 must be 64 lowercase hex digits, got ${show(s.sha256)}`);
  if (s.soakSeconds !== undefined && !isSoakSeconds(s.soakSeconds))
    return bad(
      `signed.soakSeconds must be whole seconds from 0 to ${MAX_SOAK_SECONDS}, got ${show(s.soakSeconds)}`,
    );
  if (s.trialSeconds !== undefined && !isTrialSeconds(s.trialSeconds))
    return bad(
      `signed.trialSeconds must be whole seconds from 1 to ${MAX_TRIAL_SECONDS}, got ${show(s.trialSeconds)}`,
    );
  const signed = s as unknown as SignedManifest;

  const sig = value.signature;
  if (sig === undefined || sig === null) return ok({ signed });
  if (
    !isJsonObject(sig) ||
    typeof sig.keyId !== 'string' ||
    !HEX64.test(sig.keyId) ||
    typeof sig.ed25519 !== 'string' ||
    !/^[A-Za-z0-9+/]{86}==$/.test(sig.ed25519) ||
    Object.keys(sig).length !== 2
  )
    return bad('signature must be { keyId: 64 hex digits, ed25519: a base64 64-byte signature }');
  return ok({ signed, signature: { keyId: sig.keyId, ed25519: sig.ed25519 } });
}

/** Whether `v` is a soak an image may declare: whole seconds, 0 … {@link MAX_SOAK_SECONDS}. */
export const isSoakSeconds = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_SOAK_SECONDS;

/** Whether `v` is a trial an image may declare: whole seconds, 1 … {@link MAX_TRIAL_SECONDS}. */
export const isTrialSeconds = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 && v <= MAX_TRIAL_SECONDS;

const bad = (message: string) => err('badManifest', message);
const show = (v: unknown): string => JSON.stringify(v)?.slice(0, 80) ?? String(v);

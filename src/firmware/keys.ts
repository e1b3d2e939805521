/**
 * Signing keys for firmware manifests: ed25519 with Node's own crypto, as PEM files (PKCS#8 for
 * the private key, SPKI for the public one). A key is named by its key id: the SHA-256 of its raw
 * 32-byte public key, in hex, the way The Update Framework names keys.
 *
 * The trusted keys are a list of public-key files: every `*.pub` or `*.pem` file in the data
 * folder's `trusted-keys/` folder, plus any file the caller adds (docs/firmware.md).
 *
 * @example
 * const pair = generateSigningKeyPair();
 * writeFileSync('lab.key', pair.privateKeyPem, { mode: 0o600 });
 * writeFileSync('lab.pub', pair.publicKeyPem);
 * const trusted = loadTrustedKeys({ files: ['lab.pub'] }); // { ok: true, value: Map { pair.keyId => … } }
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { err, type Failure, ok, type Result } from '../lib/result.js';

/** The folder of trusted public keys inside the data folder. */
export const TRUSTED_KEYS_DIR = 'trusted-keys';

export interface SigningKeyPair {
  readonly keyId: string;
  readonly publicKeyPem: string;
  readonly privateKeyPem: string;
}

/** A public key the app accepts signatures from, and where it was read. */
export interface TrustedKey {
  readonly keyId: string;
  readonly publicKey: KeyObject;
  readonly source: string;
}

/** Trusted keys by key id. */
export type TrustedKeys = ReadonlyMap<string, TrustedKey>;

export type KeyErrorCode =
  /** The text is not an ed25519 key in PEM. */
  | 'badKey'
  /** A key file or folder could not be read. */
  | 'unreadable';

/** A fresh ed25519 key pair. */
export function generateSigningKeyPair(): SigningKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    keyId: keyIdOf(publicKey),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** The key id: hex SHA-256 of the raw 32-byte ed25519 public key. */
export function keyIdOf(publicKey: KeyObject): string {
  const x = publicKey.export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new Error('keyIdOf: not an ed25519 public key');
  return createHash('sha256').update(Buffer.from(x, 'base64url')).digest('hex');
}

/** An ed25519 public key from PEM; `source` names it in messages (a file name). */
export function parsePublicKey(pem: string, source: string): Result<TrustedKey, Failure<'badKey'>> {
  // createPublicKey would derive the public half of a private key: refuse one lying in the trust list.
  if (pem.includes('PRIVATE KEY'))
    return err(
      'badKey',
      `${source} is a private key; trust its public key (the .pub from keygen) and keep this one secret`,
    );
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(pem);
  } catch (error) {
    return err('badKey', `${source} is not a public key in PEM: ${(error as Error).message}`);
  }
  if (publicKey.asymmetricKeyType !== 'ed25519')
    return err(
      'badKey',
      `${source} is a ${publicKey.asymmetricKeyType} key; firmware is signed with ed25519`,
    );
  return ok({ keyId: keyIdOf(publicKey), publicKey, source });
}

/** An ed25519 private key from PEM, for signing. */
export function parsePrivateKey(pem: string, source: string): Result<KeyObject, Failure<'badKey'>> {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    return err('badKey', `${source} is not a private key in PEM: ${(error as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519')
    return err('badKey', `${source} is a ${key.asymmetricKeyType} key; firmware is signed with ed25519`);
  return ok(key);
}

/** The sample image's public key (assets/firmware), trusted for the demo's database. */
export const SAMPLE_KEY_FILE = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'assets',
  'firmware',
  'sample-signing.pub',
);

/**
 * The trusted keys of a data folder: its `trusted-keys/` folder, the sample key for the demo's
 * database, and any extra files (`--trusted-key`).
 */
export function trustedKeySourcesFor(options: {
  readonly dataDir: string;
  readonly demo: boolean;
  readonly files?: readonly string[];
}): TrustedKeySources {
  return {
    folders: [join(options.dataDir, TRUSTED_KEYS_DIR)],
    files: [...(options.demo ? [SAMPLE_KEY_FILE] : []), ...(options.files ?? [])],
  };
}

/** Where trusted public keys are read from. */
export interface TrustedKeySources {
  /** Folders: each `*.pub` and `*.pem` file in them; a folder that does not exist holds no keys. */
  readonly folders?: readonly string[];
  /** Single key files; a missing one is an error. */
  readonly files?: readonly string[];
}

/**
 * The trusted keys. Any file that is not an ed25519 public key fails the whole load: a trust list
 * silently missing a key would refuse good images for a reason no one sees.
 */
export function loadTrustedKeys(sources: TrustedKeySources): Result<TrustedKeys, Failure<KeyErrorCode>> {
  const files: string[] = [];
  for (const folder of sources.folders ?? []) {
    try {
      files.push(
        ...readdirSync(folder)
          .filter((n) => /\.(pub|pem)$/.test(n))
          .sort()
          .map((n) => join(folder, n)),
      );
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      return err('unreadable', `cannot read the trusted-keys folder ${folder}: ${(error as Error).message}`);
    }
  }
  files.push(...(sources.files ?? []));
  const keys = new Map<string, TrustedKey>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      return err('unreadable', `cannot read the trusted key ${file}: ${(error as Error).message}`);
    }
    const key = parsePublicKey(text, file);
    if (!key.ok) return key;
    keys.set(key.value.keyId, key.value);
  }
  return ok(keys);
}

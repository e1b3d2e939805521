/**
 * Broker secrets: generating one, hashing it (scrypt for us, Mosquitto's `$7$` PBKDF2 for an
 * external Mosquitto's password file), and checking a password against a hash with a cache and a
 * bound on the hashing done at once. Used by broker-accounts.ts.
 *
 * @example
 * const secret = newSecret();
 * const hashed = hashSecret(secret, Date.now());
 * const checker = createSecretChecker();
 * await checker.check('pump-7', hashed, Buffer.from(secret)); // true (throws BusyError in a flood)
 */
import type { BinaryLike, ScryptOptions } from 'node:crypto';
import { createHash, pbkdf2Sync, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';

/** A hashed secret: `scrypt$N$r$p$salt$hash` (base64) and Mosquitto's `$7$iterations$salt$hash`. */
export interface HashedSecret {
  readonly scrypt: string;
  readonly mosquitto: string;
  readonly createdAt: number;
}

const SCRYPT = { N: 16_384, r: 8, p: 1, keylen: 32 } as const;
/**
 * scrypt runs on libuv's thread pool, which SQLite's writes share: at most this many at once, and
 * at most MAX_WAITING waiting, so a flood of wrong passwords costs the store nothing. A secret
 * verified once is cached, so known devices reconnecting never wait here.
 */
const MAX_HASHING = 2;
const MAX_WAITING = 8;
const MOSQUITTO_ITERATIONS = 101;

/** A fresh secret: 24 random bytes, base64url (32 characters). */
export function newSecret(): string {
  return randomBytes(24).toString('base64url');
}

function scryptAsync(
  password: BinaryLike,
  salt: Buffer,
  keylen: number,
  options: ScryptOptions,
): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, keylen, options, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

export function hashSecret(secret: string, now: number): HashedSecret {
  const salt = randomBytes(16);
  // Synchronous on purpose: issuing is rare and operator-driven; verifying is async.
  const key = scryptHashSync(secret, salt);
  const mSalt = randomBytes(12);
  const mHash = pbkdf2Sync(secret, mSalt, MOSQUITTO_ITERATIONS, 64, 'sha512');
  return {
    scrypt: `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`,
    mosquitto: `$7$${MOSQUITTO_ITERATIONS}$${mSalt.toString('base64')}$${mHash.toString('base64')}`,
    createdAt: now,
  };
}

function scryptHashSync(secret: string, salt: Buffer): Buffer {
  return scryptSync(secret, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p });
}

async function matches(hashed: HashedSecret, password: Buffer): Promise<boolean> {
  const parts = hashed.scrypt.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  const salt = Buffer.from(parts[4] ?? '', 'base64');
  const expected = Buffer.from(parts[5] ?? '', 'base64');
  if (!(expected.length > 0)) return false;
  const key = await scryptAsync(password, salt, expected.length, { N, r, p, maxmem: 64 * 1024 * 1024 });
  return timingSafeEqual(key, expected);
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function isHashed(value: unknown): value is HashedSecret {
  const v = value as HashedSecret;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.scrypt === 'string' &&
    typeof v.mosquitto === 'string' &&
    typeof v.createdAt === 'number'
  );
}

/** Thrown by {@link SecretChecker.check} when too many secrets are being hashed already. */
export class BusyError extends Error {
  override readonly name = 'BusyError';
}

export interface SecretChecker {
  /**
   * Whether `password` is the secret hashed in `against`; remembered per `username` (by the
   * password's SHA-256) until that account's hash changes. Rejects with {@link BusyError} when
   * MAX_HASHING are running and MAX_WAITING wait already.
   */
  check(username: string, against: HashedSecret, password: Buffer): Promise<boolean>;
}

export function createSecretChecker(): SecretChecker {
  /** Secrets verified already: username → SHA-256 of the secret and the hash it matched. */
  const verified = new Map<string, { digest: Buffer; against: string }>();
  let hashing = 0;
  const waiting: (() => void)[] = [];
  const slot = async <T>(work: () => Promise<T>): Promise<T> => {
    if (hashing >= MAX_HASHING) await new Promise<void>((resolve) => waiting.push(resolve));
    hashing++;
    try {
      return await work();
    } finally {
      hashing--;
      waiting.shift()?.();
    }
  };
  return {
    async check(username, against, password) {
      const digest = sha256(password);
      const hit = verified.get(username);
      if (hit !== undefined && hit.against === against.scrypt && timingSafeEqual(hit.digest, digest))
        return true;
      if (hashing >= MAX_HASHING && waiting.length >= MAX_WAITING) throw new BusyError();
      const ok = await slot(() => matches(against, password));
      if (ok) {
        if (verified.size > 100_000) verified.clear();
        verified.set(username, { digest, against: against.scrypt });
      }
      return ok;
    },
  };
}

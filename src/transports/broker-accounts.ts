/**
 * Broker accounts, kept in the data folder as two files readable by the user alone (0600):
 *
 * - `broker-accounts.json`: every secret **hashed** (scrypt, and the Mosquitto `$7$` PBKDF2 hash
 *   of the same secret, so the password file for an external Mosquitto can be generated at any
 *   time without knowing a secret): the host's, one per device (generated when the device is
 *   added, shown once, rotatable, revocable), and optional per-kind provisioning secrets for a
 *   device's first contact.
 * - `broker-host.secret`: the host's own password in clear (the host needs it to connect; it is
 *   to the host what a device's secret is to the device).
 *
 * The file is re-read when it changes on disk, so `fleetvisor broker device add|rotate|revoke`
 * works while the app runs; {@link BrokerAccounts.refresh} says whether it changed.
 *
 * Verifying a secret costs one scrypt (~50 ms); a secret verified once is remembered (by its
 * SHA-256) until its account changes, so a device that reconnects costs nothing.
 *
 * @example
 * const accounts = openBrokerAccounts(dataDir);
 * const { username, password } = accounts.host;        // the host connects with these
 * const secret = accounts.issueDevice('pump-7');         // show it once to the operator
 * await accounts.verify('pump-7', Buffer.from(secret), 'pump-7'); // { ok: true, value: { role: 'device', … } }
 */
import type { BinaryLike, ScryptOptions } from 'node:crypto';
import { createHash, pbkdf2Sync, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseDeviceId } from '../devices/device-id.js';
import { writePrivateFile } from '../lib/private-file.js';
import type { Result } from '../lib/result.js';
import type { BrokerPrincipal, DeviceConvention } from './broker-acl.js';
import { HOST_USERNAME, NATIVE } from './broker-acl.js';
import type { DeviceId } from './protocol.js';

export const BROKER_ACCOUNTS_FILE = 'broker-accounts.json';
export const BROKER_HOST_SECRET_FILE = 'broker-host.secret';

/** Device ids the host's own MQTT clients use: no device account may take one (it could knock the host off). */
export const RESERVED_ID_PREFIX = 'fleetvisor';

/** A hashed secret: `scrypt$N$r$p$salt$hash` (base64) and Mosquitto's `$7$iterations$salt$hash`. */
interface HashedSecret {
  readonly scrypt: string;
  readonly mosquitto: string;
  readonly createdAt: number;
}

interface DeviceAccountRecord {
  /** Absent once revoked. */
  readonly secret?: HashedSecret;
  readonly revokedAt?: number;
  /** Absent: `native`. */
  readonly convention?: DeviceConvention;
}

interface AccountsFile {
  readonly version: 1;
  readonly host: HashedSecret;
  readonly devices: Record<string, DeviceAccountRecord>;
  readonly provisioning: Record<string, HashedSecret>;
}

export interface DeviceAccountView {
  readonly id: string;
  readonly createdAt: number | null;
  readonly revokedAt: number | null;
  readonly convention: DeviceConvention;
}

export type BrokerRefusal =
  /** No username, or a password missing. */
  | 'noCredentials'
  /** No such account (or revoked), or the wrong secret. */
  | 'badCredentials'
  /** A device's client id must equal its username (its device id). */
  | 'clientIdMismatch'
  /** Too many secrets being checked at once (a flood of wrong ones): try again later. */
  | 'busy';

export interface BrokerAccounts {
  readonly file: string;
  /** The host's username and password. */
  readonly host: { readonly username: string; readonly password: string };
  /**
   * Generates a new secret for a device (a new account, or a rotation: the old secret stops
   * working) and returns it: the only time it exists in clear. `convention` (default: the
   * account's, or `native` for a new one) says which topics it may use (see broker-acl.ts).
   * Throws for an invalid or reserved id, or an invalid convention (the field named).
   */
  issueDevice(id: string, convention?: DeviceConvention): string;
  /** Removes a device's secret; a provisioning secret no longer admits it either. False if it had none. */
  revokeDevice(id: string): boolean;
  /** A new first-contact secret for devices of `kind` (replacing the old one); returned once. */
  issueProvisioning(kind: string): string;
  removeProvisioning(kind: string): boolean;
  provisioningKinds(): string[];
  devices(): DeviceAccountView[];
  /** Who these credentials are, or why not. */
  verify(
    username: string | undefined,
    password: Buffer | undefined,
    clientId: string,
  ): Promise<Result<BrokerPrincipal, BrokerRefusal>>;
  /** Whether `principal` still holds (its account was not revoked or rotated since it was verified). */
  stillValid(principal: BrokerPrincipal, verifiedAt: number): boolean;
  /** Re-reads the file if it changed on disk; true if it did. */
  refresh(): boolean;
  /** Mosquitto's password file (`password_file`) for the host and every device account. */
  mosquittoPasswordFile(): string;
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
function newSecret(): string {
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

function hashSecret(secret: string, now: number): HashedSecret {
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

function isHashed(value: unknown): value is HashedSecret {
  const v = value as HashedSecret;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.scrypt === 'string' &&
    typeof v.mosquitto === 'string' &&
    typeof v.createdAt === 'number'
  );
}

function parseFile(text: string, file: string): AccountsFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not JSON (${(error as Error).message})`);
  }
  const o = json as Partial<AccountsFile>;
  if (typeof o !== 'object' || o === null || o.version !== 1 || !isHashed(o.host))
    throw new Error(`${file}: not a Fleetvisor broker accounts file (version 1 with a host account)`);
  const devices: Record<string, DeviceAccountRecord> = {};
  for (const [id, rec] of Object.entries(o.devices ?? {})) {
    if (!parseDeviceId(id).ok) continue;
    const r = rec as DeviceAccountRecord;
    let convention: DeviceConvention | undefined;
    try {
      if (r?.convention !== undefined) convention = checkConvention(r.convention);
    } catch (error) {
      throw new Error(`${file}: device ${id}: ${(error as Error).message}`);
    }
    devices[id] = {
      ...(isHashed(r?.secret) ? { secret: r.secret } : {}),
      ...(typeof r?.revokedAt === 'number' ? { revokedAt: r.revokedAt } : {}),
      ...(convention !== undefined && convention.convention !== 'native' ? { convention } : {}),
    };
  }
  const provisioning: Record<string, HashedSecret> = {};
  for (const [kind, rec] of Object.entries(o.provisioning ?? {})) if (isHashed(rec)) provisioning[kind] = rec;
  return { version: 1, host: o.host, devices, provisioning };
}

function stamp(file: string): string {
  try {
    const s = statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

function checkDeviceId(id: string): DeviceId {
  const parsed = parseDeviceId(id);
  if (!parsed.ok) throw new RangeError(`broker account: ${parsed.error.message}`);
  if (id.toLowerCase().startsWith(RESERVED_ID_PREFIX))
    throw new RangeError(
      `broker account: ids starting with '${RESERVED_ID_PREFIX}' are reserved for the host's own clients`,
    );
  return parsed.value;
}

const TOPIC_LEVEL = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Checks a convention given from outside (the command line, the file): Homie's base topic is one
 * or more levels and Sparkplug's group and node one level each, of A-Z a-z 0-9 _ - . (no MQTT
 * wildcard, no empty level). Throws a RangeError naming the field.
 */
export function checkConvention(value: unknown): DeviceConvention {
  const v = value as { convention?: unknown; base?: unknown; group?: unknown; node?: unknown };
  if (typeof v !== 'object' || v === null) throw new RangeError('convention must be an object');
  if (v.convention === 'native') return NATIVE;
  if (v.convention === 'homie') {
    const base = v.base ?? 'homie';
    if (typeof base !== 'string' || !base.split('/').every((l) => TOPIC_LEVEL.test(l)))
      throw new RangeError(
        'homie base: topic levels of 1–64 characters from A-Z a-z 0-9 _ - . separated by /',
      );
    return { convention: 'homie', base };
  }
  if (v.convention === 'sparkplug') {
    for (const field of ['group', 'node'] as const) {
      const x = v[field];
      if (typeof x !== 'string' || !TOPIC_LEVEL.test(x))
        throw new RangeError(`sparkplug ${field}: 1–64 characters from A-Z a-z 0-9 _ - . (one topic level)`);
    }
    if (v.group === 'STATE')
      throw new RangeError("sparkplug group: 'STATE' is reserved for host applications");
    return { convention: 'sparkplug', group: v.group as string, node: v.node as string };
  }
  throw new RangeError(`convention must be native, homie or sparkplug, not ${JSON.stringify(v.convention)}`);
}

/**
 * Opens (creating on first use) the accounts of the data folder `dataDir`. Throws with the file
 * named when a file exists but is not readable or not an accounts file.
 */
export function openBrokerAccounts(
  dataDir: string,
  options: { readonly now?: () => number } = {},
): BrokerAccounts {
  const now = options.now ?? Date.now;
  const file = join(dataDir, BROKER_ACCOUNTS_FILE);
  const secretFile = join(dataDir, BROKER_HOST_SECRET_FILE);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });

  let hostPassword: string;
  let data: AccountsFile;
  if (existsSync(file) && existsSync(secretFile)) {
    data = parseFile(readFileSync(file, 'utf8'), file);
    hostPassword = readFileSync(secretFile, 'utf8').trim();
  } else {
    const previous = existsSync(file) ? parseFile(readFileSync(file, 'utf8'), file) : undefined;
    hostPassword = newSecret();
    data = {
      version: 1,
      host: hashSecret(hostPassword, now()),
      devices: previous?.devices ?? {},
      provisioning: previous?.provisioning ?? {},
    };
    writePrivateFile(secretFile, `${hostPassword}\n`);
    writePrivateFile(file, `${JSON.stringify(data, null, 2)}\n`);
  }
  let fileStamp = stamp(file);
  /** Secrets verified already: username → SHA-256 of the secret and the hash it matched. */
  const verified = new Map<string, { digest: Buffer; against: string }>();

  const save = (next: AccountsFile): void => {
    data = next;
    writePrivateFile(file, `${JSON.stringify(data, null, 2)}\n`);
    fileStamp = stamp(file);
  };
  const reload = (): boolean => {
    const s = stamp(file);
    if (s === fileStamp) return false;
    fileStamp = s;
    try {
      data = parseFile(readFileSync(file, 'utf8'), file);
    } catch {
      // Half-written by another process: keep what we have; the next refresh reads it again.
      fileStamp = 'unreadable';
      return false;
    }
    return true;
  };

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

  const check = async (username: string, against: HashedSecret, password: Buffer): Promise<boolean> => {
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
  };

  return {
    file,
    host: { username: HOST_USERNAME, password: hostPassword },

    issueDevice(id, convention) {
      reload();
      const deviceId = checkDeviceId(id);
      const rights = checkConvention(convention ?? data.devices[deviceId]?.convention ?? NATIVE);
      const secret = newSecret();
      const record: DeviceAccountRecord = {
        secret: hashSecret(secret, now()),
        ...(rights.convention !== 'native' ? { convention: rights } : {}),
      };
      save({ ...data, devices: { ...data.devices, [deviceId]: record } });
      return secret;
    },

    revokeDevice(id) {
      reload();
      const had = data.devices[id]?.secret !== undefined;
      if (!parseDeviceId(id).ok) return false;
      const convention = data.devices[id]?.convention;
      save({
        ...data,
        devices: { ...data.devices, [id]: { revokedAt: now(), ...(convention ? { convention } : {}) } },
      });
      return had;
    },

    issueProvisioning(kind) {
      reload();
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(kind))
        throw new RangeError('provisioning secret: kind must be 1–64 characters from A-Z a-z 0-9 _ - .');
      const secret = newSecret();
      save({ ...data, provisioning: { ...data.provisioning, [kind]: hashSecret(secret, now()) } });
      return secret;
    },

    removeProvisioning(kind) {
      reload();
      if (!Object.hasOwn(data.provisioning, kind)) return false;
      const provisioning = { ...data.provisioning };
      delete provisioning[kind];
      save({ ...data, provisioning });
      return true;
    },

    provisioningKinds: () => Object.keys(data.provisioning).sort(),

    devices: () =>
      Object.entries(data.devices)
        .map(([id, r]) => ({
          id,
          createdAt: r.secret?.createdAt ?? null,
          revokedAt: r.revokedAt ?? null,
          convention: r.convention ?? NATIVE,
        }))
        .sort((a, b) => a.id.localeCompare(b.id)),

    async verify(username, password, clientId) {
      try {
        return await verifyNow(username, password, clientId);
      } catch (error) {
        if (error instanceof BusyError) return { ok: false, error: 'busy' };
        throw error;
      }
    },

    stillValid(principal, verifiedAt) {
      return stillValidNow(principal, verifiedAt);
    },

    refresh: reload,

    mosquittoPasswordFile() {
      reload();
      const lines = [`${HOST_USERNAME}:${data.host.mosquitto}`];
      for (const [id, r] of Object.entries(data.devices).sort(([a], [b]) => a.localeCompare(b)))
        if (r.secret) lines.push(`${id}:${r.secret.mosquitto}`);
      return `${lines.join('\n')}\n`;
    },
  };

  async function verifyNow(
    username: string | undefined,
    password: Buffer | undefined,
    clientId: string,
  ): Promise<Result<BrokerPrincipal, BrokerRefusal>> {
    {
      reload(); // one stat: an account added a moment ago by another process (the CLI) counts at once
      if (username === undefined || username.length === 0 || password === undefined || password.length === 0)
        return { ok: false, error: 'noCredentials' };
      if (username === HOST_USERNAME)
        return (await check(username, data.host, password))
          ? { ok: true, value: { role: 'host' } }
          : { ok: false, error: 'badCredentials' };
      const id = parseDeviceId(username);
      if (!id.ok) return { ok: false, error: 'badCredentials' };
      const account = data.devices[username];
      if (clientId !== username && !(account?.convention !== undefined && mayUseClientId(clientId)))
        return { ok: false, error: 'clientIdMismatch' };
      if (account?.secret !== undefined)
        return (await check(username, account.secret, password))
          ? {
              ok: true,
              value: {
                role: 'device',
                id: id.value,
                via: 'account',
                ...(account.convention ? { rights: account.convention } : {}),
              },
            }
          : { ok: false, error: 'badCredentials' };
      if (account?.revokedAt !== undefined || username.toLowerCase().startsWith(RESERVED_ID_PREFIX))
        return { ok: false, error: 'badCredentials' };
      // First contact: a device with no account of its own may use its kind's provisioning secret.
      for (const [kind, secret] of Object.entries(data.provisioning))
        if (await check(`provisioning:${kind}`, secret, password))
          return { ok: true, value: { role: 'device', id: id.value, via: 'provisioning', kind } };
      return { ok: false, error: 'badCredentials' };
    }
  }

  /**
   * Homie and Sparkplug libraries pick their own client ids (homie-device a random one), so a
   * convention account may use another, as long as it cannot knock off anyone else's session:
   * not the host's prefix, not another account's id (revoked ones included).
   */
  function mayUseClientId(clientId: string): boolean {
    return !clientId.toLowerCase().startsWith(RESERVED_ID_PREFIX) && !Object.hasOwn(data.devices, clientId);
  }

  function stillValidNow(principal: BrokerPrincipal, verifiedAt: number): boolean {
    if (principal.role === 'host') return true;
    const account = data.devices[principal.id];
    if (principal.via === 'provisioning')
      return account === undefined && principal.kind !== undefined && principal.kind in data.provisioning;
    return account?.secret !== undefined && account.secret.createdAt <= verifiedAt;
  }
}

class BusyError extends Error {
  override readonly name = 'BusyError';
}

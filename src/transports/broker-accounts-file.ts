/**
 * The broker accounts files of a data folder: `broker-accounts.json` (its format, its parsing and
 * checks, its re-reading when it changes on disk) and `broker-host.secret` (the host's password,
 * made with the accounts on first use), plus Mosquitto's password file made from the accounts.
 * Used by broker-accounts.ts, which describes the files.
 *
 * @example
 * const store = openAccountsStore(dataDir, Date.now);
 * store.hostPassword;                        // the host connects with it
 * store.reload();                            // true if another process changed the file
 * mosquittoPasswordFile(store.data);         // 'fleetvisor-host:$7$101$…\n'
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseDeviceId } from '../devices/device-id.js';
import { writePrivateFile } from '../lib/private-file.js';
import type { HashedSecret } from './broker-accounts-hash.js';
import { hashSecret, isHashed, newSecret } from './broker-accounts-hash.js';
import type { DeviceConvention } from './broker-acl.js';
import { HOST_USERNAME, NATIVE } from './broker-acl.js';
import type { DeviceId } from './protocol.js';

export const BROKER_ACCOUNTS_FILE = 'broker-accounts.json';
export const BROKER_HOST_SECRET_FILE = 'broker-host.secret';

/** Device ids the host's own MQTT clients use: no device account may take one (it could knock the host off). */
export const RESERVED_ID_PREFIX = 'fleetvisor';

export interface DeviceAccountRecord {
  /** Absent once revoked. */
  readonly secret?: HashedSecret;
  readonly revokedAt?: number;
  /** Absent: `native`. */
  readonly convention?: DeviceConvention;
}

export interface AccountsFile {
  readonly version: 1;
  readonly host: HashedSecret;
  readonly devices: Record<string, DeviceAccountRecord>;
  readonly provisioning: Record<string, HashedSecret>;
}

export interface AccountsStore {
  readonly file: string;
  readonly hostPassword: string;
  /** The accounts as last read or saved (never mutated: every change is a new object). */
  readonly data: AccountsFile;
  /** Writes `next` (0600) and makes it the current data. */
  save(next: AccountsFile): void;
  /** Re-reads the file if it changed on disk; true if it did (and was readable). */
  reload(): boolean;
}

/**
 * Opens the accounts files of `dataDir`, creating the folder (0700) and, when either file is
 * missing, a new host secret (keeping the devices and provisioning secrets of an existing
 * accounts file). Throws with the file named when it is not an accounts file.
 */
export function openAccountsStore(dataDir: string, now: () => number): AccountsStore {
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

  return {
    file,
    hostPassword,
    get data() {
      return data;
    },
    save(next) {
      data = next;
      writePrivateFile(file, `${JSON.stringify(data, null, 2)}\n`);
      fileStamp = stamp(file);
    },
    reload() {
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
    },
  };
}

/** Mosquitto's password file (`password_file`): the host, then every device with a secret, by id. */
export function mosquittoPasswordFile(data: AccountsFile): string {
  const lines = [`${HOST_USERNAME}:${data.host.mosquitto}`];
  for (const [id, r] of Object.entries(data.devices).sort(([a], [b]) => a.localeCompare(b)))
    if (r.secret) lines.push(`${id}:${r.secret.mosquitto}`);
  return `${lines.join('\n')}\n`;
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
    try {
      devices[id] = parseAccountRecord(rec);
    } catch (error) {
      throw new Error(`${file}: device ${id}: ${(error as Error).message}`);
    }
  }
  const provisioning: Record<string, HashedSecret> = {};
  for (const [kind, rec] of Object.entries(o.provisioning ?? {})) if (isHashed(rec)) provisioning[kind] = rec;
  return { version: 1, host: o.host, devices, provisioning };
}

/**
 * One device's account as stored (the file, or a cluster's shared table): a hashed secret, when it
 * was revoked, its convention; anything else in it is dropped. Throws a RangeError for a
 * convention that does not check.
 */
export function parseAccountRecord(value: unknown): DeviceAccountRecord {
  const r = (typeof value === 'object' && value !== null ? value : {}) as DeviceAccountRecord;
  const convention = r.convention !== undefined ? checkConvention(r.convention) : undefined;
  return {
    ...(isHashed(r.secret) ? { secret: r.secret } : {}),
    ...(typeof r.revokedAt === 'number' ? { revokedAt: r.revokedAt } : {}),
    ...(convention !== undefined && convention.convention !== 'native' ? { convention } : {}),
  };
}

function stamp(file: string): string {
  try {
    const s = statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

export function checkDeviceId(id: string): DeviceId {
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

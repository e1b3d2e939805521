/**
 * Broker accounts, kept in the data folder as two files readable by the user alone (0600):
 *
 * - `broker-accounts.json`: every secret **hashed** (scrypt, and the Mosquitto `$7$` PBKDF2 hash
 *   of the same secret, so the password file or the dynamic security configuration for an external
 *   Mosquitto can be generated at any time without knowing a secret): the host's, one per device (generated when the device is
 *   added, shown once, rotatable, revocable), and optional per-kind provisioning secrets for a
 *   device's first contact.
 * - `broker-host.secret`: the host's own password in clear (the host needs it to connect; it is
 *   to the host what a device's secret is to the device).
 *
 * The file is re-read when it changes on disk, so `fleetvisor broker device add|rotate|revoke`
 * works while the app runs; {@link BrokerAccounts.refresh} says whether it changed. While the host
 * manages an external Mosquitto's accounts live, a new secret is also handed to it in clear until
 * the broker has it (broker-accounts-handover.ts).
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
import { parseDeviceId } from '../devices/device-id.js';
import type { Result } from '../lib/result.js';
import { mosquittoDynsecConfig } from './broker-accounts-dynsec.js';
import type { DeviceAccountRecord } from './broker-accounts-file.js';
import {
  checkConvention,
  checkDeviceId,
  mosquittoPasswordFile,
  openAccountsStore,
} from './broker-accounts-file.js';
import { handOver } from './broker-accounts-handover.js';
import { BusyError, createSecretChecker, hashSecret, newSecret } from './broker-accounts-hash.js';
import type { BrokerRefusal } from './broker-accounts-verify.js';
import { isStillValid, verifyCredentials } from './broker-accounts-verify.js';
import type { BrokerPrincipal, DeviceConvention } from './broker-acl.js';
import { HOST_USERNAME, NATIVE } from './broker-acl.js';

export type { DeviceAccountRecord } from './broker-accounts-file.js';
export {
  BROKER_ACCOUNTS_FILE,
  BROKER_HOST_SECRET_FILE,
  checkConvention,
  RESERVED_ID_PREFIX,
} from './broker-accounts-file.js';
export type { BrokerRefusal } from './broker-accounts-verify.js';

export interface DeviceAccountView {
  readonly id: string;
  readonly createdAt: number | null;
  readonly revokedAt: number | null;
  readonly convention: DeviceConvention;
}

export interface BrokerAccounts {
  readonly file: string;
  /** The host's username and password. */
  readonly host: { readonly username: string; readonly password: string };
  /**
   * Generates a new secret for a device (a new account, or a rotation: the old secret stops
   * working) and returns it: the only time it exists in clear, but for its handover to the host
   * when the host manages an external Mosquitto's accounts live (broker-accounts-handover.ts).
   * `convention` (default: the account's, or `native` for a new one) says which topics it may use
   * (see broker-acl.ts).
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
  /**
   * Re-reads the file if it changed on disk since this object last read or wrote it; true if it
   * did. Every method that reads the accounts re-reads them first, so a caller that must see every
   * change (made here or by another process: `fleetvisor broker device revoke`) keeps
   * {@link BrokerAccounts.changes} instead.
   */
  refresh(): boolean;
  /**
   * How many times the accounts changed since they were opened, made here or read from the file:
   * each watcher keeps the last count it saw (a revocation is never missed because another caller
   * re-read the file first).
   *
   * @example
   * let seen = accounts.changes();
   * setInterval(() => {
   *   accounts.refresh();
   *   if (accounts.changes() === seen) return;
   *   seen = accounts.changes(); // … look at accounts.devices() again
   * }, 1000);
   */
  changes(): number;
  /** Every device account as stored (secrets hashed): what a cluster shares (src/cluster/shared-accounts.ts). */
  records(): Readonly<Record<string, DeviceAccountRecord>>;
  /**
   * Takes the accounts given where they are newer than the ones here ({@link accountChangedAt}; the
   * same time: a revocation wins), saved at once as one change; the ids taken. Nothing newer: no
   * write. Ids that are not device ids are left out.
   */
  merge(records: ReadonlyMap<string, DeviceAccountRecord>): string[];
  /** Mosquitto's password file (`password_file`) for the host and every device account. */
  mosquittoPasswordFile(): string;
  /**
   * The configuration of Mosquitto's dynamic security plugin for the same accounts: their
   * passwords and topics, and each device bound to its own client id (broker-accounts-dynsec.ts);
   * `owner`, the data folder's instance id, marks the device clients as the host's own.
   */
  mosquittoDynsecConfig(owner?: string): string;
}

/** When an account last changed: its secret issued, or its revocation (wall ms). */
export function accountChangedAt(r: DeviceAccountRecord): number {
  return Math.max(r.secret?.createdAt ?? 0, r.revokedAt ?? 0);
}

/**
 * Whether account `a` is a later change than `b`: changed later, or at the same time revoked where
 * `b` is not (a revocation is never lost to a tie), or else the same time and a different secret
 * sorting after (both sides pick the same).
 */
export function newerAccount(a: DeviceAccountRecord, b: DeviceAccountRecord): boolean {
  const ta = accountChangedAt(a);
  const tb = accountChangedAt(b);
  if (ta !== tb) return ta > tb;
  const ra = a.revokedAt !== undefined;
  const rb = b.revokedAt !== undefined;
  if (ra !== rb) return ra;
  return JSON.stringify(a) > JSON.stringify(b);
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
  const store = openAccountsStore(dataDir, now);
  const checker = createSecretChecker();
  let changes = 0;
  const reload = (): boolean => {
    const changed = store.reload();
    if (changed) changes++;
    return changed;
  };
  const save = (next: Parameters<typeof store.save>[0]): void => {
    store.save(next);
    changes++;
  };

  return {
    file: store.file,
    host: { username: HOST_USERNAME, password: store.hostPassword },

    issueDevice(id, convention) {
      reload();
      const deviceId = checkDeviceId(id);
      const rights = checkConvention(convention ?? store.data.devices[deviceId]?.convention ?? NATIVE);
      const secret = newSecret();
      const record: DeviceAccountRecord = {
        secret: hashSecret(secret, now()),
        ...(rights.convention !== 'native' ? { convention: rights } : {}),
      };
      // Before the save: the host never sees the new account without its secret.
      handOver(dataDir, deviceId, secret);
      save({ ...store.data, devices: { ...store.data.devices, [deviceId]: record } });
      return secret;
    },

    revokeDevice(id) {
      reload();
      const data = store.data;
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
      save({
        ...store.data,
        provisioning: { ...store.data.provisioning, [kind]: hashSecret(secret, now()) },
      });
      return secret;
    },

    removeProvisioning(kind) {
      reload();
      if (!Object.hasOwn(store.data.provisioning, kind)) return false;
      const provisioning = { ...store.data.provisioning };
      delete provisioning[kind];
      save({ ...store.data, provisioning });
      return true;
    },

    provisioningKinds: () => Object.keys(store.data.provisioning).sort(),

    devices: () =>
      Object.entries(store.data.devices)
        .map(([id, r]) => ({
          id,
          createdAt: r.secret?.createdAt ?? null,
          revokedAt: r.revokedAt ?? null,
          convention: r.convention ?? NATIVE,
        }))
        .sort((a, b) => a.id.localeCompare(b.id)),

    async verify(username, password, clientId) {
      try {
        reload(); // one stat: an account added a moment ago by another process (the CLI) counts at once
        return await verifyCredentials(store.data, checker, username, password, clientId);
      } catch (error) {
        if (error instanceof BusyError) return { ok: false, error: 'busy' };
        throw error;
      }
    },

    stillValid(principal, verifiedAt) {
      return isStillValid(store.data, principal, verifiedAt);
    },

    refresh: reload,

    changes: () => changes,

    records() {
      reload();
      return store.data.devices;
    },

    merge(records) {
      reload();
      const devices = { ...store.data.devices };
      const taken: string[] = [];
      for (const [id, theirs] of records) {
        if (!parseDeviceId(id).ok) continue;
        const ours = devices[id];
        if (ours && !newerAccount(theirs, ours)) continue;
        devices[id] = theirs;
        taken.push(id);
      }
      if (taken.length > 0) save({ ...store.data, devices });
      return taken;
    },

    mosquittoPasswordFile() {
      reload();
      return mosquittoPasswordFile(store.data);
    },

    mosquittoDynsecConfig(owner) {
      reload();
      return mosquittoDynsecConfig(store.data, undefined, owner);
    },
  };
}

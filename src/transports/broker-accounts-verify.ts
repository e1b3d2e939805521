/**
 * Who a client's credentials make it (the host, a device by its account, or a device on first
 * contact by its kind's provisioning secret), and whether that still holds once the accounts
 * change. Functions of the accounts as they are now; used by broker-accounts.ts.
 *
 * @example
 * const r = await verifyCredentials(store.data, checker, 'pump-7', Buffer.from(secret), 'pump-7');
 * // { ok: true, value: { role: 'device', id: 'pump-7', via: 'account' } }
 * isStillValid(store.data, r.value, verifiedAt); // false once pump-7 is rotated or revoked
 */
import { parseDeviceId } from '../devices/device-id.js';
import type { Result } from '../lib/result.js';
import type { AccountsFile } from './broker-accounts-file.js';
import { RESERVED_ID_PREFIX } from './broker-accounts-file.js';
import type { SecretChecker } from './broker-accounts-hash.js';
import type { BrokerPrincipal } from './broker-acl.js';
import { HOST_USERNAME } from './broker-acl.js';

export type BrokerRefusal =
  /** No username, or a password missing. */
  | 'noCredentials'
  /** No such account (or revoked), or the wrong secret. */
  | 'badCredentials'
  /** A device's client id must equal its username (its device id). */
  | 'clientIdMismatch'
  /** Too many secrets being checked at once (a flood of wrong ones): try again later. */
  | 'busy';

/**
 * Who these credentials are, or why not ('busy' is the caller's: the checker's BusyError passes
 * through). Every read of `data` happens before the first hash is awaited.
 */
export async function verifyCredentials(
  data: AccountsFile,
  checker: SecretChecker,
  username: string | undefined,
  password: Buffer | undefined,
  clientId: string,
): Promise<Result<BrokerPrincipal, BrokerRefusal>> {
  if (username === undefined || username.length === 0 || password === undefined || password.length === 0)
    return { ok: false, error: 'noCredentials' };
  if (username === HOST_USERNAME)
    return (await checker.check(username, data.host, password))
      ? { ok: true, value: { role: 'host' } }
      : { ok: false, error: 'badCredentials' };
  const id = parseDeviceId(username);
  if (!id.ok) return { ok: false, error: 'badCredentials' };
  const account = data.devices[username];
  if (clientId !== username && !(account?.convention !== undefined && mayUseClientId(data, clientId)))
    return { ok: false, error: 'clientIdMismatch' };
  if (account?.secret !== undefined)
    return (await checker.check(username, account.secret, password))
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
    if (await checker.check(`provisioning:${kind}`, secret, password))
      return { ok: true, value: { role: 'device', id: id.value, via: 'provisioning', kind } };
  return { ok: false, error: 'badCredentials' };
}

/**
 * Homie and Sparkplug libraries pick their own client ids (homie-device a random one), so a
 * convention account may use another, as long as it cannot knock off anyone else's session:
 * not the host's prefix, not another account's id (revoked ones included).
 */
function mayUseClientId(data: AccountsFile, clientId: string): boolean {
  return !clientId.toLowerCase().startsWith(RESERVED_ID_PREFIX) && !Object.hasOwn(data.devices, clientId);
}

/** Whether `principal` still holds (its account was not revoked or rotated since `verifiedAt`). */
export function isStillValid(data: AccountsFile, principal: BrokerPrincipal, verifiedAt: number): boolean {
  if (principal.role === 'host') return true;
  const account = data.devices[principal.id];
  if (principal.via === 'provisioning')
    return account === undefined && principal.kind !== undefined && principal.kind in data.provisioning;
  return account?.secret !== undefined && account.secret.createdAt <= verifiedAt;
}

/**
 * The data folder's device accounts made true on a running Mosquitto through its dynamic security
 * plugin: one pass reads the broker's clients, then makes each account whose new secret was handed
 * over (a new account or a rotation: its client and role made again, which ends a connected
 * device's session), and deletes the client of each account revoked or gone. Run at the host's
 * start and after every change of the accounts (src/host/app/broker-accounts-sync.ts).
 *
 * Only the host's own clients are deleted: a revoked account's client is one with that account's
 * role (`fleetvisor-device-<id>`); a client with no account at all must also carry this instance's
 * mark ({@link dynsecOwnerText}). The host's own account, the demo's devices and the broker
 * admin's other clients are left alone, and a handed-over secret for a username the admin uses for
 * something else is refused (a conflict), not forced.
 *
 * The plugin takes no password hash, so an account whose secret was never handed over (made
 * before the host managed the broker live, or while it did not) cannot be made here: it is
 * reported missing, for the plugin file to be written again or the account rotated.
 *
 * What can go wrong talking to the broker is {@link sendDynsecCommands}'s failure; a command the
 * plugin refuses is in the report (`refused`).
 *
 * @example
 * const r = await syncDynsecAccounts(host, { accounts, dataDir, owner: '3f9a0c21', clientId });
 * if (r.ok) r.value.made; // ['pump-7']: its new secret works now, its old one no longer
 */
import type { Failure, Result } from '../lib/result.js';
import { err, ok } from '../lib/result.js';
import type { BrokerAccounts, DeviceAccountView } from './broker-accounts.js';
import type { DynsecCommand } from './broker-accounts-dynsec.js';
import {
  deviceRoleName,
  dynsecDeviceAccountCommands,
  dynsecOwnerText,
  dynsecRemoveDeviceCommands,
} from './broker-accounts-dynsec.js';
import type { Handover } from './broker-accounts-handover.js';
import { dropHandover, readHandovers, STALE_AFTER_MS } from './broker-accounts-handover.js';
import type { DeviceConvention } from './broker-acl.js';
import type { DynsecControlCode } from './mosquitto-dynsec-control.js';
import { sendDynsecCommands } from './mosquitto-dynsec-control.js';
import type { BrokerSettings } from './mqtt-connection.js';

/** A client of the plugin as `listClients` (verbose) answers it. */
export interface DynsecClientInfo {
  readonly username: string;
  readonly textdescription?: string;
  readonly roles: readonly string[];
}

export interface DynsecSyncPlan {
  /** Accounts to make again with their handed-over secret. */
  readonly make: readonly {
    readonly id: string;
    readonly secret: string;
    readonly rights: DeviceConvention;
  }[];
  /** Clients to delete: their account is revoked or gone. */
  readonly remove: readonly string[];
  /** Live accounts with no client on the broker and no secret to make one with. */
  readonly missing: readonly string[];
  /** Handed-over secrets for a username the broker gives another client (not a device's of ours). */
  readonly conflicts: readonly string[];
}

/**
 * What to change on the broker: `accounts` as the host holds them, `secrets` the handed-over
 * secrets that match their account now, `clients` as the broker holds them, `owner` this instance.
 */
export function planDynsecSync(input: {
  readonly accounts: readonly DeviceAccountView[];
  readonly secrets: ReadonlyMap<string, string>;
  readonly clients: readonly DynsecClientInfo[];
  readonly owner: string;
}): DynsecSyncPlan {
  const { accounts, secrets, clients, owner } = input;
  const clientOf = new Map(clients.map((c) => [c.username, c]));
  const accountOf = new Map(accounts.map((a) => [a.id, a]));
  const make: { id: string; secret: string; rights: DeviceConvention }[] = [];
  const missing: string[] = [];
  const conflicts: string[] = [];
  for (const a of accounts) {
    if (a.createdAt === null) continue; // revoked: below
    const client = clientOf.get(a.id);
    const secret = secrets.get(a.id);
    if (secret === undefined) {
      if (!client) missing.push(a.id);
    } else if (client && !isDeviceClient(client)) conflicts.push(a.id);
    else make.push({ id: a.id, secret, rights: a.convention });
  }
  const remove: string[] = [];
  for (const c of clients) {
    const account = accountOf.get(c.username);
    if ((account !== undefined && account.createdAt !== null) || !isDeviceClient(c)) continue;
    // A revoked account's client by its role; one with no account only if this instance made it.
    if (account !== undefined || c.textdescription === dynsecOwnerText(owner)) remove.push(c.username);
  }
  return { make, remove, missing, conflicts };
}

/** A device client as the host makes them: its only role is its account's. */
function isDeviceClient(c: DynsecClientInfo): boolean {
  return c.roles.length === 1 && c.roles[0] === deviceRoleName(c.username);
}

export interface DynsecSyncReport {
  readonly made: readonly string[];
  readonly removed: readonly string[];
  readonly missing: readonly string[];
  readonly conflicts: readonly string[];
  /** Commands the plugin refused: the account and its answer. */
  readonly refused: readonly { readonly id: string; readonly error: string }[];
}

export interface DynsecSyncOptions {
  readonly accounts: BrokerAccounts;
  /** Where the accounts and their handed-over secrets are. */
  readonly dataDir: string;
  /** This instance's id: the mark on the clients it makes. */
  readonly owner: string;
  /** The control connection's client id. */
  readonly clientId: string;
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

/** One pass (see the file comment); handed-over secrets are deleted once used or stale. */
export async function syncDynsecAccounts(
  broker: BrokerSettings,
  options: DynsecSyncOptions,
): Promise<Result<DynsecSyncReport, Failure<DynsecControlCode>>> {
  const { accounts, owner } = options;
  const control = {
    clientId: options.clientId,
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
  };
  const listed = await sendDynsecCommands(
    broker,
    [{ command: 'listClients', verbose: true, count: -1 }],
    control,
  );
  if (!listed.ok) return listed;
  const clients = clientsOf(listed.value[0]?.data);
  if (listed.value[0]?.error !== undefined || clients === undefined)
    return err(
      'notAllowed',
      `the dynamic security plugin did not list its clients: ${listed.value[0]?.error ?? 'no list'}`,
    );
  accounts.refresh();
  const { secrets, used } = await currentSecrets(
    accounts,
    readHandovers(options.dataDir),
    options.now ?? Date.now,
  );
  const plan = planDynsecSync({ accounts: accounts.devices(), secrets, clients, owner });
  const commands: DynsecCommand[] = [
    ...plan.make.flatMap((m) => dynsecDeviceAccountCommands(m.id, m.secret, m.rights, owner)),
    ...plan.remove.flatMap(dynsecRemoveDeviceCommands),
  ];
  const report = {
    made: [] as string[],
    removed: [] as string[],
    refused: [] as { id: string; error: string }[],
  };
  if (commands.length > 0) {
    const sent = await sendDynsecCommands(broker, commands, control);
    if (!sent.ok) return sent;
    const answers = sent.value;
    // Each account's commands in the order built: make = 4 (createClient last), remove = 2.
    plan.make.forEach((m, i) => {
      const error = answers[i * 4 + 2]?.error ?? answers[i * 4 + 3]?.error;
      if (error === undefined) report.made.push(m.id);
      else report.refused.push({ id: m.id, error });
    });
    const base = plan.make.length * 4;
    plan.remove.forEach((id, i) => {
      const error = answers[base + i * 2]?.error;
      if (error === undefined || error === 'Client not found') report.removed.push(id);
      else report.refused.push({ id, error });
    });
  }
  // Used (made, or refused: a retry would be refused again and keep the secret in clear).
  for (const m of plan.make) for (const h of used.get(m.id) ?? []) dropHandover(h);
  for (const id of plan.conflicts) for (const h of used.get(id) ?? []) dropHandover(h);
  return ok({ ...report, missing: plan.missing, conflicts: plan.conflicts });
}

/**
 * The handed-over secret that is each account's current one (checked like a device's connect);
 * files that never will be (an older rotation, a change that failed) are deleted once stale.
 */
async function currentSecrets(
  accounts: BrokerAccounts,
  handovers: readonly Handover[],
  now: () => number,
): Promise<{ secrets: Map<string, string>; used: Map<string, Handover[]> }> {
  const secrets = new Map<string, string>();
  const used = new Map<string, Handover[]>();
  for (const h of handovers) {
    const verified = await accounts.verify(h.id, Buffer.from(h.secret), h.id);
    if (verified.ok && verified.value.role === 'device' && verified.value.via === 'account') {
      secrets.set(h.id, h.secret);
      used.set(h.id, [...(used.get(h.id) ?? []), h]);
    } else if (!(!verified.ok && verified.error === 'busy') && now() - h.writtenAt > STALE_AFTER_MS)
      dropHandover(h);
  }
  return { secrets, used };
}

function clientsOf(data: unknown): DynsecClientInfo[] | undefined {
  const list = (data as { clients?: unknown } | undefined)?.clients;
  if (!Array.isArray(list)) return undefined;
  const clients: DynsecClientInfo[] = [];
  for (const c of list) {
    const o = c as { username?: unknown; textdescription?: unknown; roles?: unknown };
    if (typeof o?.username !== 'string') continue;
    const roles = Array.isArray(o.roles)
      ? o.roles
          .map((r) => (r as { rolename?: unknown })?.rolename)
          .filter((r): r is string => typeof r === 'string')
      : [];
    clients.push({
      username: o.username,
      ...(typeof o.textdescription === 'string' ? { textdescription: o.textdescription } : {}),
      roles,
    });
  }
  return clients;
}

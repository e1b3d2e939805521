/**
 * `fleetvisor broker …`: the broker accounts of a data folder, from the command line (works while
 * the app runs: the embedded broker re-reads the accounts file within seconds), and the files an
 * external Mosquitto needs for the same guarantees (docs/protocol.md §6, README "Connecting devices").
 *
 * @example
 * fleetvisor broker device add pump-7          # prints pump-7's secret, once
 * fleetvisor broker device add boiler --convention homie               # a Homie device: homie/boiler/…
 * fleetvisor broker device add line-3 --convention sparkplug --group plant --node line-3
 * fleetvisor broker mosquitto-dynsec --out /etc/mosquitto/fleetvisor-dynsec.json   # and the mosquitto.conf lines
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { currentDataDirInput, resolveDataDir } from '../store/data-dir.js';
import type { BrokerAccounts } from '../transports/broker-accounts.js';
import { checkConvention, openBrokerAccounts } from '../transports/broker-accounts.js';
import { mosquittoDynsecConf } from '../transports/broker-accounts-dynsec.js';
import { handoverOpen } from '../transports/broker-accounts-handover.js';
import type { DeviceConvention } from '../transports/broker-acl.js';
import { HOST_USERNAME, mosquittoAcl } from '../transports/broker-acl.js';
import { instanceIdOf } from './data-folder.js';

export const BROKER_USAGE = `Usage: fleetvisor broker COMMAND [--data-dir DIR]

Broker accounts (the embedded broker asks every client for them):
  device add ID [CONVENTION]
                          a new account for device ID; prints its secret (shown only this once)
  device rotate ID [CONVENTION]
                          a new secret for ID; the old one stops working (a connected device is dropped)
  device revoke ID        removes ID's secret; it is disconnected and kept out
  devices                 lists the device accounts
  provisioning KIND       a first-contact secret for new devices of KIND (printed once); a device
                          with no account of its own may connect with it, username = its id
  provisioning-remove KIND
  host                    prints the host's username and where its password is kept

CONVENTION (for add and rotate; default: native, or the account's own on rotate):
  --convention native                  this protocol's fleetvisor/v1/ID/… topics
  --convention homie [--base homie]    the Homie device ID: publishes on BASE/ID/… (never a
                                       …/set), reads BASE/ID/# and BASE/$broadcast/#
  --convention sparkplug --group G --node N
                                       the Sparkplug B edge node N of group G and its devices:
                                       publishes N/D BIRTH, DATA, DEATH; reads its NCMD, DCMD
                                       and the hosts' STATE
  A Homie or Sparkplug device may use a client id of its own choosing (not another account's id)
  on the embedded broker; on Mosquitto with mosquitto-dynsec, its username.

For an external Mosquitto (2.0 or later):
  mosquitto-dynsec [--out FILE]   the configuration of its dynamic security plugin: every account's
                                  password and topics, and each device bound to its own client id
                                  (so no device can disconnect the host or another device by taking
                                  its client id); with --out, prints the mosquitto.conf lines too.
                                  Restart Mosquitto after writing it again. Once the host runs
                                  on it, account changes reach it live (no restart): the host's
                                  account may use the plugin's $CONTROL topic.
  mosquitto-passwd [--out FILE]   or: a password_file for the host and every device account, and
  mosquitto-acl [--out FILE]      an acl_file (each device only its own topics, the host all); these
                                  do not bind client ids (a device may take another's)
`;

export interface BrokerCliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** Runs one `fleetvisor broker` command; returns the exit code (2: usage, 1: failure). */
export function runBrokerCli(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: BrokerCliIo,
): number {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    io.err(`fleetvisor broker: ${(error as Error).message}\n\n${BROKER_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    (values.help ? io.out : io.err)(BROKER_USAGE);
    return values.help ? 0 : 2;
  }
  const usage = (message: string): number => {
    io.err(`fleetvisor broker: ${message}\n\n${BROKER_USAGE}`);
    return 2;
  };
  const dataDir = resolveDataDir({ ...currentDataDirInput(), env, explicit: values['data-dir'] });
  const emit = (text: string): number => {
    if (values.out === undefined) io.out(text);
    else {
      writeFileSync(values.out, text, { mode: 0o600 });
      io.out(`wrote ${values.out}\n`);
    }
    return 0;
  };
  try {
    const [command, sub, arg] = positionals;
    const accounts = openBrokerAccounts(dataDir);
    if (command === 'mosquitto-acl') return emit(mosquittoAcl(aclAccounts(accounts)));
    if (command === 'mosquitto-dynsec') {
      emit(accounts.mosquittoDynsecConfig(instanceIdOf(dataDir)));
      if (values.out !== undefined)
        io.out(
          `\nIn mosquitto.conf (then restart Mosquitto; later account changes reach it live while the host runs):\n\n${mosquittoDynsecConf(resolve(values.out))}`,
        );
      return 0;
    }
    switch (command) {
      case 'device': {
        if (arg === undefined || (sub !== 'add' && sub !== 'rotate' && sub !== 'revoke'))
          return usage('device needs add|rotate|revoke and an id');
        if (sub === 'revoke') {
          const had = accounts.revokeDevice(arg);
          io.out(had ? `revoked ${arg}\n` : `${arg} had no account; it is now kept out\n`);
          if (handoverOpen(dataDir)) io.out(LIVE_NOTE);
          return 0;
        }
        const convention = conventionOption(values);
        if (typeof convention === 'string') return usage(convention);
        const secret = accounts.issueDevice(arg, convention);
        const rights = accounts.devices().find((d) => d.id === arg)?.convention;
        const clientId =
          rights === undefined || rights.convention === 'native'
            ? arg
            : `${arg} (or its own on the embedded broker)`;
        io.out(
          `device ${arg}${rights ? ` (${describe(rights)})` : ''}: username ${arg}, client id ${clientId}, password:\n${secret}\n` +
            'Put it in the device now: it is stored hashed and cannot be shown again.\n',
        );
        if (handoverOpen(dataDir)) io.out(LIVE_NOTE);
        return 0;
      }
      case 'devices':
        for (const d of accounts.devices())
          io.out(
            `${d.id}\t${d.revokedAt !== null ? `revoked ${new Date(d.revokedAt).toISOString()}` : `since ${new Date(d.createdAt ?? 0).toISOString()}`}${d.convention.convention === 'native' ? '' : `\t${describe(d.convention)}`}\n`,
          );
        return 0;
      case 'provisioning': {
        if (sub === undefined) return usage('provisioning needs a kind');
        const secret = accounts.issueProvisioning(sub);
        io.out(
          `first-contact secret for kind ${sub} (username = the device's id):\n${secret}\n` +
            'Stored hashed: it cannot be shown again. Remove it with provisioning-remove when done.\n',
        );
        return 0;
      }
      case 'provisioning-remove':
        if (sub === undefined) return usage('provisioning-remove needs a kind');
        io.out(accounts.removeProvisioning(sub) ? `removed ${sub}\n` : `no provisioning secret for ${sub}\n`);
        return 0;
      case 'host':
        io.out(
          `username ${HOST_USERNAME}; password in ${dataDir}/broker-host.secret (readable by you only)\n`,
        );
        return 0;
      case 'mosquitto-passwd':
        return emit(accounts.mosquittoPasswordFile());
      default:
        return usage(`unknown command '${command}'`);
    }
  } catch (error) {
    io.err(`fleetvisor broker: ${(error as Error).message}\n`);
    return 1;
  }
}

/** Said after a change when the host keeps an external Mosquitto's accounts live. */
const LIVE_NOTE =
  "The host passes this change to Mosquitto's dynamic security plugin (now if it runs, else at its " +
  'next start): no restart needed.\n';

/** The accounts an external Mosquitto's ACL names (those with a secret). */
function aclAccounts(accounts: BrokerAccounts) {
  return accounts
    .devices()
    .filter((d) => d.revokedAt === null)
    .map((d) => ({ id: d.id, rights: d.convention }));
}

function describe(c: DeviceConvention): string {
  if (c.convention === 'homie') return `homie, base ${c.base}`;
  if (c.convention === 'sparkplug') return `sparkplug, group ${c.group}, node ${c.node}`;
  return 'native';
}

/** The convention the options give (undefined: none given), or what is wrong with them. */
function conventionOption(values: ReturnType<typeof parse>['values']): DeviceConvention | undefined | string {
  const { convention, base, group, node } = values;
  if (convention === undefined) {
    if (base !== undefined || group !== undefined || node !== undefined)
      return '--base, --group and --node need --convention';
    return undefined;
  }
  if (convention !== 'homie' && base !== undefined) return '--base is for --convention homie';
  if (convention !== 'sparkplug' && (group !== undefined || node !== undefined))
    return '--group and --node are for --convention sparkplug';
  if (convention === 'sparkplug' && (group === undefined || node === undefined))
    return '--convention sparkplug needs --group and --node';
  try {
    return checkConvention({ convention, base, group, node });
  } catch (error) {
    return (error as Error).message;
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: true,
    options: {
      'data-dir': { type: 'string' },
      out: { type: 'string' },
      convention: { type: 'string' },
      base: { type: 'string' },
      group: { type: 'string' },
      node: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = runBrokerCli(process.argv.slice(2), process.env, {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
  });
}

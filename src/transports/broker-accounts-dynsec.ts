/**
 * The broker accounts as the configuration of Mosquitto's dynamic security plugin
 * (`mosquitto_dynamic_security.so`, Mosquitto 2.0 and later), for an external Mosquitto: the same
 * passwords (the `$7$` hashes of the password file), the same topics as {@link mosquittoAcl}, and
 * the one rule a password file and an ACL cannot say — each device account connects only with its
 * own username as client id. Without it a device with a valid account could connect with the
 * host's client id (`fleetvisor-<instance>-host`, which Sparkplug STATE shows) or another
 * device's, and Mosquitto would disconnect that client to let it in; with it, the connect is
 * refused (return code 5), as the embedded broker refuses it.
 *
 * The host's account is not bound: it opens more than one connection (its MQTT link, which also
 * carries the Homie bridge, and the Sparkplug bridge's own for its STATE will; a Homie bridge set
 * for another broker or account has its own too), each with its own client id. Homie and
 * Sparkplug accounts are bound too; a library that picks its own client id (homie-device for
 * Node) connects to a listener with `use_username_as_clientid true`, which replaces it with the
 * username before the plugin checks it (see {@link mosquittoDynsecConf}).
 *
 * The host may also use the plugin's control topic (`$CONTROL/dynamic-security/v1`: a `#` rule
 * does not cover `$` topics), so it can change accounts while Mosquitto runs: every change of the
 * data folder's accounts reaches the broker at once (src/transports/mosquitto-dynsec-sync.ts), and
 * the demo's simulated devices get theirs that way ({@link dynsecDeviceAccountCommands}). Device
 * clients made from the accounts carry their instance's mark ({@link dynsecOwnerText}), so the host
 * deletes only clients it made, never the broker admin's others.
 *
 * @example
 * writeFileSync('/etc/mosquitto/fleetvisor-dynsec.json', mosquittoDynsecConfig(store.data));
 * mosquittoDynsecConf('/etc/mosquitto/fleetvisor-dynsec.json'); // the mosquitto.conf lines
 */
import { existsSync } from 'node:fs';
import type { AccountsFile } from './broker-accounts-file.js';
import type { DeviceConvention } from './broker-acl.js';
import {
  conventionFilters,
  DEVICE_PUBLISH_CHANNELS,
  DEVICE_SUBSCRIBE_CHANNELS,
  HOST_USERNAME,
} from './broker-acl.js';
import type { Channel, DeviceId } from './protocol.js';
import { topicFor } from './protocol.js';

/** One ACL of a dynamic security role (Mosquitto's names). */
interface DynsecAcl {
  readonly acltype:
    | 'publishClientSend'
    | 'publishClientReceive'
    | 'subscribeLiteral'
    | 'subscribePattern'
    | 'unsubscribePattern';
  readonly topic: string;
  readonly allow: true;
}

interface DynsecClient {
  readonly username: string;
  /** Set: the only client id this account may connect with. */
  readonly clientid?: string;
  readonly textName: string;
  /** {@link dynsecOwnerText}: made from the accounts of that instance's data folder. */
  readonly textdescription?: string;
  readonly password: string;
  readonly salt: string;
  readonly iterations: number;
  readonly roles: readonly { readonly rolename: string }[];
}

/**
 * The plugin's configuration file (JSON) for every account with a secret: the host with any client
 * id and every topic, each device bound to its id and limited to its own topics. Revoked accounts
 * are left out (they cannot connect); provisioning secrets too (Mosquitto has no first contact).
 * `owner` (the data folder's instance id) marks each device client as the host's own.
 */
export function mosquittoDynsecConfig(
  data: AccountsFile,
  hostUsername: string = HOST_USERNAME,
  owner?: string,
): string {
  const clients: DynsecClient[] = [
    {
      username: hostUsername,
      textName: 'Fleetvisor host: any client id (its MQTT link and its Sparkplug bridge each have their own)',
      ...dynsecPassword(data.host.mosquitto, hostUsername),
      roles: [{ rolename: HOST_ROLE }],
    },
  ];
  const roles: { rolename: string; acls: DynsecAcl[] }[] = [
    {
      rolename: HOST_ROLE,
      acls: [
        allow('publishClientSend', '#'),
        allow('publishClientReceive', '#'),
        allow('subscribePattern', '#'),
        allow('unsubscribePattern', '#'),
        // Managing accounts while Mosquitto runs (the demo's devices): `#` does not match `$CONTROL`.
        allow('publishClientSend', `${DYNSEC_CONTROL_TOPIC_ROOT}/#`),
        allow('publishClientReceive', `${DYNSEC_CONTROL_TOPIC_ROOT}/#`),
        allow('subscribePattern', `${DYNSEC_CONTROL_TOPIC_ROOT}/#`),
      ],
    },
  ];
  for (const [id, record] of Object.entries(data.devices).sort(([a], [b]) => a.localeCompare(b))) {
    if (record.secret === undefined) continue;
    const rights = record.convention ?? { convention: 'native' };
    const rolename = deviceRoleName(id);
    clients.push({
      username: id,
      clientid: id,
      textName: deviceTextName(id, rights),
      ...(owner !== undefined ? { textdescription: dynsecOwnerText(owner) } : {}),
      ...dynsecPassword(record.secret.mosquitto, id),
      roles: [{ rolename }],
    });
    roles.push({ rolename, acls: deviceAcls(id, rights) });
  }
  const config = {
    defaultACLAccess: {
      publishClientSend: false,
      publishClientReceive: false,
      subscribe: false,
      unsubscribe: true,
    },
    clients,
    groups: [],
    roles,
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

const HOST_ROLE = 'fleetvisor-host';
const DYNSEC_CONTROL_TOPIC_ROOT = '$CONTROL/dynamic-security';
/** Where the plugin takes commands (`{ "commands": [ … ] }`), and where it answers. */
export const DYNSEC_CONTROL_TOPIC = `${DYNSEC_CONTROL_TOPIC_ROOT}/v1`;
export const DYNSEC_RESPONSE_TOPIC = `${DYNSEC_CONTROL_TOPIC}/response`;

/** One command to the plugin's control topic (Mosquitto's names), e.g. `{ command: 'deleteClient', username }`. */
export interface DynsecCommand {
  readonly command: string;
  readonly [field: string]: unknown;
}

/**
 * The commands that give device `id` an account with `password` on a running Mosquitto, as the
 * generated file would (bound to its client id, limited to its topics, marked as `owner`'s when
 * given), replacing one it had: the old client and role are deleted first (a "not found" answer
 * to those two is expected; a connected device is disconnected by the delete).
 *
 * @example
 * dynsecDeviceAccountCommands('demo-m001', secret).map((c) => c.command);
 * // ['deleteClient', 'deleteRole', 'createRole', 'createClient']
 */
export function dynsecDeviceAccountCommands(
  id: string,
  password: string,
  rights: DeviceConvention = { convention: 'native' },
  owner?: string,
): DynsecCommand[] {
  const rolename = deviceRoleName(id);
  return [
    ...dynsecRemoveDeviceCommands(id),
    { command: 'createRole', rolename, acls: deviceAcls(id, rights) },
    {
      command: 'createClient',
      username: id,
      password,
      clientid: id,
      textname: deviceTextName(id, rights),
      ...(owner !== undefined ? { textdescription: dynsecOwnerText(owner) } : {}),
      roles: [{ rolename }],
    },
  ];
}

/**
 * The commands that delete device `id`'s account and role. Mosquitto ends the client's session as
 * it deletes it ("disconnected by administrative action", checked on 2.0.11), so no `disableClient`
 * is needed first.
 */
export function dynsecRemoveDeviceCommands(id: string): DynsecCommand[] {
  return [
    { command: 'deleteClient', username: id },
    { command: 'deleteRole', rolename: deviceRoleName(id) },
  ];
}

/** The role of device `id`'s client: its topics. */
export function deviceRoleName(id: string): string {
  return `fleetvisor-device-${id}`;
}

/**
 * The text description of the device clients an instance makes from its accounts: the mark by
 * which it knows them as its own (a client without it is never deleted for a missing account).
 */
export function dynsecOwnerText(owner: string): string {
  return `Made by Fleetvisor ${owner} from its broker accounts`;
}

function deviceTextName(id: string, rights: DeviceConvention): string {
  return `${describeRights(rights)} device ${id}: client id ${id} only`;
}

/** Where Mosquitto packages put the plugin: Debian and Ubuntu by architecture, the eclipse-mosquitto image, others. */
export const DYNSEC_PLUGIN_PATHS: readonly string[] = [
  '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so',
  '/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so',
  '/usr/lib/arm-linux-gnueabihf/mosquitto_dynamic_security.so',
  '/usr/lib/mosquitto_dynamic_security.so',
  '/usr/lib64/mosquitto_dynamic_security.so',
  '/usr/local/lib/mosquitto_dynamic_security.so',
];

/** The first of {@link DYNSEC_PLUGIN_PATHS} on this machine, else the first (Debian's, amd64). */
export function findDynsecPlugin(exists: (path: string) => boolean = existsSync): string {
  return DYNSEC_PLUGIN_PATHS.find(exists) ?? (DYNSEC_PLUGIN_PATHS[0] as string);
}

/**
 * The mosquitto.conf lines that load `configFile` (instead of a `password_file` and an
 * `acl_file`: the plugin answers for the accounts it holds), with the optional listener for
 * devices whose library picks its own client id, commented out.
 */
export function mosquittoDynsecConf(configFile: string, pluginPath: string = findDynsecPlugin()): string {
  return [
    '# Fleetvisor broker accounts (`fleetvisor broker mosquitto-dynsec`): each device connects only',
    '# with its username as client id and uses only its own topics; the host uses any client id.',
    '# Instead of password_file and acl_file. Mosquitto reads the file at start; after that the',
    '# host makes every account change live through the plugin (restart only after writing the',
    '# file again). (With per_listener_settings true: these lines under each listener.)',
    'allow_anonymous false',
    `plugin ${pluginPath}`,
    `plugin_opt_config_file ${configFile}`,
    '# For devices whose MQTT library picks its own client id (homie-device for Node): a listener',
    '# of their own that replaces it with the username. Not for the host (its connections would',
    '# then share one client id and knock each other off).',
    '#listener 1884',
    '#use_username_as_clientid true',
    '',
  ].join('\n');
}

function allow(acltype: DynsecAcl['acltype'], topic: string): DynsecAcl {
  return { acltype, topic, allow: true };
}

/** The same topics as the embedded broker's rule (broker-acl.ts) and the Mosquitto ACL. */
function deviceAcls(id: string, rights: DeviceConvention): DynsecAcl[] {
  if (rights.convention === 'native') {
    const own = (channel: Channel) => topicFor(id as DeviceId, channel);
    return [
      ...DEVICE_PUBLISH_CHANNELS.map((c) => allow('publishClientSend', own(c))),
      // Exactly these filters, no wildcard (subscribeLiteral), as the embedded broker allows.
      ...DEVICE_SUBSCRIBE_CHANNELS.map((c) => allow('subscribeLiteral', own(c))),
      ...DEVICE_SUBSCRIBE_CHANNELS.map((c) => allow('publishClientReceive', own(c))),
    ];
  }
  const { publish, subscribe } = conventionFilters(id, rights);
  return [
    ...publish.map((t) => allow('publishClientSend', t)),
    ...subscribe.map((t) => allow('subscribePattern', t)),
    ...subscribe.map((t) => allow('publishClientReceive', t)),
  ];
}

function describeRights(rights: DeviceConvention): string {
  if (rights.convention === 'homie') return `Homie (base ${rights.base})`;
  if (rights.convention === 'sparkplug') return `Sparkplug (group ${rights.group}, node ${rights.node})`;
  return 'Fleetvisor';
}

/** `$7$101$<salt>$<hash>` (Mosquitto's PBKDF2-SHA512 password hash) as the plugin's three fields. */
function dynsecPassword(
  mosquittoHash: string,
  username: string,
): { password: string; salt: string; iterations: number } {
  const parts = mosquittoHash.split('$');
  const iterations = Number(parts[2]);
  if (parts.length !== 5 || parts[1] !== '7' || !Number.isSafeInteger(iterations) || iterations < 1)
    throw new Error(`broker account ${username}: its Mosquitto hash is not a $7$ PBKDF2 hash`);
  return { password: parts[4] as string, salt: parts[3] as string, iterations };
}

/**
 * Who may do what on the broker (docs/protocol.md §6 "Credentials and access"): one pure rule
 * for the embedded broker's `authorizePublish` / `authorizeSubscribe` and, written out as
 * Mosquitto `pattern` rules by {@link mosquittoAcl}, for an external broker.
 *
 * - The host (username {@link HOST_USERNAME}) publishes and subscribes anywhere: it sends every
 *   command and reads every device.
 * - A device (username = client id = its device id) publishes only on its own device → host
 *   channels (`hello`, `status`, `telemetry`, `heartbeat`, `event`, `reply`, `fw-ack`) and
 *   subscribes only to its own `cmd` and `fw`, exactly (no wildcard). So no device can send a
 *   command, speak for another device, or read anything but its own commands.
 *
 * @example
 * mayPublish({ role: 'device', id: 'pump-7' as DeviceId, via: 'account' }, 'fleetvisor/v1/pump-7/telemetry'); // { ok: true }
 * maySubscribe({ role: 'device', id: 'pump-7' as DeviceId, via: 'account' }, '#'); // { ok: false, reason: … }
 */
import type { Channel, DeviceId } from './protocol.js';
import { CHANNELS, topicFor } from './protocol.js';

/** The host's broker username. A dot is not allowed in device ids, so no device can take it. */
export const HOST_USERNAME = 'fleetvisor.host';

/**
 * The topics a device account speaks on. `native`: this protocol's `fleetvisor/v1/<id>/…`;
 * `homie`: a Homie device whose topic id is the account id under `base` (default `homie`);
 * `sparkplug`: the Sparkplug B edge node `node` of group `group` and its devices.
 */
export type DeviceConvention =
  | { readonly convention: 'native' }
  | { readonly convention: 'homie'; readonly base: string }
  | { readonly convention: 'sparkplug'; readonly group: string; readonly node: string };

export const NATIVE: DeviceConvention = { convention: 'native' };

/** Who an authenticated broker client is. */
export type BrokerPrincipal =
  | { readonly role: 'host' }
  | {
      readonly role: 'device';
      readonly id: DeviceId;
      /** `account`: its own secret; `provisioning`: its kind's first-contact secret. */
      readonly via: 'account' | 'provisioning';
      /** For `provisioning`: the kind whose secret it used (its hello must name that kind). */
      readonly kind?: string;
      /** Absent: `native`. */
      readonly rights?: DeviceConvention;
    };

export type AclDecision = { readonly ok: true } | { readonly ok: false; readonly reason: string };

const ALLOW: AclDecision = { ok: true };

/** The channels a device publishes on (device → host), from the protocol's channel table. */
export const DEVICE_PUBLISH_CHANNELS: readonly Channel[] = (Object.keys(CHANNELS) as Channel[]).filter(
  (c) => CHANNELS[c].direction === 'toHost',
);
/** The channels a device subscribes to (host → device). */
export const DEVICE_SUBSCRIBE_CHANNELS: readonly Channel[] = (Object.keys(CHANNELS) as Channel[]).filter(
  (c) => CHANNELS[c].direction === 'toDevice',
);

/** Whether `principal` may publish on `topic` (a topic name: the broker refuses wildcards itself). */
export function mayPublish(principal: BrokerPrincipal, topic: string): AclDecision {
  if (principal.role === 'host') return ALLOW;
  if (principal.rights !== undefined && principal.rights.convention !== 'native')
    return conventionPublish(principal.id, principal.rights, topic);
  // On the hot path (every message a device sends): one prefix test and one set lookup.
  const prefix = devicePrefix(principal.id);
  if (topic.startsWith(prefix) && PUBLISH_SET.has(topic.slice(prefix.length))) return ALLOW;
  return {
    ok: false,
    reason: `device ${principal.id} may publish only on ${prefix}{${DEVICE_PUBLISH_CHANNELS.join(',')}}`,
  };
}

const PUBLISH_SET: ReadonlySet<string> = new Set(DEVICE_PUBLISH_CHANNELS);
const devicePrefix = (id: DeviceId): string => topicFor(id, 'hello').slice(0, -'hello'.length);

/** Whether `principal` may subscribe to `filter` (a topic filter, wildcards included). */
export function maySubscribe(principal: BrokerPrincipal, filter: string): AclDecision {
  if (principal.role === 'host') return ALLOW;
  if (principal.rights !== undefined && principal.rights.convention !== 'native')
    return conventionSubscribe(principal.id, principal.rights, filter);
  for (const channel of DEVICE_SUBSCRIBE_CHANNELS)
    if (filter === topicFor(principal.id, channel)) return ALLOW;
  return {
    ok: false,
    reason: `device ${principal.id} may subscribe only to fleetvisor/v1/${principal.id}/{${DEVICE_SUBSCRIBE_CHANNELS.join(',')}}`,
  };
}

/**
 * The topic filters a convention account may publish to and subscribe to: the one table both the
 * embedded broker ({@link mayPublish}, {@link maySubscribe}) and {@link mosquittoAcl} use.
 *
 * - Homie (docs: homieiot.github.io, v3/v4 topology `<base>/<device>/<node>/<property>`): every
 *   attribute and value of its own device (`$state`, its will, included), never a `…/set` (only the
 *   host sets); it reads its own device (homie-device subscribes to `<base>/<id>/#` for its set
 *   topics) and the controller's `<base>/$broadcast/#`.
 * - Sparkplug B: its node's NBIRTH/NDATA/NDEATH and its devices' DBIRTH/DDATA/DDEATH; it reads
 *   its node's NCMD and DCMD (Tahu subscribes `…/NCMD/<node>/#`, `…/DCMD/<node>/#`) and the host
 *   applications' STATE (3.0 `spBv1.0/STATE/+`, older `STATE/+`).
 */
export function conventionFilters(
  id: string,
  rights: Exclude<DeviceConvention, { convention: 'native' }>,
): { readonly publish: readonly string[]; readonly subscribe: readonly string[] } {
  if (rights.convention === 'homie') {
    const d = `${rights.base}/${id}`;
    return {
      publish: [
        `${d}/+`,
        `${d}/+/+`,
        ...HOMIE_PROPERTY_ATTRIBUTES.map((a) => `${d}/+/+/${a}`),
        ...HOMIE_DEEP_DEVICE_ATTRIBUTES.map((a) => `${d}/${a}/#`),
      ],
      subscribe: [`${d}/#`, `${rights.base}/$broadcast/#`],
    };
  }
  const { group: g, node: n } = rights;
  return {
    publish: [
      ...['NBIRTH', 'NDATA', 'NDEATH'].map((t) => `spBv1.0/${g}/${t}/${n}`),
      ...['DBIRTH', 'DDATA', 'DDEATH'].map((t) => `spBv1.0/${g}/${t}/${n}/+`),
    ],
    subscribe: [`spBv1.0/${g}/NCMD/${n}/#`, `spBv1.0/${g}/DCMD/${n}/#`, 'spBv1.0/STATE/+', 'STATE/+'],
  };
}

/** A property's attributes (Homie v3/v4); its `set` topic is not among them. */
const HOMIE_PROPERTY_ATTRIBUTES = ['$name', '$settable', '$retained', '$datatype', '$unit', '$format'];
/** Device attributes more than two levels deep (Homie v3: `$fw/…`, `$stats/…`, `$implementation/…`). */
const HOMIE_DEEP_DEVICE_ATTRIBUTES = ['$fw', '$stats', '$implementation'];

/** Whether topic filter `filter` matches only topics `allowed` matches (a topic name is a filter too). */
export function filterWithin(filter: string, allowed: string): boolean {
  const f = filter.split('/');
  const a = allowed.split('/');
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '#') return true;
    if (i >= f.length) return false;
    if (f[i] === '#') return false;
    if (a[i] === '+') continue;
    if (f[i] !== a[i]) return false;
  }
  return f.length === a.length;
}

function conventionPublish(
  id: DeviceId,
  rights: Exclude<DeviceConvention, { convention: 'native' }>,
  topic: string,
): AclDecision {
  const { publish } = conventionFilters(id, rights);
  if (!topic.includes('+') && !topic.includes('#') && publish.some((p) => filterWithin(topic, p)))
    return ALLOW;
  return { ok: false, reason: `${rights.convention} device ${id} may publish only on ${publish.join(' ')}` };
}

function conventionSubscribe(
  id: DeviceId,
  rights: Exclude<DeviceConvention, { convention: 'native' }>,
  filter: string,
): AclDecision {
  const { subscribe } = conventionFilters(id, rights);
  if (subscribe.some((p) => filterWithin(filter, p))) return ALLOW;
  return {
    ok: false,
    reason: `${rights.convention} device ${id} may subscribe only to ${subscribe.join(' ')}`,
  };
}

/** A device account as the Mosquitto ACL needs it. */
export interface AclAccount {
  readonly id: string;
  readonly rights: DeviceConvention;
}

/**
 * The Mosquitto ACL file with the same rules (`acl_file` in mosquitto.conf): `%u` is the
 * username, which for a device is its id. Use it with `allow_anonymous false` and the password
 * file from `fleetvisor broker mosquitto-passwd`. It does not bind a client id to its account;
 * the dynamic security configuration does (broker-accounts-dynsec.ts).
 *
 * @example
 * writeFileSync('/etc/mosquitto/fleetvisor.acl', mosquittoAcl());
 */
export function mosquittoAcl(
  accounts: readonly AclAccount[] = [],
  hostUsername: string = HOST_USERNAME,
): string {
  const lines = [
    '# Fleetvisor broker ACL (generated by `fleetvisor broker mosquitto-acl`; see docs/protocol.md §6).',
    '# Use with: allow_anonymous false, password_file <the generated password file>, acl_file <this file>.',
    "# Neither file binds a client id to its account (a device could take the host's or another",
    "# device's): `fleetvisor broker mosquitto-dynsec` does, with the same accounts and topics.",
    '#',
    '# Every device: its username is its device id (and so is its client id). It publishes on its',
    '# own device -> host channels and reads only its own commands and firmware messages.',
    ...DEVICE_PUBLISH_CHANNELS.map((c) => `pattern write fleetvisor/v1/%u/${c}`),
    ...DEVICE_SUBSCRIBE_CHANNELS.map((c) => `pattern read fleetvisor/v1/%u/${c}`),
    '',
    '# The Fleetvisor host: every device, every command (and the Homie and Sparkplug bridges).',
    `user ${hostUsername}`,
    'topic readwrite #',
    '',
  ];
  const others = accounts.filter(
    (a): a is { id: string; rights: Exclude<DeviceConvention, { convention: 'native' }> } =>
      a.rights.convention !== 'native',
  );
  if (others.length > 0)
    lines.push(
      '# Homie and Sparkplug accounts: the topics of their convention, nothing else (the deny line takes',
      '# back what the patterns above grant every user: they are no native device).',
      '',
    );
  for (const a of others) {
    const { publish, subscribe } = conventionFilters(a.id, a.rights);
    const where =
      a.rights.convention === 'homie'
        ? `base ${a.rights.base}`
        : `group ${a.rights.group}, node ${a.rights.node}`;
    lines.push(`# ${a.rights.convention} (${where})`, `user ${a.id}`, `topic deny fleetvisor/v1/${a.id}/#`);
    for (const t of publish) lines.push(`topic write ${t}`);
    for (const t of subscribe) lines.push(`topic read ${t}`);
    lines.push('');
  }
  return lines.join('\n');
}

/**
 * Sparkplug B 3.0 addressing, for the bridge: the namespace's topics (node and device messages,
 * a host's STATE), the commands' topics, the rule for a topic level, and the STATE payload (3.0
 * JSON or the 2.2 `ONLINE`/`OFFLINE` text). Pure code, no I/O; nothing here throws. Payloads:
 * sparkplug-codec.ts.
 *
 * @example
 * const t = parseSparkplugTopic('spBv1.0/Plant1/DDATA/Line4/Press2');
 * // { ok: true, value: { kind: 'device', type: 'DDATA', group: 'Plant1', node: 'Line4', device: 'Press2' } }
 * client.publish(stateTopic('fleetvisor'), encodeStatePayload(true, Date.now()), { qos: 1, retain: true });
 */

/** The Sparkplug B namespace, the first topic level. */
export const SPARKPLUG_NAMESPACE = 'spBv1.0';

export type NodeMessageType = 'NBIRTH' | 'NDEATH' | 'NDATA' | 'NCMD';
export type DeviceMessageType = 'DBIRTH' | 'DDEATH' | 'DDATA' | 'DCMD';

export type SparkplugTopic =
  | { readonly kind: 'node'; readonly type: NodeMessageType; readonly group: string; readonly node: string }
  | {
      readonly kind: 'device';
      readonly type: DeviceMessageType;
      readonly group: string;
      readonly node: string;
      readonly device: string;
    }
  /** `spBv1.0/STATE/<host id>`: a host application's presence (3.0). */
  | { readonly kind: 'state'; readonly hostId: string };

const NODE_TYPES: ReadonlySet<string> = new Set(['NBIRTH', 'NDEATH', 'NDATA', 'NCMD']);
const DEVICE_TYPES: ReadonlySet<string> = new Set(['DBIRTH', 'DDEATH', 'DDATA', 'DCMD']);

/**
 * Reads a topic of the Sparkplug B namespace; the error says what is wrong with it.
 *
 * @example
 * parseSparkplugTopic('spBv1.0/G/NBIRTH/N');      // ok: { kind: 'node', type: 'NBIRTH', group: 'G', node: 'N' }
 * parseSparkplugTopic('spBv1.0/STATE/scada');     // ok: { kind: 'state', hostId: 'scada' }
 * parseSparkplugTopic('spBv1.0/G/NDATA/N/extra'); // error: 'NDATA takes 4 topic levels, got 5'
 */
export function parseSparkplugTopic(
  topic: string,
): { ok: true; value: SparkplugTopic } | { ok: false; error: string } {
  const parts = topic.split('/');
  if (parts[0] !== SPARKPLUG_NAMESPACE)
    return { ok: false, error: `not in the ${SPARKPLUG_NAMESPACE} namespace` };
  if (parts[1] === 'STATE') {
    if (parts.length !== 3 || !parts[2]) return { ok: false, error: 'STATE takes 3 topic levels' };
    return { ok: true, value: { kind: 'state', hostId: parts[2] } };
  }
  const [, group, type, node, device] = parts;
  if (!group || !type || !node)
    return { ok: false, error: 'group, message type and edge node id are required' };
  if (NODE_TYPES.has(type)) {
    if (parts.length !== 4) return { ok: false, error: `${type} takes 4 topic levels, got ${parts.length}` };
    return { ok: true, value: { kind: 'node', type: type as NodeMessageType, group, node } };
  }
  if (DEVICE_TYPES.has(type)) {
    if (parts.length !== 5 || !device)
      return { ok: false, error: `${type} takes 5 topic levels, got ${parts.length}` };
    return { ok: true, value: { kind: 'device', type: type as DeviceMessageType, group, node, device } };
  }
  return { ok: false, error: `unknown message type '${type.slice(0, 32)}'` };
}

/** `spBv1.0/<group>/NCMD/<node>` or `spBv1.0/<group>/DCMD/<node>/<device>`. */
export function commandTopic(group: string, node: string, device?: string): string {
  return device === undefined
    ? `${SPARKPLUG_NAMESPACE}/${group}/NCMD/${node}`
    : `${SPARKPLUG_NAMESPACE}/${group}/DCMD/${node}/${device}`;
}

/** `spBv1.0/STATE/<host id>` (Sparkplug 3.0). */
export function stateTopic(hostId: string): string {
  return `${SPARKPLUG_NAMESPACE}/STATE/${hostId}`;
}

/** A topic level must not be empty nor hold `/`, `+` or `#`; the message says why not. */
export function topicLevelProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0) return 'must be a non-empty string';
  if (/[/+#]/.test(value)) return `must not contain '/', '+' or '#' (got ${JSON.stringify(value)})`;
  return undefined;
}

// ---- STATE ----

/**
 * A host's STATE payload: 3.0 JSON `{"online":true,"timestamp":…}`, or the older `ONLINE` /
 * `OFFLINE` text (Sparkplug 2.2 hosts); undefined when it is neither (or empty: a cleared retain).
 */
export function parseStatePayload(
  payload: Uint8Array,
): { online: boolean; timestamp: number | null } | undefined {
  if (payload.length === 0 || payload.length > 1024) return undefined;
  const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8').trim();
  if (text === 'ONLINE' || text === 'OFFLINE') return { online: text === 'ONLINE', timestamp: null };
  try {
    const v = JSON.parse(text) as unknown;
    if (v === null || typeof v !== 'object') return undefined;
    const { online, timestamp } = v as { online?: unknown; timestamp?: unknown };
    if (typeof online !== 'boolean') return undefined;
    return {
      online,
      timestamp: typeof timestamp === 'number' && Number.isFinite(timestamp) ? timestamp : null,
    };
  } catch {
    return undefined;
  }
}

/** The 3.0 STATE payload. */
export function encodeStatePayload(online: boolean, timestamp: number): Buffer {
  return Buffer.from(JSON.stringify({ online, timestamp }));
}

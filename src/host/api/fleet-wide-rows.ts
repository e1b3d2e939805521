/**
 * What the shared database says of one device, made into the row the `devices` query lists
 * (src/host/api/fleet-wide.ts reads the database; this file only turns what it read into rows).
 * Pure and synchronous: the device table's rows parsed once per version ({@link storedOf}), the
 * latest link and health of each device from its presence events ({@link applyPresence}), and
 * the row itself ({@link remoteRowOf}).
 *
 * @example
 * const presence = newPresence();
 * for (const e of events) applyPresence(presence, e);
 * const row = remoteRowOf(storedOf(read), leases.get(shard), presence, conventionOf(kind), now);
 * // { id, name, …, health: 'running', link, remote: { owner: 'beta', readAt: now, savedAt } }
 */
import type { FleetDeviceRead, PresenceEvent, ShardOwner } from '../../cluster/fleet-reads.js';
import { formatStateValue } from '../../runtime/machine-lifecycle.js';
import type { DeviceRow, LinkView } from '../contract.js';

/** What a device's table rows say, parsed once per version of them. */
export interface Stored {
  readonly id: string;
  readonly version: string;
  readonly name: string;
  readonly kind: string;
  readonly tags: readonly string[];
  readonly firmware: string | null;
  readonly state: string;
  readonly stateEnteredAt: number;
  readonly savedAt: number | null;
}

interface Health {
  readonly seq: number;
  readonly at: number;
  readonly failure: { readonly code: string; readonly message: string } | null;
}

interface Link {
  readonly seq: number;
  readonly link: LinkView;
}

/** The latest link and health event of each device, by device id. */
export interface Presence {
  readonly links: Map<string, Link>;
  readonly healths: Map<string, Health>;
}

const NO_LINK: LinkView = { up: false, via: null, since: null, reason: null };

const parse = (text: string | null): unknown => {
  if (text === null) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

const field = (value: unknown, key: string): unknown =>
  typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;

const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);

export function storedOf(d: FleetDeviceRead): Stored {
  const stored = parse(d.snapshot);
  const value = field(field(stored, 'machine'), 'value');
  const entered = field(stored, 'stateEnteredAt');
  const tags = parse(d.tags);
  return {
    id: d.id,
    version: d.version,
    name: d.name,
    kind: d.kind,
    tags: Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string') : [],
    firmware: text(field(parse(d.status), 'firmware')),
    state: value === undefined ? '' : formatStateValue(value),
    stateEnteredAt: typeof entered === 'number' ? entered : (d.savedAt ?? 0),
    savedAt: d.savedAt,
  };
}

export const newPresence = (): Presence => ({ links: new Map(), healths: new Map() });

/** One event read: kept when it is newer than the one kept for its device and topic. */
export function applyPresence(p: Presence, e: PresenceEvent): void {
  const data = parse(e.data);
  if (e.topic === 'link') {
    const old = p.links.get(e.deviceId);
    if (old && old.seq >= e.seq) return;
    const up = e.kind === 'device.online';
    // A restated offline (the reason changed) keeps when the link went down.
    const since = !up && field(data, 'restated') === true && old && !old.link.up ? old.link.since : e.at;
    p.links.set(e.deviceId, {
      seq: e.seq,
      link: { up, via: text(field(data, 'via')), since, reason: up ? null : text(field(data, 'reason')) },
    });
    return;
  }
  const old = p.healths.get(e.deviceId);
  if (old && old.seq >= e.seq) return;
  p.healths.set(e.deviceId, {
    seq: e.seq,
    at: e.at,
    failure:
      e.kind === 'device.failed'
        ? { code: text(field(data, 'code')) ?? 'failed', message: text(field(data, 'message')) ?? '' }
        : null,
  });
}

/** Events of devices no longer in the table are forgotten: memory follows the fleet. */
export function forgetAbsent(p: Presence, devices: ReadonlyMap<string, unknown>): void {
  for (const id of p.links.keys()) if (!devices.has(id)) p.links.delete(id);
  for (const id of p.healths.keys()) if (!devices.has(id)) p.healths.delete(id);
}

/**
 * The row of a device another instance supervises (or none does). Health: `failed` when its last
 * health event is a failure since the owner claimed the shard, else `running` while a lease names
 * an owner, `stopped` while none does.
 */
export function remoteRowOf(
  d: Stored,
  lease: ShardOwner | undefined,
  p: Presence,
  convention: string | undefined,
  readAt: number,
): DeviceRow {
  const health = p.healths.get(d.id);
  // A failure from before the owner claimed the shard is gone: the new owner restored the device.
  const failure = health?.failure && lease && health.at >= lease.acquiredAt ? health.failure : null;
  return {
    id: d.id,
    name: d.name,
    kind: d.kind,
    tags: d.tags,
    health: failure ? 'failed' : lease ? 'running' : 'stopped',
    state: d.state,
    stateEnteredAt: d.stateEnteredAt,
    link: p.links.get(d.id)?.link ?? NO_LINK,
    firmware: d.firmware,
    lastSeen: null,
    restarts: 0,
    drift: 0,
    failure,
    timers: [],
    ...(convention !== undefined ? { convention } : {}),
    remote: { owner: lease?.owner ?? null, readAt, savedAt: d.savedAt },
  };
}

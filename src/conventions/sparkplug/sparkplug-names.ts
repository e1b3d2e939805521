/**
 * Which fleet id a Sparkplug name may act on. A node's or device's name maps to one fleet id; it
 * acts on it only while the fleet holds that id as this very name (`mine`). A name whose id is
 * held by another device (a Homie device, or another Sparkplug name differing only in characters
 * outside [A-Za-z0-9_-]) is refused, said once as `sparkplug.refused`, and owns nothing. A name
 * nobody holds is adopted (`auto`) or listed as discovered until the operator adopts it (`manual`):
 * in the bounded list every convention uses (src/transports/discovered-list.ts; past `maxDiscovered`
 * the oldest is dropped and counted), announced within the process's per-minute budget.
 *
 * @example
 * const names = new SparkplugNames(ports, counters, 'auto', 10_000);
 * await names.ensure('sparkplug.node', 'Plant1-Line4', { group: 'Plant1', node: 'Line4' }); // 'mine'
 */
import type { Clock } from '../../runtime/clock.js';
import type { JsonObject } from '../../store/store.js';
import type { Announcements, DiscoveredList } from '../../transports/discovered-list.js';
import { createAnnouncements, createDiscoveredList } from '../../transports/discovered-list.js';
import { MINUTE_MS } from '../../transports/minute-budget.js';
import type {
  SparkplugCounters,
  SparkplugEffect,
  SparkplugFleetDevice,
  SparkplugModelPorts,
  SparkplugNewDevice,
} from './sparkplug-effects.js';
import { log, VIA } from './sparkplug-effects.js';
import {
  SPARKPLUG_DEVICE_KIND,
  SPARKPLUG_NODE_KIND,
  safeIdPart,
  sparkplugFleetId,
} from './sparkplug-kind.js';
import type { DeviceSession, NodeSession } from './sparkplug-session.js';

export interface DiscoveredSparkplug {
  readonly id: string;
  readonly kind: string;
  readonly attributes: JsonObject;
  readonly firstSeen: number;
  readonly lastSeen: number;
  /** `manual` (waits for the operator) or `addFailed: …`. */
  readonly reason: string;
}

export type Claim = 'mine' | 'free' | { readonly taken: string };

export class SparkplugNames {
  /** Names whose refusal was said (once per name, until it is accepted again). */
  private readonly refusedKeys = new Set<string>();
  /** Nodes and devices seen with `adopt: 'manual'` (or that could not be added), by fleet id. */
  readonly discovered: DiscoveredList<DiscoveredSparkplug>;

  constructor(
    private readonly ports: SparkplugModelPorts,
    private readonly counters: SparkplugCounters,
    private readonly adoptMode: 'auto' | 'manual',
    maxDiscovered: number,
  ) {
    this.discovered = createDiscoveredList<DiscoveredSparkplug>({ max: maxDiscovered });
  }

  /**
   * Who holds a name's fleet id: `mine` (the fleet has it, of this kind and these names), `free`
   * (nobody: it may be adopted), or why another device holds it. Only `mine` lets a message act.
   */
  claim(kind: string, id: string, attributes: JsonObject): Claim {
    const v = this.ports.fleet.device(id);
    if (!v) return 'free';
    if (
      v.kind === kind &&
      v.attributes.group === attributes.group &&
      v.attributes.node === attributes.node &&
      v.attributes.device === attributes.device
    )
      return 'mine';
    return { taken: takenBy(v, id, attributes) };
  }

  /** The node's fleet id when the fleet holds it as this node; a refused name owns nothing. */
  ownNode(s: NodeSession): string | undefined {
    if (!s.id || s.refusal !== undefined) return undefined;
    return this.claim(SPARKPLUG_NODE_KIND, s.id, { group: s.group, node: s.node }) === 'mine'
      ? s.id
      : undefined;
  }

  /** The device's fleet id when the fleet holds it as this device (and its node is not refused). */
  ownDevice(s: NodeSession, d: DeviceSession): string | undefined {
    if (!d.id || d.refusal !== undefined || s.refusal !== undefined) return undefined;
    const attributes = { group: s.group, node: s.node, device: d.device };
    return this.claim(SPARKPLUG_DEVICE_KIND, d.id, attributes) === 'mine' ? d.id : undefined;
  }

  /**
   * The node or device is in the fleet (adopted now if `auto`): `mine`; `waiting` (manual, or the
   * add failed); or refused, its id held by another device (written once as `sparkplug.refused`).
   */
  async ensure(
    kind: string,
    id: string,
    attributes: JsonObject,
  ): Promise<'mine' | 'waiting' | { refused: string }> {
    const held = this.claim(kind, id, attributes);
    if (held === 'mine') {
      this.refusedKeys.delete(refusedKey(attributes)); // a later refusal is said again
      return 'mine';
    }
    if (held !== 'free') {
      this.refuseName(
        String(attributes.group),
        String(attributes.node),
        attributes.device as string | undefined,
        held.taken,
      );
      return { refused: held.taken };
    }
    const now = this.ports.now();
    const prev = this.discovered.get(id);
    if (this.adoptMode === 'manual') {
      const entry = {
        id,
        kind,
        attributes,
        firstSeen: prev?.firstSeen ?? now,
        lastSeen: now,
        reason: 'manual',
      };
      if (this.discovered.add(id, entry) && (this.ports.announcements?.take() ?? true)) {
        log(this.ports, 'info', 'Sparkplug device waits for adoption', { id, kind });
        this.ports.emit({
          type: 'event',
          kind: 'device.discovered',
          deviceId: id,
          data: { kind, via: VIA, reason: 'manual', ...attributes },
        });
      }
      return 'waiting';
    }
    const r = await this.ports.fleet.addDevice(addInput(kind, id, attributes));
    if (!r.ok && r.error.code === 'alreadyExists') {
      // Added meanwhile: by this name's own earlier birth, or by another device (then refused).
      const now = this.claim(kind, id, attributes);
      if (now !== 'mine' && now !== 'free') {
        this.refuseName(
          String(attributes.group),
          String(attributes.node),
          attributes.device as string | undefined,
          now.taken,
        );
        return { refused: now.taken };
      }
    }
    if (!r.ok && r.error.code !== 'alreadyExists') {
      this.discovered.set(id, {
        id,
        kind,
        attributes,
        firstSeen: prev?.firstSeen ?? now,
        lastSeen: now,
        reason: `addFailed: ${r.error.message}`,
      });
      log(this.ports, 'warn', 'Sparkplug device could not be adopted', { id, error: r.error.message });
      return 'waiting';
    }
    this.discovered.delete(id);
    this.refusedKeys.delete(refusedKey(attributes));
    log(this.ports, 'debug', 'Sparkplug device adopted', { id, kind });
    return 'mine';
  }

  /** The node's name is refused: it and its devices own nothing (their births come back refused). */
  refuseNode(s: NodeSession, reason: string): void {
    s.refusal = reason;
    s.born = false;
    s.seq = null;
    s.waiting = false;
    for (const d of s.devices.values()) d.born = false;
    this.refuseName(s.group, s.node, undefined, reason);
  }

  refuseDevice(s: NodeSession, d: DeviceSession, reason: string): void {
    d.refusal = reason;
    d.born = false;
    d.waiting = false;
    this.refuseName(s.group, s.node, d.device, reason);
  }

  /** Counted each time; written once per name (a `sparkplug.refused` event and a log line). */
  refuseName(group: string, node: string, device: string | undefined, reason: string): void {
    this.counters.refused++;
    const key = refusedKey({ group, node, ...(device !== undefined ? { device } : {}) });
    if (this.refusedKeys.has(key)) return;
    this.refusedKeys.add(key);
    log(this.ports, 'warn', 'Sparkplug name refused', { reason });
    this.ports.emit({
      type: 'event',
      kind: 'sparkplug.refused',
      deviceId: undefined,
      data: { group, node, device: device ?? null, reason },
    });
  }
}

/**
 * The process's announcements of new Sparkplug names: 20 one by one a minute (as the link hub's),
 * the rest summed up in one log line and one `device.discoveredSummary` event when it ends.
 */
export function sparkplugAnnouncements(
  clock: Pick<Clock, 'setTimeout'>,
  emit: (effect: SparkplugEffect) => void,
  perMinute = 20,
): Announcements {
  return createAnnouncements({
    clock,
    perMinute,
    summarize: (count) => {
      emit({
        type: 'log',
        level: 'warn',
        message: 'more new Sparkplug devices were discovered than announced one by one',
        fields: { count, windowMs: MINUTE_MS },
      });
      emit({
        type: 'event',
        kind: 'device.discoveredSummary',
        deviceId: undefined,
        data: { count, windowMs: MINUTE_MS, via: VIA },
      });
    },
  });
}

/** How a node or device is added to the fleet: its names as attributes, its node as a tag. */
export function addInput(kind: string, id: string, attributes: JsonObject): SparkplugNewDevice {
  const group = String(attributes.group);
  const node = String(attributes.node);
  if (kind === SPARKPLUG_NODE_KIND)
    return {
      id,
      kind,
      name: `${group}/${node}`,
      tags: ['sparkplug', `group:${safeIdPart(group)}`],
      attributes,
    };
  // A device id is longer than its node's, so the node's id is valid too.
  const parent = sparkplugFleetId(group, node);
  return {
    id,
    kind,
    name: `${group}/${node}/${String(attributes.device)}`,
    tags: ['sparkplug', `node:${parent.ok ? parent.value : ''}`],
    attributes,
  };
}

function takenBy(v: SparkplugFleetDevice, id: string, attributes: JsonObject): string {
  const mine = `${attributes.group}/${attributes.node}${attributes.device !== undefined ? `/${attributes.device}` : ''}`;
  const theirs =
    v.kind === SPARKPLUG_NODE_KIND || v.kind === SPARKPLUG_DEVICE_KIND
      ? `Sparkplug ${[v.attributes.group, v.attributes.node, v.attributes.device].filter((x) => x !== undefined).join('/')}`
      : `a ${v.kind} device`;
  return `fleet id '${id}' of ${mine} is already taken by ${theirs} (names differing only in characters outside [A-Za-z0-9_-] map to the same id)`;
}

function refusedKey(attributes: JsonObject): string {
  return `${String(attributes.group)}\u0000${String(attributes.node)}\u0000${attributes.device === undefined ? '' : String(attributes.device)}`;
}

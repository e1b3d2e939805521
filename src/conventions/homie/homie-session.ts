/**
 * What the Homie bridge knows of one device (a {@link Session}: its attributes, nodes, properties,
 * values, `$state`, adoption and error counts) and the pure reads of it: the `status` object the
 * fleet stores, whether the description is complete, and the views the bridge shows. What a
 * received topic does to a session is src/conventions/homie/homie-model.ts.
 *
 * @example
 * const s = newSession('boiler', Date.now());
 * s.homie = '4.0.0';
 * isComplete(s); // false: no $state, no $nodes yet
 * statusOf(s, 'mqtt:homie'); // { homie: '4.0.0', name: null, homieState: null, … }
 */

import type { BadMessageWindow } from '../../devices/bad-message-budget.js';
import type { JsonObject, JsonValue } from '../../store/store.js';
import type { HomieSetProperty } from './homie-carrier.js';
import type { HomiePropertyStatus, HomieState } from './homie-kind.js';
import type { HomieDatatype, ValueSpec } from './homie-values.js';

/** A Homie device seen on the broker and not (yet) in the fleet. */
export interface DiscoveredHomieDevice {
  readonly id: string;
  readonly name: string | null;
  readonly homie: string;
  readonly state: HomieState | null;
  readonly firmware: string | null;
  readonly firstSeen: number;
  readonly lastSeen: number;
  /** `manual` (waits for the operator), or why it could not be adopted. */
  readonly reason: string;
}

/** What the bridge knows of one device, for diagnostics and tests. */
export interface HomieDeviceView {
  readonly id: string;
  readonly homie: string | null;
  readonly state: HomieState | null;
  readonly adopted: boolean;
  readonly complete: boolean;
  readonly errors: Readonly<Record<string, number>>;
  readonly values: Readonly<Record<string, string>>;
}

export interface PropertyInfo {
  readonly node: string;
  readonly property: string;
  name: string | null;
  datatype: HomieDatatype | undefined;
  format: string | null;
  unit: string | null;
  settable: boolean | undefined;
  retained: boolean | undefined;
  /** Any `$…` attribute arrived (the description is not missing). */
  described: boolean;
  /** The last value payload. */
  raw: string | undefined;
  /** The datatype `raw` was last applied with (undefined: the default, string). */
  appliedAs: HomieDatatype | undefined;
}

export interface NodeInfo {
  name: string | null;
  type: string | null;
  properties: string[] | undefined;
  array: string | null;
}

/** One device; its bad input is written within the per-device budget (src/devices/bad-message-budget.ts). */
export interface Session extends BadMessageWindow {
  readonly id: string;
  homie: string | undefined;
  state: HomieState | undefined;
  name: string | null;
  firmware: string | null;
  firmwareName: string | null;
  implementation: string | null;
  nodeList: string[] | undefined;
  readonly nodes: Map<string, NodeInfo>;
  readonly properties: Map<string, PropertyInfo>;
  /** Text values (status.values). */
  readonly values: Map<string, string>;
  /** In the fleet as a `homie.device` of this base. */
  adopted: boolean;
  adding: boolean;
  /** Why it is not adopted (`manual`, a conflict, an add failure). */
  notAdopted: string | undefined;
  readonly firstSeen: number;
  lastSeen: number;
  /** Bad input by code (written as events or not). */
  errors: Record<string, number>;
  resyncAttempts: number;
  /** The `$state` before the last one. */
  previousState: HomieState | undefined;
  /** A live `init` was seen since the device was last ready. */
  sawInit: boolean;
  /** Re-subscribe even though the description looks complete (a `ready` with no `init` before it). */
  forceResync: boolean;
  tooManyProperties: boolean;
}

export function newSession(id: string, now: number): Session {
  return {
    id,
    homie: undefined,
    state: undefined,
    name: null,
    firmware: null,
    firmwareName: null,
    implementation: null,
    nodeList: undefined,
    nodes: new Map(),
    properties: new Map(),
    values: new Map(),
    adopted: false,
    adding: false,
    notAdopted: undefined,
    firstSeen: now,
    lastSeen: now,
    errors: {},
    errorEvents: 0,
    errorSuppressed: 0,
    errorWindowStart: 0,
    resyncAttempts: 0,
    previousState: undefined,
    sawInit: false,
    forceResync: false,
    tooManyProperties: false,
  };
}

export function specOf(p: PropertyInfo): ValueSpec {
  return { datatype: p.datatype ?? 'string', format: p.format };
}

export function describeSpec(spec: ValueSpec): string {
  return spec.format ? `${spec.datatype} ${spec.format}` : spec.datatype;
}

/** The property is in the device's `$nodes` and its node's `$properties` (as far as they are known). */
export function isDeclared(s: Session, p: PropertyInfo): boolean {
  if (s.nodeList && !s.nodeList.includes(p.node)) return false;
  const list = s.nodes.get(p.node)?.properties;
  return !list || list.includes(p.property);
}

/** Everything a device announces on connect has arrived. */
export function isComplete(s: Session): boolean {
  if (s.homie === undefined || s.state === undefined || s.nodeList === undefined) return false;
  for (const node of s.nodeList) {
    const props = s.nodes.get(node)?.properties;
    if (props === undefined) return false;
    for (const prop of props) if (!s.properties.get(`${node}/${prop}`)?.described) return false;
  }
  return true;
}

/** The device's `status` in the fleet: its description (declared nodes and properties) and text values. */
export function statusOf(s: Session, via: string): JsonObject {
  const nodes: Record<string, JsonValue> = {};
  for (const [id, n] of s.nodes)
    if (!s.nodeList || s.nodeList.includes(id))
      nodes[id] = { name: n.name, type: n.type, properties: n.properties ?? null, array: n.array };
  const properties: Record<string, JsonValue> = {};
  for (const [key, p] of s.properties) {
    if (!isDeclared(s, p)) continue;
    const entry: HomiePropertyStatus = {
      node: p.node,
      property: p.property,
      name: p.name,
      datatype: p.datatype ?? 'string',
      format: p.format,
      unit: p.unit,
      settable: p.settable === true,
      retained: p.retained !== false,
    };
    properties[key] = entry as unknown as JsonObject;
  }
  const values: Record<string, JsonValue> = {};
  for (const [key, v] of s.values) {
    const p = s.properties.get(key);
    if (p && isDeclared(s, p)) values[key] = v;
  }
  return {
    homie: s.homie ?? null,
    name: s.name,
    homieState: s.state ?? null,
    firmware: s.firmware,
    firmwareName: s.firmwareName,
    implementation: s.implementation,
    via,
    nodes,
    properties,
    values,
  };
}

/** The session as {@link HomieDeviceView}. */
export function viewOf(s: Session): HomieDeviceView {
  return {
    id: s.id,
    homie: s.homie ?? null,
    state: s.state ?? null,
    adopted: s.adopted,
    complete: isComplete(s),
    errors: { ...s.errors },
    values: Object.fromEntries(s.values),
  };
}

/** A device seen (its `$homie` arrived) and not in the fleet; undefined otherwise. */
export function discoveredOf(s: Session): DiscoveredHomieDevice | undefined {
  if (s.adopted || s.homie === undefined) return undefined;
  return {
    id: s.id,
    name: s.name,
    homie: s.homie,
    state: s.state ?? null,
    firmware: s.firmware,
    firstSeen: s.firstSeen,
    lastSeen: s.lastSeen,
    reason: s.notAdopted ?? (s.adding ? 'adding' : 'manual'),
  };
}

/** The carrier's view of a device's settable properties (declared ones only); undefined: not seen. */
export function setPropertiesOf(s: Session | undefined): ReadonlyMap<string, HomieSetProperty> | undefined {
  if (!s || s.homie === undefined) return undefined;
  const out = new Map<string, HomieSetProperty>();
  for (const [key, p] of s.properties)
    if (isDeclared(s, p))
      out.set(key, {
        node: p.node,
        property: p.property,
        spec: specOf(p),
        settable: p.settable ?? null,
      });
  return out;
}

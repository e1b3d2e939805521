/**
 * What the Sparkplug host keeps per edge node and per device of a node: its fleet id (or why its
 * name is refused), whether it is born, its bdSeq and seq, its birth's metrics, and the state of
 * the rebirth requests made to it.
 *
 * @example
 * const s = newNodeSession('Plant1', 'Line4'); // s.id 'Plant1-Line4', not born, seq null
 * const d = deviceSessionOf(s, 'Press2');      // d.id 'Plant1-Line4-Press2'
 */

import { sparkplugFleetId } from './sparkplug-kind.js';
import type { MetricTable, StatusMetric } from './sparkplug-metrics.js';
import { emptyTable } from './sparkplug-metrics.js';

export interface DeviceSession {
  readonly device: string;
  /** The fleet id its name maps to; it acts on it only while the fleet holds it as this device. */
  readonly id: string | undefined;
  /** Why the name is refused (id too long, or taken by another device); it then owns nothing. */
  refusal: string | undefined;
  /** Its last birth was seen but not adopted (`manual`, or the add failed): data asks no rebirth. */
  waiting: boolean;
  born: boolean;
  metrics: MetricTable;
  /** The status's metric list, values updated by DATA. */
  shown: StatusMetric[];
}

export interface NodeSession {
  readonly group: string;
  readonly node: string;
  /** The fleet id its name maps to; it acts on it only while it is its own (see `ownNode`). */
  readonly id: string | undefined;
  /** Why the name is refused (id too long, or taken by another device): it and its devices own nothing. */
  refusal: string | undefined;
  /** Its last birth was seen but not adopted (`manual`, or the add failed): data asks no rebirth. */
  waiting: boolean;
  born: boolean;
  /** The status's metric list, values updated by DATA. */
  shown: StatusMetric[];
  bdSeq: number | null;
  seq: number | null;
  metrics: MetricTable;
  readonly devices: Map<string, DeviceSession>;
  /** When the last unanswered rebirth request went out. */
  rebirthAskedAt: number | null;
  /** The host's own rebirth requests in the current minute (births do not reset it). */
  readonly rebirthWindow: { start: number; count: number; noted: boolean };
  gaps: number;
  rebirths: number;
  /** Messages of this node, handled one after another. */
  queue: Promise<void>;
}

export interface SparkplugNodeView {
  readonly id: string | undefined;
  readonly group: string;
  readonly node: string;
  readonly born: boolean;
  readonly bdSeq: number | null;
  /** The last seq seen. */
  readonly seq: number | null;
  readonly gaps: number;
  readonly rebirthsRequested: number;
  readonly devices: readonly {
    readonly id: string | undefined;
    readonly device: string;
    readonly born: boolean;
  }[];
}

/** What the host shows of a node's session. */
export function nodeView(s: NodeSession): SparkplugNodeView {
  return {
    id: s.id,
    group: s.group,
    node: s.node,
    born: s.born,
    bdSeq: s.bdSeq,
    seq: s.seq,
    gaps: s.gaps,
    rebirthsRequested: s.rebirths,
    devices: [...s.devices.values()].map((d) => ({ id: d.id, device: d.device, born: d.born })),
  };
}

export function newNodeSession(group: string, node: string): NodeSession {
  const id = sparkplugFleetId(group, node);
  return {
    group,
    node,
    id: id.ok ? id.value : undefined,
    refusal: id.ok ? undefined : id.error,
    waiting: false,
    born: false,
    shown: [],
    bdSeq: null,
    seq: null,
    metrics: emptyTable(),
    devices: new Map(),
    rebirthAskedAt: null,
    rebirthWindow: { start: 0, count: 0, noted: false },
    gaps: 0,
    rebirths: 0,
    queue: Promise.resolve(),
  };
}

/** The node's session of one of its devices, made on first sight. */
export function deviceSessionOf(s: NodeSession, device: string): DeviceSession {
  let d = s.devices.get(device);
  if (!d) {
    const id = sparkplugFleetId(s.group, s.node, device);
    d = {
      device,
      id: id.ok ? id.value : undefined,
      refusal: id.ok ? undefined : id.error,
      waiting: false,
      born: false,
      metrics: emptyTable(),
      shown: [],
    };
    s.devices.set(device, d);
  }
  return d;
}

/** The key of a node's session: MQTT topics hold no NUL, so it cannot join two names into one. */
export function sessionKey(group: string, node: string): string {
  return `${group}\u0000${node}`;
}

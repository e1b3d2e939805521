/**
 * Births in the Sparkplug session model (sparkplug-model.ts): an NBIRTH adopts its edge node (or
 * waits for the operator, `manual`), brings its link up with its status and values, and makes the
 * devices born under its previous birth `stale` until their DBIRTH; a DBIRTH does the same for one
 * device. A refused name owns nothing and claims nothing; a birth that cannot be read asks for
 * another (sparkplug-rebirths.ts).
 */
import type { JsonObject } from '../../store/store.js';
import type { decodeSparkplugPayload, SparkplugPayload } from './sparkplug-codec.js';
import type { SparkplugCounters, SparkplugModelPorts } from './sparkplug-effects.js';
import { log } from './sparkplug-effects.js';
import { SPARKPLUG_DEVICE_KIND, SPARKPLUG_NODE_KIND } from './sparkplug-kind.js';
import type { MetricTable, StatusMetric } from './sparkplug-metrics.js';
import { bdSeqOf, birthTable, firmwareOf, statusMetrics } from './sparkplug-metrics.js';
import type { SparkplugNames } from './sparkplug-names.js';
import type { SparkplugRebirths } from './sparkplug-rebirths.js';
import type { DeviceSession, NodeSession } from './sparkplug-session.js';

export type Decoded = ReturnType<typeof decodeSparkplugPayload>;

/** What a birth uses of its model: made once by the model, its own parts and helpers. */
export interface BirthParts {
  readonly ports: SparkplugModelPorts;
  readonly counters: SparkplugCounters;
  readonly names: SparkplugNames;
  readonly rebirths: SparkplugRebirths;
  /** Our Primary Host id, shown in a node's status. */
  readonly hostId: string;
  /** A bad message from this device: counted and logged (rate-limited). */
  bad(id: string, code: string, message: string): void;
  /** The values of a message, read against the birth's table, as telemetry. */
  values(id: string, table: MetricTable, p: SparkplugPayload, type: string): void;
  /** A refused device's message still counts in its node's seq. */
  keepSeq(s: NodeSession, decoded: Decoded, type: string): void;
}

/** NBIRTH: the node adopted (or waiting), its link up, its status and values; its devices `stale`. */
export async function nodeBirth(m: BirthParts, s: NodeSession, decoded: Decoded): Promise<void> {
  if (!s.id) {
    m.names.refuseName(s.group, s.node, undefined, s.refusal!);
    return;
  }
  // Each birth asks again: the device that held the id may have been removed since.
  s.refusal = undefined;
  const held = m.names.claim(SPARKPLUG_NODE_KIND, s.id, { group: s.group, node: s.node });
  if (held !== 'mine' && held !== 'free') {
    m.names.refuseNode(s, held.taken);
    return;
  }
  if (!decoded.ok) {
    if (held === 'mine') m.bad(s.id, decoded.error.code, `NBIRTH: ${decoded.error.message}`);
    m.rebirths.request(s, 'its NBIRTH could not be read');
    return;
  }
  const p = decoded.value;
  const ensured = await m.names.ensure(SPARKPLUG_NODE_KIND, s.id, { group: s.group, node: s.node });
  if (ensured !== 'mine') {
    if (ensured === 'waiting') s.waiting = true;
    else m.names.refuseNode(s, ensured.refused);
    return;
  }
  s.waiting = false;
  if (!m.ports.connected()) return;
  m.counters.births++;
  const id = s.id;
  const table = birthTable('NBIRTH', p.metrics, (code, message) => m.bad(id, code, message));
  s.born = true;
  s.bdSeq = bdSeqOf(p.metrics) ?? null;
  s.seq = p.seq ?? null;
  if (p.seq === undefined) m.bad(id, 'noSeq', 'NBIRTH without seq');
  s.metrics = table;
  s.rebirthAskedAt = null;
  for (const d of s.devices.values()) {
    if (!d.born) continue;
    d.born = false;
    if (d.id)
      m.ports.emit({
        type: 'machine',
        id: d.id,
        event: { type: 'STALE', reason: 'its edge node was reborn; waiting for its DBIRTH' },
      });
  }
  s.shown = statusMetrics(table, p.metrics);
  linkUp(m, id, 'NBIRTH', table, p, s.shown, {
    group: s.group,
    node: s.node,
    hostId: m.hostId,
    bdSeq: s.bdSeq,
  });
  m.ports.emit({ type: 'nodeBorn', id, seq: p.seq ?? null });
  log(m.ports, 'debug', 'Sparkplug edge node born', { id, bdSeq: s.bdSeq });
}

/** DBIRTH: the same for one device, once its node is born; its seq counts in the node's stream. */
export async function deviceBirth(
  m: BirthParts,
  s: NodeSession,
  d: DeviceSession,
  decoded: Decoded,
): Promise<void> {
  if (s.refusal !== undefined) {
    m.counters.refused++; // its node's refusal, written once, says it
    return;
  }
  if (!d.id) {
    m.keepSeq(s, decoded, 'DBIRTH');
    m.names.refuseName(s.group, s.node, d.device, d.refusal!);
    return;
  }
  d.refusal = undefined;
  const attributes = { group: s.group, node: s.node, device: d.device };
  const held = m.names.claim(SPARKPLUG_DEVICE_KIND, d.id, attributes);
  if (held !== 'mine' && held !== 'free') {
    m.keepSeq(s, decoded, 'DBIRTH');
    m.names.refuseDevice(s, d, held.taken);
    return;
  }
  if (!decoded.ok) {
    if (held === 'mine') m.bad(d.id, decoded.error.code, `DBIRTH: ${decoded.error.message}`);
    m.rebirths.request(s, `the DBIRTH of ${d.device} could not be read`);
    return;
  }
  const p = decoded.value;
  if (!s.born) {
    if (!s.waiting) m.rebirths.beforeBirth(s, d, `DBIRTH of ${d.device} before the NBIRTH`);
    return;
  }
  m.rebirths.checkSeq(s, p.seq, 'DBIRTH');
  // A cluster: the device runs where its node runs, whatever its own shard (pinned here, and
  // started from the store if another instance ran it). Its node is born here: this instance
  // holds the node.
  if (m.ports.pin) await m.ports.pin(d.id);
  const ensured = await m.names.ensure(SPARKPLUG_DEVICE_KIND, d.id, attributes);
  if (ensured !== 'mine') {
    // Its seq was counted above: the node's stream goes on.
    if (ensured === 'waiting') d.waiting = true;
    else m.names.refuseDevice(s, d, ensured.refused);
    return;
  }
  d.waiting = false;
  if (!m.ports.connected()) return;
  m.counters.births++;
  const id = d.id;
  const table = birthTable('DBIRTH', p.metrics, (code, message) => m.bad(id, code, message));
  d.born = true;
  d.metrics = table;
  d.shown = statusMetrics(table, p.metrics);
  linkUp(m, id, 'DBIRTH', table, p, d.shown, {
    group: s.group,
    node: s.node,
    device: d.device,
    parent: s.id ?? null,
  });
}

/**
 * A read birth, node or device alike: its link up with its firmware, its status (`who` it is,
 * then birth time, firmware and its `shown` metrics), and its values.
 */
function linkUp(
  m: BirthParts,
  id: string,
  type: 'NBIRTH' | 'DBIRTH',
  table: MetricTable,
  p: SparkplugPayload,
  shown: readonly StatusMetric[],
  who: JsonObject,
): void {
  const firmware = firmwareOf(p.metrics);
  m.ports.emit({ type: 'linkUp', id, firmware });
  m.ports.emit({
    type: 'status',
    id,
    status: {
      convention: 'sparkplug',
      ...who,
      birthAt: p.timestamp ?? m.ports.now(),
      firmware,
      metrics: shown.map((m) => ({ ...m })),
    },
  });
  m.values(id, table, p, type);
}

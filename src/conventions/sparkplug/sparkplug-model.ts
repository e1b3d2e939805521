/**
 * The Sparkplug Primary Host's session model: what each received message means for the edge
 * nodes and devices it follows, without a broker. It keeps their records (births, bdSeq, seq,
 * metric definitions and aliases, refused names, discovered ones) and asks its process for every
 * outside act as an effect (src/conventions/sparkplug/sparkplug-effects.ts): fleet calls,
 * telemetry, rebirth requests, events, log lines. Messages of one node are handled in arrival
 * order, one after another (a birth may wait for its adoption).
 *
 * - NBIRTH: the node is adopted (or waits, `manual`), `linkUp`, its status and values; devices
 *   born under the previous birth go `stale` until their DBIRTH. DBIRTH: the same for the device.
 * - NDATA/DDATA: values by name or alias, read against the birth.
 * - NDEATH whose bdSeq matches the birth (or carries none): the node and all its devices go down;
 *   another bdSeq is a late will of an older session and is ignored. DDEATH: that device.
 * - A seq gap, or data before a birth: a rebirth request (src/conventions/sparkplug/sparkplug-rebirths.ts).
 *
 * The births live in sparkplug-births.ts; data, deaths and STATE here.
 *
 * @example
 * const model = new SparkplugModel(ports, { hostId: 'scada', groups: undefined, adopt: 'auto', … });
 * model.receive('spBv1.0/Plant1/NBIRTH/Line4', payload); // effects: linkUp, status, telemetry, …
 * await model.idle();
 */
import type { BirthParts, Decoded } from './sparkplug-births.js';
import { deviceBirth, nodeBirth } from './sparkplug-births.js';
import type { SparkplugCommandTarget } from './sparkplug-carrier.js';
import type { SparkplugPayload } from './sparkplug-codec.js';
import { decodeSparkplugPayload, parseSparkplugTopic, parseStatePayload } from './sparkplug-codec.js';
import type { SparkplugCounters, SparkplugModelPorts } from './sparkplug-effects.js';
import { badMessage, log, newCounters } from './sparkplug-effects.js';
import { SPARKPLUG_DEVICE_KIND, SPARKPLUG_NODE_KIND } from './sparkplug-kind.js';
import type { MetricTable, StatusMetric } from './sparkplug-metrics.js';
import { applyValues, bdSeqOf } from './sparkplug-metrics.js';
import type { DiscoveredSparkplug } from './sparkplug-names.js';
import { addInput, SparkplugNames } from './sparkplug-names.js';
import { SparkplugRebirths } from './sparkplug-rebirths.js';
import type { DeviceSession, NodeSession, SparkplugNodeView } from './sparkplug-session.js';
import { deviceSessionOf, newNodeSession, nodeView, sessionKey } from './sparkplug-session.js';

export interface SparkplugModelOptions {
  /** Our Primary Host id (its STATE is ours). */
  readonly hostId: string;
  /** The groups followed; undefined: all. */
  readonly groups: readonly string[] | undefined;
  readonly adopt: 'auto' | 'manual';
  readonly rebirthMinIntervalMs: number;
  readonly maxRebirthsPerMinute: number;
  readonly maxPayloadBytes: number;
  /** Most nodes and devices listed as discovered; default 10 000 (past it the oldest is dropped). */
  readonly maxDiscovered?: number;
}

export class SparkplugModel {
  readonly counters: SparkplugCounters = newCounters();
  private readonly sessions = new Map<string, NodeSession>();
  private readonly names: SparkplugNames;
  private readonly rebirths: SparkplugRebirths;
  private readonly hostStates = new Map<string, { online: boolean; timestamp: number | null }>();
  private lastBadTopicLog = 0;
  /** What the births (sparkplug-births.ts) use of this model. */
  private readonly births: BirthParts;

  constructor(
    private readonly ports: SparkplugModelPorts,
    private readonly options: SparkplugModelOptions,
  ) {
    this.names = new SparkplugNames(ports, this.counters, options.adopt, options.maxDiscovered ?? 10_000);
    this.rebirths = new SparkplugRebirths(ports, this.counters, this.names, options);
    this.births = {
      ports,
      counters: this.counters,
      names: this.names,
      rebirths: this.rebirths,
      hostId: options.hostId,
      bad: (id, code, message) => this.bad(id, code, message),
      values: (id, table, p, type) => this.values(id, table, p, type),
      keepSeq: (s, decoded, type) => this.keepSeq(s, decoded, type),
    };
  }

  // ---- views ----

  /** Edge nodes with a current birth. */
  nodesOnline(): number {
    let n = 0;
    for (const s of this.sessions.values()) if (s.born) n++;
    return n;
  }

  /** Other host applications' STATE as last seen. */
  hosts(): Record<string, { online: boolean; timestamp: number | null }> {
    return Object.fromEntries(this.hostStates);
  }

  /** The session of one edge node, by fleet id. */
  node(id: string): SparkplugNodeView | undefined {
    for (const s of this.sessions.values()) {
      if (s.id === id && s.refusal === undefined) return nodeView(s); // a refused name owns nothing
    }
    return undefined;
  }

  /** Nodes and devices seen with `adopt: 'manual'` (or that could not be added). */
  discovered(): DiscoveredSparkplug[] {
    return [...this.names.discovered.values()];
  }

  /** The discovered list's bound at work: how many are listed, how many were dropped (oldest first). */
  discoveryStats(): { readonly listed: number; readonly dropped: number } {
    return this.names.discovered.stats();
  }

  /** The carrier's view: a node or device born now, with its birth's metrics. */
  born(deviceId: string): ReturnType<SparkplugCommandTarget['born']> {
    const v = this.ports.fleet.device(deviceId);
    if (!v || (v.kind !== SPARKPLUG_NODE_KIND && v.kind !== SPARKPLUG_DEVICE_KIND)) return undefined;
    const s = this.sessions.get(sessionKey(String(v.attributes.group), String(v.attributes.node)));
    if (!s?.born || s.id === undefined) return undefined;
    if (v.kind === SPARKPLUG_NODE_KIND)
      return s.id === v.id ? { node: true, metrics: s.metrics.byName } : undefined;
    const d = s.devices.get(String(v.attributes.device));
    return d?.born && d.id === v.id ? { node: false, metrics: d.metrics.byName } : undefined;
  }

  /** Resolves when the messages received so far are handled. */
  async idle(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((s) => s.queue));
  }

  // ---- the operator and the carrier ----

  /** Adds a discovered node or device to the fleet and asks its node for a rebirth. */
  async adopt(id: string): Promise<{ ok: true } | { ok: false; error: { code: string; message: string } }> {
    const d = this.names.discovered.get(id);
    if (!d)
      return {
        ok: false,
        error: { code: 'notFound', message: `no discovered Sparkplug device '${id.slice(0, 80)}'` },
      };
    const r = await this.ports.fleet.addDevice(addInput(d.kind, id, d.attributes));
    if (!r.ok && r.error.code !== 'alreadyExists') return { ok: false, error: r.error };
    this.names.discovered.delete(id);
    const s = this.sessions.get(sessionKey(String(d.attributes.group), String(d.attributes.node)));
    if (s) {
      s.rebirthAskedAt = null;
      this.rebirths.request(s, 'adopted: its birth is needed', false);
    }
    return { ok: true };
  }

  /** Asks an edge node (by fleet id) for its births now; false when not connected or not known. */
  rebirth(nodeId: string, reason: string): boolean {
    const v = this.ports.fleet.device(nodeId);
    if (!v || v.kind !== SPARKPLUG_NODE_KIND) return false;
    const { group, node } = v.attributes;
    if (typeof group !== 'string' || typeof node !== 'string') return false;
    const s = this.session(group, node);
    s.rebirthAskedAt = null;
    return this.rebirths.request(s, reason, false);
  }

  /**
   * This instance gained shards (a cluster): each node or device the fleet refused before (listed
   * `addFailed`, as a `notOwner` refusal is) that is now this instance's, and each node of the
   * fleet now this instance's without a birth here, makes its node asked for a rebirth, once per
   * node, so its births come again and are taken. Without it a birth heard
   * before the shard was leased, or a device whose shard came with a dead instance's, would wait
   * for the node's next birth on its own. Returns the nodes asked.
   */
  ownershipGained(owns: (deviceId: string) => boolean): number {
    const nodes = new Map<string, { group: string; node: string }>();
    for (const d of this.names.discovered.values()) {
      if (!d.reason.startsWith('addFailed') || !owns(d.id)) continue;
      const { group, node } = d.attributes;
      if (typeof group !== 'string' || typeof node !== 'string') continue;
      nodes.set(sessionKey(group, node), { group, node });
    }
    // Nodes the gain brought in from the store (run by another instance until now) that this
    // instance has no birth of: asked too, so their devices come with them (their DBIRTHs pin
    // them here) instead of waiting for the node's next birth on its own.
    for (const v of this.ports.fleet.list()) {
      if (v.kind !== SPARKPLUG_NODE_KIND || !owns(v.id)) continue;
      const { group, node } = v.attributes;
      if (typeof group !== 'string' || typeof node !== 'string' || !this.followsGroup(group)) continue;
      if (!this.sessions.get(sessionKey(group, node))?.born)
        nodes.set(sessionKey(group, node), { group, node });
    }
    let asked = 0;
    for (const { group, node } of nodes.values()) {
      const s = this.session(group, node);
      s.rebirthAskedAt = null;
      if (this.rebirths.request(s, 'shards gained: its refused births may be ours now', false)) asked++;
    }
    return asked;
  }

  /** A `rebirth` command went out to this node (the carrier's): it counts as the unanswered request. */
  rebirthSent(group: string, node: string, at: number): void {
    const s = this.sessions.get(sessionKey(group, node));
    if (s) s.rebirthAskedAt = at;
  }

  // ---- the broker connection ----

  /**
   * The host (re)connected: what the fleet remembers (a restored `connected`) is not a birth of
   * this session, so the nodes and devices without one go down, and (`rebirthOnConnect`) every
   * known node without a birth is asked for one.
   */
  hostConnected(rebirthOnConnect: boolean): void {
    const nodes: { group: string; node: string }[] = [];
    for (const d of this.ports.fleet.list()) {
      if (d.kind !== SPARKPLUG_NODE_KIND && d.kind !== SPARKPLUG_DEVICE_KIND) continue;
      const group = d.attributes.group;
      const node = d.attributes.node;
      if (typeof group !== 'string' || typeof node !== 'string' || !this.followsGroup(group)) continue;
      const s = this.sessions.get(sessionKey(group, node));
      const device = d.attributes.device;
      const born =
        d.kind === SPARKPLUG_NODE_KIND
          ? s?.born
          : typeof device === 'string' && s?.born && s.devices.get(device)?.born;
      if (!born && (d.link.up || d.link.since === null))
        this.ports.emit({ type: 'linkDown', id: d.id, reason: 'no birth yet since the host connected' });
      if (d.kind === SPARKPLUG_NODE_KIND && !s?.born) nodes.push({ group, node });
    }
    if (rebirthOnConnect)
      for (const n of nodes) this.rebirths.request(this.session(n.group, n.node), 'the host (re)connected');
  }

  /** Every birth is void: deaths may pass unseen while the host is away. */
  dropAll(reason: string): void {
    for (const s of this.sessions.values()) {
      const wasBorn = s.born;
      s.born = false;
      s.seq = null;
      s.rebirthAskedAt = null;
      for (const d of s.devices.values()) {
        if (d.born && d.id) this.ports.emit({ type: 'linkDown', id: d.id, reason });
        d.born = false;
      }
      if (wasBorn && s.id) this.ports.emit({ type: 'linkDown', id: s.id, reason });
    }
  }

  // ---- messages ----

  /** One message of the namespace (or a STATE): handled after the earlier ones of its node. */
  receive(topic: string, payload: Buffer): void {
    this.counters.received++;
    const t = parseSparkplugTopic(topic);
    if (!t.ok) {
      this.counters.badTopics++;
      const now = this.ports.now();
      if (now - this.lastBadTopicLog >= 60_000) {
        this.lastBadTopicLog = now;
        log(this.ports, 'warn', 'not a Sparkplug B topic', { topic: topic.slice(0, 140), error: t.error });
      }
      return;
    }
    const m = t.value;
    if (m.kind === 'state') {
      this.onState(m.hostId, payload);
      return;
    }
    if (m.type === 'NCMD' || m.type === 'DCMD') return; // commands: ours, or another host's
    if (!this.followsGroup(m.group)) return;
    const s = this.session(m.group, m.node);
    const decoded = decodeSparkplugPayload(payload, { maxBytes: this.options.maxPayloadBytes });
    const run = (): void | Promise<void> => {
      switch (m.type) {
        case 'NBIRTH':
          return nodeBirth(this.births, s, decoded);
        case 'NDEATH':
          return this.onNodeDeath(s, decoded);
        case 'NDATA':
          return this.onData(s, undefined, decoded, m.type);
        case 'DBIRTH':
          return deviceBirth(this.births, s, deviceSessionOf(s, m.device), decoded);
        case 'DDEATH':
          return this.onDeviceDeath(s, deviceSessionOf(s, m.device), decoded);
        case 'DDATA':
          return this.onData(s, deviceSessionOf(s, m.device), decoded, m.type);
      }
    };
    s.queue = s.queue.then(run).catch((error: unknown) => {
      this.ports.emit({ type: 'threw', what: `${m.type} of ${m.group}/${m.node}`, error });
    });
  }

  private onState(hostId: string, payload: Buffer): void {
    const st = parseStatePayload(payload);
    if (!st) return; // a cleared retain, or a host speaking something else: not ours to judge
    if (hostId !== this.options.hostId) {
      this.hostStates.set(hostId, st);
      return;
    }
    // Our own id offline while we are connected: a late will (or a twin). Say we are here.
    if (!st.online && this.ports.connected()) {
      log(this.ports, 'info', 'our STATE read offline while connected: publishing online again', { hostId });
      this.ports.emit({ type: 'publishOnline' });
    }
  }

  private onData(
    s: NodeSession,
    d: DeviceSession | undefined,
    decoded: Decoded,
    type: 'NDATA' | 'DDATA',
  ): void {
    const id = d ? d.id : s.id;
    // A refused name owns nothing and asks for nothing: no events, no rebirth.
    const refusal = s.refusal ?? d?.refusal;
    if (refusal !== undefined || !id) {
      this.keepSeq(s, decoded, type);
      const device = s.refusal !== undefined ? undefined : d?.device;
      this.names.refuseName(s.group, s.node, device, refusal ?? 'no fleet id');
      return;
    }
    if (!decoded.ok) {
      const own = d ? this.names.ownDevice(s, d) : this.names.ownNode(s);
      if (own) this.bad(own, decoded.error.code, `${type}: ${decoded.error.message}`);
      return;
    }
    const p = decoded.value;
    if (!s.born) {
      // A birth seen but waiting for the operator (or a failed add) asks no rebirth: adopt does.
      const what = `${type} before the NBIRTH${d ? ` (device ${d.device})` : ''}`;
      this.rebirths.beforeBirth(s, d, what, !s.waiting);
      return;
    }
    this.rebirths.checkSeq(s, p.seq, type);
    if (d && !d.born) {
      this.rebirths.beforeBirth(s, d, `DDATA of ${d.device} before its DBIRTH`, !d.waiting);
      return;
    }
    if (!this.ports.fleet.has(id)) {
      // Removed from the fleet meanwhile (or never adopted): its birth brings it back.
      if (this.options.adopt === 'auto') this.rebirths.request(s, `${id} is not in the fleet`);
      return;
    }
    this.values(id, d ? d.metrics : s.metrics, p, type, d ? d.shown : s.shown);
  }

  private onNodeDeath(s: NodeSession, decoded: Decoded): void {
    // Only the node that holds the id may take it down: a refused name's death is not its.
    const own = this.names.ownNode(s);
    if (!own || !s.id) {
      if (s.refusal !== undefined) this.counters.refused++;
      s.born = false;
      s.seq = null;
      return;
    }
    let bdSeq: number | undefined;
    if (decoded.ok) bdSeq = bdSeqOf(decoded.value.metrics);
    else this.bad(s.id, decoded.error.code, `NDEATH: ${decoded.error.message} (taken as a death)`);
    if (s.born && s.bdSeq !== null && bdSeq !== undefined && bdSeq !== s.bdSeq) {
      this.counters.staleDeaths++;
      log(this.ports, 'debug', 'stale NDEATH ignored', { id: s.id, bdSeq, current: s.bdSeq });
      return;
    }
    this.counters.deaths++;
    const reason = `NDEATH${bdSeq !== undefined ? ` (bdSeq ${bdSeq})` : ''}`;
    s.born = false;
    s.seq = null;
    s.rebirthAskedAt = null;
    for (const d of s.devices.values()) d.born = false;
    this.ports.emit({ type: 'linkDown', id: s.id, reason }); // its sent commands end `linkLost` (the tracker)
    // Every device of the node, also those born before this bridge started.
    for (const v of this.ports.fleet.list())
      if (
        v.kind === SPARKPLUG_DEVICE_KIND &&
        v.attributes.group === s.group &&
        v.attributes.node === s.node
      ) {
        this.ports.emit({ type: 'linkDown', id: v.id, reason: `its edge node died (${reason})` });
      }
    log(this.ports, 'debug', 'Sparkplug edge node died', { id: s.id, reason });
  }

  private onDeviceDeath(s: NodeSession, d: DeviceSession, decoded: Decoded): void {
    const own = this.names.ownDevice(s, d);
    if (!own || !d.id) {
      this.keepSeq(s, decoded, 'DDEATH');
      if (s.refusal !== undefined || d.refusal !== undefined) this.counters.refused++;
      d.born = false;
      return;
    }
    if (decoded.ok && s.born) this.rebirths.checkSeq(s, decoded.value.seq, 'DDEATH');
    else if (!decoded.ok)
      this.bad(d.id, decoded.error.code, `DDEATH: ${decoded.error.message} (taken as a death)`);
    this.counters.deaths++;
    d.born = false;
    if (this.ports.fleet.has(d.id)) this.ports.emit({ type: 'linkDown', id: d.id, reason: 'DDEATH' });
  }

  /**
   * A refused (or not adopted) device's message is still one of its node's seq: counted, so that
   * refusing a device makes no gap (and no rebirth) on an accepted node.
   */
  private keepSeq(s: NodeSession, decoded: Decoded, type: string): void {
    if (s.refusal === undefined && s.born && decoded.ok) this.rebirths.checkSeq(s, decoded.value.seq, type);
  }

  private values(
    id: string,
    table: MetricTable,
    p: SparkplugPayload,
    type: string,
    shown?: StatusMetric[],
  ): void {
    const bad = (code: string, message: string) => this.bad(id, code, message);
    applyValues((effect) => this.ports.emit(effect), bad, id, table, p, type, shown);
  }

  private bad(id: string, code: string, message: string): void {
    badMessage(this.ports, this.counters, id, code, message);
  }

  private followsGroup(group: string): boolean {
    return this.options.groups === undefined || this.options.groups.includes(group);
  }

  private session(group: string, node: string): NodeSession {
    const key = sessionKey(group, node);
    let s = this.sessions.get(key);
    if (!s) {
      s = newNodeSession(group, node);
      this.sessions.set(key, s);
    }
    return s;
  }
}

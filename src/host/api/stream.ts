/**
 * The live push stream: a snapshot first, then diffs. It keeps, per client, only *which* things
 * changed — device ids, "the tree", the latest value per (device, metric), a bounded list of new
 * events, in a cluster the latest row of other instances' devices that changed — so its memory is
 * bounded by the size of the fleet, never by the message rate. A ticker
 * flushes each client at most {@link MAX_PUSH_PER_SECOND} times a second (the tree at most every
 * 500 ms, the stats every second); a client whose transport is congested gets nothing until it
 * drains, and one congested for longer than `resyncAfterMs` has its pending changes dropped and
 * is sent `resync` and a fresh snapshot once it can take them.
 *
 * @example
 * const stream = new PushStream(app, { tree, row, stats }, { resyncAfterMs: 5000, maxPendingEvents: 200 });
 * const close = stream.open({ send: (m) => ws.send(JSON.stringify(m)), congested: () => false });
 */
import type { DeviceView } from '../../devices/fleet.js';
import type { App } from '../app.js';
import type {
  DeviceRow,
  EventView,
  PushMessage,
  StreamSink,
  SystemStats,
  TelemetryPoint,
  TreeNode,
} from '../contract.js';
import { MAX_PUSH_PER_SECOND } from '../contract.js';
import type { LiveMarks } from './live.js';
import { eventView } from './views.js';

export interface StreamViews {
  tree(): TreeNode;
  row(d: DeviceView): DeviceRow;
  stats(): SystemStats;
  /**
   * Whether the host hears its broker now (undefined without an MQTT link): cheap, asked every
   * tick, so a change is pushed at the next tick instead of with the next second's figures.
   */
  brokerConnected?(): boolean | undefined;
}

export interface StreamOptions {
  readonly resyncAfterMs: number;
  readonly maxPendingEvents: number;
}

interface Client {
  sink: StreamSink;
  seq: number;
  devices: Set<string>;
  tree: boolean;
  telemetry: Map<string, TelemetryPoint>;
  events: EventView[];
  /** Other instances' devices: the latest row read of each, or null when it left the fleet. */
  remote: Map<string, DeviceRow | null>;
  wantsTelemetry: boolean;
  congestedSince: number | undefined;
  needsSnapshot: boolean;
  lastTreeAt: number;
  lastStatsAt: number;
  /** The broker state in the figures last sent to this client. */
  lastBroker: boolean | undefined;
}

const TREE_EVERY_MS = 500;
const STATS_EVERY_MS = 1000;
/** The event log is polled every this many ticks. */
const EVENT_POLL_TICKS = 5;

export class PushStream implements LiveMarks {
  private readonly clients = new Set<Client>();
  private lastEventSeq = 0;
  private eventsPolling = false;
  private ticks = 0;
  private ticker: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly app: App,
    private readonly views: StreamViews,
    private readonly options: StreamOptions,
  ) {}

  // ---- LiveMarks: what changed, per client ----

  device(id: string): void {
    for (const c of this.clients) c.devices.add(id);
  }

  tree(): void {
    for (const c of this.clients) c.tree = true;
  }

  telemetry(id: string, metric: string, at: number, value: number): void {
    for (const c of this.clients)
      if (c.wantsTelemetry) c.telemetry.set(`${id}\u0000${metric}`, { id, metric, at, value });
  }

  /**
   * Other instances' devices that changed, read from the shared database (src/host/api/remote-push.ts):
   * sent with the next diff of every client, the latest row of each. Kept across a resync (the
   * snapshot holds this instance's devices only); bounded by the fleet's size.
   */
  remote(rows: readonly DeviceRow[], removed: readonly string[]): void {
    for (const c of this.clients) {
      for (const id of removed) c.remote.set(id, null);
      for (const row of rows) c.remote.set(row.id, row);
    }
  }

  // ---- clients ----

  open(sink: StreamSink): () => void {
    const now = this.app.runtime.clock.wallNow();
    const c: Client = {
      sink,
      seq: 0,
      devices: new Set(),
      tree: false,
      telemetry: new Map(),
      events: [],
      remote: new Map(),
      wantsTelemetry: true,
      congestedSince: undefined,
      needsSnapshot: false,
      lastTreeAt: now,
      lastStatsAt: now,
      lastBroker: undefined,
    };
    this.clients.add(c);
    if (this.lastEventSeq === 0)
      void this.app.store
        .queryEvents({ order: 'desc', limit: 1 })
        .then((p) => {
          const top = p.items[0];
          if (top?.ok) this.lastEventSeq = Math.max(this.lastEventSeq, top.value.seq);
        })
        .catch(() => {});
    this.send(c, this.snapshot(c));
    this.ensureTicker();
    return () => {
      this.clients.delete(c);
      if (this.clients.size === 0) this.stopTicker();
    };
  }

  close(): void {
    this.stopTicker();
    this.clients.clear();
  }

  // ---- internals ----

  private ensureTicker(): void {
    if (this.ticker || this.clients.size === 0) return;
    this.ticker = setInterval(
      () => {
        this.ticks++;
        if (this.ticks % EVENT_POLL_TICKS === 0) void this.pollEvents();
        // Timers and link changes need no event to show: refresh rows with running timers.
        const now = this.app.runtime.clock.wallNow();
        // Asked once a tick, not once per client.
        const broker = this.views.brokerConnected?.();
        for (const c of this.clients) this.flush(c, now, broker);
      },
      Math.ceil(1000 / MAX_PUSH_PER_SECOND),
    );
    this.ticker.unref?.();
  }

  private stopTicker(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
  }

  private async pollEvents(): Promise<void> {
    if (this.eventsPolling || this.clients.size === 0) return;
    this.eventsPolling = true;
    try {
      const page = await this.app.store.queryEvents({
        afterSeq: this.lastEventSeq,
        order: 'asc',
        limit: 500,
      });
      for (const item of page.items) {
        if (!item.ok) continue;
        this.lastEventSeq = Math.max(this.lastEventSeq, item.value.seq);
        const view = eventView(item.value);
        for (const c of this.clients) {
          c.events.push(view);
          if (c.events.length > this.options.maxPendingEvents) c.events.shift();
        }
      }
    } catch {
      // The store is closing; the next poll tries again.
    } finally {
      this.eventsPolling = false;
    }
  }

  private snapshot(c: Client): PushMessage {
    return {
      type: 'snapshot',
      seq: ++c.seq,
      at: this.app.runtime.clock.wallNow(),
      tree: this.views.tree(),
      devices: this.app.fleet.list().map((d) => this.views.row(d)),
      stats: this.statsFor(c),
    };
  }

  /** The figures for `c`, noting the broker state they carry. */
  private statsFor(c: Client): SystemStats {
    const stats = this.views.stats();
    c.lastBroker = stats.broker.connected;
    return stats;
  }

  private send(c: Client, m: PushMessage): void {
    try {
      c.sink.send(m);
    } catch (error) {
      this.app.runtime.logger.warn('push to a client failed; it is dropped', {
        error: (error as Error).message,
      });
      this.clients.delete(c);
    }
  }

  private forget(c: Client): void {
    c.devices.clear();
    c.telemetry.clear();
    c.events = [];
    c.tree = false;
  }

  private flush(c: Client, now: number, broker: boolean | undefined): void {
    if (c.sink.congested()) {
      c.congestedSince ??= now;
      if (!c.needsSnapshot && now - c.congestedSince > this.options.resyncAfterMs) {
        // Too far behind: forget the details, start again from a snapshot when it can take one.
        c.needsSnapshot = true;
        this.forget(c);
        this.send(c, {
          type: 'resync',
          reason: `the client fell more than ${this.options.resyncAfterMs} ms behind`,
        });
      }
      return;
    }
    c.congestedSince = undefined;
    if (c.needsSnapshot) {
      c.needsSnapshot = false;
      this.forget(c);
      c.lastTreeAt = now;
      c.lastStatsAt = now;
      this.send(c, this.snapshot(c));
      return;
    }
    const diff = this.diff(c, now, broker);
    if (diff) this.send(c, diff);
  }

  /** What changed for `c` since its last push, or nothing to send; clears what it takes. */
  private diff(c: Client, now: number, broker: boolean | undefined): PushMessage | undefined {
    const sendTree = c.tree && now - c.lastTreeAt >= TREE_EVERY_MS;
    const sendStats =
      now - c.lastStatsAt >= STATS_EVERY_MS || (broker !== undefined && broker !== c.lastBroker);
    if (
      c.devices.size === 0 &&
      c.telemetry.size === 0 &&
      c.events.length === 0 &&
      c.remote.size === 0 &&
      !sendTree &&
      !sendStats
    )
      return undefined;
    const devices: DeviceRow[] = [];
    const removed: string[] = [];
    for (const id of c.devices) {
      const d = this.app.fleet.device(id);
      if (d) devices.push(this.views.row(d));
      else removed.push(id);
    }
    const remote: DeviceRow[] = [];
    const remoteRemoved: string[] = [];
    for (const [id, r] of c.remote) {
      if (r) remote.push(r);
      else remoteRemoved.push(id);
    }
    const message: PushMessage = {
      type: 'diff',
      seq: ++c.seq,
      at: now,
      devices,
      removed,
      telemetry: [...c.telemetry.values()],
      events: c.events,
      ...(sendTree ? { tree: this.views.tree() } : {}),
      ...(sendStats ? { stats: this.statsFor(c) } : {}),
      ...(remote.length > 0 ? { remote } : {}),
      ...(remoteRemoved.length > 0 ? { remoteRemoved } : {}),
    };
    c.devices = new Set();
    c.remote = new Map();
    c.telemetry = new Map();
    c.events = [];
    if (sendTree) {
      c.tree = false;
      c.lastTreeAt = now;
    }
    if (sendStats) c.lastStatsAt = now;
    return message;
  }
}

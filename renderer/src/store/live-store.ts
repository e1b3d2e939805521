/**
 * The renderer's one live model of the fleet: a {@link Snapshot} replaces it, each {@link Diff}
 * patches it, a `resync` marks it stale until the next snapshot. Views read it through
 * `useSyncExternalStore` (see use-live.ts).
 *
 * Coalescing: a push is applied to the mutable model at once (cheap: map sets, ring pushes), but
 * subscribers hear about it at most once per animation frame — however many diffs arrived in
 * between, React renders once. While the window is hidden no frame fires, nothing renders, and the
 * model stays bounded: rows by id (bounded by the fleet), the last 500 events, the last 300 stats
 * samples, and 600-point telemetry rings only for the series someone is watching.
 *
 * The device map is mutated in place and published with a version number: the fleet table keys
 * its memos on `devicesVersion`, never on the map's identity.
 *
 * @example
 * const store = createLiveStore(client);
 * const stop = store.start();
 * store.subscribe(() => render(store.getState()));
 * const off = store.watchSeries('pump-7', 'temp', (series) => chart.setData(series.columns()));
 */
import type {
  DeviceRow,
  Diff,
  EventView,
  PushMessage,
  Snapshot,
  SystemStats,
  TelemetryPoint,
  TreeNode,
  TypedClient,
} from '../../../src/host/contract.js';
import type { Ring, SeriesRing } from './ring-buffer.js';
import { createRing, createSeriesRing } from './ring-buffer.js';

export const EVENT_BUFFER = 500;
export const STATS_HISTORY = 300;
export const SERIES_POINTS = 600;
/** Series kept after their last watcher left, so flipping between devices keeps recent points. */
const IDLE_SERIES_KEPT = 32;
/** Silence after which the store asks the host whether it is still there. */
const PROBE_AFTER_MS = 15_000;
/** Without a first snapshot after this long, ask why (a missing token answers at once). */
const FIRST_PROBE_AFTER_MS = 5_000;
/**
 * After a (re)connect whose snapshot says the host does not hear its broker, the store asks the
 * host's `stats` again: first after this long, then twice as long each time up to
 * {@link BROKER_RECHECK_MAX_MS}, until the broker is back or {@link BROKER_RECHECK_FOR_MS} passed.
 */
const BROKER_RECHECK_FIRST_MS = 250;
const BROKER_RECHECK_MAX_MS = 2_000;
const BROKER_RECHECK_FOR_MS = 30_000;

export type ConnectionState =
  | { readonly kind: 'connecting'; readonly since: number }
  | { readonly kind: 'live'; readonly since: number }
  | {
      readonly kind: 'reconnecting';
      readonly since: number;
      readonly reason: string;
      /** When the transport tries again, if it said (epoch ms). */
      readonly retryAt?: number;
    }
  | { readonly kind: 'unauthorized'; readonly since: number; readonly reason: string };

/** What a transport says about its link to the host (the HTTP client's `onStatus`). */
export type TransportStatus = 'idle' | 'connecting' | 'open' | 'closed' | 'unauthorized';
/** Why the transport closed and when it tries again (the HTTP client's `ConnectionDetail`). */
export interface TransportDetail {
  readonly reason: string;
  readonly retryInMs?: number;
}

export interface LiveState {
  readonly connection: ConnectionState;
  /** False until the first snapshot: views show their loading state. */
  readonly ready: boolean;
  /** Mutated in place; `devicesVersion` changes whenever it does. */
  readonly devices: ReadonlyMap<string, DeviceRow>;
  readonly devicesVersion: number;
  readonly tree: TreeNode | null;
  readonly stats: SystemStats | null;
  /** Oldest → newest. */
  readonly statsHistory: readonly SystemStats[];
  /** Oldest → newest, the last {@link EVENT_BUFFER}. */
  readonly events: readonly EventView[];
  /** Push sequence number of the last applied message. */
  readonly seq: number;
}

export interface LiveStore {
  getState(): LiveState;
  /** Called at most once per animation frame after something changed. */
  subscribe(listener: () => void): () => void;
  /** Starts listening to the client's push stream; returns stop. */
  start(): () => void;
  /** Applies one push message (what `start` wires to the client; tests call it directly). */
  apply(message: PushMessage): void;
  /**
   * Keeps a ring of the live points of one device metric while watched; `onChange` runs at most
   * once per frame after points arrived. Returns the series and a function to stop watching.
   */
  watchSeries(
    id: string,
    metric: string,
    onChange: (series: SeriesRing) => void,
  ): { series: SeriesRing; stop: () => void };
  /**
   * Hears every pushed telemetry point (the latest per device and metric since the last push), as
   * it is applied: for models that keep their own figures (the fleet table's metric columns).
   */
  watchTelemetry(listener: (points: readonly TelemetryPoint[]) => void): () => void;
  /** Publishes pending changes now (tests, and hidden windows that want a render). */
  flush(): void;
  /** Tells the store what the transport knows first: a closed socket (why, and when it retries), a refused token. */
  setTransport(status: TransportStatus, detail?: TransportDetail): void;
}

export interface LiveStoreOptions {
  readonly now?: () => number;
  readonly requestFrame?: (callback: () => void) => void;
  /** Runs `callback` once after `ms`; returns its cancel. Default setTimeout (tests pass a simulated one). */
  readonly setTimer?: (ms: number, callback: () => void) => () => void;
}

interface Watched {
  series: SeriesRing;
  watchers: Set<(series: SeriesRing) => void>;
  dirty: boolean;
  lastUsed: number;
}

const seriesKey = (id: string, metric: string) => `${id}\u0000${metric}`;

export function createLiveStore(client: TypedClient, options: LiveStoreOptions = {}): LiveStore {
  const now = options.now ?? Date.now;
  const setTimer =
    options.setTimer ??
    ((ms: number, callback: () => void) => {
      const timer = setTimeout(callback, ms);
      return () => clearTimeout(timer);
    });
  const requestFrame =
    options.requestFrame ??
    ((callback: () => void) => {
      // rAF does not fire in hidden windows; the model keeps absorbing pushes meanwhile.
      if (typeof window !== 'undefined' && 'requestAnimationFrame' in window)
        window.requestAnimationFrame(() => callback());
      else setTimeout(callback, 16);
    });

  const devices = new Map<string, DeviceRow>();
  const events: Ring<EventView> = createRing(EVENT_BUFFER);
  const statsHistory: Ring<SystemStats> = createRing(STATS_HISTORY);
  const series = new Map<string, Watched>();
  const listeners = new Set<() => void>();
  const telemetryListeners = new Set<(points: readonly TelemetryPoint[]) => void>();

  let state: LiveState = {
    connection: { kind: 'connecting', since: now() },
    ready: false,
    devices,
    devicesVersion: 0,
    tree: null,
    stats: null,
    statsHistory: [],
    events: [],
    seq: 0,
  };
  // Pending changes, published at the next frame.
  let next: { -readonly [K in keyof LiveState]?: LiveState[K] } = {};
  let devicesDirty = false;
  let eventsDirty = false;
  let statsDirty = false;
  let seriesDirty = false;
  let frameRequested = false;
  let lastMessageAt = now();

  const schedule = () => {
    if (frameRequested) return;
    frameRequested = true;
    requestFrame(flush);
  };

  function flush() {
    frameRequested = false;
    const changed = devicesDirty || eventsDirty || statsDirty || Object.keys(next).length > 0;
    if (changed) {
      state = {
        ...state,
        ...next,
        ...(devicesDirty ? { devicesVersion: state.devicesVersion + 1 } : {}),
        ...(eventsDirty ? { events: events.toArray() } : {}),
        ...(statsDirty ? { statsHistory: statsHistory.toArray() } : {}),
      };
      next = {};
      devicesDirty = eventsDirty = statsDirty = false;
      for (const listener of [...listeners]) listener();
    }
    if (seriesDirty) {
      seriesDirty = false;
      for (const watched of series.values()) {
        if (!watched.dirty) continue;
        watched.dirty = false;
        for (const watcher of [...watched.watchers]) watcher(watched.series);
      }
    }
  }

  const setConnection = (connection: ConnectionState) => {
    const current = next.connection ?? state.connection;
    if (current.kind === connection.kind) {
      // Same state again (each failed reconnect says so): keep when it began; take a new reason.
      const reason = 'reason' in connection ? connection.reason : undefined;
      const retryAt = 'retryAt' in connection ? connection.retryAt : undefined;
      const same =
        'reason' in current &&
        current.reason === reason &&
        ('retryAt' in current ? current.retryAt : undefined) === retryAt;
      if (reason === undefined || same) return;
      next.connection = { ...connection, since: current.since } as ConnectionState;
    } else next.connection = connection;
    schedule();
  };

  const pushStats = (stats: SystemStats) => {
    next.stats = stats;
    statsHistory.push(stats);
    statsDirty = true;
  };

  /**
   * Takes figures the store asked for (a probe, a recheck), unless the stream brought newer ones
   * while the call was on its way: a late answer must not put an older broker state back.
   */
  const takeAnswered = (stats: SystemStats) => {
    const held = next.stats ?? state.stats;
    if (held !== null && held.at > stats.at) return;
    pushStats(stats);
    schedule();
  };

  // The snapshot's figures are as of the socket's open. After a host restart that comes before the
  // host's MQTT link is up (its first connect still on the way, or in backoff), so the snapshot
  // says "broker not connected"; the stream then carries figures only once a second and holds them
  // back while the socket is congested (a big fleet's snapshot), so the banner said "Broker
  // unreachable" for seconds after the broker was back. The store asks again itself, on a short
  // backoff, for as long as the host says so after a (re)connect.
  let cancelRecheck: (() => void) | undefined;
  let recheckRound = 0;
  let running = false;
  const brokerDown = (stats: SystemStats | null) =>
    stats !== null && stats.broker.url !== null && !stats.broker.connected;
  const recheckBroker = () => {
    cancelRecheck?.();
    cancelRecheck = undefined;
    const round = ++recheckRound;
    if (!running || !brokerDown(next.stats ?? state.stats)) return;
    const until = now() + BROKER_RECHECK_FOR_MS;
    const ask = (waitMs: number) => {
      cancelRecheck = setTimer(waitMs, () => {
        cancelRecheck = undefined;
        void (async () => {
          if (round !== recheckRound || (next.connection ?? state.connection).kind !== 'live') return;
          const result = await client.call('stats', {}).catch(() => undefined);
          if (round !== recheckRound) return;
          if (result?.ok) {
            lastMessageAt = now();
            takeAnswered(result.value);
          }
          if (brokerDown(next.stats ?? state.stats) && now() < until)
            ask(Math.min(BROKER_RECHECK_MAX_MS, waitMs * 2));
        })();
      });
    };
    ask(BROKER_RECHECK_FIRST_MS);
  };

  // The live log starts with the stored history, not empty: the newest events before the first
  // snapshot (and after each resync), merged with what was pushed meanwhile, by seq.
  const seedEvents = async () => {
    try {
      const r = await client.call('events', { limit: EVENT_BUFFER });
      if (!r.ok || r.value.items.length === 0) return;
      const bySeq = new Map<number, EventView>();
      for (const e of r.value.items) bySeq.set(e.seq, e);
      for (const e of events.toArray()) bySeq.set(e.seq, e);
      events.clear();
      for (const e of [...bySeq.values()].sort((a, b) => a.seq - b.seq).slice(-EVENT_BUFFER)) events.push(e);
      eventsDirty = true;
      schedule();
    } catch {
      // the live stream still fills the log; History pages the store
    }
  };

  const applySnapshot = (snapshot: Snapshot) => {
    void seedEvents();
    devices.clear();
    for (const row of snapshot.devices) devices.set(row.id, row);
    devicesDirty = true;
    next.tree = snapshot.tree;
    pushStats(snapshot.stats);
    next.ready = true;
    next.seq = snapshot.seq;
    setConnection({ kind: 'live', since: now() });
    recheckBroker();
  };

  const applyDiff = (diff: Diff) => {
    // A diff older than the snapshot we hold was already folded into it.
    if (diff.seq <= (next.seq ?? state.seq)) return;
    next.seq = diff.seq;
    if (diff.devices.length > 0 || diff.removed.length > 0) {
      for (const row of diff.devices) devices.set(row.id, row);
      for (const id of diff.removed) devices.delete(id);
      devicesDirty = true;
    }
    if (diff.tree) next.tree = diff.tree;
    if (diff.stats) pushStats(diff.stats);
    if (diff.events.length > 0) {
      for (const event of diff.events) events.push(event);
      eventsDirty = true;
    }
    if (diff.telemetry.length > 0) for (const listener of [...telemetryListeners]) listener(diff.telemetry);
    for (const point of diff.telemetry) {
      const watched = series.get(seriesKey(point.id, point.metric));
      if (!watched) continue;
      watched.series.push(point.at, point.value);
      watched.dirty = true;
      seriesDirty = true;
    }
    if ((next.connection ?? state.connection).kind !== 'live' && (next.ready ?? state.ready))
      setConnection({ kind: 'live', since: now() });
  };

  const apply = (message: PushMessage) => {
    lastMessageAt = now();
    if (message.type === 'snapshot') applySnapshot(message);
    else if (message.type === 'diff') applyDiff(message);
    else setConnection({ kind: 'reconnecting', since: now(), reason: message.reason });
    schedule();
  };

  const evictIdleSeries = () => {
    const idle = [...series.entries()].filter(([, w]) => w.watchers.size === 0);
    if (idle.length <= IDLE_SERIES_KEPT) return;
    idle.sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [key] of idle.slice(0, idle.length - IDLE_SERIES_KEPT)) series.delete(key);
  };

  const probe = async () => {
    try {
      const result = await client.call('stats', {});
      if (result.ok) {
        lastMessageAt = now();
        takeAnswered(result.value);
      } else if (result.error.code === 'unauthorized') {
        setConnection({ kind: 'unauthorized', since: now(), reason: result.error.message });
      } else {
        setConnection({ kind: 'reconnecting', since: now(), reason: result.error.message });
      }
    } catch (error) {
      setConnection({
        kind: 'reconnecting',
        since: now(),
        reason: error instanceof Error ? error.message : String(error),
      });
    }
  };

  return {
    getState: () => state,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    apply,
    flush,
    watchTelemetry(listener) {
      telemetryListeners.add(listener);
      return () => telemetryListeners.delete(listener);
    },
    start() {
      running = true;
      const unsubscribe = client.subscribe(apply);
      // A quiet host and a gone host look alike on the push stream: after a silence, ask.
      const startedAt = now();
      const watchdog = setInterval(() => {
        const waiting = !(next.ready ?? state.ready) && now() - startedAt >= FIRST_PROBE_AFTER_MS;
        if (waiting || now() - lastMessageAt >= PROBE_AFTER_MS) void probe();
      }, FIRST_PROBE_AFTER_MS);
      const offline = () => setConnection({ kind: 'reconnecting', since: now(), reason: 'network offline' });
      const online = () => void probe();
      if (typeof window !== 'undefined') {
        window.addEventListener('offline', offline);
        window.addEventListener('online', online);
      }
      return () => {
        running = false;
        recheckRound++;
        cancelRecheck?.();
        cancelRecheck = undefined;
        unsubscribe();
        clearInterval(watchdog);
        if (typeof window !== 'undefined') {
          window.removeEventListener('offline', offline);
          window.removeEventListener('online', online);
        }
      };
    },
    setTransport(status, detail) {
      const current = (next.connection ?? state.connection).kind;
      if (status === 'unauthorized')
        setConnection({
          kind: 'unauthorized',
          since: now(),
          reason: 'the host refused the access token',
        });
      else if (status === 'closed' && current !== 'unauthorized')
        setConnection({
          kind: 'reconnecting',
          since: now(),
          reason: detail?.reason ?? 'the connection to the host closed',
          ...(detail?.retryInMs !== undefined ? { retryAt: now() + detail.retryInMs } : {}),
        });
      // 'open' proves little: the store turns live on the snapshot that follows.
    },
    watchSeries(id, metric, onChange) {
      const key = seriesKey(id, metric);
      let watched = series.get(key);
      if (!watched) {
        watched = {
          series: createSeriesRing(SERIES_POINTS),
          watchers: new Set(),
          dirty: false,
          lastUsed: now(),
        };
        series.set(key, watched);
      }
      const entry = watched;
      entry.watchers.add(onChange);
      return {
        series: entry.series,
        stop: () => {
          entry.watchers.delete(onChange);
          entry.lastUsed = now();
          evictIdleSeries();
        },
      };
    },
  };
}

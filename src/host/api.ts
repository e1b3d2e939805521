/**
 * The host's side of the contract (src/host/contract.ts) over a running {@link App}: every call
 * validated by its schema and answered in an envelope, and the live push stream.
 *
 * The stream keeps, per client, only *which* things changed — device ids, "the tree", the latest
 * value per (device, metric), a bounded list of new events — so its memory is bounded by the size
 * of the fleet, never by the message rate. A ticker flushes each client at most
 * {@link MAX_PUSH_PER_SECOND} times a second; a client whose transport is congested gets nothing
 * until it drains, and one congested for longer than `resyncAfterMs` has its pending changes
 * dropped and is sent `resync` and a fresh snapshot once it can take them.
 *
 * @example
 * const api = createHostApi(app);
 * await api.call('devices', { state: 'connected', limit: 20 }); // { ok: true, value: { items, next } }
 * const close = api.openStream({ send: (m) => ws.send(JSON.stringify(m)), congested: () => ws.bufferedAmount > 4e6 });
 */

import { isCommandErrorCode } from '../devices/command-tracker.js';
import { describeKind } from '../devices/define-device.js';
import type { DeviceView } from '../devices/fleet.js';
import type { Process } from '../runtime/process.js';
import type { SupervisorLike } from '../runtime/supervisor.js';
import type { CommandAuditRecord, EventRecord } from '../store/store.js';
import { buildTree, countProcesses, findProcess as findInTree, isSupervisor } from './api/tree.js';
import type { App } from './app.js';
import type {
  ActionView,
  ActResult,
  CommandView,
  DeviceDetail,
  DeviceRow,
  Envelope,
  EventView,
  HealthItem,
  HostApi,
  Json,
  MachineStateView,
  MachineView,
  Method,
  ParsedArgsOf,
  PushMessage,
  Results,
  StreamSink,
  SystemStats,
  TelemetryPoint,
  TreeNode,
} from './contract.js';
import { MAX_PUSH_PER_SECOND, METHODS } from './contract.js';

export interface HostApiOptions {
  /** A congested client is resynced after this long; default 5000 ms. */
  readonly resyncAfterMs?: number;
  /** New events kept per client between pushes; past it the oldest go (the log has them). */
  readonly maxPendingEvents?: number;
  /** Devices acted on at once by a bulk action; default 16. */
  readonly actConcurrency?: number;
}

export interface HostApiHandle extends HostApi {
  close(): void;
}

type Handler<M extends Method> = (args: ParsedArgsOf<M>, context: { actor?: string }) => Promise<Results[M]>;

class ApiFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const fail = (code: string, message: string): never => {
  throw new ApiFailure(code, message);
};

const FLEET_CODES: Record<string, string> = {
  notFound: 'notFound',
  badDeviceId: 'badRequest',
  unknownAction: 'badRequest',
  badArgs: 'badRequest',
  badSpec: 'badRequest',
  badAttributes: 'badRequest',
  unknownKind: 'badRequest',
  notAllowedInState: 'notAllowed',
  deviceFailed: 'notAllowed',
  notFailed: 'conflict',
  alreadyExists: 'conflict',
  stopped: 'unavailable',
};

const TRANSITIONS_KEPT = 20;

export function createHostApi(app: App, options: HostApiOptions = {}): HostApiHandle {
  const { fleet, runtime, store, links } = app;
  const resyncAfterMs = options.resyncAfterMs ?? 5000;
  const maxPendingEvents = options.maxPendingEvents ?? 200;
  const actConcurrency = options.actConcurrency ?? 16;
  const clock = runtime.clock;

  // ---- what the api keeps about the live fleet ----
  const lastSeen = new Map<string, number>();
  const lastMarked = new Map<string, number>();
  const transitions = new Map<string, { at: number; from: string; to: string }[]>();
  const latencies: number[] = []; // ms, last 500 completed commands
  let restarts = 0;
  const received: { at: number; total: number }[] = [];

  const clients = new Set<Client>();
  const offRuntime = runtime.events.subscribe((e) => {
    if (e.type === 'state.transition' && fleet.has(e.name)) {
      let list = transitions.get(e.name);
      if (!list) {
        list = [];
        transitions.set(e.name, list);
      }
      list.push({ at: clock.wallNow(), from: e.from, to: e.to });
      if (list.length > TRANSITIONS_KEPT) list.shift();
      // The tree shows each machine's state: it is stale after any transition, not only after a
      // process starts or exits (flush sends it at most every 500 ms).
      for (const c of clients) {
        c.devices.add(e.name);
        c.tree = true;
      }
      return;
    }
    if (e.type === 'child.restarted') restarts++;
    if (
      e.type === 'process.started' ||
      e.type === 'process.exited' ||
      e.type === 'child.restarted' ||
      e.type === 'supervisor.gaveUp'
    ) {
      for (const c of clients) c.tree = true;
      // A device's own processes changed: its row (health, restarts) changed too.
      const name = 'name' in e && typeof e.name === 'string' ? e.name : undefined;
      const id = name?.startsWith('device:') ? name.slice(7) : name;
      if (id && fleet.has(id)) for (const c of clients) c.devices.add(id);
    }
  });
  // Every convention's devices feed the same figures: what reaches the fleet (telemetry, signs of
  // life), not what one link layer heard.
  let activityTotal = 0;
  const offActivity = fleet.observe((activity) => {
    activityTotal++;
    const id = activity.deviceId;
    const at = activity.at;
    lastSeen.set(id, at);
    // "Last seen" moves in whole seconds on screen: a row goes out at most once a second for it.
    const marked = lastMarked.get(id);
    if (marked === undefined || at - marked >= 1000) {
      lastMarked.set(id, at);
      for (const c of clients) c.devices.add(id);
    }
    if (activity.type === 'telemetry')
      for (const c of clients) {
        if (!c.wantsTelemetry) continue;
        for (const metric in activity.values)
          if (Object.hasOwn(activity.values, metric))
            c.telemetry.set(`${id}\u0000${metric}`, { id, metric, at, value: activity.values[metric]! });
      }
  });

  const offCommands = fleet.commands.listen((cmd) => {
    if (cmd.status === 'succeeded' && cmd.sentAt !== null && cmd.completedAt !== null) {
      latencies.push(cmd.completedAt - cmd.sentAt);
      if (latencies.length > 500) latencies.shift();
    }
  });

  // ---- rows ----

  const row = (d: DeviceView): DeviceRow => ({
    id: d.id,
    name: d.name,
    kind: d.kind,
    tags: d.tags,
    health: d.health,
    state: d.state,
    stateEnteredAt: d.stateEnteredAt,
    link: d.link,
    firmware: typeof d.status.firmware === 'string' ? d.status.firmware : null,
    lastSeen: lastSeen.get(d.id) ?? null,
    restarts: d.restarts,
    drift: d.drift.length,
    failure: d.failure ? { code: d.failure.code, message: d.failure.message } : null,
    timers: d.timers.map((t) => ({
      kind: t.kind,
      key: t.id,
      event: t.event.type,
      deadline: t.wallDeadlineMs,
      delayMs: t.delayMs,
    })),
  });

  // ---- the supervision tree ----

  const treeSources = { fleet, root: app.supervisor };
  const tree = (): TreeNode => buildTree(treeSources);
  const findProcess = (pid: number) => findInTree(treeSources, pid);

  // ---- stats ----

  function percentile(sorted: number[], p: number): number | null {
    if (sorted.length === 0) return null;
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? null;
  }

  function stats(): SystemStats {
    const now = clock.wallNow();
    const total = activityTotal;
    received.push({ at: now, total });
    while (received.length > 2 && now - received[0]!.at > 10_000) received.shift();
    const first = received[0]!;
    const span = (now - first.at) / 1000;
    const list = fleet.list();
    const sorted = [...latencies].sort((a, b) => a - b);
    const mqtt = links.mqtt?.stats();
    return {
      at: now,
      devices: {
        total: list.length,
        online: list.filter((d) => d.link.up).length,
        failed: list.filter((d) => d.health === 'failed').length,
      },
      processes: countProcesses(app.supervisor),
      ingestRate: span > 0 ? (total - first.total) / span : 0,
      restarts,
      commandLatencyMs: {
        p50: percentile(sorted, 50),
        p95: percentile(sorted, 95),
        p99: percentile(sorted, 99),
      },
      queues: {
        commandsOpen: fleet.commands.open().length,
        mqttOutbox: mqtt?.outboxLength ?? 0,
        mqttInflight: mqtt?.inflight ?? 0,
      },
      broker: {
        url: app.brokerUrl ?? null,
        connected: mqtt?.connected ?? false,
        embedded: app.broker !== undefined,
      },
      heapUsedBytes: process.memoryUsage().heapUsed,
    };
  }

  // ---- the handlers ----

  const handlers: { [M in Method]: Handler<M> } = {
    tree: async () => tree(),

    devices: async (a) => {
      const text = a.text?.toLowerCase();
      const all = fleet
        .list()
        .filter(
          (d) =>
            (!text || d.id.toLowerCase().includes(text) || d.name.toLowerCase().includes(text)) &&
            (!a.kind || d.kind === a.kind) &&
            (!a.state || d.state === a.state || d.state.startsWith(`${a.state}.`)) &&
            (!a.tag || d.tags.includes(a.tag)) &&
            (!a.health || d.health === a.health),
        )
        .sort((x, y) => x.id.localeCompare(y.id));
      const items = all.slice(a.offset, a.offset + a.limit).map(row);
      const end = a.offset + items.length;
      return { items, total: all.length, next: end < all.length ? end : null };
    },

    device: async (a) => {
      const d = fleet.device(a.id) ?? fail('notFound', `no device '${a.id}'`);
      const kind = fleet.kinds.get(d.kind);
      const described = kind ? describeKind(kind) : undefined;
      const detail: DeviceDetail = {
        ...row(d),
        attributes: d.attributes as Json,
        spec: d.spec as Json,
        status: d.status as Json,
        driftItems: d.drift.map((x) => ({
          field: x.field,
          desired: (x.desired ?? null) as Json,
          reported: (x.reported ?? null) as Json,
        })),
        machine: kind ? describeMachine(kind.machine) : null,
        transitions: transitions.get(d.id) ?? [],
        metrics: await store.listMetrics(d.id),
        actions: (described?.actions ?? []).map((x) => ({ ...x, argsSchema: x.argsSchema as Json })),
        openCommands: fleet.commands
          .open(d.id)
          .map((c) => commandView({ ...c, result: (c.result ?? null) as Json, error: c.error ?? null })),
      };
      return detail;
    },

    telemetry: async (a) => {
      if (!fleet.has(a.id)) fail('notFound', `no device '${a.id}'`);
      return store.queryTelemetry(a.id, a.metric, a.fromMs, a.toMs, a.buckets);
    },

    events: async (a) => {
      const page = await store.queryEvents({
        ...(a.id ? { deviceId: a.id } : {}),
        ...(a.kind ? { kind: a.kind } : {}),
        ...(a.fromMs !== undefined ? { fromMs: a.fromMs } : {}),
        ...(a.toMs !== undefined ? { toMs: a.toMs } : {}),
        ...(a.cursor !== undefined ? { beforeSeq: a.cursor } : {}),
        order: 'desc',
        limit: a.limit,
      });
      return {
        items: page.items.flatMap((i) => (i.ok ? [eventView(i.value)] : [])),
        next: page.nextCursor ?? null,
      };
    },

    commands: async (a) => {
      const page = await store.queryCommands({
        ...(a.id ? { deviceId: a.id } : {}),
        ...(a.cursor !== undefined ? { beforeSeq: a.cursor } : {}),
        limit: a.limit,
      });
      return {
        items: page.items.flatMap((i) => (i.ok ? [commandView(i.value)] : [])),
        next: page.nextCursor ?? null,
      };
    },

    health: async () => {
      const items: HealthItem[] = [];
      const mqtt = links.mqtt?.stats();
      if (links.mqtt)
        items.push({
          name: 'mqtt',
          ok: mqtt?.connected ?? false,
          detail: mqtt?.connected
            ? `connected to ${app.brokerUrl}`
            : `broker unreachable at ${app.brokerUrl} (${mqtt?.state ?? 'closed'}): check the broker URL and that the broker runs`,
        });
      if (links.serial)
        for (const p of links.serial.ports())
          items.push({
            name: `serial ${p.path}`,
            ok: p.state === 'open',
            detail: `${p.state}${p.deviceId ? `, ${p.deviceId}` : ''}${p.lastError ? `: ${p.lastError}` : ''}`,
          });
      const failed = fleet.list().filter((d) => d.health === 'failed');
      items.push({
        name: 'devices',
        ok: failed.length === 0,
        detail:
          failed.length === 0
            ? 'no device has failed'
            : `${failed.length} failed: ${failed
                .slice(0, 5)
                .map((d) => d.id)
                .join(', ')}`,
      });
      items.push({ name: 'store', ok: true, detail: 'open' });
      return items;
    },

    stats: async () => stats(),

    kinds: async () =>
      [...fleet.kinds.values()].map((k) => {
        const d = describeKind(k);
        return {
          kind: d.kind,
          title: d.title,
          actions: d.actions.map((x) => ({ ...x, argsSchema: x.argsSchema as Json })) as ActionView[],
        };
      }),

    discovered: async () => links.hub?.discovered() ?? [],

    act: async (a, context) => {
      const actor = context.actor ?? a.actor;
      const results: ActResult[] = new Array(a.ids.length);
      let next = 0;
      const worker = async () => {
        while (next < a.ids.length) {
          const i = next++;
          const id = a.ids[i]!;
          const r = await fleet.act(id, a.action, a.args, actor);
          results[i] = r.ok
            ? {
                id,
                ok: true,
                commandId: r.value.commandId,
                state: r.value.state,
                ...(r.value.commandStatus ? { commandStatus: r.value.commandStatus } : {}),
              }
            : {
                id,
                ok: false,
                // A command's refusal reaches the caller as the tracker named it (one closed set).
                error: {
                  code: isCommandErrorCode(r.error.code)
                    ? r.error.code
                    : (FLEET_CODES[r.error.code] ?? r.error.code),
                  message: r.error.message,
                },
              };
        }
      };
      await Promise.all(Array.from({ length: Math.min(actConcurrency, a.ids.length) }, worker));
      return results;
    },

    restartDevice: async (a) => {
      const r = await fleet.restartDevice(a.id);
      if (!r.ok) fail(FLEET_CODES[r.error.code] ?? r.error.code, r.error.message);
      return row(fleet.device(a.id)!);
    },

    killProcess: async (a) => {
      const found = findProcess(a.pid) ?? fail('notFound', `no running process with pid ${a.pid}`);
      if (!found.parent)
        fail('notAllowed', `pid ${a.pid} is the app's root supervisor; stop the app instead`);
      if (found.parent === app.supervisor && found.info?.restart === 'temporary')
        fail(
          'notAllowed',
          `${found.process.name} <${a.pid}> cannot be restarted by the root: killing it stops the whole app; stop the app instead`,
        );
      found.process.kill();
      return { killed: a.pid };
    },

    restartChild: async (a) => {
      const found =
        findProcess(a.supervisorPid) ?? fail('notFound', `no supervisor with pid ${a.supervisorPid}`);
      const s = found.process as SupervisorLike & { restartChild?: (id: string) => Promise<unknown> };
      if (!isSupervisor(s) || typeof s.restartChild !== 'function')
        fail('badRequest', `pid ${a.supervisorPid} is not a supervisor with named children`);
      const r = (await s.restartChild!(a.childId)) as {
        ok: boolean;
        value?: Process;
        error?: { code: string; message: string };
      };
      if (!r.ok) fail('conflict', r.error?.message ?? 'restart refused');
      return { pid: r.value?.pid ?? null };
    },

    terminateChild: async (a) => {
      const found =
        findProcess(a.supervisorPid) ?? fail('notFound', `no supervisor with pid ${a.supervisorPid}`);
      const s = found.process as SupervisorLike & { terminateChild?: (id: string) => Promise<unknown> };
      if (!isSupervisor(s) || s.strategy === 'dynamic' || typeof s.terminateChild !== 'function')
        fail('badRequest', `pid ${a.supervisorPid} is not a supervisor with named children`);
      const r = (await s.terminateChild!(a.childId)) as { ok: boolean; error?: { message: string } };
      if (!r.ok) fail('conflict', r.error?.message ?? 'terminate refused');
      return { terminated: a.childId };
    },

    adopt: async (a) => {
      const hub = links.hub ?? fail('unavailable', 'links are not running');
      const r = await hub.adopt(a.id);
      if (!r.ok) fail(FLEET_CODES[r.error.code] ?? r.error.code, r.error.message);
      return row(fleet.device(a.id)!);
    },

    cancelCommand: async (a, context) => ({
      cancelled: await fleet.commands.cancel(a.commandId, context.actor ?? 'the operator'),
    }),

    setDemo: async (a) => {
      const r = await app.setDemo(a.on);
      if (!r.ok) fail('notAllowed', r.message);
      return { on: a.on };
    },
  };

  async function call(
    method: string,
    args: unknown,
    context: { actor?: string } = {},
  ): Promise<Envelope<unknown>> {
    if (!Object.hasOwn(METHODS, method))
      return {
        ok: false,
        error: { code: 'badRequest', message: `unknown method '${String(method).slice(0, 64)}'` },
      };
    const m = method as Method;
    const parsed = METHODS[m].safeParse(args ?? {});
    if (!parsed.success)
      return {
        ok: false,
        error: {
          code: 'badRequest',
          message: `${m}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(args)'}: ${i.message}`).join('; ')}`,
        },
      };
    try {
      const handler = handlers[m] as Handler<Method>;
      return { ok: true, value: await handler(parsed.data as never, context) };
    } catch (error) {
      if (error instanceof ApiFailure)
        return { ok: false, error: { code: error.code, message: error.message } };
      runtime.report(`api: ${m} failed`, error);
      return { ok: false, error: { code: 'internal', message: `${m} failed: ${(error as Error).message}` } };
    }
  }

  // ---- the push stream ----

  interface Client {
    sink: StreamSink;
    seq: number;
    devices: Set<string>;
    tree: boolean;
    telemetry: Map<string, TelemetryPoint>;
    events: EventView[];
    wantsTelemetry: boolean;
    congestedSince: number | undefined;
    needsSnapshot: boolean;
    lastTreeAt: number;
    lastStatsAt: number;
  }

  let lastEventSeq = 0;
  let eventsPolling = false;

  async function pollEvents(): Promise<void> {
    if (eventsPolling || clients.size === 0) return;
    eventsPolling = true;
    try {
      const page = await store.queryEvents({ afterSeq: lastEventSeq, order: 'asc', limit: 500 });
      for (const item of page.items) {
        if (!item.ok) continue;
        lastEventSeq = Math.max(lastEventSeq, item.value.seq);
        const view = eventView(item.value);
        for (const c of clients) {
          c.events.push(view);
          if (c.events.length > maxPendingEvents) c.events.shift();
        }
      }
    } catch {
      // The store is closing; the next poll tries again.
    } finally {
      eventsPolling = false;
    }
  }

  function snapshot(c: Client): PushMessage {
    return {
      type: 'snapshot',
      seq: ++c.seq,
      at: clock.wallNow(),
      tree: tree(),
      devices: fleet.list().map(row),
      stats: stats(),
    };
  }

  function safeSend(c: Client, m: PushMessage): void {
    try {
      c.sink.send(m);
    } catch (error) {
      runtime.logger.warn('push to a client failed; it is dropped', { error: (error as Error).message });
      clients.delete(c);
    }
  }

  function flush(c: Client, now: number): void {
    if (c.sink.congested()) {
      c.congestedSince ??= now;
      if (!c.needsSnapshot && now - c.congestedSince > resyncAfterMs) {
        // Too far behind: forget the details, start again from a snapshot when it can take one.
        c.needsSnapshot = true;
        c.devices.clear();
        c.telemetry.clear();
        c.events = [];
        c.tree = false;
        safeSend(c, { type: 'resync', reason: `the client fell more than ${resyncAfterMs} ms behind` });
      }
      return;
    }
    c.congestedSince = undefined;
    if (c.needsSnapshot) {
      c.needsSnapshot = false;
      c.devices.clear();
      c.telemetry.clear();
      c.events = [];
      c.tree = false;
      c.lastTreeAt = now;
      c.lastStatsAt = now;
      safeSend(c, snapshot(c));
      return;
    }
    const sendTree = c.tree && now - c.lastTreeAt >= 500;
    const sendStats = now - c.lastStatsAt >= 1000;
    if (c.devices.size === 0 && c.telemetry.size === 0 && c.events.length === 0 && !sendTree && !sendStats)
      return;
    const devices: DeviceRow[] = [];
    const removed: string[] = [];
    for (const id of c.devices) {
      const d = fleet.device(id);
      if (d) devices.push(row(d));
      else removed.push(id);
    }
    const message: PushMessage = {
      type: 'diff',
      seq: ++c.seq,
      at: now,
      devices,
      removed,
      telemetry: [...c.telemetry.values()],
      events: c.events,
      ...(sendTree ? { tree: tree() } : {}),
      ...(sendStats ? { stats: stats() } : {}),
    };
    c.devices = new Set();
    c.telemetry = new Map();
    c.events = [];
    if (sendTree) {
      c.tree = false;
      c.lastTreeAt = now;
    }
    if (sendStats) c.lastStatsAt = now;
    safeSend(c, message);
  }

  let ticks = 0;
  const tickMs = Math.ceil(1000 / MAX_PUSH_PER_SECOND);
  let ticker: ReturnType<typeof setInterval> | undefined;
  const ensureTicker = () => {
    if (ticker || clients.size === 0) return;
    ticker = setInterval(() => {
      ticks++;
      if (ticks % 5 === 0) void pollEvents();
      // Timers and link changes need no event to show: refresh rows with running timers.
      const now = clock.wallNow();
      for (const c of clients) flush(c, now);
    }, tickMs);
    ticker.unref?.();
  };

  return {
    call,

    openStream(sink) {
      const c: Client = {
        sink,
        seq: 0,
        devices: new Set(),
        tree: false,
        telemetry: new Map(),
        events: [],
        wantsTelemetry: true,
        congestedSince: undefined,
        needsSnapshot: false,
        lastTreeAt: clock.wallNow(),
        lastStatsAt: clock.wallNow(),
      };
      clients.add(c);
      if (lastEventSeq === 0)
        void store
          .queryEvents({ order: 'desc', limit: 1 })
          .then((p) => {
            const top = p.items[0];
            if (top?.ok) lastEventSeq = Math.max(lastEventSeq, top.value.seq);
          })
          .catch(() => {});
      safeSend(c, snapshot(c));
      ensureTicker();
      return () => {
        clients.delete(c);
        if (clients.size === 0 && ticker) {
          clearInterval(ticker);
          ticker = undefined;
        }
      };
    },

    close() {
      if (ticker) clearInterval(ticker);
      ticker = undefined;
      clients.clear();
      offRuntime();
      offActivity();
      offCommands();
    },
  };
}

// ---- helpers ----

function eventView(e: EventRecord): EventView {
  return { seq: e.seq, at: e.at, deviceId: e.deviceId ?? null, kind: e.kind, data: e.data as Json };
}

type CommandFields = Pick<
  CommandAuditRecord,
  | 'commandId'
  | 'deviceId'
  | 'action'
  | 'args'
  | 'actor'
  | 'status'
  | 'requestedAt'
  | 'completedAt'
  | 'expiresAt'
  | 'result'
  | 'error'
>;

/** One shape for a command, whether it is still open (the outbox) or audited (the store). */
function commandView(c: CommandFields): CommandView {
  return {
    commandId: c.commandId,
    deviceId: c.deviceId,
    action: c.action,
    args: c.args as Json,
    actor: c.actor,
    status: c.status,
    requestedAt: c.requestedAt,
    completedAt: c.completedAt,
    expiresAt: c.expiresAt,
    result: c.result as Json,
    error: c.error,
  };
}

interface XStateNode {
  readonly key: string;
  readonly path: readonly string[];
  readonly initial?: { readonly target?: readonly XStateNode[] };
  readonly states: Readonly<Record<string, XStateNode>>;
  readonly transitions: ReadonlyMap<
    string,
    readonly { readonly eventType: string; readonly target?: readonly XStateNode[] }[]
  >;
  readonly after: readonly {
    readonly eventType: string;
    readonly delay: string | number;
    readonly target?: readonly XStateNode[];
  }[];
}

/** The machine's states and transitions as plain data, for the diagram. */
export function describeMachine(machine: { readonly id: string; readonly root: unknown }): MachineView {
  const describe = (n: XStateNode, parent: XStateNode | undefined): MachineStateView => {
    const targetOf = (t?: readonly XStateNode[]) =>
      t && t.length > 0 ? t.map((x) => x.path.join('.')).join(', ') : null;
    const out: { event: string; target: string | null }[] = [];
    for (const [event, list] of n.transitions) {
      if (event.startsWith('xstate.after')) continue;
      for (const t of list) out.push({ event, target: targetOf(t.target) });
    }
    for (const a of n.after ?? []) out.push({ event: `after ${a.delay}`, target: targetOf(a.target) });
    const initialTarget = parent?.initial?.target?.[0];
    return {
      path: n.path.join('.'),
      initial: initialTarget === n,
      transitions: out,
      children: Object.values(n.states ?? {}).map((c) => describe(c, n)),
    };
  };
  const root = machine.root as XStateNode;
  return { id: machine.id, states: Object.values(root.states).map((s) => describe(s, root)) };
}

/**
 * The contract's calls, one handler per method: queries of the fleet, the tree and the store,
 * and the operator's actions. Each handler gets its arguments already validated by the method's
 * schema ({@link METHODS}); an expected refusal throws {@link ApiFailure} with a contract error
 * code, which {@link callHandler} answers as an envelope. The compiler checks that every method
 * has a handler.
 *
 * @example
 * const handlers = createHandlers(ctx);
 * await callHandler(handlers, runtime, 'devices', { limit: 20 }); // { ok: true, value: { items, … } }
 */
import { feedFigures } from '../../cluster/feed-figures.js';
import type { CommandGuards } from '../../devices/command-guards.js';
import { isCommandErrorCode } from '../../devices/command-tracker.js';
import { describeKind } from '../../devices/define-device.js';
import type { DeviceView } from '../../devices/fleet.js';
import type { Process } from '../../runtime/process.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { SupervisorLike } from '../../runtime/supervisor.js';
import type { App } from '../app.js';
import { updateInProgress } from '../app.js';
import type {
  ActionView,
  ActResult,
  DeviceDetail,
  DeviceRow,
  DiscoveredView,
  Envelope,
  GuardsView,
  HealthItem,
  Json,
  Method,
  ParsedArgsOf,
  Results,
  SystemStats,
  TreeNode,
} from '../contract.js';
import { METHODS } from '../contract.js';
import { createActPacing } from './act-pacing.js';
import { alarmHandlers } from './alarms.js';
import { bulkAdoptHandlers } from './bulk-adopt.js';
import { auditDevice, devicesAdminHandlers } from './devices-admin.js';
import { firmwareHandlers } from './firmware.js';
import type { FleetWide } from './fleet-wide.js';
import { devicesPage } from './fleet-wide.js';
import { inspectHandlers } from './inspect.js';
import { latestHandlers } from './latest.js';
import type { LiveFigures } from './live.js';
import { processInfoHandlers } from './process-info.js';
import type { RemotePushStats } from './remote-push.js';
import { rolloutHandlers } from './rollouts.js';
import { routeToOwners } from './routed.js';
import { settingsHandlers } from './settings.js';
import type { FoundProcess } from './tree.js';
import { isSupervisor } from './tree.js';
import { commandView, describeMachine, eventView } from './views.js';

/** What the handlers read: the app and the API's own views of it. */
export interface ApiContext {
  readonly app: App;
  readonly live: LiveFigures;
  readonly actConcurrency: number;
  /** In a cluster, the other instances' devices read from the shared database; undefined alone. */
  readonly fleetWide: FleetWide | undefined;
  /** In a cluster, what the API pushed of the other instances' devices (src/host/api/remote-push.ts). */
  readonly remotePush?: () => RemotePushStats;
  tree(): TreeNode;
  findProcess(pid: number): FoundProcess | undefined;
  row(d: DeviceView): DeviceRow;
  stats(): SystemStats;
}

type Handler<M extends Method> = (args: ParsedArgsOf<M>, context: { actor?: string }) => Promise<Results[M]>;
export type Handlers = { [M in Method]: Handler<M> };

/** An expected refusal, with the contract's error code. */
export class ApiFailure extends Error {
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

/** The fleet's refusals in the contract's words. */
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

export function createHandlers(ctx: ApiContext): Handlers {
  // In a cluster, calls on another instance's device go to its owner (src/host/api/routed.ts).
  return routeToOwners(ctx.app, {
    ...queryHandlers(ctx),
    ...operatorHandlers(ctx),
    ...firmwareHandlers(ctx.app),
    ...rolloutHandlers(ctx.app),
    ...settingsHandlers(ctx.app),
    cluster: async () => {
      const c = ctx.app.cluster;
      if (!c) return null;
      const view = await c.view();
      const self = c.keeper.instanceId;
      // This instance's feed as of now; the others' as of their last heartbeat.
      const feed = feedFigures(c.changes.stats(), c.changes.listening());
      return {
        self,
        shardCount: view.shardCount,
        leaseMs: c.keeper.leaseMs,
        instances: view.instances.map((i) => (i.id === self ? { ...i, feed } : i)),
        unowned: view.unowned,
        stats: c.keeper.stats(),
        devices: ctx.app.fleet.list().length,
        fleetDevices: view.fleetDevices,
        remotePush: ctx.remotePush?.() ?? null,
      };
    },
    ...alarmHandlers(ctx.app),
    ...devicesAdminHandlers(ctx),
    ...processInfoHandlers(ctx),
    ...latestHandlers(ctx.app),
    ...inspectHandlers(ctx),
    ...bulkAdoptHandlers(ctx.app, {
      list: () => discoveredEverywhere(ctx.app),
      adopt: (id) => adoptAnywhere(ctx.app, id),
    }),
  });
}

/** Reads: the tree, devices, one device, telemetry, events, commands, health, stats, kinds. */
function queryHandlers(ctx: ApiContext) {
  const { fleet, store } = ctx.app;
  const { fleetWide } = ctx;
  return {
    tree: async () => ctx.tree(),

    // In a cluster, the whole fleet: the others' devices read from the shared database.
    devices: async (a) => devicesPage(fleet, ctx.row, fleetWide, a),

    device: async (a) => deviceDetail(ctx, a.id),

    telemetry: async (a) => {
      // In a cluster another instance's device is not in this fleet, but its points are in the
      // shared database: any device the store knows is answered.
      if (!fleet.has(a.id) && !(ctx.app.cluster && (await store.getDevice(a.id)).ok))
        fail('notFound', `no device '${a.id}'`);
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

    health: async () => healthItems(ctx.app),

    stats: async () => ctx.stats(),

    kinds: async () =>
      [...fleet.kinds.values()].map((k) => {
        const d = describeKind(k);
        return {
          kind: d.kind,
          title: d.title,
          attributesSchema: d.attributesSchema as Json,
          actions: d.actions.map((x) => ({ ...x, argsSchema: x.argsSchema as Json })) as ActionView[],
        };
      }),

    discovered: async (a) => {
      const all = discoveredEverywhere(ctx.app).filter((d) => a.kind === undefined || d.kind === a.kind);
      all.sort((x, y) => y.firstSeen - x.firstSeen);
      return all.slice(a.offset, a.offset + a.limit);
    },
  } satisfies Partial<Handlers>;
}

/** The operator's actions: act on devices, restart, kill, adopt, cancel a command, the demo. */
function operatorHandlers(ctx: ApiContext) {
  const { app } = ctx;
  const { fleet } = app;
  return {
    act: async (a, context) => {
      const actor = context.actor ?? a.actor;
      const results: ActResult[] = new Array(a.ids.length);
      // Through the fleet's rate limit, not cut off by it (src/host/api/act-pacing.ts).
      const paced = createActPacing(app.runtime.clock);
      let next = 0;
      const worker = async () => {
        while (next < a.ids.length) {
          const i = next++;
          const id = a.ids[i]!;
          const updating = updateInProgress(app.updates, id);
          if (updating) {
            results[i] = { id, ok: false, error: updating };
            continue;
          }
          // In a cluster, carried out by the device's owner, whichever instance was asked.
          const r = await paced(() =>
            app.cluster
              ? app.cluster.router.act(id, a.action, a.args, actor)
              : fleet.act(id, a.action, a.args, actor),
          );
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
                  ...(r.error.retryAt !== undefined ? { retryAt: r.error.retryAt } : {}),
                },
              };
        }
      };
      await Promise.all(Array.from({ length: Math.min(ctx.actConcurrency, a.ids.length) }, worker));
      return results;
    },

    restartDevice: async (a) => {
      const r = await fleet.restartDevice(a.id);
      if (!r.ok) fail(FLEET_CODES[r.error.code] ?? r.error.code, r.error.message);
      return ctx.row(fleet.device(a.id)!);
    },

    killProcess: async (a) => {
      const found = ctx.findProcess(a.pid) ?? fail('notFound', `no running process with pid ${a.pid}`);
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
        ctx.findProcess(a.supervisorPid) ?? fail('notFound', `no supervisor with pid ${a.supervisorPid}`);
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
        ctx.findProcess(a.supervisorPid) ?? fail('notFound', `no supervisor with pid ${a.supervisorPid}`);
      const s = found.process as SupervisorLike & { terminateChild?: (id: string) => Promise<unknown> };
      if (!isSupervisor(s) || s.strategy === 'dynamic' || typeof s.terminateChild !== 'function')
        fail('badRequest', `pid ${a.supervisorPid} is not a supervisor with named children`);
      const r = (await s.terminateChild!(a.childId)) as { ok: boolean; error?: { message: string } };
      if (!r.ok) fail('conflict', r.error?.message ?? 'terminate refused');
      return { terminated: a.childId };
    },

    adopt: async (a, context) => {
      const r = await adoptAnywhere(app, a.id);
      if (!r.ok) fail(FLEET_CODES[r.error.code] ?? r.error.code, r.error.message);
      await auditDevice(app, a.id, 'adopt', context.actor ?? 'api', {
        kind: fleet.device(a.id)?.kind ?? null,
      });
      return ctx.row(fleet.device(a.id)!);
    },

    cancelCommand: async (a, context) => ({
      cancelled: await fleet.commands.cancel(a.commandId, context.actor ?? 'the operator'),
    }),

    setDemo: async (a) => {
      const r = await app.setDemo(a.on);
      if (!r.ok) fail('notAllowed', r.message);
      return { on: a.on };
    },
  } satisfies Partial<Handlers>;
}

async function deviceDetail(ctx: ApiContext, id: string): Promise<DeviceDetail> {
  const { fleet, store } = ctx.app;
  const d = fleet.device(id) ?? fail('notFound', `no device '${id}'`);
  const kind = fleet.kinds.get(d.kind);
  const described = kind ? describeKind(kind) : undefined;
  const detail: DeviceDetail = {
    ...ctx.row(d),
    attributes: d.attributes as Json,
    spec: d.spec as Json,
    status: d.status as Json,
    driftItems: d.drift.map((x) => ({
      field: x.field,
      desired: (x.desired ?? null) as Json,
      reported: (x.reported ?? null) as Json,
    })),
    machine: kind ? describeMachine(kind.machine) : null,
    transitions: [...ctx.live.transitions(d.id)],
    metrics: await store.listMetrics(d.id),
    actions: (described?.actions ?? []).map((x) => ({ ...x, argsSchema: x.argsSchema as Json })),
    openCommands: fleet.commands
      .open(d.id)
      .map((c) => commandView({ ...c, result: (c.result ?? null) as Json, error: c.error ?? null })),
    guards: guardsView(fleet.guards, d.id),
  };
  return detail;
}

function guardsView(guards: CommandGuards, id: string): GuardsView {
  const { settings, ...breaker } = guards.breaker(id);
  return { breaker: { ...breaker, ...settings }, rate: guards.rate(id) };
}

function healthItems(app: App): HealthItem[] {
  const { fleet, links } = app;

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
}

/** Validates `args` by the method's schema and runs its handler; every outcome is an envelope. */
export async function callHandler(
  handlers: Handlers,
  runtime: Runtime,
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

/**
 * Every convention's discovered devices in one list: our own protocol's (the link hub) and those
 * the convention bridges registered (Homie, Sparkplug), each row saying its convention.
 */
function discoveredEverywhere(app: App): DiscoveredView[] {
  const own: DiscoveredView[] = (app.links.hub?.discovered() ?? []).map((d) => ({ ...d, convention: 'own' }));
  return [...own, ...(app.discovery?.list() ?? [])];
}

/** Adopts through whoever lists the device: the link hub first, then the convention bridges. */
async function adoptAnywhere(
  app: App,
  id: string,
): Promise<{ ok: true } | { ok: false; error: { code: string; message: string } }> {
  // The hub's own lookup answers notFound at once; listing its whole discovered list per call
  // made "Adopt all 2,000" quadratic.
  const hub = app.links.hub;
  if (hub) {
    const r = await hub.adopt(id);
    if (r.ok || r.error.code !== 'notFound' || !app.discovery) return r;
  }
  if (app.discovery) return app.discovery.adopt(id);
  return fail('unavailable', 'links are not running');
}

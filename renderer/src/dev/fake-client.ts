/**
 * A {@link TypedClient} that simulates a fleet in the page, so the operator's views can be
 * exercised without a host: `index.html?fake=5000` runs the app against 5,000 simulated devices.
 * It is loaded only then (a separate chunk), never in a real session.
 *
 * What it simulates: devices of three kinds on the generic life cycle (disconnected → connecting
 * → connected; the generic kind has no `update` action, issue 14) with connect and liveness
 * timers; telemetry that is a deterministic function of time (history and live points agree);
 * a supervision tree (app → links, outbox, devices → one supervisor per device → machine and
 * reconciler workers) where a killed process restarts and counts against its supervisor's
 * intensity; events, commands, stats, health. Pushes follow the contract: a snapshot, then diffs
 * at most 10 per second.
 *
 * @example
 * const client = createFakeClient({ devices: 200 });
 * client.subscribe((m) => console.log(m.type)); // 'snapshot', then 'diff' …
 * await client.call('act', { ids: ['pump-0001'], action: 'ping' });
 */
import type {
  ActionView,
  ActResult,
  ArgsOf,
  Bucket,
  CommandView,
  DeviceDetail,
  DeviceRow,
  Diff,
  Envelope,
  EventView,
  Json,
  MachineView,
  Method,
  PushMessage,
  Results,
  SystemStats,
  TelemetryPoint,
  TimerView,
  TreeNode,
  TypedClient,
} from '../../../src/host/contract.js';

export interface FakeFleetOptions {
  readonly devices: number;
  readonly seed?: number;
  /** How often a diff is pushed; default 100 ms. */
  readonly tickMs?: number;
  /** Telemetry reports per second per connected device; default 0.2 (one every 5 s). */
  readonly telemetryHz?: number;
}

type Kind = 'fleetvisor.generic' | 'acme.pump' | 'acme.meter';
type MutableCommand = { -readonly [K in keyof CommandView]: CommandView[K] };

interface FakeDevice {
  row: DeviceRow;
  pid: number;
  supervisorPid: number;
  reconcilerPid: number;
  createdAt: number;
  desiredFirmware: string;
  reportIntervalMs: number;
  /** When the current state's next simulated move happens. */
  nextMoveAt: number;
  nextTelemetryAt: number;
  transitions: { at: number; from: string; to: string }[];
  commands: MutableCommand[];
  restartTimes: number[];
  processStatus: 'running' | 'restarting' | 'failed';
}

const CONNECT_TIMEOUT_MS = 10_000;
const LIVENESS_TIMEOUT_MS = 30_000;
const TELEMETRY_EVERY_MS = 5_000;
const EVENT_LOG = 5_000;
const FIRMWARES = ['1.4.2', '1.5.0', '1.5.1', '2.0.0-rc.1'];
const SITES = ['hall-a', 'hall-b', 'roof', 'basement', 'yard'];
const METRICS: Record<Kind, readonly string[]> = {
  'fleetvisor.generic': ['temperature', 'rssi'],
  'acme.pump': ['temperature', 'flow', 'pressure'],
  'acme.meter': ['power', 'voltage', 'rssi'],
};

const noArgs: Json = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  properties: {},
  additionalProperties: false,
};
const genericActions: ActionView[] = [
  {
    name: 'connect',
    description: 'Connect to the device',
    destructive: false,
    target: 'event',
    argsSchema: noArgs,
  },
  {
    name: 'ping',
    description: 'Ask the device to answer',
    destructive: false,
    target: 'command',
    argsSchema: noArgs,
  },
  {
    name: 'reboot',
    description: 'Reboot the device',
    destructive: true,
    target: 'command',
    argsSchema: noArgs,
  },
  {
    name: 'identify',
    description: 'Blink the device’s light so someone on site can find it',
    destructive: false,
    target: 'command',
    argsSchema: {
      type: 'object',
      properties: { seconds: { type: 'integer', minimum: 1, maximum: 300, default: 5 } },
      required: ['seconds'],
      additionalProperties: false,
    },
  },
  {
    name: 'setInterval',
    description: 'Set how often the device reports telemetry',
    destructive: false,
    target: 'command',
    argsSchema: {
      type: 'object',
      properties: { ms: { type: 'integer', minimum: 100, maximum: 3_600_000 } },
      required: ['ms'],
      additionalProperties: false,
    },
  },
  {
    name: 'setConfig',
    description: 'Merge settings into the device’s configuration',
    destructive: false,
    target: 'command',
    argsSchema: {
      type: 'object',
      propertyNames: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
      additionalProperties: {},
    },
  },
];
const KINDS: Results['kinds'] = [
  { kind: 'fleetvisor.generic', title: 'Fleetvisor protocol device', actions: genericActions },
  {
    kind: 'acme.pump',
    title: 'ACME circulation pump',
    actions: [
      ...genericActions,
      {
        name: 'setMode',
        description: 'Set the pump’s operating mode and flow',
        destructive: false,
        target: 'command',
        argsSchema: {
          type: 'object',
          properties: {
            mode: { type: 'string', enum: ['auto', 'manual', 'off'], default: 'auto' },
            flowLpm: {
              type: 'number',
              minimum: 0,
              maximum: 120,
              default: 40,
              description: 'litres per minute',
            },
            purge: { type: 'boolean', default: false },
          },
          required: ['mode', 'flowLpm', 'purge'],
          additionalProperties: false,
        },
      },
    ],
  },
  {
    kind: 'acme.meter',
    title: 'ACME energy meter',
    actions: [
      ...genericActions,
      {
        name: 'calibrate',
        description: 'Calibrate against a reference load',
        destructive: true,
        target: 'command',
        argsSchema: {
          type: 'object',
          properties: {
            offsetW: { type: 'number', minimum: -50, maximum: 50, default: 0 },
            reference: { type: 'string', minLength: 1, maxLength: 40, default: 'lab-ref-1' },
          },
          required: ['offsetW', 'reference'],
          additionalProperties: false,
        },
      },
    ],
  },
];

// The host describes `after` transitions as `after <delay name>` and targets as joined paths.
const after = (delay: string) => `after ${delay}`;
const MACHINE: MachineView = {
  id: 'device',
  states: [
    {
      path: 'disconnected',
      initial: true,
      transitions: [{ event: 'CONNECT', target: 'connecting' }],
      children: [],
    },
    {
      path: 'connecting',
      initial: false,
      transitions: [
        { event: after('connectTimeout'), target: 'disconnected' },
        { event: 'HELLO', target: 'connected' },
        { event: 'LINK_DOWN', target: 'disconnected' },
        { event: 'DISCONNECT', target: 'disconnected' },
      ],
      children: [],
    },
    {
      path: 'connected',
      initial: false,
      transitions: [
        { event: 'HELLO', target: null },
        { event: 'LIVENESS_TIMEOUT', target: 'disconnected' },
        { event: 'LINK_DOWN', target: 'disconnected' },
        { event: 'DISCONNECT', target: 'disconnected' },
      ],
      children: [],
    },
  ],
};

/** Small deterministic PRNG (mulberry32). */
function createRandom(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  // FNV alone leaves neighbouring inputs correlated; murmur's finalizer spreads them.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

/** The value of a metric at a time: smooth, per-device, the same for history and live points. */
function signal(id: string, metric: string, at: number): number {
  const phase = hash(`${id}/${metric}`) * Math.PI * 2;
  // Value noise: random per 4 s step, smoothly interpolated between steps.
  const step = at / 4_000;
  const i = Math.floor(step);
  const f = step - i;
  const smooth = f * f * (3 - 2 * f);
  const n0 = hash(`${id}/${metric}/${i}`);
  const n1 = hash(`${id}/${metric}/${i + 1}`);
  const jitter = n0 + (n1 - n0) * smooth - 0.5;
  const slow = Math.sin(at / 600_000 + phase);
  const fast = Math.sin(at / 23_000 + phase * 3);
  switch (metric) {
    case 'temperature':
      return 38 + 6 * slow + 1.5 * fast + jitter;
    case 'rssi':
      return -62 + 8 * slow + 3 * jitter;
    case 'flow':
      return Math.max(0, 42 + 18 * slow + 6 * fast + 2 * jitter);
    case 'pressure':
      return 2.4 + 0.4 * slow + 0.15 * fast + 0.05 * jitter;
    case 'power':
      return Math.max(0, 1200 + 700 * slow + 250 * fast + 60 * jitter);
    case 'voltage':
      return 230 + 3 * slow + 1.2 * jitter;
    default:
      return slow;
  }
}

const ok = <T>(value: T): Envelope<T> => ({ ok: true, value });
const fail = <T>(code: string, message: string): Envelope<T> => ({ ok: false, error: { code, message } });

export function createFakeClient(options: FakeFleetOptions): TypedClient {
  const random = createRandom(options.seed ?? 7);
  const tickMs = options.tickMs ?? 100;
  const reportEveryMs =
    options.telemetryHz !== undefined && options.telemetryHz > 0
      ? Math.max(100, Math.round(1_000 / options.telemetryHz))
      : TELEMETRY_EVERY_MS;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  let pidCounter = 100;
  const nextPid = () => ++pidCounter;
  const startedAt = Date.now();

  // ---- the fleet ------------------------------------------------------------------------------
  const devices = new Map<string, FakeDevice>();
  const order: string[] = [];
  const kindsCycle: Kind[] = ['acme.pump', 'acme.meter', 'fleetvisor.generic', 'acme.pump', 'acme.meter'];
  for (let i = 1; i <= options.devices; i++) {
    const kind = kindsCycle[i % kindsCycle.length]!;
    const prefix = kind === 'acme.pump' ? 'pump' : kind === 'acme.meter' ? 'meter' : 'node';
    const id = `${prefix}-${String(i).padStart(4, '0')}`;
    const site = pick(SITES);
    const now = Date.now();
    const r = random();
    const failed = random() < 0.015;
    // A device whose supervisor gave up stays in the state it crashed in, with its link gone.
    const state = failed || r >= 0.86 ? 'disconnected' : r < 0.8 ? 'connected' : 'connecting';
    const firmware = pick(FIRMWARES.slice(0, 3));
    // One name with markup in it: device strings must show as text, never as HTML.
    const name =
      i === 7 ? 'Pump <b>7</b> <img src=x onerror=alert(1)>' : `${capitalize(prefix)} ${i} · ${site}`;
    const device: FakeDevice = {
      row: {
        id,
        name,
        kind,
        tags: [site, ...(random() < 0.15 ? ['critical'] : []), ...(random() < 0.3 ? ['pilot'] : [])],
        health: failed ? 'failed' : 'running',
        state,
        stateEnteredAt: now - Math.floor(random() * 3_600_000),
        link: linkFor(state, now),
        firmware: state === 'disconnected' && random() < 0.3 ? null : firmware,
        lastSeen:
          state === 'disconnected'
            ? now - Math.floor(random() * 7_200_000)
            : now - Math.floor(random() * 4000),
        restarts: failed ? 4 : random() < 0.1 ? Math.floor(random() * 3) + 1 : 0,
        drift: 0,
        failure: failed
          ? {
              code: 'intensity',
              message: 'restarted 3 times in 5 s; last exit: TypeError: cannot read reading.value',
            }
          : null,
        timers: [],
      },
      pid: nextPid(),
      supervisorPid: nextPid(),
      reconcilerPid: nextPid(),
      createdAt: now - 3 * 86_400_000,
      desiredFirmware: random() < 0.08 ? '1.5.1' : firmware,
      reportIntervalMs: reportEveryMs,
      nextMoveAt: now + moveDelay(state),
      nextTelemetryAt: now + Math.floor(random() * reportEveryMs),
      transitions: [],
      commands: [],
      restartTimes: [],
      processStatus: failed ? 'failed' : 'running',
    };
    device.row = withDerived(device, now);
    devices.set(id, device);
    order.push(id);
  }

  // Some history, so the event log is not empty on the first look.
  const past: { at: number; deviceId: string; from: string; to: string }[] = [];
  for (const id of order) {
    const device = devices.get(id)!;
    if (random() < 0.08) {
      const to = device.row.state;
      const from = to === 'connected' ? 'connecting' : to === 'connecting' ? 'disconnected' : 'connected';
      past.push({ at: device.row.stateEnteredAt, deviceId: id, from, to });
      device.transitions.push({ at: device.row.stateEnteredAt, from, to });
    }
  }
  past.sort((a, b) => a.at - b.at);

  function capitalize(s: string) {
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  function linkFor(state: string, now: number): DeviceRow['link'] {
    const up = state === 'connected';
    return {
      up,
      via: up || state === 'connecting' ? (random() < 0.85 ? 'mqtt' : 'serial:/dev/ttyUSB0') : null,
      since: now - Math.floor(random() * 600_000),
      reason: up
        ? null
        : state === 'connecting'
          ? 'connecting'
          : pick(['no heartbeat', 'link down', 'broker kicked the client']),
    };
  }

  function moveDelay(state: string): number {
    if (state === 'connecting') return 1_000 + random() * 14_000; // sometimes past the 10 s timeout
    if (state === 'disconnected') return 5_000 + random() * 60_000;
    return 30_000 + random() * 600_000;
  }

  function timersFor(device: FakeDevice, now: number): TimerView[] {
    const { state, stateEnteredAt, lastSeen } = device.row;
    if (device.row.health === 'failed') return [];
    if (state === 'connecting')
      return [
        {
          kind: 'after',
          key: 'xstate.after.connectTimeout.device.connecting',
          event: 'xstate.after.connectTimeout.device.connecting',
          deadline: stateEnteredAt + CONNECT_TIMEOUT_MS,
          delayMs: CONNECT_TIMEOUT_MS,
        },
      ];
    const timers: TimerView[] = [];
    if (state === 'connected') {
      const from = Math.max(lastSeen ?? now, now - LIVENESS_TIMEOUT_MS + 1_000);
      timers.push({
        kind: 'named',
        key: 'liveness',
        event: 'LIVENESS_TIMEOUT',
        deadline: from + LIVENESS_TIMEOUT_MS,
        delayMs: LIVENESS_TIMEOUT_MS,
      });
    }
    return timers;
  }

  function withDerived(device: FakeDevice, now: number): DeviceRow {
    const drift = device.row.firmware !== null && device.row.firmware !== device.desiredFirmware ? 1 : 0;
    const row = { ...device.row, drift };
    return { ...row, timers: timersFor({ ...device, row }, now) };
  }

  // ---- push stream ----------------------------------------------------------------------------
  const listeners = new Set<(message: PushMessage) => void>();
  let seq = 0;
  const changed = new Set<string>();
  const pendingEvents: EventView[] = [];
  const pendingTelemetry: TelemetryPoint[] = [];
  const eventLog: EventView[] = [];
  let eventSeq = 0;
  let treeDirty = false;
  let lastTreeAt = 0;
  let lastStatsAt = 0;
  let telemetryCount = 0;
  const ingestWindow: { at: number; n: number }[] = [];
  let totalRestarts = 0;
  const latencies: number[] = [];
  let timer: ReturnType<typeof setInterval> | null = null;
  let brokerConnected = true;

  for (const p of past.slice(-2_000))
    eventLog.push({
      seq: ++eventSeq,
      at: p.at,
      deviceId: p.deviceId,
      kind: 'device.transition',
      data: { from: p.from, to: p.to },
    });

  function emitEvent(deviceId: string | null, kind: string, data: Json, at = Date.now()) {
    const event: EventView = { seq: ++eventSeq, at, deviceId, kind, data };
    eventLog.push(event);
    if (eventLog.length > EVENT_LOG) eventLog.splice(0, eventLog.length - EVENT_LOG);
    pendingEvents.push(event);
  }

  function enter(device: FakeDevice, to: string, now: number, reason?: string) {
    const from = device.row.state;
    if (from === to) return;
    device.transitions.push({ at: now, from, to });
    if (device.transitions.length > 30) device.transitions.shift();
    const link =
      to === 'connected'
        ? { ...device.row.link, up: true, via: device.row.link.via ?? 'mqtt', reason: null }
        : device.row.link;
    device.row = { ...device.row, state: to, stateEnteredAt: now, link };
    if (to === 'disconnected')
      device.row = {
        ...device.row,
        link: { up: false, via: null, since: now, reason: reason ?? 'link down' },
      };
    if (to === 'connected')
      device.row = {
        ...device.row,
        link: { up: true, via: device.row.link.via ?? 'mqtt', since: now, reason: null },
        lastSeen: now,
      };
    device.row = withDerived(device, now);
    device.nextMoveAt = now + moveDelay(to);
    changed.add(device.row.id);
    treeDirty = true;
    emitEvent(device.row.id, 'device.transition', { from, to, ...(reason ? { reason } : {}) }, now);
    if (from !== 'disconnected' && to === 'disconnected')
      emitEvent(device.row.id, 'link.down', { reason: reason ?? 'link down' }, now);
    if (to === 'connected') emitEvent(device.row.id, 'link.up', { via: device.row.link.via }, now);
  }

  function move(device: FakeDevice, now: number) {
    const s = device.row.state;
    if (s === 'disconnected') enter(device, 'connecting', now);
    else if (s === 'connecting') {
      if (now - device.row.stateEnteredAt >= CONNECT_TIMEOUT_MS)
        enter(device, 'disconnected', now, 'connect timed out');
      else {
        device.row = { ...device.row, firmware: device.row.firmware ?? pick(FIRMWARES.slice(0, 3)) };
        enter(device, 'connected', now);
      }
    } else if (s === 'connected') enter(device, 'disconnected', now, pick(['no heartbeat', 'link down']));
  }

  function tick() {
    const now = Date.now();
    // Timers that fire: a connect that took too long.
    for (const id of order) {
      const device = devices.get(id)!;
      if (device.row.health === 'failed' || device.processStatus !== 'running') continue;
      if (now >= device.nextMoveAt) move(device, now);
      else if (device.row.state === 'connecting' && now - device.row.stateEnteredAt >= CONNECT_TIMEOUT_MS)
        enter(device, 'disconnected', now, 'connect timed out');
      if (now >= device.nextTelemetryAt) {
        device.nextTelemetryAt = now + device.reportIntervalMs;
        if (device.row.link.up) {
          for (const metric of METRICS[device.row.kind as Kind] ?? []) {
            pendingTelemetry.push({ id, metric, at: now, value: round(signal(id, metric, now)) });
            telemetryCount++;
          }
          device.row = { ...device.row, lastSeen: now };
          device.row = { ...device.row, timers: timersFor(device, now) };
          changed.add(id);
        }
      }
    }
    ingestWindow.push({ at: now, n: telemetryCount });
    telemetryCount = 0;
    while (ingestWindow.length > 0 && ingestWindow[0]!.at < now - 10_000) ingestWindow.shift();

    const diff: { -readonly [K in keyof Diff]: Diff[K] } = {
      type: 'diff',
      seq: ++seq,
      at: now,
      devices: [...changed].map((id) => devices.get(id)?.row).filter((r): r is DeviceRow => r !== undefined),
      removed: [],
      telemetry: pendingTelemetry.splice(0),
      events: pendingEvents.splice(0),
    };
    changed.clear();
    if (treeDirty && now - lastTreeAt >= 1_000) {
      diff.tree = buildTree();
      treeDirty = false;
      lastTreeAt = now;
    }
    if (now - lastStatsAt >= 1_000) {
      diff.stats = buildStats(now);
      lastStatsAt = now;
    }
    for (const listener of [...listeners]) listener(diff);
  }

  function round(v: number) {
    return Math.round(v * 100) / 100;
  }

  // ---- tree -----------------------------------------------------------------------------------
  const infraPids = { app: 1, store: 2, links: 3, mqtt: 4, serial: 5, serialPort: 6, outbox: 7, devices: 8 };
  const infraRestarts: Record<string, number> = {};
  const infraStatus: Record<string, TreeNode['status']> = {};
  const subtreeCache = new Map<string, { version: DeviceRow; status: string; node: TreeNode }>();

  function deviceSubtree(device: FakeDevice): TreeNode {
    const cached = subtreeCache.get(device.row.id);
    if (cached && cached.version === device.row && cached.status === device.processStatus) return cached.node;
    const id = device.row.id;
    const key = `fleetvisor/devices/${id}`;
    const failed = device.row.health === 'failed' || device.processStatus === 'failed';
    const now = Date.now();
    device.restartTimes = device.restartTimes.filter((t) => t > now - 5_000);
    const node: TreeNode = {
      key,
      pid: failed ? null : device.supervisorPid,
      name: `device:${id}`,
      childId: id,
      type: 'supervisor',
      status: failed ? 'failed' : device.processStatus === 'restarting' ? 'restarting' : 'running',
      restartType: 'transient',
      restarts: device.row.restarts,
      strategy: 'oneForAll',
      intensity: {
        restartsInWindow: failed ? 3 : device.restartTimes.length,
        maxRestarts: 3,
        periodMs: 5_000,
      },
      deviceId: id,
      children: [
        {
          key: `${key}/machine`,
          pid: failed || device.processStatus === 'restarting' ? null : device.pid,
          name: 'machine',
          childId: 'machine',
          type: 'worker',
          status: failed ? 'stopped' : device.processStatus,
          restartType: 'permanent',
          restarts: device.row.restarts,
          deviceId: id,
          state: device.row.state,
        },
        {
          key: `${key}/reconciler`,
          pid: failed ? null : device.reconcilerPid,
          name: 'reconciler',
          childId: 'reconciler',
          type: 'worker',
          status: failed ? 'stopped' : 'running',
          restartType: 'permanent',
          restarts: 0,
          deviceId: id,
        },
      ],
    };
    subtreeCache.set(id, { version: device.row, status: device.processStatus, node });
    return node;
  }

  function infra(
    name: keyof typeof infraPids,
    key: string,
    rest: Omit<TreeNode, 'key' | 'pid' | 'name' | 'childId' | 'status' | 'restarts'>,
  ): TreeNode {
    const status = infraStatus[key] ?? 'running';
    return {
      key,
      pid: status === 'restarting' ? null : infraPids[name],
      name,
      childId: name,
      status,
      restarts: infraRestarts[key] ?? 0,
      ...rest,
    };
  }

  function buildTree(): TreeNode {
    return infra('app', 'fleetvisor', {
      type: 'app',
      strategy: 'oneForOne',
      intensity: { restartsInWindow: 0, maxRestarts: 5, periodMs: 10_000 },
      children: [
        infra('store', 'fleetvisor/store', { type: 'worker', restartType: 'permanent' }),
        infra('links', 'fleetvisor/links', {
          type: 'supervisor',
          restartType: 'permanent',
          strategy: 'oneForOne',
          intensity: {
            restartsInWindow: infraRestarts['fleetvisor/links/mqtt'] ? 1 : 0,
            maxRestarts: 10,
            periodMs: 60_000,
          },
          children: [
            infra('mqtt', 'fleetvisor/links/mqtt', { type: 'worker', restartType: 'permanent' }),
            infra('serial', 'fleetvisor/links/serial', {
              type: 'supervisor',
              restartType: 'permanent',
              strategy: 'oneForOne',
              intensity: { restartsInWindow: 0, maxRestarts: 5, periodMs: 30_000 },
              children: [
                infra('serialPort', 'fleetvisor/links/serial/ttyUSB0', {
                  type: 'worker',
                  restartType: 'transient',
                }),
              ],
            }),
          ],
        }),
        infra('outbox', 'fleetvisor/outbox', { type: 'worker', restartType: 'permanent' }),
        infra('devices', 'fleetvisor/devices', {
          type: 'supervisor',
          restartType: 'permanent',
          strategy: 'oneForOne',
          intensity: { restartsInWindow: 0, maxRestarts: 1000, periodMs: 60_000 },
          children: order.map((id) => deviceSubtree(devices.get(id)!)),
        }),
      ],
    });
  }

  function findByPid(pid: number): { node: TreeNode; device?: FakeDevice; infraKey?: string } | null {
    for (const [name, p] of Object.entries(infraPids)) {
      if (p !== pid) continue;
      const key = infraKeyOf(name as keyof typeof infraPids);
      return { node: { key } as TreeNode, infraKey: key };
    }
    for (const device of devices.values())
      if (device.pid === pid || device.supervisorPid === pid || device.reconcilerPid === pid)
        return { node: { key: device.row.id } as TreeNode, device };
    return null;
  }

  function infraKeyOf(name: keyof typeof infraPids): string {
    return {
      app: 'fleetvisor',
      store: 'fleetvisor/store',
      links: 'fleetvisor/links',
      mqtt: 'fleetvisor/links/mqtt',
      serial: 'fleetvisor/links/serial',
      serialPort: 'fleetvisor/links/serial/ttyUSB0',
      outbox: 'fleetvisor/outbox',
      devices: 'fleetvisor/devices',
    }[name];
  }

  // ---- stats and health -----------------------------------------------------------------------
  function buildStats(now: number): SystemStats {
    let online = 0;
    let failed = 0;
    for (const d of devices.values()) {
      if (d.row.link.up) online++;
      if (d.row.health === 'failed') failed++;
    }
    const received = ingestWindow.reduce((sum, w) => sum + w.n, 0);
    const span = Math.max(1, Math.min(10, (now - startedAt) / 1000));
    const sorted = [...latencies].sort((a, b) => a - b);
    const q = (p: number) =>
      sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
    return {
      at: now,
      devices: { total: devices.size, online, failed },
      processes: devices.size * 3 + 8,
      ingestRate: Math.round(received / span),
      restarts: totalRestarts,
      commandLatencyMs: {
        p50: q(0.5) ?? 12 + random() * 4,
        p95: q(0.95) ?? 48 + random() * 10,
        p99: q(0.99) ?? 110 + random() * 40,
      },
      queues: {
        outbox: [...devices.values()].reduce(
          (n, d) => n + d.commands.filter((c) => c.status === 'pending').length,
          0,
        ),
        telemetryWrites: Math.floor(random() * 40),
        events: Math.floor(random() * 5),
      },
      broker: {
        url: 'mqtt://127.0.0.1:1883',
        connected: brokerConnected,
        embedded: true,
        refused: { connect: 0, publish: 0, subscribe: 0 },
      },
      dataLoss: { total: 0, byCause: {} },
      duplicatesIgnored: 0,
      heapUsedBytes: Math.floor(96e6 + devices.size * 4_000 + Math.sin(now / 20_000) * 8e6),
    };
  }

  // ---- details --------------------------------------------------------------------------------
  function detailOf(device: FakeDevice): DeviceDetail {
    const row = device.row;
    const kind = KINDS.find((k) => k.kind === row.kind)!;
    return {
      ...row,
      attributes: {
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        livenessTimeoutMs: LIVENESS_TIMEOUT_MS,
      },
      spec: { firmware: device.desiredFirmware, reportIntervalMs: device.reportIntervalMs },
      status: {
        firmware: row.firmware,
        reportIntervalMs: device.reportIntervalMs,
        slot: 'A',
        uptimeS: Math.floor((Date.now() - device.createdAt) / 1000),
      },
      driftItems:
        row.firmware !== null && row.firmware !== device.desiredFirmware
          ? [{ field: 'firmware', desired: device.desiredFirmware, reported: row.firmware }]
          : [],
      machine: MACHINE,
      transitions: [...device.transitions].reverse(),
      metrics: METRICS[row.kind as Kind] ?? [],
      actions: kind.actions,
      openCommands: device.commands.filter((c) => c.status === 'pending' || c.status === 'sent'),
    };
  }

  function buckets(
    id: string,
    metric: string,
    fromMs: number,
    toMs: number,
    count: number,
    createdAt: number,
  ): Bucket[] {
    const out: Bucket[] = [];
    const width = (toMs - fromMs) / count;
    const now = Date.now();
    for (let i = 0; i < count; i++) {
      const start = Math.floor(fromMs + i * width);
      if (start < createdAt || start > now) continue;
      const samples = 4;
      let min = Number.POSITIVE_INFINITY;
      let max = Number.NEGATIVE_INFINITY;
      let sum = 0;
      for (let k = 0; k < samples; k++) {
        const v = round(signal(id, metric, start + (k * width) / samples));
        min = Math.min(min, v);
        max = Math.max(max, v);
        sum += v;
      }
      out.push({
        start,
        count: Math.max(1, Math.round(width / TELEMETRY_EVERY_MS)),
        min,
        max,
        avg: round(sum / samples),
      });
    }
    return out;
  }

  function act(ids: readonly string[], action: string, args: Json): ActResult[] {
    const now = Date.now();
    return ids.map((id): ActResult => {
      const device = devices.get(id);
      if (!device) return { id, ok: false, error: { code: 'notFound', message: `no device '${id}'` } };
      const view = KINDS.find((k) => k.kind === device.row.kind)!.actions.find((a) => a.name === action);
      if (!view)
        return {
          id,
          ok: false,
          error: { code: 'badRequest', message: `${device.row.kind} has no action '${action}'` },
        };
      if (device.row.health === 'failed')
        return {
          id,
          ok: false,
          error: { code: 'unavailable', message: 'device is failed: restart it first' },
        };
      if (view.target === 'event') {
        const s = device.row.state;
        const allowed: Record<string, (state: string) => string | null> = {
          connect: (st) => (st === 'disconnected' ? 'connecting' : null),
          disconnect: (st) => (st === 'disconnected' ? null : 'disconnected'),
        };
        const to = allowed[action]?.(s) ?? null;
        if (to === null)
          return {
            id,
            ok: false,
            error: { code: 'conflict', message: `'${action}' is not accepted in state ${s}` },
          };
        enter(device, to, now, action === 'disconnect' ? 'operator' : undefined);
        return { id, ok: true, state: to };
      }
      const commandId = `c-${Math.floor(random() * 1e9).toString(36)}`;
      const online = device.row.link.up;
      const command: MutableCommand = {
        commandId,
        deviceId: id,
        action,
        args,
        actor: 'operator',
        status: online ? 'sent' : 'pending',
        requestedAt: now,
        completedAt: null,
        expiresAt: now + 300_000,
        result: null,
        error: null,
      };
      device.commands.push(command);
      if (device.commands.length > 20) device.commands.shift();
      emitEvent(id, 'command.sent', { commandId, action, args });
      if (online) {
        const latency = 8 + random() * 60;
        setTimeout(() => {
          // Mostly answered; now and then the device refuses, as real ones do.
          const refused = random() < 0.05;
          command.status = refused ? 'failed' : 'succeeded';
          command.completedAt = Date.now();
          if (refused) command.error = { code: 'busy', message: 'the device is busy with another command' };
          else command.result = { ok: true };
          latencies.push(latency);
          if (latencies.length > 500) latencies.shift();
          emitEvent(id, 'command.replied', { commandId, action, latencyMs: Math.round(latency) });
        }, latency);
      }
      return { id, ok: true, commandId, commandStatus: command.status };
    });
  }

  function kill(pid: number): Envelope<{ killed: number }> {
    const found = findByPid(pid);
    if (!found) return fail('notFound', `no process <${pid}>`);
    const now = Date.now();
    totalRestarts++;
    if (found.device) {
      const device = found.device;
      device.processStatus = 'restarting';
      device.restartTimes.push(now);
      emitEvent(device.row.id, 'process.exit', { pid, reason: 'killed' });
      treeDirty = true;
      lastTreeAt = 0;
      setTimeout(() => {
        device.processStatus = 'running';
        device.pid = pid === device.pid ? nextPid() : device.pid;
        device.reconcilerPid = pid === device.reconcilerPid ? nextPid() : device.reconcilerPid;
        device.row = { ...device.row, restarts: device.row.restarts + 1 };
        changed.add(device.row.id);
        treeDirty = true;
        lastTreeAt = 0;
        emitEvent(device.row.id, 'process.restarted', { pid: device.pid, restarts: device.row.restarts });
      }, 700);
    } else if (found.infraKey) {
      const key = found.infraKey;
      infraStatus[key] = 'restarting';
      if (key === 'fleetvisor/links/mqtt') brokerConnected = false;
      emitEvent(null, 'process.exit', { pid, key, reason: 'killed' });
      treeDirty = true;
      lastTreeAt = 0;
      setTimeout(() => {
        infraStatus[key] = 'running';
        infraRestarts[key] = (infraRestarts[key] ?? 0) + 1;
        brokerConnected = true;
        treeDirty = true;
        lastTreeAt = 0;
        emitEvent(null, 'process.restarted', { key });
      }, 900);
    }
    return ok({ killed: pid });
  }

  // ---- the client -----------------------------------------------------------------------------
  const handlers: { [M in Method]: (args: ArgsOf<M>) => Envelope<Results[M]> } = {
    tree: () => ok(buildTree()),
    devices: (a) => {
      const rows = order
        .map((id) => devices.get(id)!.row)
        .filter(
          (r) =>
            (!a.text || r.id.includes(a.text) || r.name.toLowerCase().includes(a.text.toLowerCase())) &&
            (!a.kind || r.kind === a.kind) &&
            (!a.state || r.state === a.state) &&
            (!a.tag || r.tags.includes(a.tag)) &&
            (!a.health || r.health === a.health),
        );
      const offset = a.offset ?? 0;
      return ok({ items: rows.slice(offset, offset + (a.limit ?? 100)), total: rows.length, next: null });
    },
    device: (a) => {
      const device = devices.get(a.id);
      return device ? ok(detailOf(device)) : fail('notFound', `no device '${a.id}'`);
    },
    // The inspector needs the real host's machines (src/host/api/inspect.ts): a read-only outline here.
    deviceInspect: (a) => {
      const device = devices.get(a.id);
      if (!device) return fail('notFound', `no device '${a.id}'`);
      return ok({
        id: a.id,
        state: device.row.state,
        running: device.row.health === 'running',
        context: { firmware: device.row.firmware, attempts: 0, lastError: null },
        events: [],
        accepts: [],
        lastEvents: [],
        recordedSince: device.createdAt,
        maxPayloadChars: 4096,
      });
    },
    sendEvent: () => fail('notAllowed', 'the design preview has no state machines to send to'),
    telemetry: (a) => {
      const device = devices.get(a.id);
      if (!device) return fail('notFound', `no device '${a.id}'`);
      return ok(buckets(a.id, a.metric, a.fromMs, a.toMs, a.buckets ?? 300, device.createdAt));
    },
    events: (a) => {
      let items = eventLog.filter(
        (e) =>
          (a.id === undefined || e.deviceId === a.id) &&
          (a.kind === undefined || e.kind.startsWith(a.kind)) &&
          (a.fromMs === undefined || e.at >= a.fromMs) &&
          (a.toMs === undefined || e.at <= a.toMs) &&
          (a.cursor === undefined || e.seq < a.cursor),
      );
      items = items.reverse();
      const limit = a.limit ?? 100;
      const page = items.slice(0, limit);
      return ok({
        items: page,
        total: items.length,
        next: items.length > limit ? page[page.length - 1]!.seq : null,
      });
    },
    commands: (a) => {
      const all = [...devices.values()]
        .flatMap((d) => d.commands)
        .filter((c) => !a.id || c.deviceId === a.id);
      return ok({ items: all.slice(-(a.limit ?? 100)).reverse(), total: all.length, next: null });
    },
    health: () =>
      ok([
        { name: 'store', ok: true, detail: 'SQLite WAL, 3 migrations, 12 ms last batch' },
        {
          name: 'broker',
          ok: brokerConnected,
          detail: brokerConnected ? 'embedded aedes on 127.0.0.1:1883' : 'reconnecting',
        },
        {
          name: 'links.mqtt',
          ok: brokerConnected,
          detail: `${Math.round(devices.size * 0.85)} devices over MQTT`,
        },
        { name: 'links.serial', ok: true, detail: '1 port: /dev/ttyUSB0' },
        { name: 'outbox', ok: true, detail: 'no command older than 5 min' },
        { name: 'devices', ok: true, detail: `${devices.size} supervised` },
      ]),
    stats: () => ok(buildStats(Date.now())),
    kinds: () => ok(KINDS),
    discovered: () =>
      ok([
        {
          id: 'unknown-42',
          convention: 'own',
          kind: 'fleetvisor.generic',
          firmware: '1.4.2',
          via: 'mqtt',
          firstSeen: startedAt,
          lastSeen: Date.now(),
          reason: 'not in the fleet',
        },
      ]),
    act: (a) => ok(act(a.ids, a.action, (a.args ?? {}) as Json)),
    restartDevice: (a) => {
      const device = devices.get(a.id);
      if (!device) return fail('notFound', `no device '${a.id}'`);
      device.row = { ...device.row, health: 'running', failure: null, restarts: device.row.restarts + 1 };
      device.processStatus = 'running';
      enter(device, 'connecting', Date.now());
      return ok(device.row);
    },
    killProcess: (a) => kill(a.pid),
    restartChild: (a) => ok({ pid: a.supervisorPid + 1 }),
    terminateChild: (a) => ok({ terminated: a.childId }),
    // The observer panel needs the real host's processes (src/host/api/process-info.ts); the tree row's facts show alone.
    processInfo: () => fail('unavailable', 'the design preview has no processes to inspect'),
    adopt: (a) => fail('notFound', `no discovered device '${a.id}'`),
    adoptBulk: () => fail('unavailable', 'the design preview adopts nothing'),
    adoptBulkStatus: () => ok(null),
    adoptBulkCancel: () => fail('notFound', 'no bulk adoption is running'),
    cancelCommand: (a) => {
      for (const device of devices.values())
        for (const c of device.commands)
          if (c.commandId === a.commandId && (c.status === 'pending' || c.status === 'sent')) {
            c.status = 'cancelled';
            return ok({ cancelled: true });
          }
      return ok({ cancelled: false });
    },
    setDemo: (a) => ok({ on: a.on }),
    firmwareList: () => ok({ images: [], unreadable: [] }),
    firmwareImport: () => ({
      ok: false,
      error: { code: 'unavailable', message: 'the design preview keeps no firmware images' },
    }),
    firmwareUpdate: () => fail('unavailable', 'the design preview keeps no firmware images'),
    firmwareJobs: () => ok([]),
    firmwareCancel: (a) => fail('noJob', `no firmware update of '${a.deviceId}'`),
    rolloutCreate: () => fail('unavailable', 'the design preview keeps no firmware images'),
    rollouts: () => ok([]),
    cluster: () => ok(null),
    rolloutPause: (a) => fail('notFound', `no rollout '${a.id}'`),
    rolloutResume: (a) => fail('notFound', `no rollout '${a.id}'`),
    rolloutCancel: (a) => fail('notFound', `no rollout '${a.id}'`),
    rolloutDelete: (a) => fail('notFound', `no stored rollout '${a.id}'`),
    settings: () => fail('unavailable', 'the preview has no settings file'),
    settingsSave: () => fail('unavailable', 'the preview has no settings file'),
    // Alarms need the real host (src/alarms); the design preview has none.
    alarms: () =>
      ok({ items: [], next: null, counts: { active: 0, unacked: 0, shelved: 0, bySeverity: {} } }),
    alarmAck: (a) => fail('notFound', `no alarm ${a.id}`),
    alarmShelve: (a) => fail('notFound', `no alarm ${a.id}`),
    alarmRules: () => ok([]),
    alarmRuleSet: () => fail('unavailable', 'the design preview keeps no alarm rules'),
    alarmRuleDelete: (a) => fail('notFound', `no alarm rule '${a.id}'`),
    // Managing devices needs the real host (src/host/api/devices-admin.ts); the fake fleet is fixed.
    deviceAdd: () => fail('notAllowed', 'the fake fleet is fixed'),
    deviceEdit: () => fail('notAllowed', 'the fake fleet is fixed'),
    deviceRemove: () => fail('notAllowed', 'the fake fleet is fixed'),
    modbusTestRead: () => fail('unavailable', 'no Modbus bridge in the fake host'),
    devicesExport: (a) => ok({ format: a.format ?? 'json', count: 0, text: '' }),
    devicesImport: () => fail('notAllowed', 'the fake fleet is fixed'),
    // What the last report said, from the same signal the pushes use.
    latestValues: (a) => {
      const names = [...new Set(Object.values(METRICS).flat())].sort();
      const values: { id: string; at: number; value: number }[] = [];
      const wanted = a.ids ? new Set(a.ids) : null;
      for (const [id, device] of devices) {
        const at = device.row.lastSeen;
        if (a.metric === undefined || at === null || (wanted && !wanted.has(id))) continue;
        if ((METRICS[device.row.kind as Kind] ?? []).includes(a.metric))
          values.push({ id, at, value: round(signal(id, a.metric, at)) });
      }
      return ok({ metrics: names, values });
    },
  };

  const delayFor = (method: Method) =>
    method === 'act' ? 250 + random() * 400 : method === 'telemetry' ? 60 : 20;

  return {
    call<M extends Method>(method: M, args: ArgsOf<M>): Promise<Envelope<Results[M]>> {
      const handler = handlers[method] as (a: ArgsOf<M>) => Envelope<Results[M]>;
      return new Promise((resolve) => setTimeout(() => resolve(handler(args)), delayFor(method)));
    },
    subscribe(listener) {
      listeners.add(listener);
      setTimeout(() => {
        if (!listeners.has(listener)) return;
        const now = Date.now();
        listener({
          type: 'snapshot',
          seq: ++seq,
          at: now,
          tree: buildTree(),
          devices: order.map((id) => devices.get(id)!.row),
          stats: buildStats(now),
        });
      }, 30);
      timer ??= setInterval(tick, tickMs);
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0 && timer !== null) {
          clearInterval(timer);
          timer = null;
        }
      };
    },
  };
}

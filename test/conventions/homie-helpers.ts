/**
 * For the Homie convention's tests: a fleet on a real SQLite file with the Homie bridge, a real
 * Homie peer (the npm `homie-device` library) in a child process it can SIGKILL, retained-message
 * cleanup for shared brokers, and store queries.
 *
 * @example
 * const app = await startHomieApp(url, { baseTopic: base });
 * const peer = await startPeer(url, { id: 'peer-1', base });
 * await waitFor(() => app.fleet.device('peer-1')?.state === 'connected', 10_000);
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connectAsync } from 'mqtt';
import type { HomieBridge, HomieConventionOptions } from '../../src/conventions/homie/homie-bridge.js';
import { homieConvention } from '../../src/conventions/homie/homie-bridge.js';
import type { Fleet } from '../../src/devices/fleet.js';
import { createFleet } from '../../src/devices/fleet.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { tempDir } from '../store/helpers.js';
import { waitFor } from '../transports/helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
export const PEER_SCRIPT = join(here, 'homie-peer.cjs');

export const FAST_RECONNECT = { initialMs: 50, maxMs: 300, jitter: 0.5, stableMs: 2000 };

/** Cleanups run after each test, last first (the test file registers `runCleanups` in afterEach). */
const cleanups: (() => unknown)[] = [];
export function onCleanup(fn: () => unknown): void {
  cleanups.push(fn);
}
export async function runCleanups(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch {
      // keep cleaning
    }
  }
}

export interface HomieApp {
  readonly runtime: Runtime;
  readonly store: SqliteStore;
  readonly fleet: Fleet;
  readonly bridge: HomieBridge;
  /** Its data file (another app started on it is this app restarted). */
  readonly file: string;
  /** Stops the bridge, the fleet and the store (also run at cleanup; once). */
  stop(): Promise<void>;
}

/** A runtime, a store in a temp dir, a fleet with the Homie kind, and the bridge on `url`. */
export async function startHomieApp(
  url: string,
  options: HomieConventionOptions = {},
  dataFile?: string,
): Promise<HomieApp> {
  let file = dataFile;
  if (!file) {
    const tmp = tempDir();
    onCleanup(tmp.cleanup);
    file = tmp.file;
  }
  const store = await openSqliteStore({ file, telemetryFlushMs: 20 });
  const runtime = createRuntime({});
  const convention = homieConvention({
    reconnect: FAST_RECONNECT,
    connectTimeoutMs: 1000,
    keepaliveMs: 5000,
    statusDelayMs: 20,
    ...options,
  });
  const fleet = createFleet({ runtime, store, kinds: convention.kinds, reconcileIntervalMs: 0 });
  await fleet.start();
  const bridge = (await convention.start({ runtime, fleet, store, broker: { url } })) as HomieBridge;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await bridge.stop();
      await fleet.stop();
      await store.close();
      runtime.dispose();
    })();
    return stopping;
  };
  onCleanup(stop);
  return { runtime, store, fleet, bridge, file, stop };
}

export interface PeerOptions {
  readonly id: string;
  /** Base topic without the trailing slash. */
  readonly base: string;
  readonly keepalive?: number;
  readonly temperature?: number;
  readonly firmware?: string;
  /** Its broker account, if the broker asks for one. */
  readonly username?: string;
  readonly password?: string;
}

/** A Homie device (homie-device 3.0.1) in a child process. */
export interface Peer {
  readonly process: ChildProcessWithoutNullStreams;
  /** Every JSON line it printed, in order. */
  readonly events: readonly Record<string, unknown>[];
  send(order: Record<string, unknown>): void;
  /** SIGKILL: no goodbye, the broker publishes its will. */
  kill(): Promise<void>;
}

export async function startPeer(url: string, options: PeerOptions): Promise<Peer> {
  const u = new URL(url);
  const config = {
    host: u.hostname,
    port: Number(u.port || 1883),
    id: options.id,
    base: `${options.base}/`,
    keepalive: options.keepalive ?? 2,
    temperature: options.temperature,
    firmware: options.firmware,
    username: options.username,
    password: options.password,
  };
  const child = spawn(process.execPath, [PEER_SCRIPT, JSON.stringify(config)], { stdio: 'pipe' });
  const events: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not ours
    }
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exited;
  };
  onCleanup(kill);
  await waitFor(
    () => events.some((e) => e.event === 'connect') || child.exitCode !== null,
    10_000,
    `homie peer ${options.id} connected`,
  );
  if (child.exitCode !== null) throw new Error(`homie peer exited (${child.exitCode}): ${stderr}`);
  return {
    process: child,
    events,
    send: (order) => child.stdin.write(`${JSON.stringify(order)}\n`),
    kill,
  };
}

/** Retained messages outlive a test on a shared broker: clears every retained topic under `<base>/<id>/`. */
export async function clearRetained(url: string, base: string, ids: readonly string[]): Promise<void> {
  const c = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 2000 }).catch(
    () => undefined,
  );
  if (!c) return;
  c.on('error', () => {});
  const topics = new Set<string>();
  c.on('message', (topic, payload, packet) => {
    if (packet.retain && payload.length > 0) topics.add(topic);
  });
  for (const id of ids) await c.subscribeAsync(`${base}/${id}/#`).catch(() => {});
  await new Promise((r) => setTimeout(r, 300));
  for (const topic of topics)
    await c.publishAsync(topic, Buffer.alloc(0), { qos: 1, retain: true }).catch(() => {});
  await c.endAsync(true);
}

/** A plain MQTT client, ended after the test. */
export async function rawClient(url: string) {
  const c = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
  c.on('error', () => {});
  onCleanup(() => c.endAsync(true));
  return c;
}

/** min / max / count of one metric over all time. */
export async function telemetry(
  app: HomieApp,
  id: string,
  metric: string,
): Promise<{ count: number; min: number; max: number }> {
  const buckets = await app.store.queryTelemetry(id, metric, 0, Date.now() + 60_000, 1);
  let count = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const b of buckets) {
    count += b.count;
    min = Math.min(min, b.min);
    max = Math.max(max, b.max);
  }
  return { count, min, max };
}

/** Polls until the metric has a point with exactly `value` (buckets of ~12 ms over the last 2 minutes). */
export async function waitForValue(app: HomieApp, id: string, metric: string, value: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const now = Date.now();
    const buckets = await app.store.queryTelemetry(id, metric, now - 120_000, now + 1000, 10_000);
    if (buckets.some((b) => b.min === value || b.max === value)) return;
    if (now > deadline) throw new Error(`timed out waiting for ${metric} = ${value} of ${id}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function commandStatus(app: HomieApp, commandId: string): Promise<string | undefined> {
  const page = await app.store.queryCommands({ limit: 1000 });
  const item = page.items.find((i) => i.ok && i.value.commandId === commandId);
  return item?.ok ? item.value.status : undefined;
}

export async function waitForCommand(app: HomieApp, commandId: string, status: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  let last: string | undefined;
  for (;;) {
    last = await commandStatus(app, commandId);
    if (last === status) return;
    if (Date.now() > deadline) throw new Error(`command ${commandId} is ${last}, not ${status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The `device.badMessage` events of a device: `{ code, message }`. */
export async function badMessages(app: HomieApp, id: string): Promise<{ code: string; message: string }[]> {
  await app.bridge.flush();
  const page = await app.store.queryEvents({ deviceId: id, kind: 'device.badMessage', limit: 100 });
  return page.items.flatMap((e) => (e.ok ? [e.value.data as { code: string; message: string }] : []));
}

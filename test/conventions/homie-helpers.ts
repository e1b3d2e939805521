/**
 * For the Homie convention's tests: the host with the Homie bridge (the shared rig's,
 * test/rig/links-rig.ts), a real Homie peer (the npm `homie-device` library) in a child process it
 * can SIGKILL, retained-message cleanup for shared brokers, and store queries.
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
import type { HomieBridge, HomieConventionOptions } from '../../src/conventions/homie/homie-bridge.js';
import { homieConvention } from '../../src/conventions/homie/homie-bridge.js';
import type { ConventionHost, ConventionHostOptions } from '../rig/links-rig.js';
import { clearRetainedTopics, FAST_RECONNECT, onCleanup, startConventionHost } from '../rig/links-rig.js';
import { waitFor } from '../transports/helpers.js';

export { FAST_RECONNECT, onCleanup, rawClient, runCleanups } from '../rig/links-rig.js';

const here = dirname(fileURLToPath(import.meta.url));
export const PEER_SCRIPT = join(here, 'homie-peer.cjs');

/** The host with the Homie bridge (test/rig/links-rig.ts); `file` is its data file. */
export type HomieApp = ConventionHost<HomieBridge>;

/**
 * The host with the Homie bridge on `url`: fast reconnects, a 1 s connect timeout, 5 s keepalive
 * and 20 ms status delay unless `options` say otherwise.
 */
export function startHomieApp(
  url: string,
  options: HomieConventionOptions = {},
  host: ConventionHostOptions = {},
): Promise<HomieApp> {
  const convention = homieConvention({
    reconnect: FAST_RECONNECT,
    connectTimeoutMs: 1000,
    keepaliveMs: 5000,
    statusDelayMs: 20,
    ...options,
  });
  return startConventionHost<HomieBridge>(url, convention, host);
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
  await clearRetainedTopics(
    url,
    [],
    ids.map((id) => `${base}/${id}/#`),
  );
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

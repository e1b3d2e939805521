/**
 * The shared rig of the tests that run the app's parts over a real broker (links, Homie,
 * Sparkplug): the broker matrix (the embedded aedes broker always, Mosquitto at
 * FLEETVISOR_TEST_MQTT_URL when set), cleanups run after each test, last first, and the host as
 * the app composes it for the native protocol — a store on a real SQLite file, the runtime, the
 * links and the fleet — with simulated devices whose retained messages are cleared after.
 *
 * @example
 * afterEach(runCleanups);
 * const brokers = eachBroker();
 * describe.each(brokers)('links ($name)', ({ url }) => {
 *   it('…', async () => {
 *     const app = await startLinksHost(url(), { ids: ['d1'] });
 *     await simDevice(url(), 'd1');
 *   });
 * });
 */
import type { MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Fleet } from '../../src/devices/fleet.js';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { MqttSimDevice, MqttSimDeviceOptions } from '../../src/sim/mqtt-device.js';
import { startMqttSimDevice } from '../../src/sim/mqtt-device.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import type { Links, LinksOptions } from '../../src/transports/links.js';
import { createLinks } from '../../src/transports/links.js';
import { tempDir } from '../store/helpers.js';
import { externalBrokerUrl } from '../transports/helpers.js';

export const FAST_RECONNECT = { initialMs: 50, maxMs: 300, jitter: 0.5, stableMs: 2000 };

const cleanups: (() => unknown)[] = [];

/** Runs after the current test, in reverse order of registration. */
export function onCleanup(fn: () => unknown): void {
  cleanups.push(fn);
}

/** Stops what the last test started, newest first (a test file registers it in `afterEach`). */
export async function runCleanups(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
}

export interface BrokerVariant {
  readonly name: string;
  /** Its URL, once the file's `beforeAll` has started the embedded broker. */
  readonly url: () => string;
}

/**
 * The brokers a test file runs on, for `describe.each`: the embedded aedes broker, started in
 * this file's `beforeAll` and closed in its `afterAll`, and Mosquitto when
 * FLEETVISOR_TEST_MQTT_URL is set.
 */
export function eachBroker(): BrokerVariant[] {
  const brokers: BrokerVariant[] = [];
  let embedded: EmbeddedBroker | undefined;
  brokers.push({ name: 'embedded aedes', url: () => embedded!.url });
  const external = externalBrokerUrl;
  if (external) brokers.push({ name: 'Mosquitto', url: () => external });
  beforeAll(async () => {
    embedded = await startEmbeddedBroker({ port: 0 });
  });
  afterAll(async () => {
    await embedded?.close();
  });
  return brokers;
}

export interface LinksHost {
  readonly runtime: Runtime;
  readonly store: SqliteStore;
  readonly fleet: Fleet;
  readonly links: Links;
  /** Stops the links, the fleet and the store (also run at cleanup; once). */
  stop(): Promise<void>;
}

export interface LinksHostOptions {
  /** Devices added (generic kind) before the links attach. */
  readonly ids?: readonly string[];
  /** Its data file (another host started on it is this host restarted); a temp file if not given. */
  readonly file?: string;
  readonly adopt?: 'auto' | 'manual';
  readonly commands?: LinksOptions['commands'];
  readonly livenessTimeoutMs?: number;
}

/** The host on `url` as the app composes it for the native protocol: store, runtime, links, fleet. */
export async function startLinksHost(url: string, options: LinksHostOptions = {}): Promise<LinksHost> {
  let file = options.file;
  if (file === undefined) {
    const tmp = tempDir();
    onCleanup(tmp.cleanup);
    file = tmp.file;
  }
  const store = await openSqliteStore({ file, telemetryFlushMs: 20 });
  const runtime = createRuntime({});
  const links = createLinks({
    runtime,
    store,
    mqtt: { url, reconnect: FAST_RECONNECT, connectTimeoutMs: 1000, keepaliveMs: 5000 },
    commands: { replyTimeoutMs: 5000, ...options.commands },
  });
  const fleet = createFleet({
    runtime,
    store,
    kinds: [genericDevice],
    carrier: links.carrier,
    reconcileIntervalMs: 0,
  });
  await fleet.start();
  for (const id of options.ids ?? []) {
    const r = await fleet.addDevice({
      id,
      kind: 'fleetvisor.generic',
      attributes: { livenessTimeoutMs: options.livenessTimeoutMs ?? 5000 },
    });
    expect(r.ok).toBe(true);
  }
  await links.attach(fleet, { adopt: options.adopt ?? 'manual' });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await links.stop();
    await fleet.stop();
    await store.close();
    runtime.dispose();
  };
  onCleanup(stop);
  return { runtime, store, fleet, links, stop };
}

/** A simulated device on `url` (telemetry every 200 ms unless told), its retained messages cleared after. */
export async function simDevice(
  url: string,
  id: string,
  options: Partial<MqttSimDeviceOptions> = {},
): Promise<MqttSimDevice> {
  const d = await startMqttSimDevice(url, {
    id,
    telemetryIntervalMs: 200,
    reconnectMinMs: 100,
    reconnectMaxMs: 500,
    ...options,
  });
  onCleanup(async () => {
    await d.stop();
    await clearRetained(url, id);
  });
  return d;
}

/** Retained hello/status outlive a test on a shared broker: clear them. */
export async function clearRetained(url: string, id: string): Promise<void> {
  const c = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 2000 }).catch(
    () => undefined,
  );
  if (!c) return;
  for (const ch of ['hello', 'status'])
    await c
      .publishAsync(`fleetvisor/v1/${id}/${ch}`, Buffer.alloc(0), { qos: 1, retain: true })
      .catch(() => {});
  await c.endAsync(true);
}

/** A plain MQTT 3.1.1 client on `url`, ended after the test. */
export async function rawClient(url: string): Promise<MqttClient> {
  const c = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
  c.on('error', () => {});
  onCleanup(() => c.endAsync(true));
  return c;
}

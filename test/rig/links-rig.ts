/**
 * The shared rig of the tests that run the app's parts over real links (our own protocol, Homie
 * and Sparkplug on a broker; Modbus on a serial bus): the broker matrix (the embedded aedes broker
 * always, Mosquitto at FLEETVISOR_TEST_MQTT_URL when set), cleanups run after each test, last
 * first, and the host as the app composes it — a store on a real SQLite file, the runtime and the fleet — with, for the
 * native protocol, the links and simulated devices whose retained messages are cleared after
 * ({@link startLinksHost}), or a convention's bridge ({@link startConventionHost}).
 *
 * @example
 * afterEach(runCleanups);
 * const brokers = eachBroker();
 * describe.each(brokers)('links ($name)', ({ url }) => {
 *   it('…', async () => {
 *     const app = await startLinksHost(url(), { ids: ['d1'] });
 *     await simDevice(url(), 'd1');
 *     const homie = await startConventionHost<HomieBridge>(url(), homieConvention({ baseTopic: 'h' }));
 *   });
 * });
 */
import type { MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Convention } from '../../src/conventions/convention.js';
import type { DeviceKind } from '../../src/devices/define-device.js';
import type { Fleet } from '../../src/devices/fleet.js';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import type { Clock } from '../../src/runtime/clock.js';
import type { Process } from '../../src/runtime/process.js';
import type { Logger, Runtime } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { Supervisor } from '../../src/runtime/supervisor.js';
import { startSupervisor } from '../../src/runtime/supervisor.js';
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

/**
 * Stops what the last test started, newest first (a test file registers it in `afterEach`). Every
 * cleanup runs even when one fails; the first failure is thrown after them all.
 */
export async function runCleanups(): Promise<void> {
  const failures: unknown[] = [];
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length > 0) throw failures[0];
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

/** What every host of these tests has: a store on a real SQLite file and the runtime. */
interface HostBase {
  readonly file: string;
  readonly store: SqliteStore;
  readonly runtime: Runtime;
}

/** What {@link openHostBase} is told. */
interface HostBaseOptions {
  readonly file?: string;
  readonly logs?: string[];
  readonly clock?: Clock;
}

/**
 * The store (on `file`, else a temp file removed at cleanup) and the runtime (on `clock`, the real
 * one by default; its log lines into `logs`).
 */
async function openHostBase(options: HostBaseOptions): Promise<HostBase> {
  let file = options.file;
  if (file === undefined) {
    const tmp = tempDir();
    onCleanup(tmp.cleanup);
    file = tmp.file;
  }
  const store = await openSqliteStore({ file, telemetryFlushMs: 20 });
  const runtime = createRuntime({
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.logs ? { logger: recordingLogger(options.logs) } : {}),
  });
  return { file, store, runtime };
}

/** A logger that keeps `level message` lines. */
function recordingLogger(lines: string[]): Logger {
  return {
    debug: (m) => lines.push(`debug ${m}`),
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
  };
}

/** `stop` run once however often it is called, and at cleanup. */
function stopOnceAtCleanup(stop: () => Promise<void>): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  const once = () => {
    stopping ??= stop();
    return stopping;
  };
  onCleanup(once);
  return once;
}

/** The host on `url` as the app composes it for the native protocol: store, runtime, links, fleet. */
export async function startLinksHost(url: string, options: LinksHostOptions = {}): Promise<LinksHost> {
  const { store, runtime } = await openHostBase(options);
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
  const stop = stopOnceAtCleanup(async () => {
    await links.stop();
    await fleet.stop();
    await store.close();
    runtime.dispose();
  });
  return { runtime, store, fleet, links, stop };
}

export interface ConventionHostOptions {
  /** Its data file (another host started on it is this host restarted); a temp file if not given. */
  readonly file?: string;
  /** Kinds the fleet knows besides the convention's (another convention's devices, say). */
  readonly kinds?: readonly DeviceKind[];
  /** Receives the runtime's log lines, `level message`. */
  readonly logs?: string[];
  /** The runtime's clock (a simulated one, say); the real clock by default. */
  readonly clock?: Clock;
  /**
   * The bridge as a child of a `links` supervisor (one_for_one), restarted there when it dies, as
   * the app runs it; else started on its own.
   */
  readonly supervised?: boolean;
}

export interface ConventionHost<B extends Process> extends HostBase {
  readonly fleet: Fleet;
  /** The bridge running now (another after a restart). */
  readonly bridge: B;
  /** The `links` supervisor of a `supervised` host. */
  readonly supervisor: Supervisor | undefined;
  /** Stops the bridge and starts another on the same fleet, as its supervisor would. */
  restartBridge(): Promise<void>;
  /** Stops the bridge (or its supervisor), the fleet and the store (also run at cleanup; once). */
  stop(): Promise<void>;
}

/**
 * The host with one convention, as the app composes it: store, runtime, a fleet with the
 * convention's kinds, and its bridge — on the broker at `url` (its own connection, as without the
 * MQTT link), or with no broker (`undefined`: Modbus). `B` is the convention's bridge type.
 */
export async function startConventionHost<B extends Process>(
  url: string | undefined,
  convention: Convention,
  options: ConventionHostOptions = {},
): Promise<ConventionHost<B>> {
  const base = await openHostBase(options);
  const { store, runtime } = base;
  const fleet = createFleet({
    runtime,
    store,
    kinds: [...convention.kinds, ...(options.kinds ?? [])],
    reconcileIntervalMs: 0,
  });
  await fleet.start();
  const broker = url === undefined ? undefined : { url };
  const startBridge = async () => (await convention.start({ runtime, fleet, store, broker })) as B;
  let bridge: B | undefined;
  let supervisor: Supervisor | undefined;
  if (options.supervised) {
    const sup = await startSupervisor(runtime, {
      name: 'links',
      strategy: 'oneForOne',
      children: [{ id: convention.name, start: async () => (bridge = await startBridge()) }],
    });
    if (!sup.ok) throw new Error(sup.error.message);
    supervisor = sup.value;
  } else bridge = await startBridge();
  const stop = stopOnceAtCleanup(async () => {
    await (supervisor ?? bridge)?.stop();
    await fleet.stop();
    await store.close();
    runtime.dispose();
  });
  return {
    ...base,
    fleet,
    get bridge() {
      if (!bridge) throw new Error(`the ${convention.name} bridge did not start`);
      return bridge;
    },
    supervisor,
    async restartBridge() {
      if (supervisor) {
        const r = await supervisor.restartChild(convention.name);
        if (!r.ok) throw new Error(r.error.message);
        return;
      }
      await bridge?.stop();
      bridge = await startBridge();
    },
    stop,
  };
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
  await clearRetainedTopics(
    url,
    ['hello', 'status'].map((ch) => `fleetvisor/v1/${id}/${ch}`),
  );
}

/**
 * Clears retained messages on a shared broker: the `topics` named, and those found retained under
 * the `filters` (subscribed to for 300 ms).
 */
export async function clearRetainedTopics(
  url: string,
  topics: readonly string[],
  filters: readonly string[] = [],
): Promise<void> {
  const c = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 2000 }).catch(
    () => undefined,
  );
  if (!c) return;
  c.on('error', () => {});
  const found = new Set(topics);
  if (filters.length > 0) {
    c.on('message', (topic, payload, packet) => {
      if (packet.retain && payload.length > 0) found.add(topic);
    });
    for (const filter of filters) await c.subscribeAsync(filter).catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
  }
  for (const topic of found)
    await c.publishAsync(topic, Buffer.alloc(0), { qos: 1, retain: true }).catch(() => {});
  await c.endAsync(true);
}

/** A plain MQTT 3.1.1 client on `url`, ended after the test. */
export async function rawClient(url: string): Promise<MqttClient> {
  const c = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
  c.on('error', () => {});
  onCleanup(() => c.endAsync(true));
  return c;
}

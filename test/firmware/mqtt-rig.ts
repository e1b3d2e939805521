/**
 * The host side of the firmware tests over MQTT: a real SQLite file, the fleet, the links to a
 * real broker, and firmware updates wired to the link hub; simulated devices on the same broker
 * whose retained messages are cleared after each test. Each test file registers `runCleanups`.
 */
import { connectAsync } from 'mqtt';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import type { FirmwareUpdates, UpdateJobSettings } from '../../src/firmware/firmware-updates.js';
import { createFirmwareUpdates } from '../../src/firmware/firmware-updates.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { MqttSimDevice, MqttSimDeviceOptions } from '../../src/sim/mqtt-device.js';
import { startMqttSimDevice } from '../../src/sim/mqtt-device.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { Links } from '../../src/transports/links.js';
import { createLinks } from '../../src/transports/links.js';
import type { Message } from '../../src/transports/protocol.js';
import { tempDir } from '../store/helpers.js';
import { waitFor } from '../transports/helpers.js';

const cleanups: (() => unknown)[] = [];

/** Stops what the last test started, newest first. */
export async function runCleanups(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
}

export interface Host {
  links: Links;
  updates: FirmwareUpdates;
  steps: Map<string, string[]>;
}

/** The host: store, fleet, links and firmware updates; `tamper` sits between the job and the hub. */
export async function startHost(
  url: string,
  ids: readonly string[],
  tamper?: (m: Message) => Message,
  settings: UpdateJobSettings = {},
): Promise<Host> {
  const tmp = tempDir();
  cleanups.push(tmp.cleanup);
  const store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 20 });
  const runtime = createRuntime({});
  const links = createLinks({
    runtime,
    store,
    mqtt: {
      url,
      reconnect: { initialMs: 50, maxMs: 300, jitter: 0.5, stableMs: 2000 },
      connectTimeoutMs: 1000,
    },
  });
  const fleet = createFleet({
    runtime,
    store,
    kinds: [genericDevice],
    carrier: links.carrier,
    reconcileIntervalMs: 0,
  });
  await fleet.start();
  for (const id of ids) await fleet.addDevice({ id, kind: 'fleetvisor.generic', attributes: {} });
  const steps = new Map<string, string[]>();
  const updates = createFirmwareUpdates({
    runtime,
    hub: () => {
      const hub = links.hub;
      if (!hub || !tamper) return hub;
      return { device: (id) => hub.device(id), send: (id, m) => hub.send(id, tamper(m)) };
    },
    defaults: {
      ackTimeoutMs: 1000,
      soakMs: 1500,
      rebootTimeoutMs: 10_000,
      chunkBytes: 2048,
      window: 4,
      ...settings,
    },
    onChange: (s) => {
      const seen = steps.get(s.deviceId) ?? [];
      if (seen.at(-1) !== s.step) seen.push(s.step);
      steps.set(s.deviceId, seen);
    },
  });
  await links.attach(fleet, {
    adopt: 'manual',
    onFirmwareAck: (id, ack) => updates.ack(id, ack),
    onDeviceHello: (id, hello) => updates.hello(id, hello),
  });
  cleanups.push(async () => {
    await links.stop();
    await fleet.stop();
    await store.close();
    runtime.dispose();
  });
  return { links, updates, steps };
}

export async function sim(
  url: string,
  id: string,
  options: Partial<MqttSimDeviceOptions> = {},
): Promise<MqttSimDevice> {
  const d = await startMqttSimDevice(url, {
    id,
    telemetryIntervalMs: 1000,
    reconnectMinMs: 100,
    reconnectMaxMs: 500,
    bootDelayMs: 200,
    ...options,
  });
  cleanups.push(async () => {
    await d.stop();
    const c = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 }).catch(() => undefined);
    if (!c) return;
    for (const ch of ['hello', 'status'])
      await c
        .publishAsync(`fleetvisor/v1/${id}/${ch}`, Buffer.alloc(0), { qos: 1, retain: true })
        .catch(() => {});
    await c.endAsync(true);
  });
  return d;
}

export async function ready(host: Host, id: string): Promise<void> {
  await waitFor(() => host.links.hub?.device(id)?.online === true, 8000, `${id} online`);
}

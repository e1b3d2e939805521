/**
 * A device's `event` message is logged at most once per (device, boot, seq) (docs/protocol.md §8,
 * issue 12 §5), end to end over MQTT: a real broker (the embedded aedes always, Mosquitto at
 * FLEETVISOR_TEST_MQTT_URL when set), the host's links and fleet on a real SQLite file. The hub's
 * window of 1,024 seqs cannot tell a duplicate 2,000 messages late, nor one after the host
 * restarted; the store's key does.
 */
import type { MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Fleet } from '../../src/devices/fleet.js';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { MqttSimDevice } from '../../src/sim/mqtt-device.js';
import { startMqttSimDevice } from '../../src/sim/mqtt-device.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import type { Links } from '../../src/transports/links.js';
import { createLinks } from '../../src/transports/links.js';
import type { EventMessage, TelemetryMessage } from '../../src/transports/protocol.js';
import { encodeMessage } from '../../src/transports/protocol.js';
import { tempDir } from '../store/helpers.js';
import { externalBrokerUrl, uniqueId, waitFor } from './helpers.js';

interface App {
  readonly runtime: Runtime;
  readonly store: SqliteStore;
  readonly fleet: Fleet;
  readonly links: Links;
  stop(): Promise<void>;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The host on `file`: store, fleet and links, as the app composes them; `add` devices on first start. */
async function startHost(url: string, file: string, add: readonly string[] = []): Promise<App> {
  const store = await openSqliteStore({ file, telemetryFlushMs: 20 });
  const runtime = createRuntime({});
  const links = createLinks({
    runtime,
    store,
    mqtt: {
      url,
      reconnect: { initialMs: 50, maxMs: 300, jitter: 0.5, stableMs: 2000 },
      connectTimeoutMs: 1000,
      keepaliveMs: 5000,
    },
    commands: { replyTimeoutMs: 5000 },
  });
  const fleet = createFleet({
    runtime,
    store,
    kinds: [genericDevice],
    carrier: links.carrier,
    reconcileIntervalMs: 0,
  });
  await fleet.start();
  for (const id of add) {
    const r = await fleet.addDevice({
      id,
      kind: 'fleetvisor.generic',
      attributes: { livenessTimeoutMs: 5000 },
    });
    expect(r.ok).toBe(true);
  }
  await links.attach(fleet, { adopt: 'manual' });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await links.stop();
    await fleet.stop();
    await store.close();
    runtime.dispose();
  };
  cleanups.push(stop);
  return { runtime, store, fleet, links, stop };
}

async function sim(url: string, id: string): Promise<MqttSimDevice> {
  // Hello and status only: the test sends the device's messages itself, as a device resending would.
  const d = await startMqttSimDevice(url, {
    id,
    telemetryIntervalMs: 3_600_000,
    reconnectMinMs: 100,
    reconnectMaxMs: 500,
  });
  cleanups.push(async () => {
    await d.stop();
    await clearRetained(url, id);
  });
  return d;
}

/** Retained hello/status outlive a test on a shared broker: clear them. */
async function clearRetained(url: string, id: string): Promise<void> {
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

async function rawClient(url: string): Promise<MqttClient> {
  const c = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
  c.on('error', () => {});
  cleanups.push(() => c.endAsync(true));
  return c;
}

const state = (app: App, id: string) => app.fleet.device(id)?.state;
const received = (app: App, id: string) => app.links.hub?.stats(id)?.received ?? 0;

/** Counts the `event` messages of `id` the hub accepts (past its window) from now on. */
function acceptedEvents(app: App, id: string): { count: number } {
  const seen = { count: 0 };
  const stop = app.links.hub!.observe((deviceId, m) => {
    if (deviceId === id && m.type === 'event') seen.count++;
  });
  cleanups.push(stop);
  return seen;
}

/** The device's stored events of `kind`, once everything the hub handed to the log is committed. */
async function logged(app: App, id: string, kind: string): Promise<number> {
  await app.links.hub!.flush();
  const page = await app.store.queryEvents({ deviceId: id, kind, limit: 100 });
  return page.items.length;
}

const brokers: { name: string; url: () => string }[] = [];
let embedded: EmbeddedBroker | undefined;
brokers.push({ name: 'embedded aedes', url: () => embedded!.url });
if (externalBrokerUrl) {
  const external = externalBrokerUrl;
  brokers.push({ name: 'Mosquitto', url: () => external });
}

beforeAll(async () => {
  embedded = await startEmbeddedBroker({ port: 0 });
});
afterAll(async () => {
  await embedded?.close();
});

describe.each(brokers)('device events at most once over MQTT ($name)', ({ url: brokerUrl }) => {
  it('an event sent again 2,000 messages later, and again after the host restarted, is one row', async () => {
    const url = brokerUrl();
    const id = uniqueId('evonce');
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    let app = await startHost(url, tmp.file, [id]);
    const d = await sim(url, id);
    await waitFor(() => state(app, id) === 'connected', 5000, 'connected');

    const raw = await rawClient(url);
    const boot = d.device.boot;
    const first = 500_000; // far from the seqs the simulator itself would use in this boot
    const overheat: EventMessage = {
      v: 1,
      type: 'event',
      boot,
      seq: first,
      ts: Date.now(),
      name: 'overheat',
      severity: 'warning',
      data: { celsius: 81.5 },
    };
    const publish = (channel: 'event' | 'telemetry', m: EventMessage | TelemetryMessage) =>
      raw.publishAsync(`fleetvisor/v1/${id}/${channel}`, Buffer.from(encodeMessage(m)), { qos: 1 });

    const accepted = acceptedEvents(app, id);
    await publish('event', overheat);
    await waitFor(() => accepted.count === 1, 5000, 'the event accepted');
    expect(await logged(app, id, 'device.event.overheat')).toBe(1);

    // 2,000 other messages of the same boot: the hub's window (1,024 seqs) moves past the event.
    // In bursts of 100, each received before the next: a broker may drop what queues past its
    // limit for a slow subscriber (Mosquitto's max_queued_messages), which is not what this tests.
    const base = received(app, id);
    for (let k = 1; k <= 2_000; k += 100) {
      const burst: Promise<unknown>[] = [];
      for (let j = k; j < k + 100; j++)
        burst.push(
          publish('telemetry', {
            v: 1,
            type: 'telemetry',
            boot,
            seq: first + j,
            ts: Date.now(),
            values: { j },
          }),
        );
      await Promise.all(burst);
      await waitFor(() => received(app, id) >= base + k + 99, 5000, `messages ${k}…${k + 99} received`);
    }

    await publish('event', overheat); // the same event again, 2,000 behind the newest seq
    await waitFor(() => accepted.count === 2, 5000, 'the late duplicate accepted by the hub');
    expect(await logged(app, id, 'device.event.overheat')).toBe(1);
    expect(app.links.hub!.stats(id)!.duplicates).toBe(0); // the window could not tell: the store did
    expect(app.store.stats().events.duplicates).toBe(1);

    // The host restarts on the same data: a new hub with an empty window, the same store file.
    await app.stop();
    app = await startHost(url, tmp.file);
    await waitFor(() => app.links.hub!.device(id)?.online === true, 5000, 'online after the restart');
    const afterRestart = acceptedEvents(app, id);
    await publish('event', overheat); // a device resending after reconnect, or a QoS 1 redelivery
    await waitFor(() => afterRestart.count === 1, 5000, 'the event accepted after the restart');
    expect(await logged(app, id, 'device.event.overheat')).toBe(1);
    expect(app.store.stats().events.duplicates).toBe(1);

    // A new event of the same boot is still logged: only the duplicates are skipped.
    await publish('event', { ...overheat, seq: first + 2_001 });
    await waitFor(() => afterRestart.count === 2, 5000, 'a new event accepted');
    expect(await logged(app, id, 'device.event.overheat')).toBe(2);
  });
});

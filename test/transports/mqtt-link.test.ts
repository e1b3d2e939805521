/**
 * Integration tests of the MQTT link against real brokers: the embedded aedes broker always, and
 * Mosquitto (or any broker) at FLEETVISOR_TEST_MQTT_URL when set. Devices are plain mqtt.js clients.
 */
import type { MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import type { LinkDeviceError, MqttLink, MqttLinkOptions } from '../../src/transports/mqtt-link.js';
import { startMqttLink } from '../../src/transports/mqtt-link.js';
import type { CommandMessage, DeviceId, Message, TelemetryMessage } from '../../src/transports/protocol.js';
import { freePort, uniqueId, waitFor } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const FAST_RECONNECT = { initialMs: 50, maxMs: 200, jitter: 0.5, stableMs: 2000 };

interface Received {
  messages: { deviceId: DeviceId; message: Message }[];
  errors: { deviceId: DeviceId | undefined; error: LinkDeviceError }[];
}

function newRuntime(): Runtime {
  const rt = createRuntime({});
  cleanups.push(() => rt.dispose());
  return rt;
}

function link(rt: Runtime, url: string, extra: Partial<MqttLinkOptions> = {}): MqttLink & Received {
  const received: Received = { messages: [], errors: [] };
  const l = startMqttLink(rt, {
    url,
    clientId: `host-${uniqueId()}`,
    reconnect: FAST_RECONNECT,
    connectTimeoutMs: 1000,
    onMessage: (deviceId, message) => received.messages.push({ deviceId, message }),
    onDeviceError: (deviceId, error) => received.errors.push({ deviceId, error }),
    ...extra,
  });
  cleanups.push(() => l.stop());
  return Object.assign(l, received);
}

async function device(url: string, options: { clientId?: string } = {}): Promise<MqttClient> {
  const c = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, ...options });
  c.on('error', () => {});
  cleanups.push(() => c.endAsync(true));
  return c;
}

function telemetry(seq: number): TelemetryMessage {
  return { v: 1, type: 'telemetry', boot: 1, seq, ts: 1_700_000_000_000, values: { temp: 21.5 } };
}

function cmd(cmdId: string): CommandMessage {
  return { v: 1, type: 'cmd', cmdId, action: 'reboot' };
}

async function embedded(port = 0): Promise<EmbeddedBroker> {
  const broker = await startEmbeddedBroker({ port });
  cleanups.push(() => broker.close());
  return broker;
}

const externalUrl = process.env.FLEETVISOR_TEST_MQTT_URL;
const variants: { name: string; skip: boolean; url: () => Promise<string> }[] = [
  { name: 'embedded aedes', skip: false, url: async () => (await embedded()).url },
  {
    name: externalUrl
      ? `external broker at ${externalUrl}`
      : 'external broker (skipped: set FLEETVISOR_TEST_MQTT_URL, e.g. mqtt://127.0.0.1:1883 for Mosquitto)',
    skip: !externalUrl,
    url: async () => externalUrl ?? '',
  },
];

for (const variant of variants) {
  describe.skipIf(variant.skip)(`MqttLink with ${variant.name}`, () => {
    it('delivers a device telemetry message decoded to onMessage', async () => {
      const url = await variant.url();
      const l = link(newRuntime(), url);
      await waitFor(() => l.stats().connected, 3000, 'the link to connect');
      const id = `dev-${uniqueId()}`;
      const d = await device(url);
      await d.publishAsync(`fleetvisor/v1/${id}/telemetry`, JSON.stringify(telemetry(7)), { qos: 1 });

      await waitFor(() => l.messages.length === 1, 3000, 'the telemetry');
      expect(l.messages[0]).toEqual({ deviceId: id, message: telemetry(7) });
      expect(l.stats()).toMatchObject({ connected: true, received: 1, malformed: 0 });
    });

    it('reports malformed payloads and bad topics to onDeviceError and keeps receiving', async () => {
      const url = await variant.url();
      const l = link(newRuntime(), url);
      await waitFor(() => l.stats().connected, 3000, 'the link to connect');
      const id = `dev-${uniqueId()}`;
      const d = await device(url);
      await d.publishAsync(`fleetvisor/v1/${id}/telemetry`, '{"v":1,"type":"telemetry",', { qos: 1 });
      // Brokers refuse a real '+' in a topic name; a full-width plus (U+FF0B) gets through.
      await d.publishAsync('fleetvisor/v1/pump\uff0b7/telemetry', JSON.stringify(telemetry(1)), { qos: 1 });
      await d.publishAsync('fleetvisor/v1/pump.7/telemetry', JSON.stringify(telemetry(1)), { qos: 1 });
      await d.publishAsync(`fleetvisor/v1/${id}/cmd`, JSON.stringify(telemetry(1)), { qos: 1 }); // not subscribed
      await d.publishAsync(`fleetvisor/v1/${id}/event`, JSON.stringify(telemetry(2)), { qos: 1 });
      await d.publishAsync(`fleetvisor/v1/${id}/telemetry`, JSON.stringify(telemetry(3)), { qos: 1 });

      await waitFor(() => l.messages.length === 1, 3000, 'the valid telemetry');
      expect(l.errors.map((e) => [e.deviceId, e.error.code])).toEqual([
        [id, 'notJson'],
        [undefined, 'badCharacter'],
        [undefined, 'badDeviceId'],
        [id, 'wrongChannel'],
      ]);
      expect(l.errors[0]?.error.message).toContain(`fleetvisor/v1/${id}/telemetry`);
      expect(l.errors[0]?.error.message).toContain('not JSON');
      expect(l.messages[0]?.message).toEqual(telemetry(3));
      expect(l.alive).toBe(true);
      expect(l.stats()).toMatchObject({ connected: true, received: 1, malformed: 4 });
    });

    it('publishes commands to the device topic and refuses bad ids and device-bound types', async () => {
      const url = await variant.url();
      const l = link(newRuntime(), url);
      const id = `dev-${uniqueId()}`;
      const d = await device(url);
      const got: { topic: string; body: unknown; qos: number }[] = [];
      d.on('message', (topic, payload, packet) =>
        got.push({ topic, body: JSON.parse(payload.toString()), qos: packet.qos }),
      );
      await d.subscribeAsync(`fleetvisor/v1/${id}/cmd`, { qos: 1 });
      await waitFor(() => l.stats().connected, 3000, 'the link to connect');

      expect(l.publish(id, cmd('c1'))).toEqual({ ok: true, value: undefined });
      expect(l.publish('+', cmd('c2'))).toMatchObject({ ok: false, error: { code: 'badDeviceId' } });
      expect(l.publish('a/b', cmd('c2'))).toMatchObject({ ok: false, error: { code: 'badDeviceId' } });
      expect(l.publish(id, telemetry(1))).toMatchObject({ ok: false, error: { code: 'wrongDirection' } });
      expect(l.publish(id, { ...cmd('bad id!'), cmdId: 'bad id!' })).toMatchObject({
        ok: false,
        error: { code: 'badMessage' },
      });

      await waitFor(() => got.length === 1, 3000, 'the command');
      expect(got[0]).toEqual({ topic: `fleetvisor/v1/${id}/cmd`, body: cmd('c1'), qos: 1 });
    });

    it('does not turn a duplicate client id into a reconnect storm', async () => {
      const url = await variant.url();
      const rt = newRuntime();
      const clientId = `host-dup-${uniqueId()}`;
      const a = link(rt, url, { clientId, random: () => 0 });
      const b = link(rt, url, { clientId, random: () => 0 });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      // Backoff restarting at 50 ms on every (briefly) successful connect would give ~30 each.
      const total = a.stats().reconnects + b.stats().reconnects;
      expect(total).toBeGreaterThanOrEqual(2);
      expect(total).toBeLessThanOrEqual(16);
      for (const l of [a, b]) {
        const timer = rt.timers.ownedBy(l.pid).find((t) => t.label === 'mqtt.reconnect');
        if (timer) expect(timer.delayMs).toBeLessThanOrEqual(FAST_RECONNECT.maxMs);
      }
    });

    it('stops cleanly: the client disconnects and publish answers closed', async () => {
      const url = await variant.url();
      const l = link(newRuntime(), url);
      await waitFor(() => l.stats().connected, 3000, 'the link to connect');
      const reason = await l.stop();
      expect(reason).toEqual({ type: 'shutdown' });
      expect(l.stats()).toMatchObject({ connected: false, state: 'closed' });
      expect(l.publish('pump-7', cmd('c1'))).toMatchObject({ ok: false, error: { code: 'closed' } });
    });
  });
}

describe('MqttLink outbox (embedded aedes, broker restarted on the same port)', () => {
  it('keeps messages while the broker is down and delivers them after it comes back', async () => {
    const first = await startEmbeddedBroker({ port: 0 });
    const port = first.port;
    const rt = newRuntime();
    const l = link(rt, first.url, { random: () => 0 });
    await waitFor(() => l.stats().connected, 3000, 'the link to connect');
    await first.close();
    await waitFor(() => !l.stats().connected, 3000, 'the link to notice');

    const id = `dev-${uniqueId()}`;
    for (const n of [1, 2, 3]) expect(l.publish(id, cmd(`c${n}`)).ok).toBe(true);
    expect(l.stats().outboxLength).toBe(3);
    await waitFor(() => l.stats().reconnects >= 4, 3000, 'a few reconnect attempts');
    // Bounded backoff: the pending retry never waits longer than maxMs.
    const timer = rt.timers.ownedBy(l.pid).find((t) => t.label === 'mqtt.reconnect');
    expect(timer?.delayMs ?? 0).toBeLessThanOrEqual(FAST_RECONNECT.maxMs);

    const second = await embedded(port);
    expect(second.portWasTaken).toBe(false);
    // Listen on the broker itself: the link may reconnect before any device could subscribe.
    const seen: string[] = [];
    second.aedes.on('publish', (packet, client) => {
      if (client && packet.topic === `fleetvisor/v1/${id}/cmd`)
        seen.push(JSON.parse(packet.payload.toString()).cmdId);
    });
    await waitFor(() => seen.length === 3, 3000, 'the queued commands');
    // The device has them; their PUBACKs may still be on the way back to the host.
    await waitFor(() => l.stats().inflight === 0, 3000, 'the acknowledgements');
    expect(seen).toEqual(['c1', 'c2', 'c3']);
    expect(l.stats()).toMatchObject({ connected: true, outboxLength: 0, inflight: 0, dropped: 0 });
    expect(l.stats().reconnects).toBeGreaterThanOrEqual(4);
  });

  it('drops the oldest messages past maxOutbox and counts them', async () => {
    const port = await freePort();
    const l = link(newRuntime(), `mqtt://127.0.0.1:${port}`, { maxOutbox: 3, random: () => 0 });
    const id = `dev-${uniqueId()}`;
    for (const n of [1, 2, 3, 4, 5]) expect(l.publish(id, cmd(`c${n}`)).ok).toBe(true);
    expect(l.stats()).toMatchObject({ connected: false, outboxLength: 3, dropped: 2 });

    const broker = await embedded(port);
    const seen: string[] = [];
    broker.aedes.on('publish', (packet, client) => {
      if (client && packet.topic === `fleetvisor/v1/${id}/cmd`)
        seen.push(JSON.parse(packet.payload.toString()).cmdId);
    });
    await waitFor(() => seen.length === 3, 3000, 'the kept commands');
    expect(seen).toEqual(['c3', 'c4', 'c5']);
    expect(l.stats()).toMatchObject({ outboxLength: 0, dropped: 2 });
  });
});

describe('MqttLink backpressure (issue 12 §0) on the embedded broker', () => {
  /** onMessage answers with a store write the test settles by hand. */
  function manualStore() {
    const waiting: ((result: unknown) => void)[] = [];
    let delivered = 0;
    return {
      onMessage: () => {
        delivered++;
        return new Promise((resolve) => waiting.push(resolve));
      },
      get delivered() {
        return delivered;
      },
      settleAll(result: unknown = { ok: true, value: 1 }) {
        for (const resolve of waiting.splice(0)) resolve(result);
      },
    };
  }

  it('stops reading the broker socket at maxPendingIngest writes and loses nothing once the store catches up', async () => {
    const broker = await embedded();
    const rt = newRuntime();
    const store = manualStore();
    const l = link(rt, broker.url, { maxPendingIngest: 10, onMessage: store.onMessage });
    await waitFor(() => l.stats().connected, 5000, 'the link to connect');
    const d = await device(broker.url);
    for (let seq = 1; seq <= 200; seq++)
      d.publish(`fleetvisor/v1/pump-7/telemetry`, JSON.stringify(telemetry(seq)));
    await waitFor(() => l.stats().paused, 5000, 'the link to pause');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(store.delivered).toBe(10); // nothing more is read while the store is behind
    expect(l.stats()).toMatchObject({ pendingIngest: 10, paused: true, pauses: 1, lost: {} });
    const deadline = Date.now() + 10_000;
    while (store.delivered < 200 && Date.now() < deadline) {
      store.settleAll();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    store.settleAll();
    expect(store.delivered).toBe(200);
    await waitFor(() => l.stats().pendingIngest === 0, 5000, 'every write settled');
    expect(l.stats()).toMatchObject({ received: 200, paused: false, lost: {} });
    expect(l.stats().pauses).toBeGreaterThan(1);
  });

  it('counts a store write that answers with an error, or rejects, as lost with its cause', async () => {
    const broker = await embedded();
    const rt = newRuntime();
    let n = 0;
    const l = link(rt, broker.url, {
      onMessage: () =>
        ++n % 2 === 0
          ? Promise.resolve({ ok: false, error: { code: 'stopped', message: 'write buffer full' } })
          : Promise.reject(new Error('disk gone')),
    });
    await waitFor(() => l.stats().connected, 5000, 'the link to connect');
    const d = await device(broker.url);
    for (let seq = 1; seq <= 4; seq++)
      await d.publishAsync(`fleetvisor/v1/pump-7/telemetry`, JSON.stringify(telemetry(seq)));
    await waitFor(() => l.stats().received === 4 && l.stats().pendingIngest === 0, 5000, 'four writes');
    expect(l.stats().lost).toEqual({ stopped: 2, error: 2 });
  });

  it('ackAfterCommit: a QoS 1 PUBACK goes only once the store write settled (relies on mqtt.js internals)', async () => {
    const broker = await embedded();
    const rt = newRuntime();
    const store = manualStore();
    const clientId = `host-${uniqueId()}`;
    const l = link(rt, broker.url, { clientId, ackAfterCommit: true, onMessage: store.onMessage });
    await waitFor(() => l.stats().connected, 5000, 'the link to connect');
    // aedes says 'ack' when a subscriber acknowledges a QoS 1 message: the host's PUBACK.
    let hostAcks = 0;
    broker.aedes.on('ack', (_packet, client) => {
      if (client?.id === clientId) hostAcks++;
    });
    const d = await device(broker.url);
    const event: Message = { v: 1, type: 'event', boot: 1, seq: 1, ts: 1_700_000_000_000, name: 'x' };
    await d.publishAsync('fleetvisor/v1/pump-7/event', JSON.stringify(event), { qos: 1 });
    await waitFor(() => store.delivered === 1, 5000, 'the delivery');
    expect(l.stats().heldAcks).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(hostAcks).toBe(0);
    store.settleAll();
    await waitFor(() => hostAcks === 1, 5000, 'the host PUBACK after the store write');
    expect(l.stats().heldAcks).toBe(0);
  });
});

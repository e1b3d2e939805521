/**
 * Issue 16: the link acknowledges QoS 1 publishes itself, all those of one socket read in one
 * write, instead of letting mqtt.js write each PUBACK alone. What the broker must see is the same:
 * one PUBACK per publish, the bytes mqtt.js would have sent, also while the link is paused for
 * backpressure and when the store write fails.
 */
import { connectAsync } from 'mqtt';
// mqtt.js's own packet writer (a dependency of mqtt), for the bytes it would have sent.
import { generate } from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, silentLogger } from '../../src/runtime/runtime.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { pubackBytes } from '../../src/transports/mqtt-ingest.js';
import type { MqttLinkOptions } from '../../src/transports/mqtt-link.js';
import { startMqttLink } from '../../src/transports/mqtt-link.js';
import { uniqueId, waitFor } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(extra: Partial<MqttLinkOptions>) {
  const broker: EmbeddedBroker = await startEmbeddedBroker({ port: 0 });
  cleanups.push(() => broker.close());
  const runtime = createRuntime({ logger: silentLogger });
  cleanups.push(() => runtime.dispose());
  const clientId = `host-${uniqueId()}`;
  // aedes says 'ack' when a subscriber acknowledges a QoS 1 message it has in flight to it (the
  // host's PUBACK): a PUBACK with a wrong or repeated id finds none and is not counted.
  const acks = { count: 0 };
  broker.aedes.on('ack', (_packet, client) => {
    if (client?.id === clientId) acks.count++;
  });
  const link = startMqttLink(runtime, {
    url: broker.url,
    clientId,
    connectTimeoutMs: 1000,
    onMessage: () => undefined,
    onDeviceError: () => {},
    ...extra,
  });
  cleanups.push(() => link.stop());
  await waitFor(() => link.stats().connected, 5000, 'the link to connect');
  const device = await connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
  device.on('error', () => {});
  cleanups.push(() => device.endAsync(true));
  const publish = (seqs: number[]) =>
    Promise.all(
      seqs.map((seq) =>
        device.publishAsync(
          'fleetvisor/v1/pump-7/telemetry',
          JSON.stringify({
            v: 1,
            type: 'telemetry',
            boot: 1,
            seq,
            ts: 1_700_000_000_000,
            values: { t: seq },
          }),
          { qos: 1 },
        ),
      ),
    );
  return { link, acks, publish };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('QoS 1 PUBACKs sent together', () => {
  it('writes the bytes mqtt.js writes for each PUBACK, back to back', () => {
    const ids = [1, 2, 255, 256, 4097, 65_535];
    const one = (messageId: number) => generate({ cmd: 'puback', messageId }, { protocolVersion: 4 });
    expect(pubackBytes(ids)).toEqual(Buffer.concat(ids.map(one)));
    expect(pubackBytes([])).toEqual(Buffer.alloc(0));
  });

  it('acknowledges every publish of a burst exactly once', async () => {
    const { link, acks, publish } = await setup({
      onMessage: () => Promise.resolve({ ok: true, value: 1 }),
    });
    await publish(range(1, 300));
    await waitFor(() => acks.count >= 300, 5000, 'a PUBACK for each publish');
    await new Promise((r) => setTimeout(r, 100));
    expect(acks.count).toBe(300);
    expect(link.stats()).toMatchObject({ received: 300, lost: {} });
  });

  it('acknowledges what it read before pausing for backpressure, and the rest once resumed', async () => {
    const waiting: ((v: unknown) => void)[] = [];
    const { link, acks, publish } = await setup({
      maxPendingIngest: 10,
      onMessage: () => new Promise((resolve) => waiting.push(resolve)),
    });
    const all = publish(range(1, 50));
    await waitFor(() => link.stats().paused, 5000, 'the link to pause');
    await waitFor(() => acks.count === 10, 5000, 'the PUBACKs of the publishes read');
    await new Promise((r) => setTimeout(r, 100));
    expect(acks.count).toBe(10);
    while (link.stats().received < 50 || waiting.length > 0) {
      for (const resolve of waiting.splice(0)) resolve({ ok: true, value: 1 });
      await new Promise((r) => setTimeout(r, 5));
    }
    await all;
    await waitFor(() => acks.count >= 50, 5000, 'every PUBACK');
    await new Promise((r) => setTimeout(r, 100));
    expect(acks.count).toBe(50);
  });

  it('acknowledges a publish whose store write failed (it is counted lost, not redelivered)', async () => {
    const { link, acks, publish } = await setup({
      onMessage: () => Promise.resolve({ ok: false, error: { code: 'overloaded', message: 'full' } }),
    });
    await publish(range(1, 5));
    await waitFor(() => acks.count === 5 && link.stats().pendingIngest === 0, 5000, 'five PUBACKs');
    expect(link.stats().lost).toEqual({ overloaded: 5 });
  });
});

/**
 * The embedded broker under a backlog (issue 16): a host link that falls behind while devices keep
 * publishing, then drops. With aedes' default `concurrency` (100) the messages past 100 in flight
 * wait in mqemitter's queue; once the host is gone nobody subscribes to them, and mqemitter 7.1.0
 * drained that queue recursively (released → _do → fastparallel → released …, three frames per
 * message): "Maximum call stack size exceeded", which killed the whole app. Real broker, real
 * mqtt.js clients; every wait is on an event, none on a delay.
 */
import type { MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { waitFor } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(): Promise<EmbeddedBroker> {
  const broker = await startEmbeddedBroker({ port: 0 });
  cleanups.push(() => broker.close());
  return broker;
}

async function client(url: string, clientId: string): Promise<MqttClient> {
  const c = await connectAsync(url, { clientId, protocolVersion: 4, reconnectPeriod: 0 });
  c.on('error', () => {});
  cleanups.push(() => c.endAsync(true));
  return c;
}

/** Device messages waiting when the host goes: about 10,000 overflowed the stack before the fix. */
const BACKLOG = 30_000;
/** aedes 1.2.0's default `concurrency`: the deliveries in flight before the next ones queue. */
const AEDES_DEFAULT_CONCURRENCY = 100;

const HOST_FILTERS = {
  'fleetvisor/v1/+/hello': { qos: 1 },
  'fleetvisor/v1/+/status': { qos: 1 },
  'fleetvisor/v1/+/telemetry': { qos: 1 },
} as const;

describe('embedded broker with a backlog', () => {
  it('survives the host dropping while thousands of device messages wait for it, and keeps carrying messages', async () => {
    const broker = await start();
    const aedes = broker.aedes;

    // The fleet: one real device with its retained hello, and the host reading on the wildcards.
    const device = await client(broker.url, 'dev-1');
    await device.publishAsync('fleetvisor/v1/dev-1/hello', '{"type":"hello"}', { qos: 1, retain: true });
    const host = await client(broker.url, 'host-1');
    await host.subscribeAsync(HOST_FILTERS);

    // Deliveries that do not complete yet: what a subscriber whose socket is full holds while
    // aedes waits for its 'drain'. They take every slot the default concurrency allows.
    const waiting: (() => void)[] = [];
    const slow = (_packet: unknown, done: () => void) => {
      waiting.push(done);
    };
    await new Promise<void>((resolve) => aedes.subscribe('slow/+', slow, resolve));
    for (let i = 0; i < AEDES_DEFAULT_CONCURRENCY; i++)
      aedes.publish(
        { cmd: 'publish', topic: 'slow/x', payload: 'x', qos: 0, retain: false, dup: false },
        () => {},
      );
    await waitFor(() => waiting.length === AEDES_DEFAULT_CONCURRENCY, 5000, 'the slow deliveries');

    // Device telemetry that only the host reads, through the broker's publish path (the one a
    // device's PUBLISH takes once authorized): it queues behind the slow deliveries.
    for (let i = 0; i < BACKLOG; i++)
      aedes.publish(
        {
          cmd: 'publish',
          topic: `fleetvisor/v1/dev-${i}/telemetry`,
          payload: `{"type":"telemetry","seq":${i}}`,
          qos: 1,
          retain: false,
          dup: false,
        },
        () => {},
      );

    // The host's link drops (as on a keepalive timeout): aedes removes its subscriptions.
    const hostGone = new Promise<void>((resolve) => {
      const onGone = (c: { id: string }) => {
        if (c.id !== 'host-1') return;
        aedes.off('clientDisconnect', onGone);
        resolve();
      };
      aedes.on('clientDisconnect', onGone);
    });
    host.stream.destroy();
    await hostGone;

    // The slow deliveries complete: the backlog now has no subscriber. Before the fix this threw
    // RangeError (in the app: from a socket callback, uncaught, and the process died).
    expect(() => {
      for (const done of waiting.splice(0)) done();
    }).not.toThrow();
    await new Promise<void>((resolve) => aedes.unsubscribe('slow/+', slow, resolve));

    // The broker still carries messages: a host connecting again gets the retained hello and the
    // device's new telemetry.
    const again = await client(broker.url, 'host-2');
    const got: string[] = [];
    again.on('message', (topic) => got.push(topic));
    await again.subscribeAsync(HOST_FILTERS);
    await device.publishAsync('fleetvisor/v1/dev-1/telemetry', '{"type":"telemetry","seq":0}', { qos: 1 });
    await waitFor(
      () => got.includes('fleetvisor/v1/dev-1/hello') && got.includes('fleetvisor/v1/dev-1/telemetry'),
      10_000,
      'the hello and the telemetry at the new host',
    );
    expect(aedes.connectedClients).toBe(2);
  }, 60_000);
});

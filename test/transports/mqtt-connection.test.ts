/**
 * The broker connection every host-side MQTT client shares (src/transports/mqtt-connection.ts),
 * against the real embedded broker: connected only once subscribed, a refused subscription
 * reported, a drop retried on the owner's schedule, late events of an abandoned client ignored,
 * and a graceful end that publishes its goodbye first.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openBrokerAccounts } from '../../src/transports/broker-accounts.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import type { BrokerSettings, MqttConnectionHooks } from '../../src/transports/mqtt-connection.js';
import { MqttConnection } from '../../src/transports/mqtt-connection.js';
import { ReconnectSchedule, resolveReconnect } from '../../src/transports/reconnect.js';
import { uniqueId, waitFor } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const WORDS = {
  connected: 'test connected',
  reconnected: 'test reconnected',
  lost: 'test lost',
  couldNotConnect: 'test could not connect',
  subscribeFailed: 'test subscribe failed',
  clientError: 'test client error',
};

interface Seen {
  readonly messages: string[];
  readonly ready: number[];
  readonly drops: boolean[];
  readonly backoffs: number[];
  readonly reports: string[];
  readonly infos: string[];
}

function setUp(
  broker: BrokerSettings,
  hooks: Partial<MqttConnectionHooks> = {},
  filters: Record<string, { qos: 0 | 1 }> = { 'conn-test/#': { qos: 1 } },
  clientId = `conn-${uniqueId()}`,
): { connection: MqttConnection; seen: Seen; runtime: Runtime; stop: () => void } {
  const seen: Seen = { messages: [], ready: [], drops: [], backoffs: [], reports: [], infos: [] };
  let running = true;
  const runtime = createRuntime({
    logger: {
      debug: () => {},
      info: (message: string) => seen.infos.push(message),
      warn: () => {},
      // The runtime's reporter logs what no caller can handle at error.
      error: (message: string) => seen.reports.push(message),
    },
  });
  const owner = runtime.nextPid();
  const reconnect = new ReconnectSchedule(
    runtime,
    owner,
    resolveReconnect({ initialMs: 50, maxMs: 200, jitter: 0, stableMs: 5000 }),
    undefined,
    'mqtt',
  );
  const connection = new MqttConnection({
    runtime,
    owner,
    label: 'test client',
    fields: { test: true },
    words: WORDS,
    broker,
    clientId,
    connectTimeoutMs: 1000,
    reconnect,
    isRunning: () => running,
    hooks: {
      subscriptions: () => filters,
      onMessage: (topic, payload) => seen.messages.push(`${topic}=${payload.toString()}`),
      onReady: () => seen.ready.push(Date.now()),
      onDropped: (wasConnected) => seen.drops.push(wasConnected),
      onBackoff: (_error, retryInMs) => seen.backoffs.push(retryInMs),
      ...hooks,
    },
  });
  const stop = () => {
    running = false;
    connection.kill();
  };
  cleanups.push(async () => {
    stop();
    await runtime.dispose();
  });
  return { connection, seen, runtime, stop };
}

async function embedded(): Promise<EmbeddedBroker> {
  const broker = await startEmbeddedBroker({ port: 0 });
  cleanups.push(() => broker.close());
  return broker;
}

async function peer(url: string, options: Record<string, unknown> = {}): Promise<MqttClient> {
  const c = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, ...options });
  c.on('error', () => {});
  cleanups.push(() => c.endAsync(true));
  return c;
}

describe('MqttConnection', () => {
  it('counts as connected only once subscribed, and then receives', async () => {
    const broker = await embedded();
    const { connection, seen } = setUp({ url: broker.url });
    connection.open();
    expect(connection.state).toBe('connecting');
    await waitFor(() => connection.state === 'connected', 5000, 'connected');
    expect(seen.ready).toHaveLength(1);
    expect(seen.infos).toContain('test connected');
    const device = await peer(broker.url);
    await device.publishAsync('conn-test/a', 'hello', { qos: 1 });
    await waitFor(() => seen.messages.length === 1, 3000, 'the message');
    expect(seen.messages).toEqual(['conn-test/a=hello']);
  });

  it('a dropped connection is retried on the schedule and subscribes again', async () => {
    const first = await startEmbeddedBroker({ port: 0 });
    const { port } = first;
    const { connection, seen } = setUp({ url: `mqtt://127.0.0.1:${port}` });
    connection.open();
    await waitFor(() => connection.state === 'connected', 5000, 'connected');
    await first.close(); // the broker goes away; another starts on the same port below
    await waitFor(() => connection.state === 'backoff', 5000, 'backoff after the drop');
    expect(seen.drops[0]).toBe(true);
    expect(seen.backoffs.length).toBeGreaterThan(0);
    const again = await startEmbeddedBroker({ port });
    cleanups.push(() => again.close());
    await waitFor(() => connection.state === 'connected', 10_000, 'connected again');
    expect(connection.reconnects).toBeGreaterThan(0);
    expect(seen.infos).toContain('test reconnected');
    const device = await peer(again.url);
    await device.publishAsync('conn-test/b', 'again', { qos: 1 });
    await waitFor(() => seen.messages.includes('conn-test/b=again'), 3000, 'a message after the reconnect');
  });

  it('a broker that refuses a subscription is reported, and the allowed ones still work', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'fv-conn-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const accounts = openBrokerAccounts(dataDir);
    const deviceId = `dev-${uniqueId()}`;
    const password = accounts.issueDevice(deviceId);
    const broker = await startEmbeddedBroker({ port: 0, auth: accounts });
    cleanups.push(() => broker.close());
    // A device's account may not subscribe across devices: '#' is refused, its own cmd is not.
    const own = `fleetvisor/v1/${deviceId}/cmd`;
    const { connection, seen } = setUp(
      { url: broker.url, username: deviceId, password },
      {},
      {
        '#': { qos: 1 },
        [own]: { qos: 1 },
      },
      deviceId, // a device account connects with its own id as the client id
    );
    connection.open();
    await waitFor(() => connection.state === 'connected', 5000, 'connected');
    expect(seen.reports.some((r) => r.includes('broker refused subscriptions #'))).toBe(true);
    const host = await peer(broker.url, {
      username: accounts.host.username,
      password: accounts.host.password,
    });
    await host.publishAsync(own, '{"v":1}', { qos: 1 });
    await waitFor(() => seen.messages.length === 1, 3000, 'its own command');
  });

  it('ignores a late event of an abandoned client and ends gracefully with its goodbye first', async () => {
    const broker = await embedded();
    const watcher = await peer(broker.url);
    const goodbyes: string[] = [];
    await watcher.subscribeAsync('conn-test/bye', { qos: 1 });
    watcher.on('message', (_t, payload) => goodbyes.push(payload.toString()));
    const { connection, seen } = setUp({ url: broker.url });
    connection.open();
    await waitFor(() => connection.state === 'connected', 5000, 'connected');
    const client = connection.client;
    await connection.end(2000, (c, done) => c.publish('conn-test/bye', 'bye', { qos: 1 }, done));
    expect(connection.state).toBe('closed');
    await waitFor(() => goodbyes.length === 1, 3000, 'the goodbye');
    // The ended client's close came after the end: no drop, no retry.
    client?.emit('close');
    expect(seen.drops).toEqual([]);
    expect(connection.state).toBe('closed');
  });
});

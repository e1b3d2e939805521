/** Integration tests of the embedded aedes broker: real sockets, a real mqtt.js client. */
import type { AddressInfo, Server } from 'node:net';
import { createServer } from 'node:net';
import type { MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/runtime/runtime.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { waitFor } from './helpers.js';

function recordingLogger(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (message: string) => {
    lines.push({ level, message });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function listenOnFreePort(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(options: Parameters<typeof startEmbeddedBroker>[0]): Promise<EmbeddedBroker> {
  const broker = await startEmbeddedBroker(options);
  cleanups.push(() => broker.close());
  return broker;
}

async function client(url: string): Promise<MqttClient> {
  const c = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
  c.on('error', () => {});
  cleanups.push(() => c.endAsync(true));
  return c;
}

async function roundTrip(url: string): Promise<string> {
  const sub = await client(url);
  const pub = await client(url);
  const got: string[] = [];
  sub.on('message', (_topic, payload) => got.push(payload.toString()));
  await sub.subscribeAsync('t/x', { qos: 1 });
  await pub.publishAsync('t/x', 'hi', { qos: 1 });
  await waitFor(() => got.length === 1, 3000, 'the message');
  return got[0]!;
}

describe('startEmbeddedBroker', () => {
  it('gives a subscriber the retained messages of its exact topics and of its wildcards, updated and cleared', async () => {
    const broker = await start({ port: 0 });
    const pub = await client(broker.url);
    for (let i = 0; i < 50; i++)
      await pub.publishAsync(`fleet/d${i}/hello`, `hello ${i}`, { qos: 1, retain: true });
    await pub.publishAsync('fleet/d7/hello', 'hello 7 again', { qos: 1, retain: true });
    await pub.publishAsync('fleet/d8/hello', '', { qos: 1, retain: true });
    const retainedOn = async (topics: string[]): Promise<string[]> => {
      const sub = await client(broker.url);
      const got: string[] = [];
      sub.on('message', (topic, payload, packet) => {
        if (packet.retain) got.push(`${topic}=${payload.toString()}`);
      });
      await sub.subscribeAsync(topics, { qos: 1 });
      await new Promise((r) => setTimeout(r, 200));
      return got.sort();
    };
    // Exact topics: only their own retained message, the latest, none for a cleared one.
    expect(
      await retainedOn(['fleet/d7/hello', 'fleet/d8/hello', 'fleet/d9/hello', 'fleet/none/hello']),
    ).toEqual(['fleet/d7/hello=hello 7 again', 'fleet/d9/hello=hello 9']);
    // Wildcards: every one that matches.
    const all = await retainedOn(['fleet/+/hello']);
    expect(all).toHaveLength(49);
    expect(all).toContain('fleet/d7/hello=hello 7 again');
    expect(all.some((m) => m.startsWith('fleet/d8/'))).toBe(false);
  });

  it('listens on the wanted port and carries messages', async () => {
    const broker = await start({ port: 0 });
    expect(broker.portWasTaken).toBe(false);
    expect(broker.host).toBe('127.0.0.1');
    expect(broker.port).toBeGreaterThan(0);
    expect(broker.url).toBe(`mqtt://127.0.0.1:${broker.port}`);
    expect(await roundTrip(broker.url)).toBe('hi');
  });

  it('falls back to a free port when the wanted one is taken, and says so plainly', async () => {
    const squatter = await listenOnFreePort();
    cleanups.push(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
    const takenPort = (squatter.address() as AddressInfo).port;
    const logger = recordingLogger();

    const broker = await start({ port: takenPort, logger });

    expect(broker.portWasTaken).toBe(true);
    expect(broker.port).not.toBe(takenPort);
    const warning = logger.lines.find((l) => l.level === 'warn');
    expect(warning?.message).toContain(`${takenPort} is already taken`);
    expect(warning?.message).toContain(`mqtt://127.0.0.1:${takenPort}`);
    expect(warning?.message).toContain(broker.url);
    expect(await roundTrip(broker.url)).toBe('hi');
  });

  it('frees its port on close (a new broker can take it) and close is idempotent', async () => {
    const first = await startEmbeddedBroker({ port: 0 });
    const c = await connectAsync(first.url, { protocolVersion: 4, reconnectPeriod: 0 });
    c.on('error', () => {});
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    await Promise.all([first.close(), first.close()]);
    await closed;
    await c.endAsync(true);

    const second = await start({ port: first.port });
    expect(second.portWasTaken).toBe(false);
    expect(second.port).toBe(first.port);
  });

  it('does not forward a payload over maxPayloadBytes', async () => {
    const broker = await start({ port: 0, maxPayloadBytes: 100 });
    const sub = await client(broker.url);
    const got: number[] = [];
    sub.on('message', (_topic, payload) => got.push(payload.length));
    await sub.subscribeAsync('t/#', { qos: 0 });
    const big = await client(broker.url);
    big.publish('t/big', Buffer.alloc(101), { qos: 0 });
    const small = await client(broker.url);
    await small.publishAsync('t/small', Buffer.alloc(100), { qos: 1 });
    await waitFor(() => got.length >= 1, 3000, 'the small message');
    expect(got).toEqual([100]);
  });

  it('rejects a bad port as a configuration error', async () => {
    await expect(startEmbeddedBroker({ port: 70000 })).rejects.toThrow(/port must be an integer/);
  });
});

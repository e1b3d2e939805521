/**
 * Child process for `links.bench.ts`, so that what it costs stays out of the host's CPU figure.
 * Driven over the IPC channel (spawned with `node --import tsx`):
 *
 * - `links-publisher.ts broker`: runs the embedded aedes broker on a free port and sends
 *   `{ type: 'broker', url }`; used only when no external broker (Mosquitto) is reachable.
 * - `links-publisher.ts publish <url>`: one MQTT client standing in for a fleet of devices. It
 *   sends `{ type: 'ready' }`, then answers each command with `{ type: 'done', … }`:
 *   - `{ cmd: 'hello', ids, boot }`: retained `hello` then retained `status online` (same boot,
 *     conn 1) for every id, QoS 1, as a device does on connecting (docs/protocol.md §6);
 *   - `{ cmd: 'run', ids, boot, n, qos }`: `n` telemetry messages, round-robin over `ids`, each
 *     device's `seq` counting on from its last run; at most {@link WINDOW} in flight (mqtt.js
 *     slows down quadratically with thousands of queued callbacks);
 *   - `{ cmd: 'clear', ids }`: empty retained `hello` and `status` (a shared broker keeps them);
 *   - `{ cmd: 'exit' }`.
 *
 * With `BENCH_BROKER_AUTH_DIR` set (broker accounts of that folder), the broker asks for
 * credentials and applies its ACL; the publisher connects with the host's account, or with
 * BENCH_PER_DEVICE_CLIENTS=1 as a fleet really is: one client per device, each its own account.
 */
import type { MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import type { BrokerAccounts } from '../../src/transports/broker-accounts.js';
import { openBrokerAccounts } from '../../src/transports/broker-accounts.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import type { DeviceId, HelloMessage, StatusMessage } from '../../src/transports/protocol.js';
import { encodeMessage, topicFor } from '../../src/transports/protocol.js';

export type PublisherCommand =
  | { readonly cmd: 'hello'; readonly ids: readonly string[]; readonly boot: number }
  | {
      readonly cmd: 'run';
      readonly ids: readonly string[];
      readonly boot: number;
      readonly n: number;
      readonly qos: 0 | 1;
    }
  | { readonly cmd: 'clear'; readonly ids: readonly string[] }
  | { readonly cmd: 'exit' };

export type PublisherReply =
  | { readonly type: 'broker'; readonly url: string }
  | { readonly type: 'ready' }
  | { readonly type: 'done'; readonly cmd: string; readonly sent: number; readonly ms: number }
  | { readonly type: 'failed'; readonly error: string };

const WINDOW = 500;

const reply = (m: PublisherReply): void => {
  process.send?.(m);
};

// The parent going away (normally or not) ends this process.
process.on('disconnect', () => process.exit(0));

const authDir = process.env.BENCH_BROKER_AUTH_DIR || undefined;
/**
 * One client per device (BENCH_PER_DEVICE_CLIENTS=1). Off by default: aedes 1.2 overflowed its
 * stack in mqemitter (`released` → `_do` recursion) under 100 clients flooding QoS 0 here; the
 * default publishes as the host account (the ACL still runs on every message).
 */
const perDevice = process.env.BENCH_PER_DEVICE_CLIENTS === '1';
const accounts: BrokerAccounts | undefined = authDir ? openBrokerAccounts(authDir) : undefined;
/** With accounts: each device's own client, connected on first use. */
const deviceClients = new Map<string, Promise<MqttClient>>();
function deviceClient(url: string, id: string): Promise<MqttClient> {
  let c = deviceClients.get(id);
  if (!c) {
    c = connectAsync(url, {
      clientId: id,
      username: id,
      password: accounts!.issueDevice(id),
      protocolVersion: 4,
      reconnectPeriod: 0,
      clean: true,
    });
    deviceClients.set(id, c);
  }
  return c;
}

const mode = process.argv[2];
if (mode === 'broker') {
  const broker = await startEmbeddedBroker({ port: 0, ...(accounts ? { auth: accounts } : {}) });
  reply({ type: 'broker', url: broker.url });
  process.on('SIGTERM', () => {
    void broker.close().then(() => process.exit(0));
  });
} else if (mode === 'publish') {
  const url = process.argv[3];
  if (!url) throw new Error('usage: links-publisher.ts publish <mqtt url>');
  const client = await connectAsync(url, {
    clientId: `fleetvisor-bench-pub-${process.pid}`,
    protocolVersion: 4,
    reconnectPeriod: 0,
    clean: true,
    ...(accounts ? accounts.host : {}),
  });
  client.on('error', (e) => reply({ type: 'failed', error: e.message }));
  const seqs = new Map<string, number>();
  process.on('message', (m: PublisherCommand) => {
    void handle(client, seqs, m).catch((e: unknown) =>
      reply({ type: 'failed', error: e instanceof Error ? e.message : String(e) }),
    );
  });
  reply({ type: 'ready' });
} else {
  throw new Error(`links-publisher.ts: unknown mode ${String(mode)}`);
}

async function handle(shared: MqttClient, seqs: Map<string, number>, m: PublisherCommand): Promise<void> {
  const start = performance.now();
  const url = process.argv[3]!;
  const own = new Map<string, MqttClient>();
  if (accounts && perDevice && m.cmd !== 'exit')
    for (const id of m.ids)
      own.set(topicFor(id as DeviceId, 'hello').slice(0, -5), await deviceClient(url, id));
  // The client that may publish `topic`: the device's own with accounts, else the shared one.
  const client = (topic: string): MqttClient => own.get(topic.slice(0, topic.lastIndexOf('/') + 1)) ?? shared;
  switch (m.cmd) {
    case 'hello': {
      await inWindows(client, m.ids.length * 2, 1, (i) => {
        const id = m.ids[i >> 1]! as DeviceId;
        if ((i & 1) === 0) {
          const hello: HelloMessage = {
            v: 1,
            type: 'hello',
            deviceId: id,
            kind: 'fleetvisor.generic',
            boot: m.boot,
            firmware: { version: '1.0.0', slot: 'A', confirmed: true, slots: { A: '1.0.0', B: null } },
            capabilities: ['reboot'],
          };
          return [topicFor(id, 'hello'), Buffer.from(encodeMessage(hello)), true];
        }
        const status: StatusMessage = { v: 1, type: 'status', state: 'online', boot: m.boot, conn: 1 };
        return [topicFor(id, 'status'), Buffer.from(encodeMessage(status)), true];
      });
      reply({ type: 'done', cmd: m.cmd, sent: m.ids.length * 2, ms: performance.now() - start });
      return;
    }
    case 'run': {
      const topics = m.ids.map((id) => topicFor(id as DeviceId, 'telemetry'));
      const ts = Date.now();
      await inWindows(client, m.n, m.qos, (i) => {
        const d = i % m.ids.length;
        const id = m.ids[d]!;
        const seq = (seqs.get(id) ?? 0) + 1;
        seqs.set(id, seq);
        // The wire form encodeMessage produces, built directly (validating each one would cost
        // the publisher more than the broker does).
        const temp = 20 + (seq % 100) / 10;
        const rssi = -60 - (seq % 20);
        const payload = `{"v":1,"type":"telemetry","boot":${m.boot},"seq":${seq},"ts":${ts + i},"values":{"temp":${temp},"rssi":${rssi}}}`;
        return [topics[d]!, Buffer.from(payload), false];
      });
      reply({ type: 'done', cmd: m.cmd, sent: m.n, ms: performance.now() - start });
      return;
    }
    case 'clear': {
      await inWindows(client, m.ids.length * 2, 1, (i) => [
        topicFor(m.ids[i >> 1]! as DeviceId, (i & 1) === 0 ? 'hello' : 'status'),
        Buffer.alloc(0),
        true,
      ]);
      reply({ type: 'done', cmd: m.cmd, sent: m.ids.length * 2, ms: performance.now() - start });
      return;
    }
    case 'exit':
      await Promise.all([...deviceClients.values()].map(async (c) => (await c).endAsync()));
      await shared.endAsync();
      process.exit(0);
  }
}

/**
 * Publishes `n` messages made by `make(i)` with at most {@link WINDOW} awaiting their callback
 * (QoS 0: written; QoS 1: PUBACK), topped up whenever half of them are done. A sliding window, not
 * "publish 500, await all": with Nagle on the broker's side (Mosquitto's default) the last PUBACK
 * of a drained window waits ~40 ms for a delayed ACK, which capped QoS 1 at ~10k msg/s.
 */
function inWindows(
  client: (topic: string) => MqttClient,
  n: number,
  qos: 0 | 1,
  make: (i: number) => [topic: string, payload: Buffer, retain: boolean],
): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let done = 0;
    let failed = false;
    const onDone = (error?: Error) => {
      if (failed) return;
      if (error) {
        failed = true;
        reject(error);
        return;
      }
      done++;
      if (done === n) resolve();
      else if (sent - done <= WINDOW / 2) pump();
    };
    // A callback can come back synchronously (a client whose socket takes the write at once):
    // the running loop then carries on instead of recursing.
    let pumping = false;
    const pump = () => {
      if (pumping) return;
      pumping = true;
      try {
        while (sent < n && sent - done < WINDOW) {
          const [topic, payload, retain] = make(sent++);
          client(topic).publish(topic, payload, { qos, retain }, onDone);
        }
      } finally {
        pumping = false;
      }
    };
    if (n === 0) resolve();
    else pump();
  });
}

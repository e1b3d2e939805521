/**
 * Child process for `firmware.bench.ts`, so that the simulated devices' CPU (and the broker's)
 * stays out of the host's CPU figure. Driven over the IPC channel (spawned with `node --import tsx`):
 *
 * - `firmware-sims.ts broker`: runs the embedded aedes broker on a free port and sends
 *   `{ type: 'broker', url }`; it lives until the parent goes.
 * - Either mode answers `{ cmd: 'cpu' }` with `{ type: 'cpu', user, system }` (process.cpuUsage(), µs).
 * - `firmware-sims.ts devices`: sends `{ type: 'ready' }`, then answers each command:
 *   - `{ cmd: 'start', url, prefix, n, capabilities?, binaryChunks? }`: n simulated MQTT devices (src/sim/sim-fleet.ts, ids
 *     `<prefix>-m0001`…), telemetry hourly so it stays out of the way → `{ type: 'started', ids, ms }`;
 *   - `{ cmd: 'rawsub', url, topic, expect, subscribers? }`: a plain mqtt.js subscriber on `topic/+` (or
 *     `subscribers` of them, one per `topic/i`; QoS 1) that
 *     only counts messages → `{ type: 'subscribed' }`, then `{ type: 'rawdone', count }` once
 *     `expect` messages arrived; `{ cmd: 'rawend' }` ends it → `{ type: 'rawended', count }`;
 *   - `{ cmd: 'versions' }` → `{ type: 'versions', counts }` (confirmed running version → devices);
 *   - `{ cmd: 'stop' }`: stops every device (they publish retained `offline`) → `{ type: 'stopped' }`.
 */
import type { MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import type { SimFleet } from '../../src/sim/sim-fleet.js';
import { startSimFleet } from '../../src/sim/sim-fleet.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';

export type SimsCommand =
  | {
      readonly cmd: 'start';
      readonly url: string;
      readonly prefix: string;
      readonly n: number;
      /** More hello capabilities (the chunk size the devices ask for). */
      readonly capabilities?: readonly string[];
      /** The devices list `fw.binary` (binary chunks); default true. */
      readonly binaryChunks?: boolean;
      /** Heartbeat interval; default 600 s (out of the way). */
      readonly heartbeatMs?: number;
    }
  | {
      readonly cmd: 'rawsub';
      readonly url: string;
      readonly topic: string;
      readonly expect: number;
      /** n subscribers on `topic/0` … `topic/n-1` instead of one on `topic/+`. */
      readonly subscribers?: number;
    }
  | { readonly cmd: 'rawend' }
  | { readonly cmd: 'versions' }
  | { readonly cmd: 'stop' }
  | { readonly cmd: 'cpu' };

export type SimsReply =
  | { readonly type: 'broker'; readonly url: string }
  | { readonly type: 'ready' }
  | { readonly type: 'started'; readonly ids: string[]; readonly ms: number }
  | { readonly type: 'subscribed' }
  | { readonly type: 'rawdone'; readonly count: number }
  | { readonly type: 'rawended'; readonly count: number }
  | { readonly type: 'versions'; readonly counts: Record<string, number> }
  | { readonly type: 'stopped' }
  | { readonly type: 'cpu'; readonly user: number; readonly system: number }
  | { readonly type: 'failed'; readonly error: string };

const reply = (m: SimsReply): void => {
  process.send?.(m);
};

// The parent going away (normally or not) ends this process.
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

const mode = process.argv[2];

const cpuReply = (): void => reply({ type: 'cpu', ...process.cpuUsage() });

if (mode === 'broker') {
  process.on('message', (m: SimsCommand) => {
    if (m.cmd === 'cpu') cpuReply();
  });
  const broker = await startEmbeddedBroker({ port: 0 });
  reply({ type: 'broker', url: broker.url });
} else if (mode === 'devices') {
  let fleet: SimFleet | undefined;
  let subs: MqttClient[] = [];
  let count = 0;
  process.on('message', (m: SimsCommand) => {
    void handle(m).catch((error: unknown) =>
      reply({ type: 'failed', error: error instanceof Error ? error.stack || error.message : String(error) }),
    );
  });
  async function handle(m: SimsCommand): Promise<void> {
    switch (m.cmd) {
      case 'start': {
        const t0 = performance.now();
        fleet = await startSimFleet({
          mqttUrl: m.url,
          mqtt: m.n,
          idPrefix: m.prefix,
          telemetryIntervalMs: 3_600_000,
          heartbeatMs: m.heartbeatMs ?? 600_000,
          concurrency: 50,
          startTimeoutMs: 60_000,
          ...(m.capabilities ? { extraCapabilities: m.capabilities } : {}),
          ...(m.binaryChunks !== undefined ? { binaryChunks: m.binaryChunks } : {}),
        });
        reply({ type: 'started', ids: fleet.mqtt.map((d) => d.id), ms: performance.now() - t0 });
        return;
      }
      case 'rawsub': {
        count = 0;
        let done = false;
        // One subscriber on `topic`, or (`subscribers: n`) n of them on `topic/0` … `topic/n-1`.
        const filters = m.subscribers
          ? Array.from({ length: m.subscribers }, (_, i) => `${m.topic}/${i}`)
          : [`${m.topic}/+`];
        subs = [];
        for (const [i, filter] of filters.entries()) {
          const sub = await connectAsync(m.url, {
            clientId: `fleetvisor-bench-fw-sub-${process.pid}-${i}`,
            protocolVersion: 4,
            reconnectPeriod: 0,
            clean: true,
          });
          subs.push(sub);
          sub.on('error', () => {});
          sub.on('message', () => {
            count++;
            if (!done && count >= m.expect) {
              done = true;
              reply({ type: 'rawdone', count });
            }
          });
          await sub.subscribeAsync(filter, { qos: 1 });
        }
        if (process.env.FLEETVISOR_BENCH_FW_VERBOSE === '1') {
          const tick = setInterval(() => console.error(`# firmware-sims: raw ${count} received`), 2000);
          subs[0]?.once('end', () => clearInterval(tick));
        }
        reply({ type: 'subscribed' });
        return;
      }
      case 'rawend':
        await Promise.all(subs.map((sub) => sub.endAsync(true)));
        subs = [];
        reply({ type: 'rawended', count });
        return;
      case 'versions': {
        const counts: Record<string, number> = {};
        for (const d of fleet?.mqtt ?? []) {
          const f = d.device.firmware;
          const key = `${f.version}${f.confirmed ? '' : ' (unconfirmed)'}`;
          counts[key] = (counts[key] ?? 0) + 1;
        }
        reply({ type: 'versions', counts });
        return;
      }
      case 'cpu':
        cpuReply();
        return;
      case 'stop':
        await fleet?.stop();
        fleet = undefined;
        reply({ type: 'stopped' });
        return;
    }
  }
  reply({ type: 'ready' });
} else {
  console.error(`firmware-sims.ts: unknown mode ${mode}`);
  process.exit(2);
}

/**
 * Issue 12 §0 on the real stack: a device floods the embedded aedes broker (and a private
 * Mosquitto, when installed) with telemetry past what a real SQLite store with a small write
 * buffer commits; the host's MQTT link must pause reading instead of dropping, and whatever a
 * bound still drops must be counted with its cause. Every point sent is either in the store or in
 * `links.mqtt.stats().lost`.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { Fleet } from '../../src/devices/fleet.js';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import type { Links } from '../../src/transports/links.js';
import { createLinks } from '../../src/transports/links.js';
import type { TelemetryMessage } from '../../src/transports/protocol.js';
import { tempDir } from '../store/helpers.js';
import { freePort, waitFor } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Host {
  readonly runtime: Runtime;
  readonly store: SqliteStore;
  readonly fleet: Fleet;
  readonly links: Links;
}

/** The host with a store that takes at most `bufferMax` waiting points, in batches of 25. */
async function startHost(url: string, maxPendingIngest: number, bufferMax: number): Promise<Host> {
  const tmp = tempDir();
  cleanups.push(tmp.cleanup);
  const store = await openSqliteStore({
    file: tmp.file,
    telemetryFlushMs: 5,
    telemetryBatchMax: 25,
    telemetryBufferMax: bufferMax,
  });
  const runtime = createRuntime({});
  const links = createLinks({
    runtime,
    store,
    mqtt: { url, connectTimeoutMs: 2000, maxPendingIngest },
  });
  const fleet = createFleet({
    runtime,
    store,
    kinds: [genericDevice],
    carrier: links.carrier,
    reconcileIntervalMs: 0,
  });
  await fleet.start();
  const added = await fleet.addDevice({ id: 'flood-1', kind: 'fleetvisor.generic' });
  expect(added.ok).toBe(true);
  await links.attach(fleet, { adopt: 'manual' });
  cleanups.push(async () => {
    await links.stop();
    await fleet.stop();
    await store.close();
    runtime.dispose();
  });
  await waitFor(() => links.mqtt?.stats().connected === true, 5000, 'the host link to connect');
  return { runtime, store, fleet, links };
}

/** Publishes `n` telemetry messages (one point each) as fast as the client writes them, QoS 0 or 1. */
async function flood(client: MqttClient, n: number, qos: 0 | 1 = 0): Promise<void> {
  for (let seq = 1; seq <= n; seq++) {
    const m: TelemetryMessage = {
      v: 1,
      type: 'telemetry',
      boot: 1,
      seq,
      ts: 1_700_000_000_000 + seq,
      values: { n: seq },
    };
    client.publish('fleetvisor/v1/flood-1/telemetry', JSON.stringify(m), { qos });
    if (seq % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await client.publishAsync('fleetvisor/v1/flood-1/x-end', 'end'); // the flood has left the client
}

async function stored(host: Host): Promise<number> {
  const [bucket] = await host.store.queryTelemetry('flood-1', 'n', 0, Date.now() + 60_000, 1);
  return bucket?.count ?? 0;
}

const N = 20_000;

describe('links under a telemetry flood past the store (issue 12 §0), on aedes and a real SQLite file', () => {
  it('pauses reading while the store catches up: every point of the flood is stored, none lost', async () => {
    const broker = await startEmbeddedBroker({ port: 0 });
    cleanups.push(() => broker.close());
    const host = await startHost(broker.url, 50, 200);
    const device = await connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
    cleanups.push(() => device.endAsync(true));
    await flood(device, N);
    await waitFor(
      () => (host.links.mqtt?.stats().received ?? 0) >= N,
      60_000,
      'the host to receive the flood',
    );
    await waitFor(() => host.links.mqtt?.stats().pendingIngest === 0, 30_000, 'every write to settle');
    const stats = host.links.mqtt!.stats();
    expect(stats.lost).toEqual({});
    expect(stats.pauses).toBeGreaterThan(0); // the store was the slower part: the link did pause
    expect(await stored(host)).toBe(N);
  });

  it('when a bound above the store still drops, every point is stored or counted as lost with its cause', async () => {
    const broker = await startEmbeddedBroker({ port: 0 });
    cleanups.push(() => broker.close());
    // The link allows far more pending writes than the store buffers: the store refuses some.
    const host = await startHost(broker.url, 100_000, 100);
    const device = await connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
    cleanups.push(() => device.endAsync(true));
    await flood(device, N);
    await waitFor(
      () => (host.links.mqtt?.stats().received ?? 0) >= N,
      60_000,
      'the host to receive the flood',
    );
    await waitFor(() => host.links.mqtt?.stats().pendingIngest === 0, 30_000, 'every write to settle');
    const lost = host.links.mqtt!.stats().lost;
    const lostTotal = Object.values(lost).reduce((a, b) => a + b, 0);
    // The cause is the store's own word for a full buffer, and it agrees with the store's count.
    expect(lost).toEqual({ overloaded: host.store.stats().telemetry.overloaded });
    expect(lostTotal).toBeGreaterThan(0);
    // The hub counts each refused message against its device, one turn's messages at once.
    expect(host.links.hub?.stats('flood-1')?.errors).toEqual({ overloaded: lostTotal });
    expect((await stored(host)) + lostTotal).toBe(N);
  });
});

const MOSQUITTO = '/usr/sbin/mosquitto';

/** A private Mosquitto (the shared one is not flooded) that queues whatever its slow subscriber has not read. */
async function privateMosquitto(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'fv-flood-mosquitto-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  // max_queued_messages 0: no bound on the host's queue at the broker, so any loss is the host's.
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'max_queued_messages 0',
      '',
    ].join('\n'),
  );
  const proc = spawn(MOSQUITTO, ['-c', conf], { stdio: 'ignore' });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  );
  const url = `mqtt://127.0.0.1:${port}`;
  const deadline = Date.now() + 5000;
  for (;;) {
    const probe = await connectAsync(url, { reconnectPeriod: 0, connectTimeout: 500 }).catch(() => undefined);
    if (probe) {
      await probe.endAsync(true);
      return url;
    }
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error('mosquitto did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.runIf(existsSync(MOSQUITTO))(
  'links under a telemetry flood past the store (issue 12 §0), on Mosquitto',
  () => {
    it('pauses reading while the store catches up: every QoS 1 point of the flood is stored, none lost', async () => {
      const url = await privateMosquitto();
      const host = await startHost(url, 50, 200);
      const device = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
      cleanups.push(() => device.endAsync(true));
      await flood(device, N, 1);
      await waitFor(
        () => (host.links.mqtt?.stats().received ?? 0) >= N,
        60_000,
        'the host to receive the flood',
      );
      await waitFor(() => host.links.mqtt?.stats().pendingIngest === 0, 30_000, 'every write to settle');
      const stats = host.links.mqtt!.stats();
      expect(stats.lost).toEqual({});
      expect(stats.pauses).toBeGreaterThan(0);
      expect(await stored(host)).toBe(N);
    });
  },
);

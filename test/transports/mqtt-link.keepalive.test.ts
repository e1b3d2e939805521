/**
 * Issue 16/12: a host link paused for backpressure cannot read the broker's PINGRESP (it sits in
 * the socket behind the publishes the link does not read yet), and mqtt.js dropped the
 * connection on "Keepalive timeout" once a pause outlasted 1.5 keepalives. Every message the
 * broker had queued went with the connection, and the link reconnected into the same pause. Here
 * a real SQLite store's writes are held (as a store that is behind holds them) while a device
 * floods the embedded broker; the link must stay on its first connection while the broker keeps
 * handling its PINGREQs, and once the store catches up every message must be stored, none lost.
 *
 * No timing assertion: the test waits for events (the broker handling PINGREQs of the first
 * connection after the pause began, or the link reconnecting) and checks which one happened.
 */
import type { Client } from 'aedes';
import { connectAsync } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startMqttLink } from '../../src/transports/mqtt-link.js';
import type { TelemetryMessage } from '../../src/transports/protocol.js';
import { tempDir } from '../store/helpers.js';
import { uniqueId, waitFor } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Far more than `MAX_PENDING`: most of them wait in the socket and at the broker during the pause. */
const MESSAGES = 2000;
const MAX_PENDING = 10;
/** PINGREQs the broker must handle after the pause began: past 1.5 keepalives, where the link was dropped. */
const PINGS_AFTER_PAUSE = 3;

describe('MqttLink keepalive while paused for backpressure (issue 16/12, embedded broker, SQLite store)', () => {
  it('is not dropped for a missed keepalive while the store is behind, and its pause ends when the store catches up', {
    timeout: 120_000,
  }, async () => {
    const broker = await startEmbeddedBroker({ port: 0 });
    cleanups.push(() => broker.close());
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 5 });
    cleanups.push(() => store.close());
    const rt = createRuntime({});
    cleanups.push(() => rt.dispose());

    // The store's writes wait for `open()`: a store that is behind, without depending on its speed.
    let open!: () => void;
    const caughtUp = new Promise<void>((resolve) => {
      open = resolve;
    });
    const clientId = `host-${uniqueId()}`;
    const link = startMqttLink(rt, {
      url: broker.url,
      clientId,
      keepaliveMs: 1000, // mqtt.js pings after 1 s and gives up 0.5 s later without a PINGRESP
      connectTimeoutMs: 2000,
      maxPendingIngest: MAX_PENDING,
      reconnect: { initialMs: 50, maxMs: 200, jitter: 0.5, stableMs: 2000 },
      onMessage: async (deviceId, message) => {
        await caughtUp;
        if (message.type !== 'telemetry') return { ok: true, value: 0 };
        return store.appendTelemetry(
          Object.entries(message.values).map(([metric, value]) => ({
            deviceId,
            metric,
            deviceTs: message.ts,
            receivedAt: Date.now(),
            value,
            boot: message.boot,
            seq: message.seq,
          })),
        );
      },
      onDeviceError: () => {},
    });
    cleanups.push(() => link.stop());
    await waitFor(() => link.stats().connected, 5000, 'the link to connect');

    // The PINGREQs of the host's first connection only (a reconnect is a new aedes client).
    let firstConnection: Client | undefined;
    let pausedOnce = false;
    let pingsAfterPause = 0;
    broker.aedes.on('ping', (_packet, client) => {
      if (client.id !== clientId) return;
      firstConnection ??= client;
      if (client === firstConnection && pausedOnce) pingsAfterPause++;
    });

    const device = await connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
    device.on('error', () => {});
    cleanups.push(() => device.endAsync(true));
    for (let seq = 1; seq <= MESSAGES; seq++) {
      const m: TelemetryMessage = {
        v: 1,
        type: 'telemetry',
        boot: 1,
        seq,
        ts: 1_700_000_000_000 + seq,
        values: { temp: seq, humidity: 40 + (seq % 20), pressure: 1013.25, voltage: 3.3 - seq / 1e6 },
      };
      device.publish('fleetvisor/v1/pump-7/telemetry', JSON.stringify(m), { qos: 0 });
    }
    await waitFor(() => link.stats().paused, 5000, 'the link to pause');
    pausedOnce = true;

    // Before the fix the connection went down 1.5 keepalives into the pause ("Keepalive timeout").
    await waitFor(
      () => pingsAfterPause >= PINGS_AFTER_PAUSE || link.stats().reconnects > 0,
      30_000,
      'PINGREQs handled on the first connection, or a reconnect',
    );
    expect(link.stats()).toMatchObject({ reconnects: 0, state: 'connected', paused: true, lost: {} });
    expect(link.stats().received).toBeLessThan(MESSAGES); // the rest waits for the store
    expect(link.stats().keepalivesExcused).toBeGreaterThan(0);

    open();
    await waitFor(
      () => link.stats().received === MESSAGES && link.stats().pendingIngest === 0,
      60_000,
      'every message delivered and stored',
    );
    expect(link.stats()).toMatchObject({ reconnects: 0, state: 'connected', paused: false, lost: {} });
    expect(store.stats().telemetry.written).toBe(MESSAGES * 4);
  });
});

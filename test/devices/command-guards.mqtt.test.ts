/**
 * The command guards end to end: the embedded aedes broker, the links layer and the fleet on a
 * real SQLite file, a simulated device over MQTT, the real clock. The device hangs (`mute`): its
 * pings time out and the breaker opens; the next ping is refused `circuitOpen` at once, with the
 * probe time, and never reaches the device; the device recovers; after the cool-down the next ping
 * is the probe, it is answered and the breaker closes. Then the device's rate limit refuses a burst
 * with `rateLimited` and the retry time.
 */
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineDevice } from '../../src/devices/define-device.js';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { startMqttSimDevice } from '../../src/sim/mqtt-device.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { createLinks } from '../../src/transports/links.js';
import { tempDir } from '../store/helpers.js';
import { uniqueId, waitFor } from '../transports/helpers.js';

const COOL_DOWN_MS = 1500;
const REPLY_MS = 400;

const guarded = defineDevice({
  ...genericDevice,
  guards: { breaker: { failures: 3, coolDownMs: COOL_DOWN_MS }, rate: { perSecond: 2, burst: 4 } },
});

let broker: EmbeddedBroker;
const cleanups: (() => unknown)[] = [];
beforeAll(async () => {
  broker = await startEmbeddedBroker({ port: 0 });
});
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await broker.close();
});

describe('command guards over MQTT with a simulated device', () => {
  it('a hung device opens its breaker; commands are refused at once; the probe after the cool-down closes it', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 20 });
    const runtime = createRuntime({});
    const links = createLinks({
      runtime,
      store,
      mqtt: { url: broker.url, connectTimeoutMs: 1000, keepaliveMs: 5000 },
      commands: { replyTimeoutMs: REPLY_MS },
    });
    const fleet = createFleet({
      runtime,
      store,
      kinds: [guarded],
      carrier: links.carrier,
      reconcileIntervalMs: 0,
    });
    await fleet.start();
    const id = uniqueId('brk');
    // Liveness far beyond the reply time: the hung device stays "up" and its commands time out.
    expect(
      (await fleet.addDevice({ id, kind: guarded.kind, attributes: { livenessTimeoutMs: 60_000 } })).ok,
    ).toBe(true);
    await links.attach(fleet, { adopt: 'manual' });
    const device = await startMqttSimDevice(broker.url, { id, telemetryIntervalMs: 60_000 });
    cleanups.push(async () => {
      await device.stop();
      await links.stop();
      await fleet.stop();
      await store.close();
      runtime.dispose();
      // Nothing retained outlives the test.
      const c = await connectAsync(broker.url, { reconnectPeriod: 0 });
      for (const ch of ['hello', 'status'])
        await c.publishAsync(`fleetvisor/v1/${id}/${ch}`, Buffer.alloc(0), { qos: 1, retain: true });
      await c.endAsync(true);
    });
    await waitFor(() => fleet.device(id)?.state === 'connected', 5000, 'connected');

    const ping = () => fleet.act(id, 'ping', {}, 'tester');
    /** The command's final status, as the command log has it. */
    const finalOf = async (commandId: string) => {
      if (fleet.commands.get(commandId)) await fleet.commands.settled(commandId);
      await fleet.commands.flush();
      const page = await store.queryCommands({ limit: 100 });
      const item = page.items.find((i) => i.ok && i.value.commandId === commandId);
      return item?.ok ? item.value.status : undefined;
    };
    // A healthy ping is answered.
    const first = await ping();
    expect(first.ok).toBe(true);
    expect(await finalOf(first.ok ? first.value.commandId : '')).toBe('succeeded');

    // Hung: three pings in a row time out; the third opens the breaker.
    device.device.setFaults({ mute: true });
    for (let i = 0; i < 3; i++) {
      const r = await ping();
      expect(r.ok).toBe(true);
      expect(await finalOf(r.ok ? r.value.commandId : '')).toBe('timedOut');
      await new Promise((res) => setTimeout(res, 500)); // keep under the rate limit
    }
    const breaker = fleet.guards.breaker(id);
    expect(breaker).toMatchObject({ state: 'open', consecutiveFailures: 3, opens: 1 });
    expect(breaker.nextProbeAt).toBeGreaterThan(Date.now());

    // Refused at once: the act answers circuitOpen with the probe time; nothing reaches the device.
    const received = device.device.ignored;
    const t0 = performance.now();
    const refused = await ping();
    expect(performance.now() - t0).toBeLessThan(100);
    expect(refused).toEqual({
      ok: false,
      error: {
        code: 'circuitOpen',
        message: expect.stringContaining('next probe'),
        retryAt: breaker.nextProbeAt,
      },
    });
    expect(fleet.commands.open(id)).toEqual([]);
    await new Promise((res) => setTimeout(res, 100));
    expect(device.device.ignored).toBe(received);

    // The device recovers; after the cool-down the next ping is the probe; its answer closes it.
    device.device.setFaults({ mute: false });
    await waitFor(() => Date.now() >= breaker.nextProbeAt!, COOL_DOWN_MS + 500, 'the cool-down');
    expect(fleet.guards.breakerState(id)).toBe('halfOpen');
    const probe = await ping();
    expect(probe.ok).toBe(true);
    expect(fleet.guards.breaker(id).probing).toBe(true);
    expect(await finalOf(probe.ok ? probe.value.commandId : '')).toBe('succeeded');
    expect(fleet.guards.breaker(id)).toMatchObject({
      state: 'closed',
      consecutiveFailures: 0,
      opens: 1,
      nextProbeAt: null,
    });

    // The device's rate limit (2 a second, burst 4): a burst of 6 gets 4 through.
    await new Promise((res) => setTimeout(res, 2100)); // the bucket full again
    const burst = await Promise.all(Array.from({ length: 6 }, () => ping()));
    expect(burst.filter((r) => r.ok)).toHaveLength(4);
    const limited = burst.filter((r) => !r.ok);
    expect(limited).toHaveLength(2);
    for (const r of limited) {
      expect(r.ok === false && r.error.code).toBe('rateLimited');
      const retryAt = r.ok === false ? (r.error.retryAt ?? 0) : 0;
      expect(retryAt).toBeGreaterThan(Date.now());
      expect(retryAt).toBeLessThanOrEqual(Date.now() + 500);
    }
    for (const r of burst) if (r.ok) expect(await finalOf(r.value.commandId)).toBe('succeeded');
  });
});

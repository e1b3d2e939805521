/**
 * Firmware update jobs and the device's command circuit breaker (issue 15 §2), on the real stack:
 * the embedded aedes broker, the links layer and the fleet on a real SQLite file, a simulated
 * device over MQTT, the real clock, firmware updates guarded by the fleet's breakers.
 *
 * The device hangs (`mute`): two pings time out, then an update job's transfer times out
 * (`stalled`) — the third failure in a row, which opens the breaker. The next job is refused at
 * once with `circuitOpen` and the probe time, and not one fw message goes out. A rollout for the
 * device waits for that time without spending an attempt; the device recovers; once the breaker
 * is half-open the rollout's job is the probe, the device answers it, the breaker closes and the
 * rollout completes with the device updated in one attempt.
 */
import { createHash, randomBytes } from 'node:crypto';
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineDevice } from '../../src/devices/define-device.js';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import { breakerEnd, createFirmwareUpdates } from '../../src/firmware/firmware-updates.js';
import type { RolloutSnapshot } from '../../src/firmware/rollout.js';
import { createRollout } from '../../src/firmware/rollout.js';
import type { UpdateJobSnapshot } from '../../src/firmware/update-job.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { startMqttSimDevice } from '../../src/sim/mqtt-device.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { createLinks } from '../../src/transports/links.js';
import { tempDir } from '../store/helpers.js';
import { uniqueId, waitFor } from '../transports/helpers.js';

const COOL_DOWN_MS = 3000;
const REPLY_MS = 400;

const guarded = defineDevice({
  ...genericDevice,
  guards: { breaker: { failures: 3, coolDownMs: COOL_DOWN_MS } },
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

const snap = (step: UpdateJobSnapshot['step'], code?: string): UpdateJobSnapshot =>
  ({ step, error: code ? { step: 'transferring', code, message: code } : undefined }) as UpdateJobSnapshot;

describe('how a job ends, for the breaker', () => {
  it.each([
    [snap('succeeded'), 'succeeded'],
    [snap('cancelled', 'cancelled'), 'cancelled'],
    [snap('failed', 'stalled'), 'timedOut'],
    [snap('failed', 'rebootTimeout'), 'timedOut'],
    // The device answered with its own code, or rolled back: it is alive.
    [snap('failed', 'hashMismatch'), 'failed'],
    [snap('failed', 'busy'), 'failed'],
    [snap('rolledBack', 'unhealthy'), 'failed'],
  ])('%j → %s', (final, status) => {
    expect(breakerEnd(final).status).toBe(status);
  });
});

describe('update jobs respect the device circuit breaker (MQTT, simulated device)', () => {
  it('a timed-out transfer opens it; a job is then refused circuitOpen; a rollout waits for the probe', async () => {
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
    const id = uniqueId('fwbrk');
    // Liveness far beyond the reply time: the hung device stays "up" and its commands time out.
    const added = await fleet.addDevice({
      id,
      kind: guarded.kind,
      attributes: { livenessTimeoutMs: 60_000 },
    });
    expect(added.ok).toBe(true);
    /** Every fw.* message the jobs put on the wire. */
    const fwSent: string[] = [];
    const updates = createFirmwareUpdates({
      runtime,
      hub: () => {
        const hub = links.hub;
        if (!hub) return undefined;
        return {
          device: (d) => hub.device(d),
          send: (d, m) => {
            fwSent.push(m.type);
            return hub.send(d, m);
          },
        };
      },
      breaker: fleet.guards,
      defaults: { ackTimeoutMs: 300, stallTimeoutMs: 1500, soakMs: 300, rebootTimeoutMs: 10_000 },
    });
    await links.attach(fleet, {
      adopt: 'manual',
      onFirmwareAck: (d, ack) => updates.ack(d, ack),
      onDeviceHello: (d, hello) => updates.hello(d, hello),
    });
    const device = await startMqttSimDevice(broker.url, {
      id,
      telemetryIntervalMs: 60_000,
      bootDelayMs: 200,
    });
    cleanups.push(async () => {
      await device.stop();
      await links.stop();
      await fleet.stop();
      await store.close();
      runtime.dispose();
      const c = await connectAsync(broker.url, { reconnectPeriod: 0 });
      for (const ch of ['hello', 'status'])
        await c.publishAsync(`fleetvisor/v1/${id}/${ch}`, Buffer.alloc(0), { qos: 1, retain: true });
      await c.endAsync(true);
    });
    await waitFor(() => fleet.device(id)?.state === 'connected', 5000, 'connected');
    const ping = async () => {
      const r = await fleet.act(id, 'ping', {}, 'tester');
      if (!r.ok) throw new Error(r.error.message);
      return (await fleet.commands.settled(r.value.commandId)).status;
    };
    expect(await ping()).toBe('succeeded');

    // Hung: two pings time out, then the update's transfer times out: the third failure opens it.
    device.device.setFaults({ mute: true });
    expect(await ping()).toBe('timedOut');
    expect(await ping()).toBe('timedOut');
    expect(fleet.guards.breaker(id)).toMatchObject({ state: 'closed', consecutiveFailures: 2 });
    const image1 = new Uint8Array(randomBytes(20 * 1024));
    const job = updates.start(id, { image: image1, version: '1.1.0', actor: 'tester' });
    if (!job.ok) throw new Error(job.error.message);
    const stalled = await job.value.done;
    expect(stalled).toMatchObject({ step: 'failed', error: { code: 'stalled', step: 'transferring' } });
    const breaker = fleet.guards.breaker(id);
    expect(breaker).toMatchObject({ state: 'open', consecutiveFailures: 3, opens: 1 });
    expect(breaker.lastFailure).toMatch(/^timedOut|^stalled/);
    expect(breaker.lastFailure).toContain('no progress');
    expect(breaker.nextProbeAt).toBeGreaterThan(Date.now());

    // Open: a new job is refused at once, with the probe time, and nothing goes on the wire.
    const image = new Uint8Array(randomBytes(24 * 1024 + 5));
    const sentBefore = fwSent.length;
    const refused = updates.start(id, { image, version: '1.2.0', actor: 'tester' });
    expect(refused).toEqual({
      ok: false,
      error: {
        code: 'circuitOpen',
        message: expect.stringContaining('circuit breaker is open'),
        retryAt: breaker.nextProbeAt,
      },
    });
    expect(updates.get(id)?.step).toBe('failed'); // still the stalled job: no new one was made
    await new Promise((r) => setTimeout(r, 200));
    expect(fwSent.length).toBe(sentBefore);

    // A rollout of the device waits for the probe time, spending no attempt.
    const history: RolloutSnapshot[] = [];
    const rollout = createRollout({
      runtime,
      updates,
      id: 'r-brk',
      image,
      version: '1.2.0',
      sha256: createHash('sha256').update(image).digest('hex'),
      devices: [id],
      policy: { retries: 1, retryDelayMs: 200 },
      onChange: (s) => history.push(s),
    });
    rollout.start();
    expect(rollout.snapshot().devices[id]).toMatchObject({
      state: 'waitingRetry',
      attempts: 0,
      error: { code: 'circuitOpen' },
    });

    // The device recovers before the cool-down ends; at the probe time the rollout's job goes,
    // as the probe; the device answers; the breaker closes; the rollout completes.
    device.device.setFaults({ mute: false });
    await waitFor(() => fleet.guards.breaker(id).probing, COOL_DOWN_MS + 3000, 'the job as the probe');
    expect(Date.now()).toBeGreaterThanOrEqual(breaker.nextProbeAt!);
    expect(fleet.guards.breakerState(id)).toBe('halfOpen');
    const final = await rollout.done;
    expect(final.state).toBe('completed');
    expect(final.devices[id]).toMatchObject({ state: 'succeeded', attempts: 1 });
    expect(device.device.firmware).toMatchObject({ version: '1.2.0', confirmed: true });
    expect(fleet.guards.breaker(id)).toMatchObject({ state: 'closed', consecutiveFailures: 0, opens: 1 });
    // While it waited, the device was never counted as failed or tried more than once.
    expect(history.every((s) => s.devices[id]!.attempts <= 1 && s.devices[id]!.state !== 'failed')).toBe(
      true,
    );
    expect(await ping()).toBe('succeeded');
  }, 40_000);
});

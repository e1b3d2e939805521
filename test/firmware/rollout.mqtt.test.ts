/**
 * Rollouts in waves over MQTT: the host's rollout (src/firmware/rollout.ts) driving real update
 * jobs through the links and a real aedes broker to 20 simulated devices. What an operator
 * checks: the canary goes first and alone; every device ends on the new version, applied exactly
 * once; with 30 % of the devices refusing the image the rollout pauses at its failure bound with
 * the reason, and devices it never reached keep their version; cancel ends it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutSnapshot } from '../../src/firmware/rollout.js';
import { createRollout, waveEnds } from '../../src/firmware/rollout.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { MqttSimDevice } from '../../src/sim/mqtt-device.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { uniqueId, waitFor } from '../transports/helpers.js';
import { ready, runCleanups, sim, startHost } from './mqtt-rig.js';

let broker: EmbeddedBroker;
beforeAll(async () => {
  broker = await startEmbeddedBroker({ port: 0 });
});
afterEach(runCleanups);
afterAll(async () => {
  await broker?.close();
});

const image = new Uint8Array(randomBytes(12 * 1024));
const sha256 = createHash('sha256').update(image).digest('hex');

async function fleetOf(n: number, refusing: (i: number) => boolean) {
  const prefix = uniqueId('ro');
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(2, '0')}`);
  const firstBegin = new Map<string, number>();
  const host = await startHost(broker.url, ids, (m) => m, { soakMs: 500, rebootTimeoutMs: 10_000 });
  const devices: MqttSimDevice[] = [];
  for (const [i, id] of ids.entries())
    devices.push(await sim(broker.url, id, refusing(i) ? { maxImageBytes: 1024 } : {}));
  for (const id of ids) await ready(host, id);
  return { ids, host, devices, firstBegin };
}

describe('rollouts in waves over MQTT (embedded aedes)', () => {
  it('the wave bounds: a canary, then cumulative shares, the last one the whole list', () => {
    expect(waveEnds(20, [{ count: 1 }, { share: 0.05 }, { share: 0.25 }, { share: 1 }])).toEqual([1, 5, 20]);
    expect(waveEnds(200, [{ count: 1 }, { share: 0.05 }, { share: 0.25 }, { share: 1 }])).toEqual([
      1, 10, 50, 200,
    ]);
    expect(waveEnds(3, [{ share: 0.5 }])).toEqual([2, 3]);
  });

  it('20 devices: the canary first and alone, then the waves; every device updated exactly once', async () => {
    const { ids, host, devices } = await fleetOf(20, () => false);
    const runtime = createRuntime({});
    const history: RolloutSnapshot[] = [];
    const rollout = createRollout({
      runtime,
      updates: host.updates,
      id: 'r-20',
      image,
      version: '1.1.0',
      sha256,
      devices: ids,
      policy: {
        waves: [
          { count: 1, maxConcurrent: 1 },
          { share: 0.25, maxConcurrent: 4 },
          { share: 1, maxConcurrent: 8 },
        ],
      },
      onChange: (s) => history.push(s),
    });
    rollout.start();
    const final = await rollout.done;
    runtime.dispose();
    expect(final.state).toBe('completed');
    expect(final.counts).toMatchObject({ succeeded: 20, failed: 0, skipped: 0 });
    for (const d of devices) {
      expect(d.device.firmware).toMatchObject({ version: '1.1.0', confirmed: true });
      expect(d.device.reboots).toBe(1);
    }
    // While the canary ran, no other device had started.
    const canary = ids[0]!;
    const beforeCanaryDone = history.filter((s) => s.devices[canary]!.state !== 'succeeded');
    for (const s of beforeCanaryDone)
      expect(Object.entries(s.devices).filter(([id, d]) => id !== canary && d.state !== 'pending')).toEqual(
        [],
      );
    // Never more jobs at a time than the wave allows.
    expect(Math.max(...history.map((s) => s.counts.updating))).toBeLessThanOrEqual(8);
  }, 120_000);

  it('30 % of the devices refuse the image: the rollout pauses at its bound, naming it; cancel ends it', async () => {
    // Devices 0–3 are healthy (the canary among them); 6 of the rest refuse (their slot is too small).
    const refusing = (i: number) => i >= 4 && i % 2 === 0 && i < 16;
    const { ids, host, devices } = await fleetOf(20, refusing);
    const runtime = createRuntime({});
    const rollout = createRollout({
      runtime,
      updates: host.updates,
      id: 'r-bad',
      image,
      version: '1.1.0',
      sha256,
      devices: ids,
      policy: {
        waves: [
          { count: 1, maxConcurrent: 1 },
          { share: 1, maxConcurrent: 2 },
        ],
        maxFailureShare: 0.2,
        retries: 0,
      },
    });
    rollout.start();
    await waitFor(() => rollout.snapshot().state !== 'running', 60_000, 'the rollout to stop running');
    const paused = rollout.snapshot();
    expect(paused.state).toBe('paused');
    expect(paused.reason).toMatch(/devices failed \(\d+ %\), more than the 20 % allowed/);
    expect(paused.counts.failed).toBeGreaterThan(0);
    const failedOne = Object.values(paused.devices).find((d) => d.state === 'failed')!;
    expect(failedOne.error?.code).toBe('tooLarge');
    // Paused: no new job starts, and devices it never reached keep their version.
    await new Promise((r) => setTimeout(r, 1500));
    const later = rollout.snapshot();
    expect(later.counts.pending).toBe(paused.counts.pending); // running jobs end; none starts
    expect(later.counts.pending).toBeGreaterThan(0);
    const untouched = ids.filter((id) => later.devices[id]!.state === 'pending');
    for (const id of untouched) expect(devices[ids.indexOf(id)]!.device.firmware.version).toBe('1.0.0');
    rollout.cancel();
    const final = await rollout.done;
    runtime.dispose();
    expect(final).toMatchObject({ state: 'cancelled', reason: 'cancelled by the operator' });
    expect(final.counts.pending).toBe(0);
  }, 120_000);
});

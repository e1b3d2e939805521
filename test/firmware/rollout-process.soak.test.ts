/**
 * The soak between a rollout's waves on a simulated clock, with the image's own soak as the
 * default (image-soak.ts): an image declaring 600 s holds the next wave back exactly that long
 * and says until when; a rollout's own soak (0 included) wins; a rollout restored during its soak
 * soaks only what was left of it.
 */
import { describe, expect, it } from 'vitest';
import type { FirmwareUpdates } from '../../src/firmware/firmware-updates.js';
import { rolloutSoakMs } from '../../src/firmware/image-soak.js';
import type { Rollout, RolloutPolicy, RolloutSnapshot } from '../../src/firmware/rollout.js';
import { createRollout } from '../../src/firmware/rollout.js';
import type { UpdateJob, UpdateJobSnapshot } from '../../src/firmware/update-job.js';
import type { SimulatedClock } from '../../src/runtime/clock.js';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/runtime.js';

const START = 1_800_000_000_000;

/** An image record as far as the soak reads it: its manifest, declaring `soakSeconds` or not. */
const image = (soakSeconds?: number) => ({
  manifest: { signed: { version: '1.1.0', ...(soakSeconds !== undefined ? { soakSeconds } : {}) } },
});

/** Update jobs that succeed at once; `started` lists the devices in the order they were started. */
function instantUpdates(started: string[]): Pick<FirmwareUpdates, 'start' | 'cancel'> {
  return {
    start(deviceId) {
      started.push(deviceId);
      const final = { deviceId, step: 'succeeded' } as UpdateJobSnapshot;
      const job = { snapshot: () => ({ deviceId, step: 'transferring' }), done: Promise.resolve(final) };
      return { ok: true, value: job as unknown as UpdateJob };
    },
    cancel: () => ({ ok: false, error: { code: 'noJob', message: 'none' } }),
  };
}

function rollout(
  clock: SimulatedClock,
  policy: RolloutPolicy,
  started: string[],
  restore?: RolloutSnapshot,
): Rollout {
  return createRollout({
    runtime: { clock, logger: silentLogger },
    updates: instantUpdates(started),
    id: 'ro-soak',
    image: new Uint8Array(16),
    version: '1.1.0',
    sha256: 'a'.repeat(64),
    devices: ['canary', 'rest-1', 'rest-2'],
    policy: { waves: [{ count: 1 }, { share: 1 }], retries: 0, ...policy },
    ...(restore ? { restore } : {}),
  });
}

const settle = () => flushMicrotasks(5);

describe('rolloutSoakMs', () => {
  it.each([
    ['the image declares 600 s, the rollout nothing', undefined, 600, 600_000],
    ['the rollout sets its own', 30_000, 600, 30_000],
    ['the rollout sets none at all (0)', 0, 600, 0],
    ['neither', undefined, undefined, undefined],
    ['the image declares 0 s', undefined, 0, 0],
  ])('%s', (_name, requested, declared, expected) => {
    expect(rolloutSoakMs(requested, image(declared))).toBe(expected);
  });

  it('reads a stored manifest edited out of range as declaring none', () => {
    expect(rolloutSoakMs(undefined, { manifest: { signed: { soakSeconds: -5 } } })).toBeUndefined();
    expect(rolloutSoakMs(undefined, { manifest: { signed: { soakSeconds: '600' } } })).toBeUndefined();
    expect(rolloutSoakMs(undefined, { manifest: {} })).toBeUndefined();
  });
});

describe('the soak between waves', () => {
  it("holds the next wave back for the image's soak, saying until when", async () => {
    const clock = createSimulatedClock({ wallStartMs: START });
    const started: string[] = [];
    const soakMs = rolloutSoakMs(undefined, image(600));
    const r = rollout(clock, soakMs !== undefined ? { soakMs } : {}, started);
    r.start();
    await settle();
    expect(started).toEqual(['canary']);
    expect(r.snapshot()).toMatchObject({ state: 'running', wave: 0, soakEndsAt: START + 600_000 });
    expect(r.snapshot().devices['rest-1']!.state).toBe('pending');

    await clock.advanceAsync(599_999);
    await settle();
    expect(started).toEqual(['canary']);
    expect(r.snapshot().wave).toBe(0);

    await clock.advanceAsync(1);
    await settle();
    expect(started).toEqual(['canary', 'rest-1', 'rest-2']);
    expect(r.snapshot()).toMatchObject({ state: 'completed', wave: 1 });
    expect(r.snapshot().soakEndsAt).toBeUndefined();
  });

  it("a rollout's own soak of 0 wins over the image's: the next wave starts at once", async () => {
    const clock = createSimulatedClock({ wallStartMs: START });
    const started: string[] = [];
    const r = rollout(clock, { soakMs: rolloutSoakMs(0, image(600))! }, started);
    r.start();
    await settle();
    expect(started).toEqual(['canary', 'rest-1', 'rest-2']);
    expect(r.snapshot()).toMatchObject({ state: 'completed' });
  });

  it('restored during its soak (an app restart), it soaks only what was left', async () => {
    const clock = createSimulatedClock({ wallStartMs: START });
    const started: string[] = [];
    const first = rollout(clock, { soakMs: 600_000 }, started);
    first.start();
    await settle();
    const saved = first.snapshot();
    expect(saved.soakEndsAt).toBe(START + 600_000);
    first.cancel(); // the app stops: the first process goes away with its timer

    // Back 200 s later: 400 s of soak are left.
    const later = createSimulatedClock({ wallStartMs: START + 200_000 });
    const again: string[] = [];
    const second = rollout(later, { soakMs: 600_000 }, again, saved);
    second.start();
    await settle();
    expect(second.snapshot()).toMatchObject({ state: 'running', wave: 0, soakEndsAt: START + 600_000 });
    await later.advanceAsync(399_999);
    await settle();
    expect(again).toEqual([]);
    await later.advanceAsync(1);
    await settle();
    expect(again).toEqual(['rest-1', 'rest-2']);
    expect(second.snapshot()).toMatchObject({ state: 'completed', wave: 1 });
  });
});

/**
 * A rollout's telemetry checks (issue 14 §2): every job it starts gets the checks of its policy
 * (parsed), the rollout shows them, and its saved policy keeps them; a saved rollout without the
 * field (saved before checks existed) still reads, and one with a bad check is refused naming it.
 */
import { describe, expect, it } from 'vitest';
import type { FirmwareUpdates, UpdateJobSettings } from '../../src/firmware/firmware-updates.js';
import type { RolloutPolicy } from '../../src/firmware/rollout.js';
import { createRollout } from '../../src/firmware/rollout.js';
import { readSavedRollout } from '../../src/firmware/rollout-saved.js';
import type { UpdateJob, UpdateJobSnapshot } from '../../src/firmware/update-job.js';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import { silentLogger } from '../../src/runtime/runtime.js';

/** Update jobs that succeed at once; `settings` records what each start was given. */
function instantUpdates(
  settings: Map<string, UpdateJobSettings | undefined>,
): Pick<FirmwareUpdates, 'start' | 'cancel'> {
  return {
    start(deviceId, args) {
      settings.set(deviceId, args.settings);
      const final = { deviceId, step: 'succeeded' } as UpdateJobSnapshot;
      const job = { snapshot: () => ({ deviceId, step: 'transferring' }), done: Promise.resolve(final) };
      return { ok: true, value: job as unknown as UpdateJob };
    },
    cancel: () => ({ ok: false, error: { code: 'noJob', message: 'none' } }),
  };
}

const rolloutOf = (policy: RolloutPolicy, settings = new Map<string, UpdateJobSettings | undefined>()) =>
  createRollout({
    runtime: { clock: createSimulatedClock({ wallStartMs: 1_800_000_000_000 }), logger: silentLogger },
    updates: instantUpdates(settings),
    id: 'ro-checks',
    image: new Uint8Array(16),
    version: '1.1.0',
    sha256: 'a'.repeat(64),
    devices: ['d1', 'd2'],
    policy: { waves: [{ share: 1 }], retries: 0, ...policy },
  });

describe("a rollout's trial checks", () => {
  it('gives every job its checks, parsed, and shows them', async () => {
    const settings = new Map<string, UpdateJobSettings | undefined>();
    const r = rolloutOf({ trialMs: 2000, trialChecks: ['temp<=90', 'rssi'] }, settings);
    expect(r.snapshot().trialChecks).toEqual(['temp<=90', 'rssi']);
    r.start();
    await flushMicrotasks(5);
    expect((await r.done).state).toBe('completed');
    for (const id of ['d1', 'd2'])
      expect(settings.get(id)).toEqual({
        soakMs: 2000,
        trialChecks: [
          { kind: 'atMost', metric: 'temp', limit: 90, text: 'temp<=90' },
          { kind: 'reported', metric: 'rssi', text: 'rssi' },
        ],
      });
  });

  it('shows none without checks', () => {
    expect(rolloutOf({}).snapshot().trialChecks).toBeUndefined();
  });

  it('keeps them in its saved policy; one saved without them still reads; a bad one is refused, named', () => {
    const r = rolloutOf({ trialChecks: ['temp<=90'] });
    const body = JSON.parse(
      JSON.stringify({ snapshot: r.snapshot(), policy: { trialChecks: ['temp<=90'] } }),
    );
    const read = readSavedRollout('ro-checks', body);
    expect(read.ok && read.value.policy.trialChecks).toEqual(['temp<=90']);
    const { trialChecks: _, ...olderSnapshot } = body.snapshot;
    const older = readSavedRollout('ro-checks', { snapshot: olderSnapshot, policy: { trialMs: 5000 } });
    expect(older.ok && older.value.policy).toEqual({ trialMs: 5000 });
    const bad = readSavedRollout('ro-checks', { ...body, policy: { trialChecks: ['temp<=90', 'temp<>5'] } });
    expect(bad).toMatchObject({ ok: false, error: { code: 'badRollout', field: 'policy.trialChecks[1]' } });
    expect(!bad.ok && bad.error.message).toContain('"temp<>5"');
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import type { FirmwareUpdates } from '../../src/firmware/firmware-updates.js';
import type { OpenedFirmware } from '../../src/firmware/open-firmware.js';
import { readSavedRollout } from '../../src/firmware/rollout-saved.js';
import { createRolloutRunner } from '../../src/host/rollout-runner.js';
import type { JsonObject } from '../../src/lib/json.js';
import type { Logger } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openSampleFirmware, pausedSnapshot } from '../firmware/rollout-snapshots.js';
import { rawRun } from '../store/helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const snapshot = pausedSnapshot;

async function save(fw: OpenedFirmware, id: string, sha256: string, body: unknown): Promise<void> {
  await fw.store.saveRollout(
    {
      id,
      sha256,
      version: '1.1.0',
      state: 'paused',
      body: body as JsonObject,
      actor: 'ana',
      createdAt: 1_700_000_000_000,
      updatedAt: 1_700_000_000_000,
    },
    false,
  );
}

describe('restoring stored rollouts', () => {
  it('continues the good ones and refuses each damaged or old-format row by name and field', async () => {
    const { fw, file, sha } = await openSampleFirmware(cleanups);

    await save(fw, 'ro-good', sha, {
      snapshot: snapshot('ro-good', sha, ['a', 'b']),
      policy: { retries: 0 },
    });
    const bad = snapshot('ro-bad-state', sha, ['c']);
    await save(fw, 'ro-bad-state', sha, {
      snapshot: { ...bad, devices: { c: { state: 'exploded', wave: 0, attempts: 0 } } },
      policy: {},
    });
    // An older shape: the body was the snapshot alone, no policy.
    await save(fw, 'ro-old', sha, snapshot('ro-old', sha, ['d']));
    await save(fw, 'ro-other-id', sha, { snapshot: snapshot('ro-elsewhere', sha, ['e']), policy: {} });
    // Written behind the store's back: the JSON is fine, the snapshot is not an object.
    await save(fw, 'ro-sql', sha, { snapshot: snapshot('ro-sql', sha, ['f']), policy: {} });
    await rawRun(
      file,
      `UPDATE firmware_rollouts SET body = '{"snapshot": 5, "policy": {}}' WHERE id = 'ro-sql'`,
    );
    await save(fw, 'ro-good-2', sha, {
      snapshot: snapshot('ro-good-2', sha, ['g']),
      policy: { waves: [{ count: 1 }], window: { startMinute: 120, durationMinutes: 60, zone: 'utc' } },
    });

    const errors: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn() {}, error: (m) => void errors.push(m) };
    const runtime = createRuntime({ logger });
    cleanups.push(() => runtime.dispose());
    const started: string[] = [];
    const updates = {
      start: (deviceId: string) => {
        started.push(deviceId);
        return { ok: false, error: { code: 'notSupported', message: 'no' } };
      },
      cancel: () => ({ ok: false, error: { code: 'noJob', message: 'none' } }),
      job: () => undefined,
      get: () => undefined,
    } as unknown as FirmwareUpdates;
    const runner = createRolloutRunner({
      runtime,
      store: { appendEvents: async () => ({ ok: true, value: undefined }) } as never,
      firmware: fw,
      updates,
      fleet: { device: () => undefined, has: () => false },
    });

    await runner.restore();
    expect([...runner.all.keys()].sort()).toEqual(['ro-good', 'ro-good-2']);
    expect(runner.all.get('ro-good')!.snapshot()).toMatchObject({ state: 'paused', order: ['a', 'b'] });
    expect(started).toEqual([]); // paused: nothing runs, and nothing of the refused ones either
    expect(errors.sort()).toEqual([
      'rollout ro-bad-state: saved snapshot.devices.c.state must be one of pending, updating, waitingRetry, succeeded, failed, skipped, got "exploded"; not continued',
      'rollout ro-old: saved snapshot must be an object, got undefined; not continued',
      'rollout ro-other-id: saved snapshot.id is another rollout\'s, got "ro-elsewhere"; not continued',
      'rollout ro-sql: saved snapshot must be an object, got 5; not continued',
    ]);
    const listed = await runner.list();
    expect(listed.rollouts.map((s) => s.id).sort()).toEqual(['ro-good', 'ro-good-2']);
    // The damaged ones are listed apart, each with the field at fault.
    expect(Object.fromEntries(listed.damaged.map((d) => [d.id, d.field]))).toEqual({
      'ro-bad-state': 'snapshot.devices.c.state',
      'ro-old': 'snapshot',
      'ro-other-id': 'snapshot.id',
      'ro-sql': 'snapshot',
    });
    for (const r of runner.all.values()) r.cancel();
  });
});

describe('readSavedRollout', () => {
  const good = { snapshot: snapshot('ro-1', 'f'.repeat(64), ['a']), policy: {} };
  it('returns the body as saved when it passes', () => {
    expect(readSavedRollout('ro-1', good)).toEqual({ ok: true, value: good });
  });
  it('names the first wrong field of the policy', () => {
    expect(readSavedRollout('ro-1', { ...good, policy: { waves: [{ share: 2 }] } })).toEqual({
      ok: false,
      error: {
        code: 'badRollout',
        message: 'rollout ro-1: saved policy.waves[0].share must be within 0…1, got 2',
        field: 'policy.waves[0].share',
      },
    });
    expect(readSavedRollout('ro-1', null)).toMatchObject({
      ok: false,
      error: { code: 'badRollout', field: 'body' },
    });
  });
});

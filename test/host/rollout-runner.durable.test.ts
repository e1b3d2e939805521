import { afterEach, describe, expect, it } from 'vitest';
import type { FirmwareUpdates } from '../../src/firmware/firmware-updates.js';
import type { OpenedFirmware } from '../../src/firmware/open-firmware.js';
import { createRolloutRunner, type RolloutRunner } from '../../src/host/rollout-runner.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openSampleFirmware } from '../firmware/rollout-snapshots.js';
import { rawAll, recordingLogger } from '../store/helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Rig {
  file: string;
  fw: OpenedFirmware;
  runner: RolloutRunner;
  sha256: string;
  image: Uint8Array;
  /** For each job started: how many rollout saves had completed then. */
  savesDoneAtJobStart: number[];
  log: ReturnType<typeof recordingLogger>;
}

async function rig(): Promise<Rig> {
  const { fw, file, sha, image } = await openSampleFirmware(cleanups);

  let savesDone = 0;
  const saveRollout = fw.store.saveRollout.bind(fw.store);
  fw.store.saveRollout = async (r, ended) => {
    await saveRollout(r, ended);
    savesDone++;
  };
  const savesDoneAtJobStart: number[] = [];
  const log = recordingLogger();
  const runtime = createRuntime({ logger: log });
  cleanups.push(() => runtime.dispose());
  const updates = {
    // The job is accepted and never ends: the rollout stays running with one device updating.
    start: () => {
      savesDoneAtJobStart.push(savesDone);
      return { ok: true, value: { done: new Promise(() => {}), snapshot: () => ({ step: 'transferring' }) } };
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
  return {
    file,
    fw,
    runner,
    sha256: sha,
    image,
    savesDoneAtJobStart,
    log,
  };
}

function stored(file: string): Promise<{ id: string; state: string }[]> {
  return rawAll<{ id: string; state: string }>(file, 'SELECT id, state FROM firmware_rollouts');
}

describe('a rollout is saved before it is acknowledged', () => {
  it('is in the database when start answers, and its first job starts after the save', async () => {
    const r = await rig();
    const started = await r.runner.start({
      sha256: r.sha256,
      version: '1.1.0',
      image: r.image,
      devices: ['pump-1', 'pump-2'],
      policy: { waves: [{ count: 1 }, { share: 1 }] },
      actor: 'ana',
    });
    if (!started.ok) throw new Error(started.error.message);
    // Read at once by another connection, as the app restarted after a kill -9 right now would.
    expect(await stored(r.file)).toEqual([{ id: started.value.id, state: 'running' }]);
    expect(r.savesDoneAtJobStart.length).toBe(1);
    expect(r.savesDoneAtJobStart[0]).toBeGreaterThanOrEqual(1);

    started.value.pause('by hand');
    await r.runner.saved(started.value.id);
    expect(await stored(r.file)).toEqual([{ id: started.value.id, state: 'paused' }]);
    started.value.cancel();
    await r.runner.saved(started.value.id);
    expect(await stored(r.file)).toEqual([{ id: started.value.id, state: 'cancelled' }]);
  });

  it('is refused unavailable, with nothing started, when it cannot be saved', async () => {
    const r = await rig();
    await r.fw.close();
    const started = await r.runner.start({
      sha256: r.sha256,
      version: '1.1.0',
      image: r.image,
      devices: ['pump-1'],
      policy: {},
      actor: 'ana',
    });
    expect(started).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    if (started.ok) return;
    expect(started.error.message).toMatch(/could not be saved: nothing started/);
    expect(r.savesDoneAtJobStart).toEqual([]);
    expect(r.runner.all.size).toBe(0);
    expect(r.log.lines.some((l) => l.level === 'warn' && l.message === 'rollout not saved')).toBe(true);
  });
});

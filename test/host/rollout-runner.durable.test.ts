/**
 * A rollout is in the database before it is acknowledged (issue 14; CI found it): the app answered
 * "started" and sent the first device its image while the rollout's row was still queued, so a
 * kill -9 right then left a device updating and no rollout on restart ("the app has no rollout …
 * any more"). Now `start` saves the rollout before its first job and before it answers, and a
 * pause, resume or cancel is answered once saved. Real SQLite file, read back by another connection
 * as the restarted app would.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { genericDevice } from '../../src/devices/generic-device.js';
import type { FirmwareUpdates } from '../../src/firmware/firmware-updates.js';
import { openFirmware } from '../../src/firmware/index.js';
import type { OpenedFirmware } from '../../src/firmware/open-firmware.js';
import { createRolloutRunner, type RolloutRunner } from '../../src/host/rollout-runner.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { rawAll, recordingLogger, tempDir } from '../store/helpers.js';

const SAMPLE = join(import.meta.dirname, '../../assets/firmware/sample-1.1.0.bin');
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
  const tmp = tempDir();
  cleanups.push(tmp.cleanup);
  const opened = await openFirmware({
    dataDir: tmp.dir,
    databaseFile: tmp.file,
    demo: true,
    kinds: new Map([[genericDevice.kind, genericDevice]]),
  });
  if (!opened.ok) throw new Error(opened.error.message);
  const fw = opened.value;
  cleanups.push(() => fw.close());
  const image = new Uint8Array(readFileSync(SAMPLE));
  const imported = await fw.images.importImage({
    manifest: readFileSync(`${SAMPLE}.manifest.json`, 'utf8'),
    image,
    actor: 'test',
  });
  if (!imported.ok) throw new Error(imported.error.message);

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
    fleet: { device: () => undefined },
  });
  return {
    file: tmp.file,
    fw,
    runner,
    sha256: imported.value.image.sha256,
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

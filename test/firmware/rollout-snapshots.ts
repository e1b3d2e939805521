/**
 * What the rollout restore, damage and durability tests share: a real SQLite file with the sample
 * image imported ({@link openSampleFirmware}), and a paused rollout's saved snapshot, every device
 * pending in one wave: the row they write into it before they damage or restore it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { genericDevice } from '../../src/devices/generic-device.js';
import { openFirmware } from '../../src/firmware/index.js';
import type { OpenedFirmware } from '../../src/firmware/open-firmware.js';
import type { RolloutSnapshot } from '../../src/firmware/rollout.js';
import { tempDir } from '../store/helpers.js';

const SAMPLE = join(import.meta.dirname, '../../assets/firmware/sample-1.1.0.bin');

/**
 * The firmware of a new temp data folder (the demo's trust: the sample key) with the sample image
 * imported; what to undo is pushed on `cleanups`.
 */
export async function openSampleFirmware(
  cleanups: (() => unknown)[],
): Promise<{ fw: OpenedFirmware; file: string; sha: string; image: Uint8Array }> {
  const tmp = tempDir();
  cleanups.push(tmp.cleanup);
  const o = await openFirmware({
    dataDir: tmp.dir,
    databaseFile: tmp.file,
    demo: true,
    kinds: new Map([[genericDevice.kind, genericDevice]]),
  });
  if (!o.ok) throw new Error(o.error.message);
  cleanups.push(() => o.value.close());
  const image = new Uint8Array(readFileSync(SAMPLE));
  const imported = await o.value.images.importImage({
    manifest: readFileSync(`${SAMPLE}.manifest.json`, 'utf8'),
    image,
    actor: 'test',
  });
  if (!imported.ok) throw new Error(imported.error.message);
  return { fw: o.value, file: tmp.file, sha: imported.value.image.sha256, image };
}

export function pausedSnapshot(id: string, sha256: string, devices: string[]): RolloutSnapshot {
  return {
    id,
    version: '1.1.0',
    sha256,
    state: 'paused',
    reason: 'operator',
    wave: 0,
    waveEnds: [devices.length],
    order: devices,
    devices: Object.fromEntries(
      devices.map((d) => [d, { state: 'pending', wave: 0, attempts: 0, step: undefined, error: undefined }]),
    ),
    counts: { pending: devices.length, updating: 0, waitingRetry: 0, succeeded: 0, failed: 0, skipped: 0 },
    createdBy: 'ana',
    createdAt: 1_700_000_000_000,
  };
}

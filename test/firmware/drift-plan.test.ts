/**
 * The drift reconciler's plan for one device, pure (no app, no store): held while a job or
 * rollout has it, given up after that version's last job ended without success (a success or
 * another version does not count), waiting for an image of its kind, waiting under the cap,
 * else started with the image found.
 */
import { describe, expect, it } from 'vitest';
import { planDriftDevice } from '../../src/firmware/drift-plan.js';
import type { ImageListing } from '../../src/firmware/firmware-images.js';
import type { FirmwareImageRecord } from '../../src/store/firmware-store.js';

const listing = (version: string, kinds: string[]): ImageListing => ({
  image: {
    sha256: version.replace(/\D/g, '').padEnd(64, '0'),
    version,
    kinds,
    hardwareRevision: null,
    size: 100,
    keyId: 'k',
    manifest: {},
    importedAt: 0,
    importedBy: 'cli',
    downgradeFrom: null,
  } satisfies FirmwareImageRecord,
  runningOn: [],
  wantedBy: [],
});

const images = [listing('1.2.0', ['pump']), listing('1.2.0', ['valve']), listing('1.3.0', ['pump'])];
const base = {
  version: '1.2.0',
  kind: 'valve',
  busy: false,
  last: undefined,
  images,
  ours: 0,
  maxConcurrent: 2,
};

describe('drift plan for one device', () => {
  it('starts the update with the image of its version and kind', () => {
    expect(planDriftDevice(base)).toEqual({ kind: 'start', image: images[1] });
  });

  it('keeps off a device a job or rollout holds, before anything else', () => {
    expect(planDriftDevice({ ...base, busy: true, last: { version: '1.2.0', step: 'failed' } })).toEqual({
      kind: 'held',
    });
  });

  it("gives up after the version's last job failed, rolled back or was cancelled", () => {
    for (const step of ['failed', 'rolledBack', 'cancelled'])
      expect(planDriftDevice({ ...base, last: { version: '1.2.0', step } })).toEqual({
        kind: 'gaveUp',
        step,
      });
    expect(planDriftDevice({ ...base, last: { version: '1.1.0', step: 'failed' } }).kind).toBe('start');
    expect(planDriftDevice({ ...base, last: { version: '1.2.0', step: 'succeeded' } }).kind).toBe('start');
  });

  it('waits for an image of the version for its kind', () => {
    expect(planDriftDevice({ ...base, version: '1.3.0' })).toEqual({ kind: 'noImage' });
    expect(planDriftDevice({ ...base, images: [] })).toEqual({ kind: 'noImage' });
  });

  it("waits while the reconciler's jobs are at their cap", () => {
    expect(planDriftDevice({ ...base, ours: 2 })).toEqual({ kind: 'full' });
    expect(planDriftDevice({ ...base, ours: 1 }).kind).toBe('start');
  });
});

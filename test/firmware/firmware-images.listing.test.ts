/**
 * The image list, pure (no store): each image with the devices of its kinds that run it and that
 * want it; a device of another kind on the same version is not counted; rows that do not parse
 * are listed apart.
 */
import { describe, expect, it } from 'vitest';
import { imageListings } from '../../src/firmware/firmware-images.js';
import type { DeviceFirmware, FirmwareImageRecord } from '../../src/store/firmware-store.js';
import type { RowResult } from '../../src/store/store.js';

const record = (version: string, kinds: string[]): FirmwareImageRecord => ({
  sha256: version.replace(/\D/g, '').padEnd(64, 'a'),
  version,
  kinds,
  hardwareRevision: null,
  size: 10,
  keyId: 'k',
  manifest: {},
  importedAt: 0,
  importedBy: 'cli',
  downgradeFrom: null,
});

describe('image listings', () => {
  it('names the devices of its kinds running and wanting each image; bad rows apart', () => {
    const rows: RowResult<FirmwareImageRecord>[] = [
      { ok: true, value: record('1.1.0', ['pump']) },
      { ok: false, id: 'bad', error: { code: 'badRecord', message: 'manifest does not parse' } },
      { ok: true, value: record('1.2.0', ['pump', 'valve']) },
    ];
    const devices: DeviceFirmware[] = [
      { deviceId: 'p1', kind: 'pump', running: '1.1.0', desired: '1.2.0' },
      { deviceId: 'p2', kind: 'pump', running: '1.2.0', desired: null },
      { deviceId: 'v1', kind: 'valve', running: null, desired: '1.2.0' },
      { deviceId: 'x1', kind: 'meter', running: '1.1.0', desired: '1.1.0' },
    ];
    const { images, unreadable } = imageListings(rows, devices);
    expect(images.map((l) => [l.image.version, l.runningOn, l.wantedBy])).toEqual([
      ['1.1.0', ['p1'], []],
      ['1.2.0', ['p2'], ['p1', 'v1']],
    ]);
    expect(unreadable).toEqual([{ code: 'badRecord', message: 'manifest does not parse' }]);
  });
});

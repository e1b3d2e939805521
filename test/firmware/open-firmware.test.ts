import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { genericDevice } from '../../src/devices/generic-device.js';
import { openFirmware } from '../../src/firmware/index.js';
import { tempDir } from '../store/helpers.js';

describe('openFirmware (the one way the CLI and the app open a database’s images)', () => {
  it('opens the images of a database with the demo’s sample key trusted', async () => {
    const tmp = tempDir();
    try {
      const fw = await openFirmware({
        dataDir: tmp.dir,
        databaseFile: join(tmp.dir, 'demo.sqlite'),
        demo: true,
        kinds: new Map([[genericDevice.kind, genericDevice]]),
      });
      if (!fw.ok) throw new Error(fw.error.message);
      expect(fw.value.trustedKeys.size).toBe(1);
      expect(fw.value.images.imagesDir).toBe(join(tmp.dir, 'firmware', 'demo'));
      await fw.value.close();
    } finally {
      tmp.cleanup();
    }
  });

  it('a broken trust list is an error value naming the file, and opens nothing', async () => {
    const tmp = tempDir();
    try {
      mkdirSync(join(tmp.dir, 'trusted-keys'));
      writeFileSync(join(tmp.dir, 'trusted-keys', 'oops.pub'), 'not a key');
      const fw = await openFirmware({
        dataDir: tmp.dir,
        databaseFile: tmp.file,
        demo: false,
        kinds: new Map(),
      });
      expect(fw).toMatchObject({
        ok: false,
        error: { code: 'badKey', message: expect.stringContaining('oops.pub') },
      });
    } finally {
      tmp.cleanup();
    }
  });
});

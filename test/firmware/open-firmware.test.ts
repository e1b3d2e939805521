import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { genericDevice } from '../../src/devices/generic-device.js';
import { openFirmware, TRUSTED_KEYS_DIR } from '../../src/firmware/index.js';
import { generateSigningKeyPair } from '../../src/firmware/keys.js';
import { describeImage, signManifest } from '../../src/firmware/manifest.js';
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
      expect(fw.value.trustedKeys().size).toBe(1);
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

  it('a key trusted while the images are open (fleetvisor firmware trust beside a running app) counts at the next import', async () => {
    const tmp = tempDir();
    try {
      const fw = await openFirmware({
        dataDir: tmp.dir,
        databaseFile: tmp.file,
        demo: false,
        kinds: new Map([[genericDevice.kind, genericDevice]]),
      });
      if (!fw.ok) throw new Error(fw.error.message);
      const keys = generateSigningKeyPair();
      const image = randomBytes(1024);
      const manifest = JSON.stringify(
        signManifest(
          describeImage(image, { version: '2.0.0', kinds: [genericDevice.kind] }),
          keys.privateKeyPem,
        ),
      );
      const before = await fw.value.images.importImage({ manifest, image, actor: 'test' });
      expect(before).toMatchObject({ ok: false, error: { code: 'unknownKey' } });
      mkdirSync(join(tmp.dir, TRUSTED_KEYS_DIR), { recursive: true });
      writeFileSync(join(tmp.dir, TRUSTED_KEYS_DIR, 'lab.pub'), keys.publicKeyPem);
      const after = await fw.value.images.importImage({ manifest, image, actor: 'test' });
      expect(after).toMatchObject({ ok: true, value: { image: { version: '2.0.0' } } });
      expect(fw.value.trustedKeys().size).toBe(1);
      // A trust list broken meanwhile keeps the keys that loaded last.
      writeFileSync(join(tmp.dir, TRUSTED_KEYS_DIR, 'oops.pub'), 'not a key');
      const again = await fw.value.images.importImage({ manifest, image, actor: 'test' });
      expect(again).toMatchObject({ ok: true, value: { created: false } }); // the same image: stored already
      expect(fw.value.trustedKeys().size).toBe(1);
      await fw.value.close();
    } finally {
      tmp.cleanup();
    }
  });
});

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  generateSigningKeyPair,
  loadTrustedKeys,
  SAMPLE_KEY_FILE,
  TRUSTED_KEYS_DIR,
  trustedKeySourcesFor,
} from '../../src/firmware/keys.js';
import { tempDir } from '../store/helpers.js';

describe('trusted keys', () => {
  it('come from the data folder’s trusted-keys folder, the demo adds the sample key', () => {
    expect(trustedKeySourcesFor({ dataDir: '/d', demo: false })).toEqual({
      folders: [join('/d', TRUSTED_KEYS_DIR)],
      files: [],
    });
    expect(trustedKeySourcesFor({ dataDir: '/d', demo: true, files: ['/x.pub'] })).toEqual({
      folders: [join('/d', TRUSTED_KEYS_DIR)],
      files: [SAMPLE_KEY_FILE, '/x.pub'],
    });
  });

  it('a missing folder holds no keys; a missing file or a file that is no ed25519 key fails the load, naming it', () => {
    const tmp = tempDir();
    try {
      expect(loadTrustedKeys({ folders: [join(tmp.dir, 'none')] })).toMatchObject({
        ok: true,
        value: new Map(),
      });
      expect(loadTrustedKeys({ files: [join(tmp.dir, 'none.pub')] })).toMatchObject({
        ok: false,
        error: { code: 'unreadable' },
      });
      const pair = generateSigningKeyPair();
      writeFileSync(join(tmp.dir, 'good.pub'), pair.publicKeyPem);
      writeFileSync(join(tmp.dir, 'notes.txt'), 'ignored');
      const ok = loadTrustedKeys({ folders: [tmp.dir] });
      expect(ok.ok && [...ok.value.keys()]).toEqual([pair.keyId]);
      writeFileSync(join(tmp.dir, 'bad.pem'), pair.privateKeyPem);
      const bad = loadTrustedKeys({ folders: [tmp.dir] });
      expect(bad).toMatchObject({
        ok: false,
        error: { code: 'badKey', message: expect.stringContaining('bad.pem') },
      });
    } finally {
      tmp.cleanup();
    }
  });
});

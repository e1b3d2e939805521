/**
 * The files of stored images, on a real temporary folder: written under their SHA-256 with mode
 * 0600 and no temporary file left; read back checked (changed or missing files are `corrupt`);
 * removed quietly when gone already; and the sweep of files no row names, which spares young ones
 * (an import may be running in another process).
 */
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ORPHAN_AGE_MS,
  readImageFile,
  removeImageFile,
  sweepOrphanFiles,
  writeImageFile,
} from '../../src/firmware/firmware-image-files.js';
import { sha256Hex } from '../../src/firmware/manifest.js';
import type { Logger } from '../../src/runtime/runtime.js';
import { tempDir } from '../store/helpers.js';

const image = new Uint8Array(5000).map((_, i) => (i * 13 + 1) % 256);
const sha256 = sha256Hex(image);

describe('firmware image files', () => {
  let tmp: ReturnType<typeof tempDir>;
  const warnings: string[] = [];
  const log: Logger = { debug: () => {}, info: () => {}, warn: (m) => warnings.push(m), error: () => {} };

  beforeEach(() => {
    tmp = tempDir();
    warnings.length = 0;
  });
  afterEach(() => tmp.cleanup());

  it('writes the bytes under their SHA-256, for the user alone, and reads them back checked', async () => {
    writeImageFile(tmp.dir, sha256, image);
    expect(readdirSync(tmp.dir)).toEqual([sha256]);
    expect(statSync(join(tmp.dir, sha256)).mode & 0o777).toBe(0o600);
    const r = await readImageFile(tmp.dir, sha256, { version: '1.1.0', size: image.length });
    expect(r.ok && Buffer.from(r.value).equals(Buffer.from(image))).toBe(true);
  });

  it('a changed, cut or missing file reads as corrupt, naming the version', async () => {
    writeImageFile(tmp.dir, sha256, image);
    const changed = image.slice();
    changed[10] = (changed[10]! + 1) % 256;
    writeFileSync(join(tmp.dir, sha256), changed);
    expect(await readImageFile(tmp.dir, sha256, { version: '1.1.0', size: image.length })).toMatchObject({
      ok: false,
      error: { code: 'corrupt', message: expect.stringContaining('1.1.0') },
    });
    writeFileSync(join(tmp.dir, sha256), image.subarray(0, 100));
    expect((await readImageFile(tmp.dir, sha256, { version: '1.1.0', size: image.length })).ok).toBe(false);
    removeImageFile(tmp.dir, sha256, log);
    expect(await readImageFile(tmp.dir, sha256, { version: '1.1.0', size: image.length })).toMatchObject({
      ok: false,
      error: { code: 'corrupt', message: expect.stringContaining('cannot be read') },
    });
  });

  it('removing a file that is gone already says nothing', () => {
    removeImageFile(tmp.dir, sha256, log);
    expect(warnings).toEqual([]);
  });

  it('sweeps the files no row names once they are an hour old, and keeps the rest', () => {
    writeImageFile(tmp.dir, sha256, image);
    writeFileSync(join(tmp.dir, 'orphan'), 'x');
    writeFileSync(join(tmp.dir, '.half.tmp'), 'x');
    sweepOrphanFiles(tmp.dir, new Set([sha256]), log);
    expect(readdirSync(tmp.dir).sort()).toEqual(['.half.tmp', 'orphan', sha256].sort());
    sweepOrphanFiles(tmp.dir, new Set([sha256]), log, Date.now() + ORPHAN_AGE_MS + 1000);
    expect(readdirSync(tmp.dir)).toEqual([sha256]);
    expect(warnings).toEqual([]);
  });
});

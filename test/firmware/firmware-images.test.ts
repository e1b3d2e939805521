import { readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FirmwareImages } from '../../src/firmware/firmware-images.js';
import { firmwareDirFor, openFirmwareImages } from '../../src/firmware/firmware-images.js';
import { generateSigningKeyPair, parsePublicKey, type TrustedKey } from '../../src/firmware/keys.js';
import { describeImage, signManifest } from '../../src/firmware/manifest.js';
import { openSqliteFirmwareStore, type SqliteFirmwareStore } from '../../src/store/sqlite-firmware-store.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite-store.js';
import { tempDir } from '../store/helpers.js';

const keys = generateSigningKeyPair();
const key = ((): TrustedKey => {
  const k = parsePublicKey(keys.publicKeyPem, 'lab.pub');
  if (!k.ok) throw new Error(k.error.message);
  return k.value;
})();
const KIND = 'fleetvisor.generic';
const bytes = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * seed + 3) % 256);
const signed = (image: Uint8Array, version: string, kinds = [KIND]) =>
  JSON.stringify(signManifest(describeImage(image, { version, kinds }), keys.privateKeyPem));

describe('firmware images: checked, stored content-addressed, described in SQLite', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: SqliteStore;
  let fwStore: SqliteFirmwareStore;
  let images: FirmwareImages;
  let dir: string;

  beforeEach(async () => {
    tmp = tempDir();
    store = await openSqliteStore({ file: tmp.file });
    fwStore = await openSqliteFirmwareStore({ file: tmp.file });
    dir = firmwareDirFor(tmp.file);
    images = await openFirmwareImages({
      store: fwStore,
      imagesDir: dir,
      trustedKeys: new Map([[key.keyId, key]]),
      kinds: new Map([[KIND, { firmwareSlotBytes: 64 * 1024 }]]),
    });
  });
  afterEach(async () => {
    await fwStore.close();
    await store.close();
    tmp.cleanup();
  });

  const files = () => readdirSync(dir).sort();

  it('imports a signed image: its bytes under their SHA-256, readable by the user alone, and a row', async () => {
    const image = bytes(10_000, 7);
    const r = await images.importImage({ manifest: signed(image, '1.1.0'), image, actor: 'cli' });
    expect(r).toMatchObject({
      ok: true,
      value: { created: true, image: { version: '1.1.0', kinds: [KIND], size: 10_000 } },
    });
    if (!r.ok) return;
    expect(files()).toEqual([r.value.image.sha256]);
    const path = join(dir, r.value.image.sha256);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(new Uint8Array(readFileSync(path))).toEqual(image);
    expect(await images.readImage(r.value.image.sha256)).toEqual({ ok: true, value: image });
  });

  it('importing the same image again changes nothing', async () => {
    const image = bytes(1000, 5);
    await images.importImage({ manifest: signed(image, '1.0.0'), image, actor: 'cli' });
    const again = await images.importImage({ manifest: signed(image, '1.0.0'), image, actor: 'ui' });
    expect(again).toMatchObject({ ok: true, value: { created: false, image: { importedBy: 'cli' } } });
    expect(files().length).toBe(1);
  });

  it('stores nothing for a refused image (every refusal of the check)', async () => {
    const image = bytes(1000, 5);
    const stranger = generateSigningKeyPair();
    const cases: [string, Parameters<FirmwareImages['importImage']>[0]][] = [
      [
        'unsigned',
        {
          manifest: JSON.stringify({ signed: describeImage(image, { version: '1.0.0', kinds: [KIND] }) }),
          image,
          actor: 'cli',
        },
      ],
      [
        'unknownKey',
        {
          manifest: JSON.stringify(
            signManifest(describeImage(image, { version: '1.0.0', kinds: [KIND] }), stranger.privateKeyPem),
          ),
          image,
          actor: 'cli',
        },
      ],
      ['truncated', { manifest: signed(image, '1.0.0'), image: image.subarray(0, 999), actor: 'cli' }],
      ['hashMismatch', { manifest: signed(image, '1.0.0'), image: bytes(1000, 9), actor: 'cli' }],
      ['unknownKind', { manifest: signed(image, '1.0.0', ['toaster']), image, actor: 'cli' }],
      [
        'tooLarge',
        { manifest: signed(bytes(64 * 1024 + 1, 3), '1.0.0'), image: bytes(64 * 1024 + 1, 3), actor: 'cli' },
      ],
    ];
    for (const [code, input] of cases) {
      const r = await images.importImage(input);
      expect(r, code).toMatchObject({ ok: false, error: { code } });
    }
    expect(files()).toEqual([]);
    expect(await images.list()).toMatchObject({ images: [], unreadable: [] });
  });

  it('refuses the same version with other bytes, and a downgrade unless asked for; an asked downgrade is audited', async () => {
    const v2 = bytes(2000, 11);
    await images.importImage({ manifest: signed(v2, '2.0.0'), image: v2, actor: 'cli' });
    const other = bytes(2000, 13);
    expect(
      await images.importImage({ manifest: signed(other, '2.0.0'), image: other, actor: 'cli' }),
    ).toMatchObject({
      ok: false,
      error: { code: 'versionConflict' },
    });
    const v1 = bytes(1500, 17);
    expect(
      await images.importImage({ manifest: signed(v1, '1.9.0'), image: v1, actor: 'cli' }),
    ).toMatchObject({
      ok: false,
      error: { code: 'downgrade' },
    });
    expect(files().length).toBe(1);
    const r = await images.importImage({
      manifest: signed(v1, '1.9.0'),
      image: v1,
      actor: 'cli',
      allowDowngrade: true,
    });
    expect(r).toMatchObject({ ok: true, value: { image: { downgradeFrom: '2.0.0' } } });
    const audit = await store.queryEvents({ kind: 'firmware.imported', limit: 10 });
    expect(audit.items.map((e) => e.ok && e.value.data)).toEqual([
      expect.objectContaining({ version: '2.0.0', downgrade: false }),
      expect.objectContaining({ version: '1.9.0', downgrade: true, downgradeFrom: '2.0.0', actor: 'cli' }),
    ]);
  });

  it('lists each image with the devices running it; deletes only an unused image, file and row', async () => {
    const image = bytes(3000, 19);
    const r = await images.importImage({ manifest: signed(image, '1.2.0'), image, actor: 'cli' });
    if (!r.ok) throw new Error(r.error.message);
    await store.upsertDevice({ id: 'a', kind: KIND, name: 'a', status: { firmware: '1.2.0' } });
    await store.upsertDevice({
      id: 'b',
      kind: KIND,
      name: 'b',
      status: { firmware: '1.0.0' },
      spec: { firmware: '1.2.0' },
    });
    await store.upsertDevice({ id: 'c', kind: 'other', name: 'c', status: { firmware: '1.2.0' } });
    const list = await images.list();
    expect(list.images).toMatchObject([{ image: { version: '1.2.0' }, runningOn: ['a'], wantedBy: ['b'] }]);

    const refused = await images.remove(r.value.image.sha256, 'cli');
    expect(refused).toMatchObject({ ok: false, error: { code: 'inUse' } });
    expect(files().length).toBe(1);

    await store.upsertDevice({ id: 'a', kind: KIND, name: 'a', status: { firmware: '1.0.0' } });
    await store.upsertDevice({ id: 'b', kind: KIND, name: 'b', spec: {} });
    expect(await images.remove(r.value.image.sha256, 'cli')).toMatchObject({ ok: true });
    expect(files()).toEqual([]);
  });

  it('reading an image whose file was damaged says so instead of handing out wrong bytes', async () => {
    const image = bytes(1000, 23);
    const r = await images.importImage({ manifest: signed(image, '3.0.0'), image, actor: 'cli' });
    if (!r.ok) throw new Error(r.error.message);
    writeFileSync(join(dir, r.value.image.sha256), bytes(1000, 29));
    expect(await images.readImage(r.value.image.sha256)).toMatchObject({
      ok: false,
      error: { code: 'corrupt' },
    });
    expect(await images.readImage('f'.repeat(64))).toMatchObject({ ok: false, error: { code: 'notFound' } });
  });

  it('two imports racing with the same version and other bytes (two connections): one wins, the other stores nothing', async () => {
    const second = await openSqliteFirmwareStore({ file: tmp.file });
    try {
      const rival = await openFirmwareImages({
        store: second,
        imagesDir: dir,
        trustedKeys: new Map([[key.keyId, key]]),
        kinds: new Map([[KIND, { firmwareSlotBytes: 64 * 1024 }]]),
      });
      const a = bytes(2000, 31);
      const b = bytes(2000, 37);
      const results = await Promise.all([
        images.importImage({ manifest: signed(a, '5.0.0'), image: a, actor: 'ui' }),
        rival.importImage({ manifest: signed(b, '5.0.0'), image: b, actor: 'cli' }),
      ]);
      expect(results.filter((r) => r.ok).length).toBe(1);
      expect(results.find((r) => !r.ok)).toMatchObject({ ok: false, error: { code: 'versionConflict' } });
      const winner = results.find((r) => r.ok);
      expect(files()).toEqual([winner?.ok ? winner.value.image.sha256 : '']);
    } finally {
      await second.close();
    }
  });

  it('a file no row names (an import cut off by a crash) is swept once it is an hour old', async () => {
    const old = join(dir, 'e'.repeat(64));
    const young = join(dir, 'd'.repeat(64));
    writeFileSync(old, 'x');
    writeFileSync(young, 'y');
    const hoursAgo = (Date.now() - 2 * 3600_000) / 1000;
    utimesSync(old, hoursAgo, hoursAgo);
    await openFirmwareImages({ store: fwStore, imagesDir: dir, trustedKeys: new Map(), kinds: new Map() });
    expect(files()).toEqual(['d'.repeat(64)]);
  });

  it('the images folder sits beside the database, one per database', () => {
    expect(firmwareDirFor('/d/fleetvisor.sqlite')).toBe('/d/firmware/fleetvisor');
    expect(firmwareDirFor('/d/demo.sqlite')).toBe('/d/firmware/demo');
  });
});

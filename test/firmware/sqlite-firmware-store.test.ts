import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FirmwareImageInput } from '../../src/store/firmware-store.js';
import { openSqliteFirmwareStore, type SqliteFirmwareStore } from '../../src/store/sqlite-firmware-store.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite-store.js';
import { rawAll, rawRun, tempDir } from '../store/helpers.js';

const image = (over: Partial<FirmwareImageInput> = {}): FirmwareImageInput => ({
  sha256: 'a'.repeat(64),
  version: '1.1.0',
  kinds: ['fleetvisor.generic'],
  hardwareRevision: null,
  size: 4096,
  keyId: 'k'.repeat(64),
  manifest: { signed: { version: '1.1.0' } },
  importedBy: 'cli',
  downgradeFrom: null,
  ...over,
});

describe('the SQLite firmware store (a real file beside the app’s store)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: SqliteStore;
  let fw: SqliteFirmwareStore;

  beforeEach(async () => {
    tmp = tempDir();
    store = await openSqliteStore({ file: tmp.file });
    fw = await openSqliteFirmwareStore({ file: tmp.file, now: () => 1_000 });
  });
  afterEach(async () => {
    await fw.close();
    await store.close();
    tmp.cleanup();
  });

  it('stores an image and lists it, and audits the import in the event log', async () => {
    const r = await fw.insertImage(image());
    expect(r).toMatchObject({ ok: true, value: { sha256: 'a'.repeat(64), importedAt: 1_000 } });
    const list = await fw.listImages();
    expect(list).toEqual([{ ok: true, value: { ...image(), importedAt: 1_000 } }]);
    expect(await fw.getImage('a'.repeat(64))).toEqual({ ok: true, value: { ...image(), importedAt: 1_000 } });
    const events = await store.queryEvents({ kind: 'firmware.imported', limit: 10 });
    expect(events.items).toMatchObject([
      {
        ok: true,
        value: {
          kind: 'firmware.imported',
          data: { sha256: 'a'.repeat(64), version: '1.1.0', actor: 'cli' },
        },
      },
    ]);
  });

  it('a downgrade is audited as one', async () => {
    await fw.insertImage(image({ version: '1.0.0', downgradeFrom: '1.1.0' }));
    const events = await store.queryEvents({ kind: 'firmware.imported', limit: 10 });
    expect(events.items[0]).toMatchObject({
      ok: true,
      value: { data: { downgrade: true, downgradeFrom: '1.1.0' } },
    });
  });

  it('refuses a second image with the same version for a kind, and the same bytes twice; nothing changes', async () => {
    await fw.insertImage(image());
    expect(
      await fw.insertImage(image({ sha256: 'b'.repeat(64), kinds: ['x', 'fleetvisor.generic'] })),
    ).toMatchObject({
      ok: false,
      error: { code: 'versionConflict' },
    });
    expect(await fw.insertImage(image())).toMatchObject({ ok: false, error: { code: 'alreadyStored' } });
    expect((await fw.listImages()).length).toBe(1);
    expect((await store.queryEvents({ kind: 'firmware.imported', limit: 10 })).items.length).toBe(1);
  });

  it('lists the devices running each version and those that want it', async () => {
    await fw.insertImage(image());
    await store.upsertDevice({
      id: 'd1',
      kind: 'fleetvisor.generic',
      name: 'd1',
      status: { firmware: '1.1.0' },
    });
    await store.upsertDevice({
      id: 'd2',
      kind: 'fleetvisor.generic',
      name: 'd2',
      status: { firmware: '1.0.0' },
    });
    await store.upsertDevice({ id: 'd3', kind: 'other', name: 'd3', status: { firmware: '1.1.0' } });
    await store.upsertDevice({
      id: 'd4',
      kind: 'fleetvisor.generic',
      name: 'd4',
      spec: { firmware: '1.1.0' },
    });
    expect(await fw.devicesByFirmware()).toEqual([
      { deviceId: 'd1', kind: 'fleetvisor.generic', running: '1.1.0', desired: null },
      { deviceId: 'd2', kind: 'fleetvisor.generic', running: '1.0.0', desired: null },
      { deviceId: 'd3', kind: 'other', running: '1.1.0', desired: null },
      { deviceId: 'd4', kind: 'fleetvisor.generic', running: null, desired: '1.1.0' },
    ]);
  });

  it('a device row with broken status JSON does not break the listing', async () => {
    await store.upsertDevice({
      id: 'd1',
      kind: 'fleetvisor.generic',
      name: 'd1',
      status: { firmware: '1.1.0' },
    });
    await rawRun(tmp.file, `UPDATE devices SET status = '{broken' WHERE id = 'd1'`);
    expect(await fw.devicesByFirmware()).toEqual([
      { deviceId: 'd1', kind: 'fleetvisor.generic', running: null, desired: null },
    ]);
  });

  it('deletes an image only when no device runs or wants it and nothing holds it', async () => {
    await fw.insertImage(image());
    await store.upsertDevice({
      id: 'd1',
      kind: 'fleetvisor.generic',
      name: 'd1',
      status: { firmware: '1.1.0' },
    });
    const inUse = await fw.deleteImage('a'.repeat(64), 'cli');
    expect(inUse).toMatchObject({
      ok: false,
      error: { code: 'inUse', message: expect.stringContaining('d1') },
    });

    await store.upsertDevice({
      id: 'd1',
      kind: 'fleetvisor.generic',
      name: 'd1',
      status: { firmware: '1.0.0' },
      spec: { firmware: '1.1.0' },
    });
    expect(await fw.deleteImage('a'.repeat(64), 'cli')).toMatchObject({
      ok: false,
      error: { code: 'inUse' },
    });

    await store.upsertDevice({ id: 'd1', kind: 'fleetvisor.generic', name: 'd1', spec: {} });
    expect(await fw.addReference('a'.repeat(64), 'rollout:r1')).toEqual({ ok: true, value: undefined });
    const held = await fw.deleteImage('a'.repeat(64), 'cli');
    expect(held).toMatchObject({
      ok: false,
      error: { code: 'inUse', message: expect.stringContaining('rollout:r1') },
    });

    await fw.removeReference('a'.repeat(64), 'rollout:r1');
    expect(await fw.deleteImage('a'.repeat(64), 'cli')).toMatchObject({ ok: true });
    expect(await fw.listImages()).toEqual([]);
    expect(await fw.deleteImage('a'.repeat(64), 'cli')).toMatchObject({
      ok: false,
      error: { code: 'notFound' },
    });
    expect((await store.queryEvents({ kind: 'firmware.deleted', limit: 10 })).items.length).toBe(1);
  });

  it('a reference to an image that is not stored is refused', async () => {
    expect(await fw.addReference('c'.repeat(64), 'job:1')).toMatchObject({
      ok: false,
      error: { code: 'notFound' },
    });
  });

  it('a row that does not parse is a per-row error; the others load', async () => {
    await fw.insertImage(image());
    await fw.insertImage(image({ sha256: 'b'.repeat(64), version: '1.2.0' }));
    await rawRun(tmp.file, `UPDATE firmware_images SET manifest = '{cut' WHERE sha256 = ?`, ['b'.repeat(64)]);
    const list = await fw.listImages();
    expect(list.filter((r) => r.ok).length).toBe(1);
    expect(list.find((r) => !r.ok)).toMatchObject({
      ok: false,
      id: 'b'.repeat(64),
      error: { code: 'badRecord' },
    });
  });

  it('opens a fresh data folder on its own (the CLI without a running app) and survives a reopen', async () => {
    const other = tempDir();
    const file = join(other.dir, 'data', 'fleetvisor.sqlite');
    try {
      const alone = await openSqliteFirmwareStore({ file: file });
      await alone.insertImage(image());
      await alone.close();
      const again = await openSqliteFirmwareStore({ file: file });
      expect(statSync(`${file}-wal`).mode & 0o777).toBe(0o600);
      expect((await again.listImages()).length).toBe(1);
      await again.close();
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(statSync(join(other.dir, 'data')).mode & 0o777).toBe(0o700);
      const tables = await rawAll<{ name: string }>(
        file,
        `SELECT name FROM sqlite_master WHERE name LIKE 'firmware%' AND type = 'table'`,
      );
      expect(tables.map((t) => t.name).sort()).toEqual([
        'firmware_image_kinds',
        'firmware_image_refs',
        'firmware_images',
        'firmware_jobs',
        'firmware_rollouts',
      ]);
    } finally {
      other.cleanup();
    }
  });
});

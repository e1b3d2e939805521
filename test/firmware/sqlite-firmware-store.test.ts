import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FirmwareImageInput, FirmwareJobRecord } from '../../src/store/firmware-store.js';
import { MIGRATIONS, migrate } from '../../src/store/migrations.js';
import { openSqliteConnection } from '../../src/store/sqlite-connection.js';
import { openSqliteFirmwareStore, type SqliteFirmwareStore } from '../../src/store/sqlite-firmware-store.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite-store.js';
import { rawAll, rawRun, recordingLogger, tempDir } from '../store/helpers.js';

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

const jobRow = (over: Partial<FirmwareJobRecord> = {}): FirmwareJobRecord => ({
  deviceId: 'd1',
  sha256: 'a'.repeat(64),
  transferId: 'fw-0123456789abcdef',
  version: '1.1.0',
  step: 'transferring',
  offset: 4096,
  boot: 3,
  deadline: null,
  error: null,
  actor: 'api',
  startedAt: 900,
  updatedAt: 950,
  settings: null,
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

  it("keeps a job's settings (its trial and telemetry checks) across a reopen, and none when saved without", async () => {
    await fw.insertImage(image());
    const settings = { trialMs: 6000, trialChecks: ['nosuchmetric', 'temp<=90'] };
    await fw.saveJob(jobRow({ settings }), false);
    await fw.saveJob(jobRow({ deviceId: 'd2', settings: { trialMs: 0 } }), false);
    await fw.saveJob(jobRow({ deviceId: 'd3' }), true);
    await fw.close();
    fw = await openSqliteFirmwareStore({ file: tmp.file, now: () => 1_000 });
    expect(await fw.listJobs()).toEqual([
      { ok: true, value: jobRow({ settings }) },
      { ok: true, value: jobRow({ deviceId: 'd2', settings: { trialMs: 0 } }) },
      { ok: true, value: jobRow({ deviceId: 'd3', settings: null }) },
    ]);
    // A newer job of the device replaces the row, its settings with it.
    await fw.saveJob(jobRow({ step: 'onTrial', settings: { trialMs: 20_000 } }), false);
    expect((await fw.listJobs())[0]).toEqual({
      ok: true,
      value: jobRow({ step: 'onTrial', settings: { trialMs: 20_000 } }),
    });
  });

  it('a job saved before the settings column (schema version 9) is kept by the migration, its settings null', async () => {
    const old = tempDir();
    try {
      const conn = await openSqliteConnection(old.file, { readOnly: false });
      await migrate(conn, { migrations: MIGRATIONS.filter((m) => m.version <= 9) });
      await conn.run(
        `INSERT INTO firmware_jobs (device_id, sha256, transfer_id, version, step, offset, boot, deadline, error, actor, started_at, updated_at)
         VALUES ('d1', ?, 'fw-0123456789abcdef', '1.1.0', 'transferring', 4096, 3, NULL, NULL, 'api', 900, 950)`,
        ['a'.repeat(64)],
      );
      await conn.close();
      const migrated = await openSqliteFirmwareStore({ file: old.file });
      try {
        expect(await migrated.listJobs()).toEqual([{ ok: true, value: jobRow() }]);
      } finally {
        await migrated.close();
      }
    } finally {
      old.cleanup();
    }
  });

  it('settings that do not parse, or hold what they may not, are read as none with a warning; the job is still listed', async () => {
    await fw.close();
    const logger = recordingLogger();
    fw = await openSqliteFirmwareStore({ file: tmp.file, now: () => 1_000, logger });
    await fw.insertImage(image());
    const bad = [
      '{cut',
      '[]',
      '"6000"',
      '{"trialMs":"6000"}',
      '{"trialMs":-1}',
      '{"trialMs":1.5}',
      '{"trialMs":86400001}',
      '{"trialChecks":"rssi"}',
      '{"trialChecks":["rssi",7]}',
      '{"trialMs":6000,"soakMs":6000}',
    ];
    for (const [i, text] of bad.entries()) {
      const deviceId = `d${String(i).padStart(2, '0')}`;
      await fw.saveJob(jobRow({ deviceId, settings: { trialMs: 6000 } }), false);
      await rawRun(tmp.file, 'UPDATE firmware_jobs SET settings = ? WHERE device_id = ?', [text, deviceId]);
    }
    const jobs = await fw.listJobs();
    expect(jobs).toHaveLength(bad.length);
    for (const [i, row] of jobs.entries())
      expect(row).toEqual({ ok: true, value: jobRow({ deviceId: `d${String(i).padStart(2, '0')}` }) });
    const warned = logger.lines.filter((l) => l.message === 'firmware job settings unreadable; read as none');
    expect(warned.map((l) => l.fields?.deviceId)).toEqual(
      bad.map((_, i) => `d${String(i).padStart(2, '0')}`),
    );
    expect(warned.every((l) => l.level === 'warn')).toBe(true);
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

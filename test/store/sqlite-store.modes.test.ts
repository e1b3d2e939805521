/**
 * The data is the user's alone (issue 12 §6): a folder the store creates is 0700, and the database,
 * its WAL and its shared-memory file are 0600, whether the store creates them or finds them looser.
 * (An existing data folder is tightened by the host: src/host/data-folder.ts.)
 */
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { tempDir } from './helpers.js';

const mode = (path: string) => statSync(path).mode & 0o777;

describe.runIf(process.platform !== 'win32')('SQLite store: file modes', () => {
  let tmp: ReturnType<typeof tempDir>;
  let umask: number;

  beforeEach(() => {
    tmp = tempDir();
    // The most permissive umask: the modes must come from the store, not from the environment.
    umask = process.umask(0);
  });
  afterEach(() => {
    process.umask(umask);
    tmp.cleanup();
  });

  it('creates its folder 0700 and the database, WAL and SHM files 0600', async () => {
    const dir = join(tmp.dir, 'data', 'fleet');
    const file = join(dir, 'fleetvisor.sqlite');
    const store = await openSqliteStore({ file });
    await store.appendTelemetry([{ deviceId: 'd', metric: 'm', deviceTs: null, receivedAt: 1, value: 1 }]);
    expect(mode(dir).toString(8)).toBe('700');
    expect(mode(file).toString(8)).toBe('600');
    expect(mode(`${file}-wal`).toString(8)).toBe('600');
    expect(mode(`${file}-shm`).toString(8)).toBe('600');
    await store.close();
  });

  it('tightens database files left readable by others', async () => {
    const dir = join(tmp.dir, 'loose');
    mkdirSync(dir, { mode: 0o777 });
    const file = join(dir, 'fleetvisor.sqlite');
    const first = await openSqliteStore({ file });
    await first.close();
    chmodSync(file, 0o644);
    writeFileSync(`${file}-wal`, '');
    chmodSync(`${file}-wal`, 0o666);
    const store = await openSqliteStore({ file });
    expect(mode(file).toString(8)).toBe('600');
    expect(mode(`${file}-wal`).toString(8)).toBe('600');
    await store.close();
  });
});

import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DataFolderLockedError,
  INSTANCE_ID_FILE_NAME,
  instanceNames,
  LOCK_FILE_NAME,
  openDataFolder,
} from '../../src/host/data-folder.js';

describe('data folder', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'fleetvisor-data-folder-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it.runIf(process.platform !== 'win32')('is created 0700, or tightened to 0700', () => {
    const umask = process.umask(0);
    try {
      const fresh = openDataFolder(join(root, 'a', 'b'));
      expect((statSync(join(root, 'a', 'b')).mode & 0o777).toString(8)).toBe('700');
      expect((statSync(join(root, 'a', 'b', LOCK_FILE_NAME)).mode & 0o777).toString(8)).toBe('600');
      expect((statSync(join(root, 'a', 'b', INSTANCE_ID_FILE_NAME)).mode & 0o777).toString(8)).toBe('600');
      fresh.release();
      chmodSync(join(root, 'a', 'b'), 0o755);
      openDataFolder(join(root, 'a', 'b')).release();
      expect((statSync(join(root, 'a', 'b')).mode & 0o777).toString(8)).toBe('700');
    } finally {
      process.umask(umask);
    }
  });

  it('refuses a second open while the first holds it, naming its pid and UI origin (not the token)', () => {
    const dir = join(root, 'd');
    const first = openDataFolder(dir);
    first.setUrl('http://127.0.0.1:41234/#token=s3cret');
    expect(readFileSync(join(dir, LOCK_FILE_NAME), 'utf8')).not.toContain('s3cret');
    let error: unknown;
    try {
      openDataFolder(dir, { isAlive: () => true });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DataFolderLockedError);
    const message = (error as Error).message;
    expect(message).toContain(`pid ${process.pid}`);
    expect(message).toContain('http://127.0.0.1:41234');
    expect(message).not.toContain('s3cret');
    expect((error as DataFolderLockedError).owner.pid).toBe(process.pid);
    first.release();
    openDataFolder(dir).release(); // free again
  });

  it('takes over a lock whose process is gone (kill -9), keeping the instance id', () => {
    const dir = join(root, 'd');
    const first = openDataFolder(dir);
    const id = first.instanceId;
    // As a killed process leaves it: its lock, a pid that no longer runs.
    writeFileSync(
      join(dir, LOCK_FILE_NAME),
      JSON.stringify({ pid: 2 ** 22 + 17, host: hostname(), startedAt: 1, url: 'http://127.0.0.1:1' }),
    );
    const second = openDataFolder(dir);
    expect(second.instanceId).toBe(id);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE_NAME), 'utf8')).pid).toBe(process.pid);
    second.release();
    first.release(); // not its lock any more: leaves nothing behind, changes nothing
  });

  it('keeps one instance id per folder; another folder gets another', () => {
    const a = openDataFolder(join(root, 'a'));
    a.release();
    const again = openDataFolder(join(root, 'a'));
    const b = openDataFolder(join(root, 'b'));
    expect(again.instanceId).toBe(a.instanceId);
    expect(b.instanceId).not.toBe(a.instanceId);
    expect(a.instanceId).toMatch(/^[0-9a-f]{8}$/);
    again.release();
    b.release();
  });

  it('refuses a damaged instance id instead of silently becoming another instance', () => {
    const dir = join(root, 'd');
    openDataFolder(dir).release();
    writeFileSync(join(dir, INSTANCE_ID_FILE_NAME), 'not an id');
    expect(() => openDataFolder(dir)).toThrow(/does not hold an instance id/);
    // The failed open released its lock.
    expect(() => readFileSync(join(dir, LOCK_FILE_NAME))).toThrow(/ENOENT/);
  });

  it('derives every broker name from the instance id', () => {
    expect(instanceNames('3f9a0c21')).toEqual({
      mqttClientId: 'fleetvisor-3f9a0c21-host',
      homieClientId: 'fleetvisor-3f9a0c21-homie',
      sparkplugHostId: 'fleetvisor-3f9a0c21',
      sparkplugClientId: 'fleetvisor-3f9a0c21-sparkplug',
    });
  });
});

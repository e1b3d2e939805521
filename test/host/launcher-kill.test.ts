/**
 * `fleetvisor serve` is a launcher (scripts/fleetvisor.mjs → scripts/start.mjs) over the app's own
 * process. Killed with -9 — what an operator does to the pid `ps` shows — the launcher used to leave
 * the app running orphaned, holding the data folder's lock. Now the app sees its launcher's IPC
 * channel close and stops cleanly: its process ends and the lock is released.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCK_FILE_NAME } from '../../src/host/data-folder.js';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'scripts/fleetvisor.mjs');
const dataDir = mkdtempSync(join(tmpdir(), 'fv-launcher-kill-'));
let launcher: ChildProcess | undefined;
let appPid = 0;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

afterAll(() => {
  if (appPid && alive(appPid)) process.kill(appPid, 'SIGKILL');
  if (launcher?.exitCode === null) launcher.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the launcher killed with -9', () => {
  it('takes the app down with it: the app stops cleanly and releases the data folder', async () => {
    let output = '';
    launcher = spawn(
      process.execPath,
      [BIN, 'serve', '--data-dir', dataDir, '--no-demo', '--broker-port', '0'],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, FLEETVISOR_MQTT_URL: '', FLEETVISOR_PORT: '', FLEETVISOR_DATA_DIR: '' },
      },
    );
    launcher.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    launcher.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const started = Date.now() + 60_000;
    while (!/Open the Fleetvisor UI at:/.test(output)) {
      if (launcher.exitCode !== null) throw new Error(`fleetvisor serve exited early:\n${output}`);
      if (Date.now() > started) throw new Error(`no URL within 60 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const lock = join(dataDir, LOCK_FILE_NAME);
    appPid = (JSON.parse(readFileSync(lock, 'utf8')) as { pid: number }).pid;
    expect(appPid).not.toBe(launcher.pid);
    expect(alive(appPid)).toBe(true);

    launcher.kill('SIGKILL');
    const deadline = Date.now() + 20_000;
    while (alive(appPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(alive(appPid), `app pid ${appPid} still runs after its launcher was killed`).toBe(false);
    expect(existsSync(lock)).toBe(false);
  }, 90_000);
});

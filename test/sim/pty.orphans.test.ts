/**
 * socat pty pairs (src/sim/pty.ts) outlive nothing of their own: a pair opened on links that a
 * socat left by a process killed with -9 still holds ends that socat first (the app's demo port,
 * started again on the same data folder after a kill -9, left one more socat running each time),
 * and one on other links is left alone. Real socat processes, real ptys.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openPtyPair, orphanSocats } from '../../src/sim/pty.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** A socat on these links that this module did not start (as one left by a dead process). */
async function strayPair(host: string, device: string): Promise<ChildProcess> {
  const child = spawn('socat', [`pty,raw,echo=0,link=${host}`, `pty,raw,echo=0,link=${device}`], {
    stdio: 'ignore',
  });
  cleanups.push(() => child.kill('SIGKILL'));
  const deadline = Date.now() + 5000;
  while (!(existsSync(host) && existsSync(device))) {
    if (Date.now() > deadline) throw new Error('socat made no links');
    await new Promise((r) => setTimeout(r, 10));
  }
  return child;
}

describe('pty pairs and orphaned socats', () => {
  it('a pair opened on the links an orphaned socat holds ends it first; a socat on other links is left alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fv-pty-orphans-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const [host, device] = [join(dir, 'demo-host'), join(dir, 'demo-device')];
    const orphan = await strayPair(host, device);
    const other = await strayPair(join(dir, 'other-host'), join(dir, 'other-device'));
    const args = [`pty,raw,echo=0,link=${host}`, `pty,raw,echo=0,link=${device}`];
    expect(orphanSocats(args)).toEqual([orphan.pid]);

    const pair = await openPtyPair(host, device);
    cleanups.push(() => pair.close());
    const deadline = Date.now() + 5000;
    while (alive(orphan.pid!) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(alive(orphan.pid!)).toBe(false);
    expect(alive(other.pid!)).toBe(true);
    expect(pair.plugged).toBe(true);
    expect(existsSync(host) && existsSync(device)).toBe(true);
    // Its own socat is not an orphan to the module that started it.
    expect(orphanSocats(args)).toEqual([]);
  });
});

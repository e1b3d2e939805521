/**
 * `fleetvisor rollout create … --wait` outlives the app (src/host/cli-follow.ts): the real binary
 * follows a rollout of the sample image over the demo fleet, the app is killed with -9 in the
 * middle, and started again on the same data folder. The command says the app went, says when it
 * is back, and ends with the rollout completed (exit 0), as the restored rollout does.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, runFleetvisor, type Serve, startServe } from './serve-rig.js';

const SAMPLE = join(ROOT, 'assets/firmware/sample-1.1.0.bin');
const dataDir = mkdtempSync(join(tmpdir(), 'fv-rollout-wait-'));
const serves: Serve[] = [];

afterAll(async () => {
  for (const s of serves) await s.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function until(what: string, probe: () => boolean, timeoutMs: number, context: () => string) {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${context()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('rollout create --wait through a kill -9 of the app', () => {
  it('waits for the app to come back and follows the rollout to completed', async () => {
    serves.push(await startServe(dataDir));
    const imported = runFleetvisor(['firmware', 'import', SAMPLE, '--demo', '--data-dir', dataDir]);
    expect(imported.stdout).toContain('imported 1.1.0');

    // The demo devices come online a moment after the URL: until then no device matches.
    let started = false;
    let out = '';
    let err = '';
    let exited: Promise<number | null> | undefined;
    for (let i = 0; i < 40 && !started; i++) {
      out = '';
      err = '';
      const cli = spawn(
        process.execPath,
        [
          BIN,
          'rollout',
          'create',
          'ad36f74d',
          '--waves',
          '1,100%',
          '--max-concurrent',
          '1',
          '--trial',
          '2',
          '--wait',
          '--timeout',
          '300',
          '--data-dir',
          dataDir,
        ],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FLEETVISOR_DATA_DIR: '' } },
      );
      cli.stdout.on('data', (b: Buffer) => {
        out += b.toString();
      });
      cli.stderr.on('data', (b: Buffer) => {
        err += b.toString();
      });
      exited = new Promise((done) => cli.on('exit', (code) => done(code)));
      await until(
        'the rollout to start or be refused',
        () => /^started /m.test(out) || /noDevices/.test(err),
        60_000,
        () => out + err,
      );
      started = /^started /m.test(out);
      if (!started) {
        await exited;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    expect(started, err).toBe(true);

    // Mid-rollout: the first device is being updated (one at a time, 2 s on trial each).
    await until(
      'a device to be updating',
      () => /1 updating/.test(out),
      60_000,
      () => out + err,
    );
    const pid = (JSON.parse(readFileSync(join(dataDir, 'fleetvisor.lock'), 'utf8')) as { pid: number }).pid;
    process.kill(pid, 'SIGKILL');
    await until(
      'the command to notice',
      () => /stopped answering/.test(err),
      30_000,
      () => out + err,
    );
    await new Promise((r) => setTimeout(r, 1500)); // gone for a while, as a crash and a restart are
    serves.push(await startServe(dataDir));

    const code = await exited!;
    expect(err).toMatch(/the app \(pid \d+\) stopped answering: waiting for it to come back/);
    expect(err).toMatch(/the app is back \(pid \d+, http:\/\/127\.0\.0\.1:\d+\) after \d+ s; following on/);
    expect(err).not.toContain(`pid ${pid},`); // back means the new process
    expect(out, out + err).toMatch(/completed {2}wave 2 of 2 {2}\d+ succeeded, 0 failed/);
    expect(code, out + err).toBe(0);
    const listed = JSON.parse(runFleetvisor(['rollout', 'list', '--json', '--data-dir', dataDir]).stdout) as {
      value: { state: string; counts: Record<string, number>; order: string[] }[];
    };
    expect(listed.value[0]).toMatchObject({ state: 'completed', counts: { failed: 0 } });
    expect(listed.value[0]!.counts.succeeded).toBe(listed.value[0]!.order.length);
  }, 240_000);
});

/**
 * `fleetvisor update` as an operator runs it: the real `fleetvisor` binary against the real
 * headless app (`fleetvisor serve`, the demo fleet on its embedded broker) on a data folder. The
 * CLI finds the app and its token through the data folder alone; it imports the sample image with
 * `fleetvisor firmware import`, updates a demo device with `--wait` and sees it succeed (with a
 * telemetry check of its trial, `--check`, that the device passes); bad input (a bad `--check` too)
 * gets a clear error and an exit code; with no app running it says so (exit 3).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_DATABASE_FILE_NAME } from '../../src/host/app.js';
import { rawRun } from '../store/helpers.js';
import { ROOT, runFleetvisor, type Serve, startServe } from './serve-rig.js';

const SAMPLE = join(ROOT, 'assets/firmware/sample-1.1.0.bin');
let dataDir: string;
let server: Serve | undefined;

const fleetvisor = (...args: string[]) => runFleetvisor(args);

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'fv-update-cli-'));
  server = await startServe(dataDir);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('fleetvisor update against the running app', () => {
  it('imports the sample image and updates a demo device to it, following it to success', async () => {
    const imported = fleetvisor('firmware', 'import', SAMPLE, '--demo', '--data-dir', dataDir);
    expect(imported.stderr).toBe('');
    expect(imported.stdout).toContain('imported 1.1.0');
    // The demo devices come online a moment after the URL is printed.
    // With a telemetry check the demo device passes: it reports rssi during its 10 s trial.
    const start = () =>
      fleetvisor(
        'update',
        'start',
        'demo-m001',
        'ad36f74d',
        '--check',
        'rssi',
        '--wait',
        '--data-dir',
        dataDir,
      );
    let started = start();
    for (let i = 0; i < 20 && started.code !== 0 && /unknownDevice|notFound/.test(started.stderr); i++) {
      await new Promise((r) => setTimeout(r, 500));
      started = start();
    }
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
    expect(started.stdout).toMatch(/started: demo-m001 +1\.1\.0/);
    expect(started.stdout).toMatch(/onTrial .* checks rssi/);
    expect(started.stdout).toMatch(/^succeeded: demo-m001/m);
    const listed = fleetvisor('update', 'list', '--json', '--data-dir', dataDir);
    expect(listed.code).toBe(0);
    const jobs = JSON.parse(listed.stdout) as { ok: true; value: { deviceId: string; step: string }[] };
    expect(jobs.value).toEqual([
      expect.objectContaining({ deviceId: 'demo-m001', step: 'succeeded', trialChecks: ['rssi'] }),
    ]);
  }, 120_000);

  it('rolls the image out to the rest of the demo fleet in waves (each device 1 s on trial), following it to completed', () => {
    const r = fleetvisor(
      'rollout',
      'create',
      'ad36f74d',
      '--waves',
      '1,100%',
      '--max-concurrent',
      '3',
      '--trial',
      '1',
      '--check',
      'temp<=1000',
      '--check',
      'temp>=-1000',
      '--wait',
      '--data-dir',
      dataDir,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^started ro-[0-9a-f]{8} {2}1\.1\.0 {2}running {2}wave 1 of 2/m);
    expect(r.stdout).toMatch(/completed {2}wave 2 of 2 .* trial checks temp<=1000, temp>=-1000/);
    expect(r.stdout).not.toMatch(/demo-m001 /); // already on 1.1.0: left out
    expect(r.stdout).toMatch(/demo-m002 +wave 1 {2}succeeded/);
    const listed = fleetvisor('rollout', 'list', '--json', '--data-dir', dataDir);
    const all = JSON.parse(listed.stdout) as {
      value: { state: string; counts: Record<string, number>; createdBy: string }[];
    };
    // Started from the command line: audited as the CLI's, not as the UI's operator.
    expect(all.value[0]).toMatchObject({ state: 'completed', counts: { failed: 0 }, createdBy: 'cli' });
    expect(fleetvisor('rollout', 'create', 'ad36f74d', '--data-dir', dataDir).stderr).toMatch(
      /noDevices: no device matches/,
    );
    expect(fleetvisor('rollout', 'create', 'ad36f74d', '--waves', '0%', '--data-dir', dataDir).code).toBe(2);
  }, 120_000);

  it('names what is wrong: an unknown device, an unknown image, a malformed hash, an update already ended', () => {
    const nobody = fleetvisor('update', 'start', 'nobody', 'ad36f74d', '--data-dir', dataDir);
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toMatch(/notFound: no device 'nobody'/);
    const noImage = fleetvisor('update', 'start', 'demo-m002', 'ffffffff', '--data-dir', dataDir);
    expect(noImage.code).toBe(1);
    expect(noImage.stderr).toMatch(/notFound: no stored image's SHA-256 starts with ffffffff/);
    const bad = fleetvisor('update', 'start', 'demo-m002', 'xyz', '--data-dir', dataDir);
    expect(bad.code).toBe(2);
    const noTrial = fleetvisor('rollout', 'create', 'ad36f74d', '--trial', '0.5', '--data-dir', dataDir);
    expect(noTrial.code).toBe(2);
    expect(noTrial.stderr).toMatch(/--trial takes whole seconds from 1 to 86400, not '0.5'/);
    const badCheck = fleetvisor(
      'rollout',
      'create',
      'ad36f74d',
      '--check',
      'temp<=abc',
      '--data-dir',
      dataDir,
    );
    expect(badCheck.code).toBe(2);
    expect(badCheck.stderr).toMatch(/usage: --check: trial check "temp<=abc": the limit must be a number/);
    const wildcard = fleetvisor(
      'update',
      'start',
      'demo-m002',
      'ad36f74d',
      '--check',
      'temp/#',
      '--data-dir',
      dataDir,
    );
    expect(wildcard.code).toBe(2);
    expect(wildcard.stderr).toMatch(/--check: trial check "temp\/#": the metric name "temp\/#" has '\/'/);
    const cancel = fleetvisor('update', 'cancel', 'demo-m002', '--json', '--data-dir', dataDir);
    expect(cancel.code).toBe(1);
    // Its update (by the rollout above) has ended: nothing left to cancel.
    expect(JSON.parse(cancel.stderr)).toMatchObject({ ok: false, error: { code: 'finished' } });
  });

  it('lists a rollout damaged while the app was stopped, and deletes it', async () => {
    const listed = fleetvisor('rollout', 'list', '--json', '--data-dir', dataDir);
    const id = (JSON.parse(listed.stdout) as { value: { id: string }[] }).value[0]!.id;
    await server?.stop();
    // Damaged while the app was stopped: a wave index no rollout has.
    await rawRun(
      join(dataDir, DEMO_DATABASE_FILE_NAME),
      `UPDATE firmware_rollouts SET body = json_set(body, '$.snapshot.wave', -1) WHERE id = ?`,
      [id],
    );
    server = await startServe(dataDir);
    const damaged = fleetvisor('rollout', 'list', '--data-dir', dataDir);
    expect(damaged.code).toBe(0);
    expect(damaged.stdout).toContain(
      `${id}  1.1.0  damaged: rollout ${id}: saved snapshot.wave must be a whole number >= 0, got -1 (saved completed; 'fleetvisor rollout delete ${id}' removes it)`,
    );
    const deleted = fleetvisor('rollout', 'delete', id, '--data-dir', dataDir);
    expect(deleted.stderr).toBe('');
    expect(deleted).toMatchObject({ code: 0, stdout: `deleted ${id}\n` });
    expect(fleetvisor('rollout', 'list', '--data-dir', dataDir).stdout).not.toContain(id);
    const again = fleetvisor('rollout', 'delete', id, '--data-dir', dataDir);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/notFound/);
    expect(fleetvisor('rollout', 'delete', '--data-dir', dataDir).code).toBe(2);
  }, 180_000);

  it('with no app on the data folder it says so and exits 3', () => {
    const empty = mkdtempSync(join(tmpdir(), 'fv-update-cli-none-'));
    try {
      const r = fleetvisor('update', 'list', '--data-dir', empty);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/notRunning: no Fleetvisor runs on/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

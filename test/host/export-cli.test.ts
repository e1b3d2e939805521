/**
 * `fleetvisor export` as an operator runs it: the real `fleetvisor` binary against the real
 * headless app (`fleetvisor serve`, the demo fleet on its embedded broker) on a data folder.
 * Events and telemetry (raw and in buckets) come back as CSV and JSON Lines files that parse;
 * a bad parameter gets the app's reason and exit 1 (and leaves no file); with no app, exit 3.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsvText } from '../store/csv-lines.js';
import { BIN, type Serve, startServe } from './serve-rig.js';

let dataDir: string;
let outDir: string;
let server: Serve | undefined;

/** Runs the binary without blocking the event loop (the test polls while the app keeps running). */
function fleetvisor(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: outDir,
      env: { ...process.env, FLEETVISOR_DATA_DIR: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'fv-export-cli-'));
  outDir = mkdtempSync(join(tmpdir(), 'fv-export-out-'));
  server = await startServe(dataDir);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(outDir, { recursive: true, force: true });
});

describe('fleetvisor export', () => {
  it('prints its usage with examples', async () => {
    const r = await fleetvisor('export', '--help');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Usage: fleetvisor export events|commands|telemetry');
    expect(r.stderr).toContain('fleetvisor export telemetry --bucket 60');
  });

  it('writes the demo fleet events as CSV and its telemetry as JSON Lines, raw and in buckets', async () => {
    // The demo devices report every second or so: wait until some telemetry is stored.
    let lines: string[] = [];
    for (let attempt = 0; attempt < 40 && lines.length < 20; attempt++) {
      const r = await fleetvisor('export', 'telemetry', '--data-dir', dataDir, '--format', 'jsonl');
      expect(r.code, r.stderr).toBe(0);
      lines = r.stdout.split('\n').filter((l) => l !== '');
      if (lines.length < 20) await new Promise((res) => setTimeout(res, 500));
    }
    const points = lines.map(
      (l) => JSON.parse(l) as { deviceId: string; metric: string; receivedAtMs: number },
    );
    expect(points.length).toBeGreaterThanOrEqual(20);
    const { deviceId, metric } = points[0]!;

    const events = await fleetvisor('export', 'events', '--data-dir', dataDir, '--out', 'events.csv');
    expect(events.code, events.stderr).toBe(0);
    expect(events.stderr).toMatch(/^wrote \d+ bytes to .*events\.csv\n$/);
    const [header, ...rows] = parseCsvText(readFileSync(join(outDir, 'events.csv'), 'utf8'));
    expect(header).toEqual(['seq', 'at', 'atMs', 'deviceId', 'kind', 'data']);
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(new Date(row[1]!).getTime()).toBe(Number(row[2]));

    const one = await fleetvisor(
      'export',
      'telemetry',
      '--data-dir',
      dataDir,
      '--device',
      deviceId,
      '--metric',
      metric,
      '--bucket',
      '1',
      '--from',
      new Date(points[0]!.receivedAtMs - 60_000).toISOString(),
      '--out',
      'buckets.csv',
    );
    expect(one.code, one.stderr).toBe(0);
    const [bucketHeader, ...buckets] = parseCsvText(readFileSync(join(outDir, 'buckets.csv'), 'utf8'));
    expect(bucketHeader).toEqual([
      'deviceId',
      'metric',
      'start',
      'startMs',
      'bucketSeconds',
      'count',
      'avg',
      'min',
      'max',
    ]);
    expect(buckets.length).toBeGreaterThan(0);
    for (const b of buckets) {
      expect([b[0], b[1], b[4]]).toEqual([deviceId, metric, '1']);
      expect(Number(b[3]) % 1000).toBe(0);
      expect(Number(b[7])).toBeLessThanOrEqual(Number(b[6]));
      expect(Number(b[6])).toBeLessThanOrEqual(Number(b[8]));
    }
  }, 60_000);

  it('says why a parameter is refused (exit 1, no file), and exit 3 without an app', async () => {
    const bad = await fleetvisor(
      'export',
      'telemetry',
      '--data-dir',
      dataDir,
      '--bucket',
      '0',
      '--out',
      'bad.csv',
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('fleetvisor export: badRequest: bucket must be whole seconds');
    expect(existsSync(join(outDir, 'bad.csv'))).toBe(false);
    expect(existsSync(join(outDir, 'bad.csv.part'))).toBe(false);

    const usage = await fleetvisor('export', 'alarms', '--data-dir', dataDir);
    expect(usage.code).toBe(2);

    const empty = mkdtempSync(join(tmpdir(), 'fv-export-none-'));
    try {
      const none = await fleetvisor('export', 'events', '--data-dir', empty);
      expect(none.code).toBe(3);
      expect(none.stderr).toContain('notRunning');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

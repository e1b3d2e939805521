/**
 * `fleetvisor alarms` as an operator runs it: the real `fleetvisor` binary against the real
 * headless app (`fleetvisor serve`, the demo fleet on its embedded broker) whose data folder holds
 * `alarm-rules.json` (temp above 10 for 1 s: the demo devices report ~20–25 °C). The alarms are
 * listed, one is acknowledged and leaves the unacknowledged list; bad input and a missing app get
 * clear errors and exit codes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlarmView, Results } from '../../src/host/contract.js';
import { runFleetvisor, type Serve, startServe } from './serve-rig.js';

let dataDir: string;
let server: Serve | undefined;

const fleetvisor = (...args: string[]) =>
  runFleetvisor(args, { env: { FLEETVISOR_DATA_DIR: dataDir }, timeoutMs: 60_000 });

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'fv-alarms-cli-'));
  writeFileSync(
    join(dataDir, 'alarm-rules.json'),
    JSON.stringify([
      {
        id: 'warm',
        type: 'threshold',
        metric: 'temp',
        op: 'above',
        value: 10,
        forMs: 1000,
        severity: 'critical',
      },
    ]),
  );
  server = await startServe(dataDir, ['--broker-port', '0']);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('fleetvisor alarms', () => {
  it('lists the alarms of the config file rule, acknowledges one, and refuses bad input', async () => {
    let page: Results['alarms'] | undefined;
    const deadline = Date.now() + 40_000;
    for (;;) {
      const r = fleetvisor('alarms', 'ls', '--json');
      expect(r.code, r.stderr).toBe(0);
      page = (JSON.parse(r.stdout) as { value: Results['alarms'] }).value;
      if (page.items.length > 0) break;
      if (Date.now() > deadline) throw new Error(`no alarm within 40 s:\n${server?.output()}`);
      await new Promise((res) => setTimeout(res, 1000));
    }
    const first = page.items[0]!;
    expect(first).toMatchObject({ ruleId: 'warm', severity: 'critical', ackedAt: null, clearedAt: null });

    const text = fleetvisor('alarms', 'ls', '--device', first.deviceId);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`${first.id}  critical ${first.deviceId}`);
    expect(text.stdout).toMatch(/temp above 10 for 1 s: \d/);
    expect(text.stdout).toMatch(/\d+ open, \d+ unacknowledged, 0 shelved/);

    const acked = fleetvisor('alarms', 'ack', String(first.id), '--json');
    expect(acked.code, acked.stderr).toBe(0);
    const value = (JSON.parse(acked.stdout) as { value: AlarmView }).value;
    expect(value).toMatchObject({ id: first.id, ackedBy: expect.any(String) });
    expect(value.ackedAt).not.toBeNull();

    const unacked = fleetvisor('alarms', 'ls', '--state', 'unacked', '--device', first.deviceId, '--json');
    expect((JSON.parse(unacked.stdout) as { value: Results['alarms'] }).value.items).toEqual([]);
    const all = fleetvisor('alarms', 'ls', '--state', 'all', '--device', first.deviceId);
    expect(all.stdout).toContain('acked by');

    const rules = fleetvisor('alarms', 'rules');
    expect(rules.stdout).toMatch(/warm\s+critical running/);

    expect(fleetvisor('alarms', 'ack', '999999')).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('fleetvisor alarms: notFound: no alarm 999999'),
    });
    expect(fleetvisor('alarms', 'ack', 'abc')).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('whole number'),
    });
    expect(fleetvisor('alarms', 'ls', '--state', 'red')).toMatchObject({ code: 2 });
    expect(fleetvisor('alarms', 'frob').code).toBe(2);
  }, 120_000);

  it('says so when no app runs on the data folder (exit 3)', () => {
    const empty = mkdtempSync(join(tmpdir(), 'fv-alarms-cli-empty-'));
    try {
      const r = fleetvisor('alarms', 'ls', '--data-dir', empty);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('fleetvisor alarms: notRunning');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

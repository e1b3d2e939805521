/**
 * `fleetvisor devices`, `act` and `events` as an operator runs them: the real `fleetvisor` binary
 * against the real headless app (`fleetvisor serve` on a data folder) with a real Modbus RTU
 * slave (pymodbus over a socat pty). A Modbus device is added after a test read, listed, shown,
 * edited, exported, removed and imported back; an action goes to devices by tag and by ids with
 * per-device results and the exit code; the event log shows the audited changes, and --follow
 * prints new ones as they come.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModbusSlaveRig } from './modbus-slave-rig.js';
import { modbusSlaveSkip, startModbusSlaveRig } from './modbus-slave-rig.js';
import { BIN, ROOT, runFleetvisor, type Serve, startServe } from './serve-rig.js';

const SKIP = modbusSlaveSkip();
let dataDir: string;
let server: Serve | undefined;
let slave: ModbusSlaveRig;

const REGISTERS = JSON.stringify([
  { name: 'voltage', table: 'input', address: 0, scale: 0.1 },
  { name: 'setpoint', table: 'holding', address: 1, writable: true },
]);

const fleetvisor = (...args: string[]) =>
  runFleetvisor([...args, '--data-dir', dataDir], { timeoutMs: 60_000 });

beforeAll(async () => {
  if (SKIP) return;
  dataDir = mkdtempSync(join(tmpdir(), 'fv-devices-cli-'));
  slave = await startModbusSlaveRig(dataDir, ['--units', '1']);
  server = await startServe(dataDir, ['--no-demo', '--broker-port', '0']);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await slave?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe.skipIf(SKIP !== '')(`fleetvisor devices / act / events against the running app ${SKIP}`, () => {
  it('adds a Modbus device after a test read, lists, shows and edits it', () => {
    const args = ['--kind', 'modbus.device', '--id', 'meter-1', '--name', 'Main meter', '--tag', 'hall'];
    const attrs = ['--attr', `port=${slave.hostPath}`, '--attr', `registers=${REGISTERS}`];
    const wrong = fleetvisor(
      'devices',
      'add',
      ...args,
      ...attrs,
      '--attr',
      'slaveId=9',
      '--attr',
      'timeoutMs=200',
      '--test',
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/testReadFailed: .*slave 9.*nothing was added/);
    const added = fleetvisor('devices', 'add', ...args, ...attrs, '--attr', 'slaveId=1', '--test');
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^added: meter-1 +modbus\.device/m);
    expect(added.stdout).toMatch(/^read: setpoint=100 voltage=230\.1$/m);

    const listed = fleetvisor('devices', 'ls', '--kind', 'modbus.device', '--json');
    expect(JSON.parse(listed.stdout).value).toEqual([
      expect.objectContaining({ id: 'meter-1', name: 'Main meter', tags: ['hall'] }),
    ]);
    expect(fleetvisor('devices', 'ls', '--tag', 'nope').stdout).toBe('no devices\n');
    const shown = fleetvisor('devices', 'show', 'meter-1');
    expect(shown.stdout).toMatch(/kind +modbus\.device/);
    expect(shown.stdout).toMatch(/"slaveId": 1/);

    const edited = fleetvisor('devices', 'edit', 'meter-1', '--name', 'Hall meter', '--attr', 'pollMs=500');
    expect(edited.stderr).toBe('');
    expect(edited.stdout).toMatch(/^changed name, attributes \(restarted\): meter-1 .* Hall meter/m);
    const bad = fleetvisor('devices', 'edit', 'meter-1', '--attr', 'slaveId=0');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/badRequest: slaveId/);
    expect(fleetvisor('devices', 'add', '--id', 'x').code).toBe(2);
    expect(fleetvisor('devices', 'frobnicate').code).toBe(2);
  }, 60_000);

  it('acts on devices by tag and by ids: per-device results, exit 0 only when all succeeded', async () => {
    let byTag = fleetvisor('act', 'tag:hall', 'write', '--args', '{"register":"setpoint","value":120}');
    // The bridge picks the device up within its scan (1 s) and connects on its first reply.
    for (let i = 0; i < 20 && byTag.code !== 0; i++) {
      await new Promise((r) => setTimeout(r, 500));
      byTag = fleetvisor('act', 'tag:hall', 'write', '--args', '{"register":"setpoint","value":120}');
    }
    expect(byTag.stderr).toBe('');
    expect(byTag.code).toBe(0);
    // The device's answer, not just "sent": the write succeeded, with its round trip.
    expect(byTag.stdout).toMatch(/^meter-1 +ok +succeeded +\d+ ms/m);
    expect(byTag.stdout).toMatch(/^1 of 1 succeeded$/m);
    const mixed = fleetvisor('act', 'meter-1,nobody', 'write', '--args', '{"register":"voltage","value":1}');
    expect(mixed.code).toBe(1);
    expect(mixed.stdout).toMatch(/^meter-1 +FAILED {2}badArgs: .*voltage/m);
    expect(mixed.stdout).toMatch(/^nobody +FAILED {2}notFound/m);
    expect(mixed.stdout).toMatch(/^0 of 2 succeeded$/m);
    const json = fleetvisor(
      'act',
      'kind:modbus.device',
      'write',
      '--args',
      '{"register":"setpoint","value":7}',
      '--json',
    );
    expect(JSON.parse(json.stdout).value).toEqual([
      expect.objectContaining({
        id: 'meter-1',
        ok: true,
        outcome: expect.objectContaining({ status: 'succeeded' }),
      }),
    ]);
    expect(fleetvisor('act', 'tag:none', 'write').stderr).toMatch(/noDevices: no device matches tag:none/);
  }, 60_000);

  it('exports, removes and imports back; a bad row fails alone (exit 1)', () => {
    const csv = fleetvisor('devices', 'export', '--format', 'csv');
    expect(csv.stdout.split('\n')[0]).toBe('id,kind,name,tags,attributes');
    const file = join(dataDir, 'fleet.csv');
    writeFileSync(file, csv.stdout);
    const removed = fleetvisor('devices', 'rm', 'meter-1');
    expect(removed.stdout).toMatch(/removed meter-1; its telemetry, events and commands are kept/);
    const imported = fleetvisor('devices', 'import', file);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(/row +1 {2}meter-1 +added/);
    expect(JSON.parse(fleetvisor('devices', 'show', 'meter-1', '--json').stdout).value).toMatchObject({
      name: 'Hall meter',
      tags: ['hall'],
      attributes: { pollMs: 500 },
    });
    const badFile = join(dataDir, 'bad.json');
    writeFileSync(
      badFile,
      JSON.stringify([
        { id: 'gen-1', kind: 'fleetvisor.generic' },
        { id: 'gen-2', kind: 'nope' },
      ]),
    );
    const partly = fleetvisor('devices', 'import', badFile);
    expect(partly.code).toBe(1);
    expect(partly.stdout).toMatch(/row +2 {2}gen-2 +failed {2}badRequest: unknown kind 'nope'/);
    expect(partly.stdout).toMatch(/1 added, 0 updated, 0 unchanged, 1 failed/);
  }, 60_000);

  it('shows the audited changes in the event log and follows new ones', async () => {
    const log = fleetvisor('events', '--device', 'meter-1', '--kind', 'device.audit', '--json');
    const audited = log.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { data: { action: string; actor: string } }).data);
    expect(audited.map((d) => d.action)).toEqual(['add', 'edit', 'remove', 'add']);
    // Audited as the command line's, not as the UI's operator.
    expect(new Set(audited.map((d) => d.actor))).toEqual(new Set(['cli']));

    const follower = spawn(
      process.execPath,
      [
        BIN,
        'events',
        '--kind',
        'device.audit',
        '--follow',
        '--interval',
        '0.2',
        '--limit',
        '1',
        '--data-dir',
        dataDir,
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FLEETVISOR_DATA_DIR: '' } },
    );
    let followed = '';
    follower.stdout.on('data', (d: Buffer) => {
      followed += d.toString();
    });
    try {
      const deadline = Date.now() + 20_000;
      while (!followed.includes('"action":"add"')) {
        if (Date.now() > deadline) throw new Error(`no first event: ${followed}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(fleetvisor('devices', 'rm', 'gen-1', '--purge').code).toBe(0);
      while (!/gen-1 +device\.audit +\{"action":"remove"/.test(followed)) {
        if (Date.now() > deadline) throw new Error(`the removal was not followed: ${followed}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      const exited = new Promise((r) => follower.once('exit', r));
      follower.kill('SIGTERM');
      await exited;
    }
  }, 60_000);
});

/**
 * Devices managed over the host API on the real app (embedded broker, real SQLite file, the
 * Modbus bridge) with a real Modbus RTU slave (pymodbus over a socat pty): a test read answers
 * the registers' values or why not; a device is added (after a test read), edited (name and tags
 * kept in place, new attributes restart it), exported and imported row by row, and removed with
 * its history kept or purged and its broker account revoked; every change is audited with its actor.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModbusBridge } from '../../src/conventions/modbus/modbus-bridge.js';
import type { HostApiHandle } from '../../src/host/api.js';
import { createHostApi } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { Results } from '../../src/host/contract.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import type { ModbusSlaveRig } from './modbus-slave-rig.js';
import { modbusSlaveSkip, startModbusSlaveRig } from './modbus-slave-rig.js';

const SKIP = modbusSlaveSkip();
let dir: string;
let app: App;
let api: HostApiHandle;
let slave: ModbusSlaveRig;

const registers = [
  { name: 'voltage', table: 'input', address: 0, scale: 0.1, unit: 'V' },
  { name: 'setpoint', table: 'holding', address: 1, writable: true },
  { name: 'temperature', table: 'holding', address: 2, type: 'float32' },
];
const meter = (slaveId = 1) => ({ port: slave.hostPath, slaveId, registers, timeoutMs: 300 });

async function call<M extends keyof Results>(method: M, args: unknown, actor = 'alice'): Promise<Results[M]> {
  const r = await api.call(method, args, { actor });
  if (!r.ok) throw new Error(`${method}: ${r.error.code}: ${r.error.message}`);
  return r.value as Results[M];
}

async function refused(method: keyof Results, args: unknown) {
  const r = await api.call(method, args, { actor: 'alice' });
  if (r.ok) throw new Error(`${method} succeeded`);
  return r.error;
}

async function audits(id: string) {
  const page = await call('events', { id, kind: 'device.audit' });
  return page.items.map((e) => e.data as Record<string, unknown>).reverse();
}

function modbusBridge(): ModbusBridge {
  const child = app.links.supervisor?.whichChildren().find((c) => c.process instanceof ModbusBridge);
  if (!child) throw new Error('no Modbus bridge under links');
  return child.process as ModbusBridge;
}

async function until(check: () => boolean, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  if (SKIP) return;
  dir = mkdtempSync(join(tmpdir(), 'fv-api-devices-'));
  slave = await startModbusSlaveRig(dir, ['--units', '1']);
  app = await startApp({ dataDir: dir, logger: silentLogger, broker: { port: 0 }, demo: false });
  api = createHostApi(app);
}, 60_000);

afterAll(async () => {
  api?.close();
  await app?.stop();
  await slave?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(SKIP !== '')(`devices managed over the API ${SKIP}`, () => {
  it('reads a Modbus slave once before it is added, and says why not for a wrong slave id', async () => {
    const read = await call('modbusTestRead', { attributes: meter() });
    expect(read.values).toEqual({ voltage: 230.1, setpoint: 100, temperature: 22.5 });
    const silent = await refused('modbusTestRead', { attributes: meter(9) });
    expect(silent.code).toBe('timeout');
    expect(silent.message).toMatch(/no reply to reading .* of slave 9/);
    const bad = await refused('modbusTestRead', { attributes: { port: slave.hostPath, registers } });
    expect(bad).toMatchObject({ code: 'badRequest', message: expect.stringMatching(/slaveId/) });
    // Nothing was added by a test read.
    expect(app.fleet.list()).toEqual([]);
  }, 30_000);

  it('adds a Modbus device after a test read; refuses bad attributes and a failed read, adding nothing', async () => {
    const failed = await refused('deviceAdd', {
      id: 'meter-9',
      kind: 'modbus.device',
      attributes: meter(9),
      test: true,
    });
    expect(failed.code).toBe('testReadFailed');
    expect(failed.message).toMatch(/nothing was added/);
    const bad = await refused('deviceAdd', {
      id: 'meter-x',
      kind: 'modbus.device',
      attributes: { ...meter(), baudRate: 12 },
    });
    expect(bad).toMatchObject({ code: 'badRequest', message: expect.stringMatching(/baudRate/) });
    expect(app.fleet.has('meter-9') || app.fleet.has('meter-x')).toBe(false);

    const added = await call('deviceAdd', {
      id: 'meter-1',
      kind: 'modbus.device',
      name: 'Main meter',
      tags: ['hall'],
      attributes: meter(),
      test: true,
    });
    expect(added.read?.values.voltage).toBe(230.1);
    expect(added.device).toMatchObject({ id: 'meter-1', name: 'Main meter', tags: ['hall'] });
    await until(() => app.fleet.device('meter-1')?.state === 'connected', 'meter-1 connected');
    expect(await audits('meter-1')).toEqual([
      expect.objectContaining({ action: 'add', actor: 'alice', kind: 'modbus.device', name: 'Main meter' }),
    ]);
    expect(
      (await refused('deviceAdd', { id: 'meter-1', kind: 'modbus.device', attributes: meter() })).code,
    ).toBe('conflict');
  }, 30_000);

  it('edits name and tags in place, and restarts the device for new attributes', async () => {
    const before = app.fleet.device('meter-1')!.pid;
    const renamed = await call('deviceEdit', { id: 'meter-1', name: 'Hall meter', tags: ['hall', 'power'] });
    expect(renamed).toMatchObject({ changed: ['name', 'tags'], restarted: false });
    expect(app.fleet.device('meter-1')).toMatchObject({
      name: 'Hall meter',
      tags: ['hall', 'power'],
      pid: before,
    });
    const polled = await call('deviceEdit', { id: 'meter-1', attributes: { ...meter(), pollMs: 200 } });
    expect(polled).toMatchObject({ changed: ['attributes'], restarted: true });
    expect(app.fleet.device('meter-1')!.pid).not.toBe(before);
    expect(app.fleet.device('meter-1')!.attributes).toMatchObject({ pollMs: 200 });
    await until(() => app.fleet.device('meter-1')?.state === 'connected', 'meter-1 connected again');
    const bad = await refused('deviceEdit', { id: 'meter-1', attributes: { ...meter(), slaveId: 0 } });
    expect(bad).toMatchObject({ code: 'badRequest', message: expect.stringMatching(/slaveId/) });
    expect(app.fleet.device('meter-1')!.attributes).toMatchObject({ slaveId: 1, pollMs: 200 });
    expect((await audits('meter-1')).map((a) => [a.action, a.actor, a.changed])).toEqual([
      ['add', 'alice', undefined],
      ['edit', 'alice', ['name', 'tags']],
      ['edit', 'alice', ['attributes']],
    ]);
  }, 30_000);

  it('reads through the bus already polling the port, between its polls, without disturbing the device on it', async () => {
    const bridge = modbusBridge();
    const bus = () => bridge.stats().buses;
    expect(bus()).toHaveLength(1);
    const opensBefore = bus()[0]!.opens;
    const linkBefore = app.fleet.device('meter-1')!.link;
    expect(linkBefore.up).toBe(true);
    const lastReply = () => bus()[0]!.slaves.find((s) => s.deviceId === 'meter-1')?.lastReplyAt ?? 0;
    const started: string[] = [];
    const off = app.runtime.events.subscribe((e) => {
      if (e.type === 'process.started') started.push(e.name);
    });
    // Several test reads while meter-1 is polled every 200 ms on the same port.
    for (let i = 0; i < 5; i++) {
      const read = await call('modbusTestRead', { attributes: meter() });
      expect(read.values).toEqual({ voltage: 230.1, setpoint: 100, temperature: 22.5 });
    }
    const afterReads = lastReply();
    // The same bus answered (no bus process started for the reads, the port not opened again), and
    // meter-1 is still polled and up.
    off();
    expect(started.filter((name) => name.startsWith('modbus-bus:'))).toEqual([]);
    expect(bus()).toHaveLength(1);
    expect(bus()[0]!.opens).toBe(opensBefore);
    await until(() => lastReply() > afterReads, 'meter-1 polled again after the test reads');
    expect(app.fleet.device('meter-1')).toMatchObject({ state: 'connected', link: linkBefore });
    // Other line settings on the busy port are refused, not forced onto it.
    const conflict = await refused('modbusTestRead', { attributes: { ...meter(), baudRate: 19200 } });
    expect(conflict.code).toBe('lineConflict');
    expect(conflict.message).toMatch(/runs 9600 8N1, not 19200 8N1/);
    expect(bus()[0]!.opens).toBe(opensBefore);
  }, 30_000);

  it('exports JSON and CSV and imports them back row by row; a bad row changes nothing', async () => {
    const json = await call('devicesExport', { format: 'json' });
    expect(json.count).toBe(1);
    const rows = JSON.parse(json.text) as { id: string; attributes: Record<string, unknown> }[];
    expect(rows[0]).toMatchObject({
      id: 'meter-1',
      kind: 'modbus.device',
      name: 'Hall meter',
      tags: ['hall', 'power'],
    });
    const csv = await call('devicesExport', { format: 'csv' });
    expect(csv.text.split('\n')[0]).toBe('id,kind,name,tags,attributes');
    expect(csv.text).toMatch(/^meter-1,modbus\.device,Hall meter,hall;power,"\{""port""/m);

    const text = [
      'id,kind,name,tags,attributes',
      'gen-1,fleetvisor.generic,"Boiler, east",boiler;east,"{""connectTimeoutMs"": 5000}"',
      'gen-2,fleetvisor.generic,Bad,,"{""connectTimeoutMs"": 1}"',
      'gen-3,no.such.kind,X,,',
      `${csv.text.split('\n')[1]!.replace('Hall meter', 'Hall meter 2')}`,
    ].join('\n');
    const imported = await call('devicesImport', { text });
    expect(imported).toMatchObject({ added: 1, updated: 1, failed: 2 });
    expect(imported.results.map((r) => [r.row, r.id, r.outcome, r.error?.code])).toEqual([
      [1, 'gen-1', 'added', undefined],
      [2, 'gen-2', 'failed', 'badRequest'],
      [3, 'gen-3', 'failed', 'badRequest'],
      [4, 'meter-1', 'updated', undefined],
    ]);
    expect(imported.results[1]!.error?.message).toMatch(/connectTimeoutMs/);
    expect(app.fleet.device('gen-1')).toMatchObject({ name: 'Boiler, east', tags: ['boiler', 'east'] });
    expect(app.fleet.has('gen-2') || app.fleet.has('gen-3')).toBe(false);
    expect(app.fleet.device('meter-1')!.name).toBe('Hall meter 2');
    // The JSON export imports unchanged.
    const again = await call('devicesImport', { text: (await call('devicesExport', {})).text });
    expect(again).toMatchObject({ added: 0, updated: 0, unchanged: 2, failed: 0 });
    expect((await audits('gen-1'))[0]).toMatchObject({ action: 'add', actor: 'alice', via: 'import' });
  }, 30_000);

  it('removes a device keeping its history, or purging it; revokes its broker account', async () => {
    app.brokerAccounts!.issueDevice('gen-1');
    const kept = await call('deviceRemove', { id: 'gen-1' }, 'bob');
    expect(kept).toEqual({ id: 'gen-1', purged: null, brokerAccountRevoked: true });
    expect(app.fleet.has('gen-1')).toBe(false);
    expect(app.brokerAccounts!.devices().find((d) => d.id === 'gen-1')?.revokedAt).toEqual(
      expect.any(Number),
    );
    expect((await audits('gen-1')).map((a) => [a.action, a.actor])).toEqual([
      ['add', 'alice'],
      ['remove', 'bob'],
    ]);

    const metrics = await app.store.listMetrics('meter-1');
    expect(metrics).toContain('voltage');
    const purged = await call('deviceRemove', { id: 'meter-1', purge: true }, 'bob');
    expect(purged.purged!.telemetry).toBeGreaterThan(0);
    expect(purged.purged!.events).toBeGreaterThan(0);
    expect(purged.brokerAccountRevoked).toBe(false);
    expect(await app.store.listMetrics('meter-1')).toEqual([]);
    // Only the removal itself stays on record.
    expect((await audits('meter-1')).map((a) => [a.action, a.actor, a.purge])).toEqual([
      ['remove', 'bob', true],
    ]);
    expect((await refused('deviceRemove', { id: 'meter-1' })).code).toBe('notFound');
  }, 30_000);
});

/**
 * The Modbus RTU convention end to end with real parts: a socat pty pair, Debian's pymodbus
 * 3.0.0rc1 as the slave on the device end (test/conventions/modbus_slave.py, run by
 * /usr/bin/python3), the bridge (modbus-serial over serialport 13) on the host end, the fleet
 * on a real SQLite file. Timing settings are short (poll 200 ms, timeout 200 ms, 1 retry); every
 * wait polls a condition with a generous deadline, and the only time bounds asserted are the
 * detection budgets named in the test titles.
 *
 * @example
 * npx vitest run test/conventions/modbus.test.ts
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { ModbusBridge, ModbusConventionOptions } from '../../src/conventions/modbus/modbus-bridge.js';
import { modbusConvention } from '../../src/conventions/modbus/modbus-bridge.js';
import type { PtyPair } from '../../src/sim/pty.js';
import { openPtyPair, socatAvailable } from '../../src/sim/pty.js';
import type { EventRecord } from '../../src/store/store.js';
import type { ConventionHost } from '../rig/links-rig.js';
import { onCleanup, runCleanups, startConventionHost } from '../rig/links-rig.js';
import { waitFor } from '../transports/helpers.js';

const PYTHON = '/usr/bin/python3';
const SLAVE_SCRIPT = fileURLToPath(new URL('./modbus_slave.py', import.meta.url));

function pymodbusAvailable(): boolean {
  if (!existsSync(PYTHON)) return false;
  const r = spawnSync(PYTHON, ['-c', 'import pymodbus.server, pymodbus.transaction, serial_asyncio'], {
    stdio: 'ignore',
    timeout: 30_000,
  });
  return r.status === 0;
}

const SKIP = !socatAvailable()
  ? 'socat is not installed (apt-get install -y socat)'
  : !pymodbusAvailable()
    ? `${PYTHON} with pymodbus is missing (apt-get install -y python3-pymodbus)`
    : '';

afterEach(runCleanups);

/** Polls an async condition every 50 ms; throws naming `what` after `timeoutMs`. */
async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function tempFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fv-modbus-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function ptyPair(dir: string): Promise<PtyPair> {
  const pty = await openPtyPair(join(dir, 'bus-host'), join(dir, 'bus-device'));
  onCleanup(() => pty.close());
  return pty;
}

interface Slave {
  readonly output: string[];
  readyCount(): number;
  /** Sends a stdin command and waits for its `ok`. */
  command(line: string): Promise<void>;
  kill9(): Promise<void>;
}

/** The pymodbus slave on the device end; killed (SIGKILL) at cleanup if still running. */
async function startSlave(devicePath: string, args: string[] = []): Promise<Slave> {
  const child: ChildProcessWithoutNullStreams = spawn(PYTHON, [SLAVE_SCRIPT, devicePath, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  let stderr = '';
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  createInterface({ input: child.stdout }).on('line', (line) => output.push(line));
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  child.stdin.on('error', () => {}); // the slave may die before reading
  const kill9 = async () => {
    if (!exited) child.kill('SIGKILL');
    await gone;
  };
  onCleanup(kill9);
  await waitFor(
    () => exited || output.some((l) => l.startsWith('ready')),
    20_000,
    'the pymodbus slave to open',
  );
  if (exited) throw new Error(`the pymodbus slave exited: ${stderr.trim()}`);
  return {
    output,
    readyCount: () => output.filter((l) => l.startsWith('ready')).length,
    async command(line) {
      const from = output.length;
      child.stdin.write(`${line}\n`);
      await waitFor(() => output.slice(from).includes(`ok ${line}`), 5000, `the slave to do '${line}'`);
    },
    kill9,
  };
}

/** A pty pair in a temp folder, the pymodbus slave serving `units` (`1,2`) on its device end. */
async function slaveOnBus(units: string): Promise<{ dir: string; pty: PtyPair; slave: Slave }> {
  const dir = tempFolder();
  const pty = await ptyPair(dir);
  const slave = await startSlave(pty.devicePath, ['--units', units]);
  return { dir, pty, slave };
}

/** The host with the Modbus bridge (test/rig/links-rig.ts). */
type Rig = ConventionHost<ModbusBridge>;

/** The host with the Modbus bridge, its data in `dir` (a host started again on `dir` is it restarted). */
function rig(dir: string, options: ModbusConventionOptions = {}): Promise<Rig> {
  const convention = modbusConvention({
    scanMs: 100,
    presencePollMs: 100,
    probeMaxMs: 1000,
    reconnect: { initialMs: 50, maxMs: 500, jitter: 0.5, stableMs: 2000 },
    eventIntervalMs: 300,
    statusIntervalMs: 300,
    ...options,
  });
  return startConventionHost<ModbusBridge>(undefined, convention, { file: join(dir, 'fleet.sqlite') });
}

/** What the slave serves (see modbus_slave.py), mapped with types and scales. */
const REGISTERS = [
  { name: 'counter', table: 'holding', address: 0 },
  { name: 'setpoint', table: 'holding', address: 1, scale: 0.1, unit: '°C', writable: true },
  { name: 'temperature', table: 'holding', address: 2, type: 'float32' },
  { name: 'energy', table: 'holding', address: 4, type: 'uint32', unit: 'Wh' },
  { name: 'offset', table: 'holding', address: 6, type: 'int16', scale: 0.5 },
  { name: 'voltage', table: 'input', address: 0, scale: 0.1, unit: 'V' },
  { name: 'pump', table: 'coil', address: 0 },
  { name: 'valve', table: 'coil', address: 1, writable: true },
  { name: 'alarm', table: 'discrete', address: 0 },
];
const TIMING = { pollMs: 200, timeoutMs: 200, retries: 1 };
/** A slave's disconnect budget from the brief: timeout × (retries + 1) + poll. */
const BUDGET_MS = TIMING.timeoutMs * (TIMING.retries + 1) + TIMING.pollMs;

async function addModbus(
  r: Rig,
  id: string,
  port: string,
  slaveId: number,
  extra: Record<string, unknown> = {},
) {
  const added = await r.fleet.addDevice({
    id,
    kind: 'modbus.device',
    attributes: { port, slaveId, registers: REGISTERS, ...TIMING, ...extra },
  });
  expect(added.ok, added.ok ? '' : added.error.message).toBe(true);
}

const state = (r: Rig, id: string) => r.fleet.device(id)?.state;

/** Adds the device (as {@link addModbus}) and waits until it is connected. */
async function addConnected(r: Rig, id: string, port: string, slaveId: number): Promise<void> {
  await addModbus(r, id, port, slaveId);
  await waitFor(() => state(r, id) === 'connected', 10_000, `${id} connected`);
}
const cycles = (r: Rig, id: string) => r.bridge.deviceStats(id)?.counters.cycles ?? 0;

/** Telemetry of one metric received since `fromMs`, as one bucket (undefined: none). */
async function since(r: Rig, id: string, metric: string, fromMs: number) {
  const [bucket] = await r.store.queryTelemetry(id, metric, fromMs, Date.now() + 60_000, 1);
  return bucket;
}

async function events(r: Rig, id: string, kind: string): Promise<EventRecord[]> {
  const page = await r.store.queryEvents({ deviceId: id, kind, limit: 1000 });
  return page.items.flatMap((i) => (i.ok ? [i.value] : []));
}

const NOTE = SKIP ? ` (skipped: ${SKIP})` : '';

describe.skipIf(SKIP !== '')(`Modbus RTU bridge over a pty with a pymodbus slave${NOTE}`, () => {
  it('a device added with a register map connects, and its polled values land in the store converted and scaled', async () => {
    const { dir, pty } = await slaveOnBus('1');
    const r = await rig(dir);
    const t0 = Date.now();
    await addConnected(r, 'meter-1', pty.hostPath, 1);
    expect(r.fleet.device('meter-1')!.link).toMatchObject({ up: true, via: `modbus:${pty.hostPath}#1` });
    await eventually(
      async () => ((await since(r, 'meter-1', 'counter', t0))?.count ?? 0) >= 5,
      10_000,
      'polls',
    );
    const expected: Record<string, number> = {
      setpoint: 10, // 100 × 0.1
      temperature: 22.5, // float32, high word first
      energy: 70_001, // uint32
      offset: -2.5, // int16 -5 × 0.5
      voltage: 230.1, // input register 2301 × 0.1
      pump: 1,
      valve: 0,
      alarm: 1,
    };
    for (const [metric, value] of Object.entries(expected)) {
      const b = await since(r, 'meter-1', metric, t0);
      expect(b, metric).toBeDefined();
      expect([metric, b!.min, b!.max]).toEqual([metric, value, value]);
    }
    const counter = await since(r, 'meter-1', 'counter', t0);
    expect(counter!.max).toBeGreaterThan(counter!.min); // the slave's value changes every 0.2 s
    expect((await r.store.listMetrics('meter-1')).sort()).toEqual(REGISTERS.map((x) => x.name).sort());
    // One holding batch (0–6), one input, one coil (0–1), one discrete read per cycle.
    expect(r.bridge.deviceStats('meter-1')).toMatchObject({ online: true, batches: 4 });
    await waitFor(
      () => (r.fleet.device('meter-1')!.status.modbus as { online?: boolean } | undefined)?.online === true,
      5000,
      'status.modbus reported',
    );
  });

  it('write: validated against the register map; acknowledged writes change the slave, read back by the next poll', async () => {
    const { dir, pty } = await slaveOnBus('1');
    const r = await rig(dir);
    await addConnected(r, 'meter-2', pty.hostPath, 1);

    const refused = async (args: unknown, pattern: RegExp) => {
      const res = await r.fleet.act('meter-2', 'write', args, 'ana');
      expect(res.ok).toBe(false);
      if (!res.ok) {
        expect(res.error.code).toBe('badArgs');
        expect(res.error.message).toMatch(pattern);
      }
    };
    await refused({ register: 'voltage', value: 1 }, /register 'voltage': is not writable/);
    await refused({ register: 'setpoint', value: 7000 }, /register 'setpoint': uint16 takes 0…65535/);
    await refused({ register: 'setpoint', value: 42.55 }, /register 'setpoint'.*multiple of its scale/);
    await refused({ register: 'nope', value: 1 }, /no register 'nope' \(writable: setpoint, valve\)/);
    await refused({ register: 'setpoint' }, /value/);

    const t0 = Date.now();
    const w = await r.fleet.act('meter-2', 'write', { register: 'setpoint', value: 42.5 }, 'ana');
    expect(w.ok, w.ok ? '' : w.error.message).toBe(true);
    const commandId = w.ok ? w.value.commandId : '';
    expect(w.ok && w.value.commandStatus).toBe('sent');
    const statusOf = async (id: string) => {
      const page = await r.store.queryCommands({ deviceId: 'meter-2', limit: 20 });
      const row = page.items.find((i) => i.ok && i.value.commandId === id);
      return row?.ok ? row.value : undefined;
    };
    await eventually(
      async () => (await statusOf(commandId))?.status === 'succeeded',
      10_000,
      'write acknowledged',
    );
    expect(await statusOf(commandId)).toMatchObject({
      action: 'write',
      actor: 'ana',
      args: { register: 'setpoint', value: 42.5 },
      result: { register: 'setpoint', value: 42.5 },
    });
    await eventually(
      async () => (await since(r, 'meter-2', 'setpoint', t0))?.max === 42.5,
      10_000,
      'read back 42.5',
    );

    const c = await r.fleet.act('meter-2', 'write', { register: 'valve', value: true }, 'ana');
    expect(c.ok).toBe(true);
    await eventually(
      async () => (await since(r, 'meter-2', 'valve', t0))?.max === 1,
      10_000,
      'coil read back on',
    );
    expect(r.bridge.deviceStats('meter-2')!.counters.writes).toBe(2);
  });

  it(`two slaves share the bus in turn; a silent unit goes disconnected within ${BUDGET_MS} ms (+ the other's turns) while the other keeps its rate; it returns on its own`, async () => {
    const { dir, pty, slave } = await slaveOnBus('1,2');
    const r = await rig(dir);
    await addModbus(r, 'unit-1', pty.hostPath, 1);
    await addModbus(r, 'unit-2', pty.hostPath, 2);
    await waitFor(
      () => state(r, 'unit-1') === 'connected' && state(r, 'unit-2') === 'connected',
      10_000,
      'both connected',
    );
    expect(r.bridge.stats().buses).toHaveLength(1); // one bus process for the port
    await waitFor(() => cycles(r, 'unit-1') >= 3 && cycles(r, 'unit-2') >= 3, 10_000, 'both polled');

    await slave.command('silent 2');
    const silentAt = Date.now();
    await waitFor(() => state(r, 'unit-2') === 'disconnected', 10_000, 'unit-2 disconnected');
    const detectMs = Date.now() - silentAt;
    // unit-2's own budget, plus unit-1's requests in between and scheduling slack.
    expect(detectMs).toBeLessThan(BUDGET_MS + 1500);
    expect(r.fleet.device('unit-2')!.link.reason).toMatch(
      /no reply from slave 2 .*2 timeouts in a row \(200 ms each\)/,
    );
    expect(
      (r.fleet.machineOf('unit-2')!.getSnapshot() as { context: { lastError: string } }).context.lastError,
    ).toMatch(/timeouts in a row/);

    // unit-1 keeps reporting at (close to) its rate: 10 cycles of 200 ms while unit-2 is probed.
    const before = cycles(r, 'unit-1');
    const from = Date.now();
    await waitFor(() => cycles(r, 'unit-1') >= before + 10, 10_000, 'unit-1 keeps polling');
    expect(Date.now() - from).toBeLessThan(10 * TIMING.pollMs * 1.6);
    expect(state(r, 'unit-1')).toBe('connected');
    const timeouts = await events(r, 'unit-2', 'device.modbusError');
    expect(timeouts.length).toBeGreaterThan(0);
    expect((timeouts[0]!.data as { code: string }).code).toBe('timeout');

    // A write to the silent device waits, and goes out when it answers again.
    const w = await r.fleet.act('unit-2', 'write', { register: 'setpoint', value: 12.3 }, 'ana');
    expect(w.ok && w.value.commandStatus).toBe('pending');
    await slave.command('talk 2');
    await waitFor(() => state(r, 'unit-2') === 'connected', 10_000, 'unit-2 connected again');
    const t1 = Date.now();
    await eventually(
      async () => (await since(r, 'unit-2', 'setpoint', t1))?.max === 12.3,
      10_000,
      'pending write done',
    );
  });

  it('a write asked while the slave is silent survives an app restart and is done when it answers', async () => {
    const { dir, pty, slave } = await slaveOnBus('1');
    const first = await rig(dir);
    await addModbus(first, 'w-1', pty.hostPath, 1);
    await waitFor(() => state(first, 'w-1') === 'connected', 10_000, 'connected');
    await slave.command('silent 1');
    await waitFor(() => state(first, 'w-1') === 'disconnected', 10_000, 'w-1 disconnected');
    const w = await first.fleet.act('w-1', 'write', { register: 'setpoint', value: 31.5 }, 'ana');
    expect(w).toMatchObject({ ok: true, value: { commandStatus: 'pending' } });
    const commandId = w.ok ? w.value.commandId : '';
    await first.stop();

    const second = await rig(dir);
    expect(second.fleet.commands.get(commandId)).toMatchObject({ status: 'pending', carrier: 'modbus' });
    await slave.command('talk 1');
    await waitFor(() => state(second, 'w-1') === 'connected', 10_000, 'w-1 connected again');
    const t1 = Date.now();
    await eventually(
      async () => {
        await second.fleet.commands.flush();
        const page = await second.store.queryCommands({ deviceId: 'w-1', limit: 10 });
        return page.items.some(
          (i) => i.ok && i.value.commandId === commandId && i.value.status === 'succeeded',
        );
      },
      10_000,
      'the write from before the restart acknowledged',
    );
    await eventually(
      async () => (await since(second, 'w-1', 'setpoint', t1))?.max === 31.5,
      10_000,
      'read back 31.5',
    );
  });

  it(`kill -9 of the slave: both devices disconnected within 2 × timeout × (retries + 1) + poll (+1 s slack); restarted, they connect with no operator action`, async () => {
    const { dir, pty, slave } = await slaveOnBus('1,2');
    const r = await rig(dir);
    await addModbus(r, 'k-1', pty.hostPath, 1);
    await addModbus(r, 'k-2', pty.hostPath, 2);
    await waitFor(
      () => state(r, 'k-1') === 'connected' && state(r, 'k-2') === 'connected',
      10_000,
      'connected',
    );
    await slave.kill9();
    const killedAt = Date.now();
    await waitFor(
      () => state(r, 'k-1') === 'disconnected' && state(r, 'k-2') === 'disconnected',
      10_000,
      'both down',
    );
    // Both slaves time out in turn on the same bus: each one's budget, interleaved.
    expect(Date.now() - killedAt).toBeLessThan(
      2 * TIMING.timeoutMs * (TIMING.retries + 1) + TIMING.pollMs + 1000,
    );
    expect(r.fleet.device('k-1')!.link.reason).toMatch(/timeouts in a row/);

    await startSlave(pty.devicePath, ['--units', '1,2']);
    await waitFor(() => state(r, 'k-1') === 'connected' && state(r, 'k-2') === 'connected', 10_000, 'back');
    const t = Date.now();
    await eventually(
      async () => ((await since(r, 'k-2', 'counter', t))?.count ?? 0) >= 2,
      10_000,
      'telemetry again',
    );
  });

  it('pty unplug → disconnected (port vanished); replug → the bus reopens and the device reconnects', async () => {
    const { dir, pty, slave } = await slaveOnBus('1');
    const r = await rig(dir);
    await addConnected(r, 'plug-1', pty.hostPath, 1);
    await pty.unplug();
    await waitFor(() => state(r, 'plug-1') === 'disconnected', 10_000, 'disconnected after unplug');
    expect(r.fleet.device('plug-1')!.link.reason).toMatch(/vanished/);
    await waitFor(() => r.bridge.stats().buses[0]?.port === 'absent', 5000, 'bus waiting for its port');
    await pty.replug();
    await waitFor(() => slave.readyCount() >= 2, 10_000, 'the slave reopened its end');
    await waitFor(() => state(r, 'plug-1') === 'connected', 10_000, 'connected after replug');
    const t = Date.now();
    await eventually(
      async () => ((await since(r, 'plug-1', 'counter', t))?.count ?? 0) >= 2,
      10_000,
      'telemetry again',
    );
  });

  it('the bridge supervises its buses: one child per port, a bus killed from the tree is restarted and the device reconnects', async () => {
    const { dir, pty } = await slaveOnBus('1');
    const r = await rig(dir);
    await addConnected(r, 'kill-1', pty.hostPath, 1);
    const [child] = r.bridge.whichChildren();
    expect(child).toMatchObject({ id: pty.hostPath, status: 'running', type: 'worker', restartCount: 0 });
    const bus = child!.process!;
    expect(bus.name).toBe(`modbus-bus:${pty.hostPath}`);
    expect(r.bridge.countChildren()).toEqual({ specs: 1, active: 1, supervisors: 0, workers: 1 });
    expect(r.bridge.health()).toEqual([
      { name: `modbus ${pty.hostPath}`, ok: true, detail: 'open, 1 of 1 slaves answering' },
    ]);

    bus.kill(); // what the tree's kill does
    await waitFor(() => state(r, 'kill-1') === 'disconnected', 5000, 'disconnected by the kill');
    expect(r.fleet.device('kill-1')!.link.reason).toMatch(/exited: killed/);
    await waitFor(
      () =>
        r.bridge.whichChildren()[0]?.process !== undefined && r.bridge.whichChildren()[0]?.process !== bus,
      10_000,
      'the bus to be restarted',
    );
    expect(r.bridge.whichChildren()[0]).toMatchObject({
      status: 'running',
      restartCount: 1,
      lastExit: { type: 'killed' },
    });
    expect(r.bridge.restartsInWindow()).toBe(1);
    await waitFor(() => state(r, 'kill-1') === 'connected', 10_000, 'connected after the restart');
    const t = Date.now();
    await eventually(
      async () => ((await since(r, 'kill-1', 'counter', t))?.count ?? 0) >= 2,
      10_000,
      'telemetry again',
    );
  });

  it('nothing on the line at all: the port is reopened after reopenSilentMs; a slave that starts later is found', async () => {
    const dir = tempFolder();
    const pty = await ptyPair(dir);
    const r = await rig(dir, { reopenSilentMs: 800 });
    await addModbus(r, 'late-1', pty.hostPath, 1);
    await waitFor(() => r.bridge.stats().buses[0]?.port === 'open', 10_000, 'port open');
    await waitFor(
      () =>
        /nothing received on .* and no slave answers; reopening/.test(
          r.bridge.stats().buses[0]?.lastPortError ?? '',
        ),
      10_000,
      'the silent port cycled',
    );
    await waitFor(() => (r.bridge.stats().buses[0]?.opens ?? 0) >= 2, 10_000, 'the port reopened');
    expect(state(r, 'late-1')).toBe('disconnected');
    expect(r.bridge.deviceStats('late-1')!.counters.timeouts).toBeGreaterThan(0);
    // Never up, yet the reason is shown: the timeouts, then the port being cycled.
    expect(r.fleet.device('late-1')!.link).toMatchObject({ up: false, reason: expect.any(String) });
    await startSlave(pty.devicePath, ['--units', '1']);
    await waitFor(() => state(r, 'late-1') === 'connected', 10_000, 'connected once the slave runs');
  });

  it('an exception reply (illegal address) is a clear event on that device; its other registers and the other device are unaffected', async () => {
    const { dir, pty } = await slaveOnBus('1,2');
    const r = await rig(dir);
    await addModbus(r, 'ex-1', pty.hostPath, 1, {
      registers: [
        ...REGISTERS,
        { name: 'spare', table: 'holding', address: 19 },
        { name: 'ghost', table: 'holding', address: 20 }, // past the slave's holding block: batch 19–20 is refused
        { name: 'missing', table: 'input', address: 50 },
      ],
    });
    await addModbus(r, 'ex-2', pty.hostPath, 2);
    const t0 = Date.now();
    await waitFor(
      () => state(r, 'ex-1') === 'connected' && state(r, 'ex-2') === 'connected',
      10_000,
      'connected',
    );
    const at = (e: EventRecord) => (e.data as { address: number }).address;
    await eventually(
      async () => {
        const errs = await events(r, 'ex-1', 'device.modbusError');
        return errs.some((e) => at(e) === 20) && errs.some((e) => at(e) === 50);
      },
      10_000,
      'events for ghost (holding 20) and missing (input 50)',
    );
    const errs = await events(r, 'ex-1', 'device.modbusError');
    // First the batch holding 19–20 is refused as a whole, then ghost alone.
    expect(errs.find((e) => at(e) === 19)?.data).toMatchObject({
      code: 'exception',
      exceptionCode: 2,
      count: 2,
      registers: ['spare', 'ghost'],
    });
    const ghost = errs.find((e) => at(e) === 20)!;
    expect(ghost.data).toMatchObject({
      code: 'exception',
      exceptionCode: 2,
      functionCode: 3,
      registers: ['ghost'],
    });
    expect((ghost.data as { message: string }).message).toMatch(
      /slave 1 on .* refused reading ghost \(FC03 at 20\): exception 2 \(illegal data address\)/,
    );
    expect(
      errs.some((e) => /missing.*illegal data address/.test((e.data as { message: string }).message)),
    ).toBe(true);
    // The refused batch was split: spare (19) is read on its own, ghost and missing never.
    await eventually(async () => (await since(r, 'ex-1', 'spare', t0))?.max === 0, 10_000, 'spare read');
    await eventually(
      async () => ((await since(r, 'ex-1', 'voltage', t0))?.count ?? 0) >= 3,
      10_000,
      'voltage',
    );
    expect(await since(r, 'ex-1', 'ghost', t0)).toBeUndefined();
    expect(await since(r, 'ex-1', 'missing', t0)).toBeUndefined();
    expect(state(r, 'ex-1')).toBe('connected');
    expect(r.bridge.deviceStats('ex-1')!.counters.exceptions).toBeGreaterThan(0);
    await eventually(
      async () => ((await since(r, 'ex-2', 'counter', t0))?.count ?? 0) >= 3,
      10_000,
      'ex-2 polled',
    );
    expect(await events(r, 'ex-2', 'device.modbusError')).toEqual([]);
    expect(r.bridge.deviceStats('ex-2')!.counters.exceptions).toBe(0);
    // Rate-limited: far fewer events than exceptions.
    const exceptions = r.bridge.deviceStats('ex-1')!.counters.exceptions;
    await waitFor(() => r.bridge.deviceStats('ex-1')!.counters.exceptions >= exceptions + 10, 10_000, 'more');
    expect((await events(r, 'ex-1', 'device.modbusError')).length).toBeLessThan(
      r.bridge.deviceStats('ex-1')!.counters.exceptions,
    );
  });

  it('garbage bytes on the line: CRC errors are counted and reported, polling resumes', async () => {
    const { dir, pty } = await slaveOnBus('1');
    const r = await rig(dir);
    await addConnected(r, 'noisy-1', pty.hostPath, 1);
    await waitFor(() => cycles(r, 'noisy-1') >= 3, 10_000, 'polled');

    // A second writer on the device end: its bytes reach the host between and inside replies.
    const fd = openSync(pty.devicePath, constants.O_WRONLY | constants.O_NOCTTY);
    let writing = true; // closed here once done; at cleanup only if the test failed before
    onCleanup(() => {
      if (writing) closeSync(fd);
    });
    const corrupt = () => {
      const c = r.bridge.deviceStats('noisy-1')!.counters;
      return c.crcErrors + c.badFrames;
    };
    const deadline = Date.now() + 15_000;
    while (r.bridge.deviceStats('noisy-1')!.counters.crcErrors < 3) {
      if (Date.now() > deadline)
        throw new Error(`no CRC errors after 15 s of garbage (corrupt: ${corrupt()})`);
      writeSync(fd, randomBytes(1 + Math.floor(Math.random() * 24)));
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
    }
    writing = false;
    closeSync(fd);

    const before = cycles(r, 'noisy-1');
    await waitFor(() => cycles(r, 'noisy-1') >= before + 5, 10_000, 'polling resumes');
    await waitFor(() => state(r, 'noisy-1') === 'connected', 10_000, 'connected');
    const bad = await events(r, 'noisy-1', 'device.badMessage');
    expect(bad.length).toBeGreaterThan(0);
    expect(bad.some((e) => /CRC error in the reply/.test((e.data as { message: string }).message))).toBe(
      true,
    );
    const t = Date.now();
    await eventually(
      async () => (await since(r, 'noisy-1', 'voltage', t))?.max === 230.1,
      10_000,
      'clean values',
    );
    expect((await since(r, 'noisy-1', 'voltage', t))!.min).toBe(230.1);
  });
});

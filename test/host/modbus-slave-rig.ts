/**
 * A real Modbus RTU slave for host-level tests: a socat pty pair (src/sim/pty.ts) with Debian's
 * pymodbus serving test/conventions/modbus_slave.py on the device end. `skip` says why it cannot
 * run here (no socat, no pymodbus); `stop` kills the slave and closes the pair.
 *
 * @example
 * const rig = await startModbusSlaveRig(dir, ['--units', '1']);
 * rig.hostPath; // the port a `modbus.device` names
 * await rig.stop();
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { openPtyPair, socatAvailable } from '../../src/sim/pty.js';

const PYTHON = '/usr/bin/python3';
const SLAVE_SCRIPT = fileURLToPath(new URL('../conventions/modbus_slave.py', import.meta.url));

export function modbusSlaveSkip(): string {
  if (!socatAvailable()) return 'socat is not installed';
  if (!existsSync(PYTHON)) return `${PYTHON} is missing`;
  const r = spawnSync(PYTHON, ['-c', 'import pymodbus.server, pymodbus.transaction, serial_asyncio'], {
    stdio: 'ignore',
    timeout: 30_000,
  });
  return r.status === 0 ? '' : 'python3-pymodbus is not installed';
}

export interface ModbusSlaveRig {
  readonly hostPath: string;
  stop(): Promise<void>;
}

export async function startModbusSlaveRig(dir: string, args: string[] = []): Promise<ModbusSlaveRig> {
  const pty = await openPtyPair(join(dir, 'bus-host'), join(dir, 'bus-device'));
  const child = spawn(PYTHON, [SLAVE_SCRIPT, pty.devicePath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => {});
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const ready = new Promise<void>((resolve) =>
    createInterface({ input: child.stdout }).on('line', (l) => {
      if (l.startsWith('ready')) resolve();
    }),
  );
  const stop = async () => {
    if (!exited) child.kill('SIGKILL');
    await gone;
    await pty.close();
  };
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000).unref());
  const first = await Promise.race([ready, gone.then(() => 'exited' as const), timeout]);
  if (first !== undefined) {
    await stop();
    throw new Error(`the pymodbus slave did not open (${first}): ${stderr.trim()}`);
  }
  return { hostPath: pty.hostPath, stop };
}

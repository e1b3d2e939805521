/**
 * The fleet API and the `npm run sim` CLI, over real links: an embedded broker (and the external
 * one when FLEETVISOR_TEST_MQTT_URL is set) and socat pty pairs. The CLI runs as a child process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { parseCliArgs } from '../../src/sim/cli.js';
import { socatAvailable } from '../../src/sim/pty.js';
import type { SimFleet } from '../../src/sim/sim-fleet.js';
import { simDeviceId, startSimFleet } from '../../src/sim/sim-fleet.js';
import type { Message } from '../../src/transports/protocol.js';
import { decodePublish } from '../../src/transports/protocol.js';
import { BROKERS, cmd, command, hellos, registerCleanups, SerialHost, uniqueId, waitFor } from './helpers.js';

const cleanup = registerCleanups();
const hasSocat = socatAvailable();

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fv-sim-fleet-'));
  cleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Subscribes to a channel of every device; records decoded messages by device id. */
async function watch(url: string, channel: string): Promise<Map<string, Message[]>> {
  const seen = new Map<string, Message[]>();
  const client = await connectAsync(url, {
    clientId: uniqueId('watch'),
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  client.on('error', () => {});
  client.on('message', (topic, payload) => {
    const r = decodePublish(topic, payload);
    if (!r.ok) return;
    const list = seen.get(r.value.deviceId) ?? [];
    list.push(r.value.message);
    seen.set(r.value.deviceId, list);
  });
  await client.subscribeAsync(`fleetvisor/v1/+/${channel}`, { qos: 1 });
  cleanup(() => client.endAsync(true));
  return seen;
}

/** Clears the retained hello/status of the given devices (a shared broker keeps them). */
async function clearRetained(url: string, ids: readonly string[]): Promise<void> {
  const client = await connectAsync(url, {
    clientId: uniqueId('clear'),
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  client.on('error', () => {});
  for (const id of ids) {
    for (const channel of ['hello', 'status']) {
      await client.publishAsync(`fleetvisor/v1/${id}/${channel}`, '', { qos: 1, retain: true });
    }
  }
  await client.endAsync();
}

describe('simDeviceId', () => {
  it('pads the number', () => {
    expect(simDeviceId('sim', 'm', 1, 3)).toBe('sim-m001');
    expect(simDeviceId('sim', 's', 2, 2)).toBe('sim-s02');
    expect(simDeviceId('sim', 'm', 1000, 3)).toBe('sim-m1000');
  });
});

for (const broker of BROKERS) {
  describe.skipIf(broker.skip)(`startSimFleet with ${broker.name}`, () => {
    it('starts 40 MQTT devices (20 at a time), each with a retained hello, and stops them with offline', async () => {
      const url = await broker.url(cleanup);
      const prefix = uniqueId('f');
      const ids = Array.from({ length: 40 }, (_, i) => simDeviceId(prefix, 'm', i + 1, 3));
      cleanup(() => clearRetained(url, ids));
      const statuses = await watch(url, 'status');
      let fleet: SimFleet | undefined;
      cleanup(() => fleet?.stop());
      const started: string[] = [];
      fleet = await startSimFleet({
        mqttUrl: url,
        mqtt: 40,
        idPrefix: prefix,
        telemetryIntervalMs: 2000,
        onDeviceStarted: (info) => started.push(info.id),
      });
      expect(fleet.mqtt.map((d) => d.id)).toEqual(ids);
      expect(started.sort()).toEqual([...ids].sort());
      expect(fleet.mqtt.every((d) => d.connected)).toBe(true);

      const retained = await watch(url, 'hello');
      await waitFor(() => ids.every((id) => retained.has(id)), 15_000, 'every retained hello');

      await fleet.stop();
      await waitFor(
        () => ids.every((id) => statuses.get(id)?.some((m) => m.type === 'status' && m.state === 'offline')),
        15_000,
        'every offline status',
      );
    }, 60_000);
  });
}

describe('startSimFleet errors', () => {
  it('rejects with a clear error when the broker cannot be reached', async () => {
    const closed = 'mqtt://127.0.0.1:1'; // nothing listens on port 1
    await expect(
      startSimFleet({
        mqttUrl: closed,
        mqtt: 2,
        idPrefix: uniqueId('f'),
        concurrency: 1,
        startTimeoutMs: 1000,
      }),
    ).rejects.toThrow(/no connection to mqtt:\/\/127\.0\.0\.1:1 within 1000 ms/);
  });

  it('needs a broker URL for MQTT devices and checks the counts', async () => {
    await expect(startSimFleet({ mqtt: 1 })).rejects.toThrow(/mqttUrl is required/);
    await expect(startSimFleet({ serial: -1 })).rejects.toThrow(/serial must be an integer/);
  });
});

describe.skipIf(!hasSocat)(
  hasSocat ? 'startSimFleet with serial devices' : 'startSimFleet with serial devices (skipped: no socat)',
  () => {
    it('creates a pty pair per serial device and lists the host ends', async () => {
      const dir = tempDir();
      const prefix = uniqueId('f');
      const fleet = await startSimFleet({ serial: 2, ptyDir: dir, idPrefix: prefix });
      cleanup(() => fleet.stop());
      expect(fleet.hostPorts).toEqual([join(dir, `${prefix}-s01-host`), join(dir, `${prefix}-s02-host`)]);
      expect(fleet.serial.map((s) => s.device.id)).toEqual([`${prefix}-s01`, `${prefix}-s02`]);

      // The host opens its end and asks for hello, as the host's serial link does.
      const host = await SerialHost.open(fleet.hostPorts[1]!, cleanup);
      const reply = await command(host, cmd('hello'));
      expect(reply.ok).toBe(true);
      expect(hellos(host)[0]!.deviceId).toBe(`${prefix}-s02`);
    });
  },
);

describe('the sim CLI', () => {
  it('parses flags', () => {
    expect(parseCliArgs(['--mqtt', '100', '--serial', '2', '--interval', '500'])).toMatchObject({
      kind: 'run',
      options: { mqtt: 100, serial: 2, interval: 500, embedded: true, url: undefined },
    });
    expect(parseCliArgs(['--url', 'mqtt://h:1883'])).toMatchObject({
      kind: 'run',
      options: { mqtt: 10, embedded: false, url: 'mqtt://h:1883' },
    });
    expect(parseCliArgs(['-h'])).toEqual({ kind: 'help' });
    for (const bad of [
      ['--mqtt', '-1'],
      ['--mqtt', 'many'],
      ['--interval', '10'],
      ['--frobnicate'],
      ['--url', 'mqtt://h', '--embedded'],
      ['--url', 'localhost'],
      ['extra'],
    ]) {
      expect(parseCliArgs(bad).kind, bad.join(' ')).toBe('error');
    }
  });

  function run(args: string[]): { child: ChildProcess; out: () => string; exit: Promise<number | null> } {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/sim/cli.ts', ...args], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    cleanup(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    return { child, out: () => out, exit };
  }

  it('--help prints usage; a bad flag exits 2 with a clear message', async () => {
    const help = run(['--help']);
    expect(await help.exit).toBe(0);
    expect(help.out()).toContain('Usage: npm run sim');
    const bad = run(['--mqtt', 'lots']);
    expect(await bad.exit).toBe(2);
    expect(bad.out()).toContain("--mqtt must be an integer 0…100000, got 'lots'");
  }, 30_000);

  it('runs devices on the embedded broker and stops cleanly on SIGINT', async () => {
    const args = ['--mqtt', '3', '--port', '0', '--interval', '500', '--prefix', uniqueId('cli')];
    if (hasSocat) args.push('--serial', '1', '--pty-dir', tempDir());
    const cli = run(args);
    await waitFor(() => cli.out().includes('Ctrl-C to stop'), 20_000, 'the CLI to start');
    expect(cli.out()).toMatch(/embedded MQTT broker listening on mqtt:\/\/127\.0\.0\.1:\d+/);
    expect(cli.out().match(/^mqtt {4}\S+-m00\d {2}connected/gm)?.length).toBe(3);
    if (hasSocat) expect(cli.out()).toMatch(/^serial {2}\S+-s01 {2}host port: \S+-s01-host$/m);
    cli.child.kill('SIGINT');
    expect(await cli.exit).toBe(0);
    expect(cli.out()).toContain('stopped');
  }, 40_000);
});

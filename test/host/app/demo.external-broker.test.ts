/**
 * Two demo fleets on one external broker (issue 12 §3), with two real app processes
 * (`src/host/main.ts --mqtt-url … --demo-devices 2`, each its own data folder) on a private
 * Mosquitto: each fleet holds only its own simulated devices (their ids carry the instance id; the
 * other app's wait in its Discovered list, not adopted), the broker logs no client taken over, and
 * a command acted on one app's device runs once, on that app's own simulated device.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import type { AppClient } from '../../../src/host/app-client.js';
import { connectToRunningApp } from '../../../src/host/app-client.js';
import { freePort } from '../../transports/helpers.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const MAIN = join(ROOT, 'src/host/main.ts');
const MOSQUITTO = '/usr/sbin/mosquitto';
const TAKEOVER = /already connected, closing old connection/;

interface AppProcess {
  readonly child: ChildProcess;
  readonly out: () => string;
  readonly exited: Promise<number | string>;
}

function startApp(args: string[]): AppProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--log-level', 'info', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FLEETVISOR_DATA_DIR: '', FLEETVISOR_MQTT_URL: '', FLEETVISOR_PORT: '' },
  });
  let text = '';
  child.stdout!.on('data', (b: Buffer) => {
    text += b.toString();
  });
  child.stderr!.on('data', (b: Buffer) => {
    text += b.toString();
  });
  const exited = new Promise<number | string>((done) =>
    child.on('exit', (code, signal) => done(code ?? signal ?? 'unknown')),
  );
  return { child, out: () => text, exited };
}

async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits for the app's UI address; fails with its output if it exits first. */
function served(app: AppProcess, what: string): Promise<string> {
  return until(
    what,
    () => {
      if (app.child.exitCode !== null)
        throw new Error(`${what}: it exited (${app.child.exitCode}):\n${app.out()}`);
      return /Open the Fleetvisor UI at: (\S+)/.exec(app.out())?.[1];
    },
    90_000,
  );
}

/** The running app on `dir`, through the same API and token the command-line tools use. */
function client(dir: string): AppClient {
  const c = connectToRunningApp(dir);
  if (!c.ok) throw new Error(c.error.message);
  return c.value;
}

async function fleetIds(app: AppClient): Promise<{ id: string; state: string }[]> {
  const r = await app.call('devices', { limit: 10_000 });
  if (!r.ok) throw new Error(r.error.message);
  return r.value.items.map((d) => ({ id: d.id, state: d.state }));
}

describe.runIf(existsSync(MOSQUITTO))(
  'two demo fleets on one external broker (real processes, private Mosquitto)',
  () => {
    const root = mkdtempSync(join(tmpdir(), 'fleetvisor-two-demos-'));
    const stops: (() => Promise<unknown>)[] = [];
    afterAll(async () => {
      for (const stop of stops.reverse()) await stop();
      rmSync(root, { recursive: true, force: true });
    });

    it('each fleet holds only its own simulated devices, none is taken over, and a command runs once on its own device', async () => {
      const port = await freePort();
      const conf = join(root, 'mosquitto.conf');
      writeFileSync(
        conf,
        [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', ''].join('\n'),
      );
      let brokerLog = '';
      const broker = spawn(MOSQUITTO, ['-c', conf, '-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
      for (const stream of [broker.stdout, broker.stderr])
        stream.on('data', (d: Buffer) => {
          brokerLog += d.toString();
        });
      stops.push(async () => {
        if (broker.exitCode !== null) return;
        const exited = new Promise((r) => broker.once('exit', r));
        broker.kill('SIGTERM');
        await exited;
      });
      const url = `mqtt://127.0.0.1:${port}`;
      await until(
        'the private Mosquitto to listen',
        () => (/running/.test(brokerLog) ? true : undefined),
        5000,
      );

      const dirs = { a: join(root, 'a'), b: join(root, 'b') };
      const apps = Object.fromEntries(
        Object.entries(dirs).map(([name, dir]) => {
          const app = startApp(['--data-dir', dir, '--mqtt-url', url, '--demo-devices', '2']);
          stops.push(async () => {
            if (app.child.exitCode !== null || app.child.signalCode !== null) return;
            app.child.kill('SIGTERM');
            await Promise.race([app.exited, new Promise((r) => setTimeout(r, 15_000))]);
            if (app.child.exitCode === null) app.child.kill('SIGKILL');
          });
          return [name, app];
        }),
      ) as Record<'a' | 'b', AppProcess>;
      await served(apps.a, 'app a to serve');
      await served(apps.b, 'app b to serve');
      const instance = {
        a: readFileSync(join(dirs.a, 'instance-id'), 'utf8').trim(),
        b: readFileSync(join(dirs.b, 'instance-id'), 'utf8').trim(),
      };
      const api = { a: client(dirs.a), b: client(dirs.b) };
      const own = (name: 'a' | 'b', n: number) => `demo-${instance[name]}-m00${n}`;

      // Each app's own two MQTT devices come up connected in its fleet.
      for (const name of ['a', 'b'] as const)
        await until(
          `app ${name}'s demo devices connected`,
          async () => {
            const devices = await fleetIds(api[name]);
            return [own(name, 1), own(name, 2)].every((id) =>
              devices.some((d) => d.id === id && d.state === 'connected'),
            )
              ? true
              : undefined;
          },
          60_000,
        ).catch((error: Error) => {
          throw new Error(
            `${error.message}\n--- app ${name}:\n${apps[name].out()}\n--- broker:\n${brokerLog.slice(-3000)}`,
          );
        });

      // The other app's devices are seen, and wait for an operator: not adopted.
      for (const [name, other] of [
        ['a', 'b'],
        ['b', 'a'],
      ] as const) {
        await until(`app ${name} to list app ${other}'s devices as discovered`, async () => {
          const r = await api[name].call('discovered', { offset: 0, limit: 1000 });
          return r.ok && r.value.some((d) => d.id === own(other, 1)) ? true : undefined;
        });
        const ids = (await fleetIds(api[name])).map((d) => d.id);
        expect(ids.filter((id) => !id.startsWith(`demo-${instance[name]}-`))).toEqual([]);
      }

      // A while on the broker: two fleets with one set of ids kick each other off at once, over and over.
      await new Promise((r) => setTimeout(r, 4000));
      expect(brokerLog.match(new RegExp(TAKEOVER.source, 'g')) ?? []).toEqual([]);

      // A command to one of app a's devices: one cmd on the wire, answered once, by that device.
      const watcher: MqttClient = await connectAsync(url, {
        clientId: `watcher-${process.pid}`,
        reconnectPeriod: 0,
      });
      stops.push(() => watcher.endAsync(true));
      const seen: { topic: string; cmdId: unknown }[] = [];
      watcher.on('message', (topic, payload) => {
        let cmdId: unknown;
        try {
          cmdId = (JSON.parse(payload.toString()) as { cmdId?: unknown }).cmdId;
        } catch {
          cmdId = undefined;
        }
        seen.push({ topic, cmdId });
      });
      await watcher.subscribeAsync(['fleetvisor/v1/+/cmd', 'fleetvisor/v1/+/reply'], { qos: 1 });
      const acted = await api.a.call('act', { ids: [own('a', 1)], action: 'ping', args: {}, actor: 'test' });
      expect(acted.ok).toBe(true);
      const commandId = acted.ok ? acted.value[0]?.commandId : undefined;
      expect(commandId).toBeDefined();
      await until(
        'the reply',
        () => (seen.some((m) => m.topic.endsWith('/reply') && m.cmdId === commandId) ? true : undefined),
        10_000,
      );
      await new Promise((r) => setTimeout(r, 1500)); // room for a second answer, if another device also took the command
      expect(seen.filter((m) => m.cmdId === commandId)).toEqual([
        { topic: `fleetvisor/v1/${own('a', 1)}/cmd`, cmdId: commandId },
        { topic: `fleetvisor/v1/${own('a', 1)}/reply`, cmdId: commandId },
      ]);
      expect(brokerLog).not.toMatch(TAKEOVER);
    }, 240_000);
  },
);

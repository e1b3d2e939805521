/**
 * One app per data folder, and no interference on a shared broker (issue 12 §3), with real app
 * processes (`src/host/main.ts`, headless): a second start on a folder in use fails at once naming
 * the running one's pid and UI; a lock left by `kill -9` is taken over; two instances on one broker
 * with different data folders each keep their own Sparkplug host id and MQTT client ids.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connectAsync } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'src/host/main.ts');

interface AppProcess {
  readonly child: ChildProcess;
  readonly out: () => string;
  /** Resolves with the exit code (or signal). */
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

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const uiUrl = (app: AppProcess) => /Open the Fleetvisor UI at: (\S+)/.exec(app.out())?.[1];

/** Waits for the app's UI address; fails with its output if it exits or takes too long. */
function served(app: AppProcess, what: string): Promise<string> {
  return until(
    what,
    () => {
      if (app.child.exitCode !== null)
        throw new Error(`${what}: it exited (${app.child.exitCode}):\n${app.out()}`);
      return uiUrl(app);
    },
    90_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n${app.out()}`);
  });
}

describe('one app per data folder (real processes)', () => {
  const root = mkdtempSync(join(tmpdir(), 'fleetvisor-one-app-'));
  const running: AppProcess[] = [];
  const launch = (args: string[]) => {
    const app = startApp(args);
    running.push(app);
    return app;
  };

  afterAll(async () => {
    for (const app of running)
      if (app.child.exitCode === null && app.child.signalCode === null) {
        app.child.kill('SIGTERM');
        await Promise.race([app.exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (app.child.exitCode === null && app.child.signalCode === null) app.child.kill('SIGKILL');
      }
    rmSync(root, { recursive: true, force: true });
  });

  it('stops cleanly and frees its data folder when its terminal went away first (stdout closed, then SIGTERM)', async () => {
    // As `pkill -f` of a whole `npm start` tree does: npm dies first, the app's output pipe breaks.
    const dir = join(root, 'orphaned-output');
    const app = launch(['--data-dir', dir, '--no-demo', '--broker-port', '0']);
    await served(app, 'the app to serve its UI');
    app.child.stdout!.destroy();
    app.child.stderr!.destroy();
    app.child.kill('SIGTERM');
    expect(await app.exited).toBe(0);
    expect(existsSync(join(dir, 'fleetvisor.lock'))).toBe(false);
  }, 120_000);

  it('a second SIGTERM during the clean stop does not cut it short (pkill -f of a launcher and its app)', async () => {
    const dir = join(root, 'twice');
    const app = launch(['--data-dir', dir, '--no-demo', '--broker-port', '0']);
    await served(app, 'the app to serve its UI');
    app.child.kill('SIGTERM');
    // A loaded CI machine (the whole suite beside it) has taken more than 10 s to log it.
    await until('the stop to begin', () => (/stopping/.test(app.out()) ? true : undefined), 60_000).catch(
      (error: Error) => {
        throw new Error(`${error.message}\n${app.out()}`);
      },
    );
    app.child.kill('SIGTERM');
    expect(await app.exited).toBe(0);
    expect(app.out()).toContain('stopped cleanly');
    expect(existsSync(join(dir, 'fleetvisor.lock'))).toBe(false);
  }, 120_000);

  it('refuses a second start at once, naming the first one; takes over after a kill -9', async () => {
    const dir = join(root, 'shared');
    const first = launch(['--data-dir', dir, '--no-demo', '--broker-port', '0']);
    const url = await served(first, 'the first app to serve its UI');
    const origin = new URL(url).origin;

    const second = launch(['--data-dir', dir, '--no-demo', '--broker-port', '0']);
    const code = await Promise.race([
      second.exited,
      new Promise<string>((r) => setTimeout(() => r('still running'), 30_000)),
    ]);
    expect(code, second.out()).not.toBe('still running');
    expect(code).not.toBe(0);
    expect(second.out()).toContain(`pid ${first.child.pid}`);
    expect(second.out()).toContain(origin);
    expect(second.out()).not.toContain(new URL(url).hash.slice(1)); // the token stays private
    expect(uiUrl(second)).toBeUndefined();

    first.child.kill('SIGKILL');
    await first.exited;
    const third = launch(['--data-dir', dir, '--no-demo', '--broker-port', '0']);
    await served(third, 'the third app to take over and serve');
    expect(third.out()).toContain('taking it over');
  }, 150_000);

  it('two instances on one broker keep their own Sparkplug host id and do not knock each other off', async () => {
    // Mosquitto: the embedded broker asks for accounts, which belong to one app.
    const brokerUrl = process.env.FLEETVISOR_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
    const a = launch(['--data-dir', join(root, 'a'), '--mqtt-url', brokerUrl]);
    const b = launch(['--data-dir', join(root, 'b'), '--mqtt-url', brokerUrl]);
    await served(a, 'app a to serve');
    await served(b, 'app b to serve');
    const ids = ['a', 'b'].map((d) => readFileSync(join(root, d, 'instance-id'), 'utf8').trim());
    expect(ids[0]).not.toBe(ids[1]);

    const watcher = await connectAsync(brokerUrl, {
      clientId: `state-watcher-${process.pid}`,
      reconnectPeriod: 0,
    });
    const states = new Map<string, string[]>();
    watcher.on('message', (topic, payload) => {
      const list = states.get(topic) ?? [];
      list.push(payload.toString());
      states.set(topic, list);
    });
    await watcher.subscribeAsync('spBv1.0/STATE/+', { qos: 1 });
    const hostTopics = ids.map((id) => `spBv1.0/STATE/fleetvisor-${id}`);
    await until('both hosts online in Sparkplug STATE', () =>
      hostTopics.every((t) => (states.get(t) ?? []).some((p) => p.includes('"online":true')))
        ? true
        : undefined,
    );
    // A shared client id would make the broker drop one for the other, over and over: each
    // drop shows as an offline STATE (its will) followed by a new online.
    await new Promise((r) => setTimeout(r, 5_000));
    for (const t of hostTopics)
      expect(states.get(t)!.filter((p) => p.includes('"online":false'))).toEqual([]);
    expect([...states.keys()].filter((t) => t === 'spBv1.0/STATE/fleetvisor')).toEqual([]);
    // The broker is shared (Mosquitto): stop both, then clear the STATE each left retained.
    for (const app of [a, b]) {
      app.child.kill('SIGTERM');
      await app.exited;
    }
    for (const t of hostTopics) await watcher.publishAsync(t, Buffer.alloc(0), { qos: 1, retain: true });
    await watcher.endAsync();
  }, 150_000);
});

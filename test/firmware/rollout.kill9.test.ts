/**
 * A rollout survives its app being killed with -9 again and again (issue 14 §6): the real headless
 * app (`fleetvisor serve`, a real SQLite file) rolls the signed sample image out to 20 simulated
 * MQTT devices on a broker that outlives it; the app is killed with SIGKILL at 10 moments spread
 * over the rollout and started again each time. The rollout completes, every device runs the new
 * image confirmed, and each device applied it exactly once (the simulator counts its `fwApply`
 * reboots): no device flashed twice, none skipped.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRUSTED_KEYS_DIR } from '../../src/firmware/keys.js';
import { type AppClient, connectToRunningApp } from '../../src/host/app-client.js';
import type { ArgsOf, Method, Results } from '../../src/host/contract.js';
import { LOCK_FILE_NAME } from '../../src/host/data-folder.js';
import type { MqttSimDevice } from '../../src/sim/mqtt-device.js';
import { startMqttSimDevice } from '../../src/sim/mqtt-device.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { type Serve, startServe } from '../host/serve-rig.js';

const ROOT = join(import.meta.dirname, '../..');
const SAMPLE = join(ROOT, 'assets/firmware/sample-1.1.0.bin');
const DEVICES = 20;
const KILLS = 10;

let broker: EmbeddedBroker;
let dataDir: string;
let server: Serve | undefined;
const sims: MqttSimDevice[] = [];
const applies = new Map<string, number>();

async function startServer(): Promise<void> {
  server = await startServe(dataDir, ['--no-demo', '--mqtt-url', broker.url, '--adopt', 'auto'], {
    timeoutMs: 60_000,
  });
}

/** SIGKILL to the app itself (the pid in the data folder's lock; `fleetvisor` is its launcher). */
async function kill9(): Promise<void> {
  const child = server?.process;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  const { pid } = JSON.parse(readFileSync(join(dataDir, LOCK_FILE_NAME), 'utf8')) as { pid: number };
  process.kill(pid, 'SIGKILL');
  await exited;
}

function client(): AppClient {
  const c = connectToRunningApp(dataDir);
  if (!c.ok) throw new Error(c.error.message);
  return c.value;
}

async function call<M extends Method>(method: M, args: ArgsOf<M>): Promise<Results[M]> {
  const r = await client().call(method, args);
  if (!r.ok) throw new Error(`${method}: ${r.error.code} ${r.error.message}`);
  return r.value as Results[M];
}

beforeAll(async () => {
  broker = await startEmbeddedBroker({ port: 0 });
  dataDir = mkdtempSync(join(tmpdir(), 'fv-rollout-kill9-'));
  mkdirSync(join(dataDir, TRUSTED_KEYS_DIR), { recursive: true });
  copyFileSync(
    join(ROOT, 'assets/firmware/sample-signing.pub'),
    join(dataDir, TRUSTED_KEYS_DIR, 'sample-signing.pub'),
  );
  for (let i = 1; i <= DEVICES; i++) {
    const id = `k9-${String(i).padStart(2, '0')}`;
    const d = await startMqttSimDevice(broker.url, {
      id,
      telemetryIntervalMs: 2000,
      reconnectMinMs: 100,
      reconnectMaxMs: 500,
      bootDelayMs: 200,
    });
    applies.set(id, 0);
    d.device.on('reboot', (reason) => {
      if (reason === 'fwApply') applies.set(id, (applies.get(id) ?? 0) + 1);
    });
    sims.push(d);
  }
  await startServer();
}, 120_000);

afterAll(async () => {
  await kill9().catch(() => {});
  for (const d of sims) await d.stop().catch(() => {});
  await broker?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('a rollout whose app is killed with -9 ten times', () => {
  it('completes; every device runs the image confirmed and applied it exactly once', async () => {
    const ids = [...applies.keys()];
    const deadline = Date.now() + 60_000;
    for (;;) {
      const page = await call('devices', { text: 'k9-', offset: 0, limit: 100 });
      if (ids.every((id) => page.items.some((d) => d.id === id && d.link.up))) break;
      if (Date.now() > deadline) throw new Error('the 20 devices never all came online');
      await new Promise((r) => setTimeout(r, 250));
    }
    const imported = await call('firmwareImport', {
      manifest: readFileSync(`${SAMPLE}.manifest.json`, 'utf8'),
      image: readFileSync(SAMPLE).toString('base64'),
    });
    const rollout = await call('rolloutCreate', {
      sha256: imported.image.sha256,
      devices: ids,
      waves: [
        { count: 2, maxConcurrent: 2 },
        { share: 1, maxConcurrent: 6 },
      ],
      retries: 3,
    });
    expect(rollout.order).toHaveLength(DEVICES);

    // Ten kills, 1.5 to 5 s apart (a fixed spread: every step of a job gets hit across the run).
    const gaps = [2.0, 3.5, 1.5, 4.0, 2.5, 5.0, 1.8, 3.0, 4.5, 2.2];
    expect(gaps).toHaveLength(KILLS);
    let state = 'running';
    for (const gap of gaps) {
      await new Promise((r) => setTimeout(r, gap * 1000));
      await kill9();
      await startServer();
      state = (await call('rollouts', {})).find((r) => r.id === rollout.id)?.state ?? 'missing';
      if (state !== 'running') break;
    }

    const until = Date.now() + 240_000;
    let now: Results['rollouts'][number] | undefined;
    for (;;) {
      now = (await call('rollouts', {})).find((r) => r.id === rollout.id);
      if (now?.state !== 'running') break;
      if (Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(now, server?.output()).toMatchObject({
      state: 'completed',
      counts: { succeeded: DEVICES, failed: 0 },
    });
    for (const d of sims)
      expect(d.device.firmware, d.id).toMatchObject({ version: '1.1.0', confirmed: true });
    expect(Object.fromEntries(applies)).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
  }, 420_000);
});

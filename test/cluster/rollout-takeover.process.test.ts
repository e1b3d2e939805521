/**
 * A rollout outlives the instance that ran it (src/host/rollout-takeover.ts), with real processes:
 * two headless instances (`fleetvisor serve --store postgres://… --cluster`) on a real PostgreSQL
 * database (this file's own) and an embedded broker, 12 simulated MQTT devices, the sample image
 * trusted by both. A rollout of the whole fleet is created on alpha; alpha is killed with -9 while
 * devices are being updated. What an operator checks: beta takes the rollout over within a lease
 * and the loop's interval, and it completes there, all 12 devices succeeded, listed as beta's own.
 */
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRUSTED_KEYS_DIR } from '../../src/firmware/index.js';
import type { RolloutView } from '../../src/host/contract.js';
import type { SimFleet } from '../../src/sim/sim-fleet.js';
import { startSimFleet } from '../../src/sim/sim-fleet.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import type { TestDatabase } from '../store/postgres-helpers.js';
import { createTestDatabase } from '../store/postgres-helpers.js';
import type { ServeInstance } from './serve-cluster.js';
import { createServeCluster } from './serve-cluster.js';

const DEVICES = 12;
const LEASE_MS = 6000;
const ASSETS = join(import.meta.dirname, '../../assets/firmware');

let db: TestDatabase;
let broker: EmbeddedBroker;
let sim: SimFleet | undefined;
const cluster = createServeCluster('fv-ro-takeover', () => ({ brokerUrl: broker.url, dbUrl: db.url }));
const { instances, call, appPid } = cluster;

/** The sample key in the instance's trusted keys (read again at each import). */
function trustSample(inst: ServeInstance): void {
  mkdirSync(join(inst.dataDir, TRUSTED_KEYS_DIR), { recursive: true });
  copyFileSync(join(ASSETS, 'sample-signing.pub'), join(inst.dataDir, TRUSTED_KEYS_DIR, 'sample.pub'));
}

async function rolloutOn(inst: ServeInstance, id: string): Promise<RolloutView | undefined> {
  return (await call(inst, 'rollouts', {})).find((r) => r.id === id);
}

beforeAll(async () => {
  db = await createTestDatabase();
  broker = await startEmbeddedBroker({ port: 0 });
  await Promise.all(['alpha', 'beta'].map((n) => cluster.start(n)));
  for (const inst of instances.values()) trustSample(inst);
  sim = await startSimFleet({
    mqttUrl: broker.url,
    mqtt: DEVICES,
    idPrefix: 'rt',
    telemetryIntervalMs: 2000,
  });
  await cluster.until('the fleet adopted and online', 120_000, async () => {
    const page = await call(instances.get('alpha')!, 'devices', { limit: 100 });
    const online = page.items.filter((d) => d.link.up).length;
    return { ok: page.total === DEVICES && online === DEVICES, why: `${online} of ${page.total} online` };
  });
}, 240_000);

afterAll(async () => {
  await sim?.stop();
  for (const inst of instances.values()) {
    await inst.serve.stop().catch(() => {});
    rmSync(inst.dataDir, { recursive: true, force: true });
  }
  await broker?.close();
  await db?.drop();
}, 120_000);

describe('a rollout whose instance is killed', () => {
  it('kill -9 of the instance running it: the other takes it over within a lease and the look interval, and completes it', async () => {
    const [alpha, beta] = [instances.get('alpha')!, instances.get('beta')!];
    const { image } = await call(alpha, 'firmwareImport', {
      manifest: readFileSync(join(ASSETS, 'sample-1.1.0.bin.manifest.json'), 'utf8'),
      image: readFileSync(join(ASSETS, 'sample-1.1.0.bin')).toString('base64'),
    });
    const created = await call(alpha, 'rolloutCreate', {
      sha256: image.sha256,
      waves: [{ count: 1 }, { share: 1, maxConcurrent: 3 }],
      trialMs: 3000,
    });
    expect(created.order).toHaveLength(DEVICES);
    // Killed once the canary succeeded and the second wave is under way.
    await cluster.until('the second wave under way', 120_000, async () => {
      const r = await rolloutOn(alpha, created.id);
      return {
        ok: (r?.counts.succeeded ?? 0) >= 1 && (r?.counts.updating ?? 0) >= 1,
        why: JSON.stringify(r?.counts),
      };
    });
    const exited = new Promise((r) => alpha.serve.process.once('exit', r));
    const killedAt = Date.now();
    process.kill(appPid(alpha), 'SIGKILL');
    await exited;

    let takenAt = 0;
    await cluster.until('beta to take the rollout over', LEASE_MS + 15_000, async () => {
      const r = await rolloutOn(beta, created.id);
      if (r?.runsOn === null && takenAt === 0) takenAt = Date.now();
      return { ok: r?.runsOn === null, why: `runs on ${r?.runsOn}` };
    });
    // Gone after one lease without a heartbeat, then found at the next look (every 3 s).
    expect(takenAt - killedAt).toBeLessThan(LEASE_MS + 3000 + 5000);
    let last: RolloutView | undefined;
    await cluster.until('the rollout to end on beta', 180_000, async () => {
      last = await rolloutOn(beta, created.id);
      return { ok: last?.state !== 'running', why: `${last?.state} ${JSON.stringify(last?.counts)}` };
    });
    expect(last?.state).toBe('completed');
    expect(last?.counts.succeeded).toBe(DEVICES);
  }, 400_000);
});

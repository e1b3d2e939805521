/**
 * `npm run bench -- cluster` (issue 17 §6): real headless instances (`fleetvisor serve`, one
 * process and data folder each) on a real PostgreSQL database of the bench's own, against the
 * machine's Mosquitto (127.0.0.1:1883, or BENCH_MQTT_URL).
 *
 * - Ingest: one publisher process (test/bench/links-publisher.ts) sends N telemetry messages at
 *   QoS 0 as fast as it can over D provisioned devices to 1, 2 and 3 instances on PostgreSQL, and
 *   to one instance on SQLite, in one run. Figures: messages stored per second (first publish →
 *   last row committed), the share of the messages sent that were stored (a QoS 0 burst beyond a
 *   subscriber's pace is dropped by the broker: Mosquitto's queue limit), and the CPU the
 *   instances spent per stored message (user + system, from /proc, all instances summed): every
 *   instance receives every message (docs/scale-out.md), so the CPU per message says what one
 *   more instance costs.
 * - Remote push (test/bench/cluster-push.ts): two instances; a transition of a device on its owner
 *   until the row in that state arrives on the other instance's push stream (its WebSocket, as the
 *   UI reads it), 60 transitions one at a time (median, p95, max), then all of the owner's push
 *   devices at once (the storm: the worst device's time, and in how many diffs).
 * - Failover: two instances, one killed with -9 ten times (restarted after each): the time from
 *   the kill until every shard is leased again by the survivor (median and p99), read from the
 *   lease table; and the devices it supervises afterwards.
 *
 * BENCH_QUICK=1: fewer messages and kills. BENCH_CLUSTER_PARTS=push (a comma list of ingest, push,
 * failover; default all): only those parts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import pg from 'pg';
import { initCluster } from '../../src/cluster/leases.js';
import { connectToRunningApp } from '../../src/host/app-client.js';
import { INSTANCE_ID_FILE_NAME, LOCK_FILE_NAME } from '../../src/host/data-folder.js';
import { openPostgresStore } from '../../src/store/postgres-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { type Serve, startServe } from '../host/serve-rig.js';
import { createTestDatabase, type TestDatabase } from '../store/postgres-helpers.js';
import { percentile, report } from './bench-kit.js';
import { type ChildHelper, expectReply, startChildHelper } from './child-helper.js';
import { measureRemotePush } from './cluster-push.js';
import type { PublisherCommand, PublisherReply } from './links-publisher.js';

const SUITE = 'cluster';
const QUICK = process.env.BENCH_QUICK === '1';
const MQTT_URL = process.env.BENCH_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const DEVICES = 200;
const MESSAGES = QUICK ? 30_000 : 100_000;
const KILLS = QUICK ? 3 : 10;
const PARTS = new Set((process.env.BENCH_CLUSTER_PARTS ?? 'ingest,push,failover').split(','));
/** Devices only the push part changes (by events sent to their machines; never online). */
const PUSH_DEVICES = 100;
/** Single transitions measured by the push part. */
const PUSH_TRANSITIONS = 60;
/** Few shards, so that instances joining in the bench balance within seconds. */
const SHARDS = 64;
const BOOT = Date.now() % 1_000_000;
/** Each telemetry message of the publisher carries two metrics: two rows. */
const POINTS_PER_MESSAGE = 2;

type Publisher = ChildHelper<PublisherCommand, PublisherReply>;

interface Instance {
  readonly name: string;
  readonly dataDir: string;
  serve: Serve;
}

function appPid(i: Instance): number {
  return (JSON.parse(readFileSync(join(i.dataDir, LOCK_FILE_NAME), 'utf8')) as { pid: number }).pid;
}

/** CPU seconds (user + system) the process has used. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function startInstance(name: string, args: readonly string[], dataDir?: string): Promise<Instance> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), `fv-bench-cluster-${name}-`));
  const serve = await startServe(dir, ['--no-demo', '--mqtt-url', MQTT_URL, '--adopt', 'manual', ...args], {
    timeoutMs: 120_000,
  });
  return { name, dataDir: dir, serve };
}

async function waitUntil(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function supervisedCount(i: Instance): Promise<number> {
  const c = connectToRunningApp(i.dataDir);
  if (!c.ok) throw new Error(c.error.message);
  const r = await c.value.call('devices', { scope: 'own', limit: 10_000 });
  if (!r.ok) throw new Error(r.error.message);
  return (r.value as { items: readonly unknown[] }).items.length;
}

const ids = Array.from({ length: DEVICES }, (_, i) => `bc-${String(i).padStart(4, '0')}`);
const pushIds = Array.from({ length: PUSH_DEVICES }, (_, i) => `bp-${String(i).padStart(4, '0')}`);

async function provision(store: Store, more: readonly string[] = []): Promise<void> {
  for (const id of ids) await store.upsertDevice({ id, kind: 'fleetvisor.generic', name: id });
  // Connecting until told otherwise: the push part's transitions are its own events only.
  for (const id of more)
    await store.upsertDevice({
      id,
      kind: 'fleetvisor.generic',
      name: id,
      attributes: { connectTimeoutMs: 600_000 },
    });
}

/** The ids of the devices `i` supervises. */
async function supervisedIds(i: Instance): Promise<string[]> {
  const c = connectToRunningApp(i.dataDir);
  if (!c.ok) throw new Error(c.error.message);
  const r = await c.value.call('devices', { scope: 'own', limit: 10_000 });
  if (!r.ok) throw new Error(r.error.message);
  return r.value.items.map((d) => d.id);
}

/** The push figures of two running instances: the second's devices changed, the first watching. */
async function reportPush(watcher: Instance, owner: Instance): Promise<void> {
  const mine = (await supervisedIds(owner)).filter((id) => id.startsWith('bp-'));
  const r = await measureRemotePush(owner.dataDir, watcher.dataDir, mine, PUSH_TRANSITIONS);
  const sorted = [...r.latencies].sort((a, b) => a - b);
  const note = `${sorted.length} transitions, one at a time, on ${owner.name}; rows on ${watcher.name}'s stream`;
  report(SUITE, 'remote_push_p50', Math.round(percentile(sorted, 50)), 'ms', '<=', 1000, note);
  report(SUITE, 'remote_push_p95', Math.round(percentile(sorted, 95)), 'ms', '<=', 1000);
  report(SUITE, 'remote_push_max', Math.round(sorted.at(-1)!), 'ms', '<=', 2000);
  const { storm } = r;
  report(
    SUITE,
    'remote_push_storm_worst',
    Math.round(storm.worstMs),
    'ms',
    '<=',
    1000,
    `${storm.devices} devices at once (transitions over ${storm.spreadMs} ms, the last row ${storm.lastMs} ms after the first transition), in ${storm.diffs} diffs`,
  );
}

/** Sends MESSAGES to the running instances; resolves the stored rate and CPU per message. */
async function ingest(
  pub: Publisher,
  instances: readonly Instance[],
  storedRows: () => Promise<number>,
): Promise<{ perSecond: number; cpuUsPerMsg: number; stored: number }> {
  const pids = instances.map(appPid);
  const before = await storedRows();
  const cpu0 = pids.map(cpuSeconds);
  const t0 = performance.now();
  pub.send({ cmd: 'run', ids, boot: BOOT, n: MESSAGES, qos: 0 });
  await expectReply(pub, 'done');
  let last = before;
  let lastChange = performance.now();
  let doneAt = performance.now();
  for (;;) {
    const n = await storedRows();
    if (n !== last) {
      last = n;
      lastChange = performance.now();
      doneAt = lastChange;
    }
    if (n - before >= MESSAGES * POINTS_PER_MESSAGE || performance.now() - lastChange > 10_000) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const cpu = pids.map(cpuSeconds).reduce((a, b, i) => a + b - cpu0[i]!, 0);
  const stored = (last - before) / POINTS_PER_MESSAGE;
  return {
    perSecond: stored / ((doneAt - t0) / 1000),
    cpuUsPerMsg: (cpu * 1e6) / Math.max(1, stored),
    stored,
  };
}

/** Sparkplug host ids of the instances run (each leaves its retained STATE on the broker). */
const hostIds = new Set<string>();

function forget(i: Instance): void {
  try {
    hostIds.add(`fleetvisor-${readFileSync(join(i.dataDir, INSTANCE_ID_FILE_NAME), 'utf8').trim()}`);
  } catch {
    // Never started far enough to have one.
  }
  rmSync(i.dataDir, { recursive: true, force: true });
}

/** The three ingest figures of one configuration: `<engine>_<instances>`. */
function reportIngest(engine: 'sqlite' | 'pg', n: number, r: Awaited<ReturnType<typeof ingest>>): void {
  const of = `${engine}_${n}`;
  const instances = `${n} instance${n > 1 ? 's' : ''}`;
  report(
    SUITE,
    `ingest_${of}`,
    Math.round(r.perSecond),
    'msg/s',
    '>=',
    5000,
    `stored ${r.stored}/${MESSAGES} messages, ${instances}`,
  );
  report(
    SUITE,
    `cpu_us_per_msg_${of}`,
    Math.round(r.cpuUsPerMsg),
    'us',
    '<=',
    100 * n,
    'per stored message, all instances summed',
  );
  report(
    SUITE,
    `stored_share_${of}`,
    r.stored / MESSAGES,
    'ratio',
    '>=',
    1,
    'QoS 0: the rest dropped by the broker',
  );
}

async function stopAll(instances: Instance[]): Promise<void> {
  await Promise.all(instances.map((i) => i.serve.stop().catch(() => {})));
  for (const i of instances) forget(i);
  instances.length = 0;
}

/** The shared broker keeps retained messages: clear the STATE each instance left. */
async function clearHostStates(): Promise<void> {
  const client = await connectAsync(MQTT_URL, { clientId: `fv-bench-cluster-${process.pid}` });
  for (const id of hostIds) await client.publishAsync(`spBv1.0/STATE/${id}`, '', { retain: true, qos: 1 });
  await client.endAsync();
}

async function main(): Promise<void> {
  const pub = startChildHelper<PublisherCommand, PublisherReply>(SUITE, 'links-publisher.ts', [
    'publish',
    MQTT_URL,
  ]);
  await expectReply(pub, 'ready');
  pub.send({ cmd: 'hello', ids, boot: BOOT });
  await expectReply(pub, 'done');
  const running: Instance[] = [];
  let db: TestDatabase | undefined;
  try {
    // ---- one instance on SQLite --------------------------------------------------------------
    if (PARTS.has('ingest')) {
      const dir = mkdtempSync(join(tmpdir(), 'fv-bench-cluster-sqlite-'));
      const s = await openSqliteStore({ file: join(dir, 'fleetvisor.sqlite') });
      await provision(s);
      await s.close();
      const inst = await startInstance('sqlite', [], dir);
      running.push(inst);
      await waitUntil('sqlite devices online', 60_000, async () => (await supervisedCount(inst)) === DEVICES);
      const file = new (await import('sqlite3')).default.Database(join(dir, 'fleetvisor.sqlite'));
      const rows = () =>
        new Promise<number>((resolve, reject) =>
          file.get('SELECT count(*) AS n FROM telemetry', (e: Error | null, r: { n: number }) =>
            e ? reject(e) : resolve(r.n),
          ),
        );
      const r = await ingest(pub, running, rows);
      file.close();
      reportIngest('sqlite', 1, r);
      await stopAll(running);
    }

    // ---- 1, 2, 3 instances on PostgreSQL -----------------------------------------------------
    db = await createTestDatabase();
    const store = await openPostgresStore({ url: db.url });
    await provision(store, pushIds);
    await initCluster(store.pool, SHARDS);
    await store.close();
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    const pgRows = async () =>
      Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM telemetry')).rows[0]!.n);
    const clusterArgs = (name: string) => ['--store', db!.url, '--cluster', '--instance', name];
    const owned = async (n: number) => {
      const r = await pool.query<{ owner: string; n: string }>(
        'SELECT owner, count(*) AS n FROM fleetvisor_leases WHERE expires_at > clock_timestamp() GROUP BY owner',
      );
      const counts = r.rows.map((x) => Number(x.n));
      return (
        counts.length === n &&
        counts.reduce((a, b) => a + b, 0) === SHARDS &&
        Math.max(...counts) - Math.min(...counts) <= 1
      );
    };
    const fleetSize = DEVICES + PUSH_DEVICES;
    for (const n of PARTS.has('ingest') ? [1, 2, 3] : [1, 2]) {
      running.push(await startInstance(`p${n}`, clusterArgs(`p${n}`)));
      await waitUntil(`${n} instances balanced`, 120_000, () => owned(n));
      await waitUntil('devices online', 60_000, async () => {
        let total = 0;
        for (const i of running) total += await supervisedCount(i);
        return total === fleetSize;
      });
      if (!PARTS.has('ingest')) continue;
      const r = await ingest(pub, running, pgRows);
      reportIngest('pg', n, r);
    }

    // ---- remote push ---------------------------------------------------------------------------
    while (running.length > 2) {
      const gone = running.pop()!;
      await gone.serve.stop();
      forget(gone);
    }
    await waitUntil('2 instances balanced', 120_000, () => owned(2));
    if (PARTS.has('push')) await reportPush(running[0]!, running[1]!);

    // ---- failover ------------------------------------------------------------------------------
    const times: number[] = [];
    for (let k = 0; k < (PARTS.has('failover') ? KILLS : 0); k++) {
      const victim = running[k % 2]!;
      const survivor = running[(k + 1) % 2]!;
      const exited = new Promise((r) => victim.serve.process.once('exit', r));
      const t0 = performance.now();
      process.kill(appPid(victim), 'SIGKILL');
      await exited;
      await waitUntil('survivor owns every shard', 60_000, async () => {
        const r = await pool.query<{ n: string }>(
          'SELECT count(*) AS n FROM fleetvisor_leases WHERE owner = $1 AND expires_at > clock_timestamp()',
          [survivor.name],
        );
        return Number(r.rows[0]!.n) === SHARDS;
      });
      times.push(performance.now() - t0);
      await waitUntil(
        'survivor supervises every device',
        60_000,
        async () => (await supervisedCount(survivor)) === fleetSize,
      );
      victim.serve = (await startInstance(victim.name, clusterArgs(victim.name), victim.dataDir)).serve;
      await waitUntil('balanced again', 120_000, () => owned(2));
    }
    times.sort((a, b) => a - b);
    if (times.length > 0)
      report(
        SUITE,
        'failover_median',
        Math.round(percentile(times, 50)),
        'ms',
        '<=',
        8000,
        `${KILLS} kills -9, lease 6 s`,
      );
    if (times.length > 0) report(SUITE, 'failover_p99', Math.round(percentile(times, 99)), 'ms', '<=', 8000);
    await pool.end();
  } finally {
    await stopAll(running);
    pub.send({ cmd: 'clear', ids });
    await expectReply(pub, 'done').catch(() => undefined);
    pub.send({ cmd: 'exit' });
    await db?.drop();
    await clearHostStates().catch((e: unknown) =>
      console.error(`# cluster: retained STATE not cleared: ${String(e)}`),
    );
  }
}

await main();

/**
 * A bulk adoption survives a host restart (issue 13): a real app (embedded broker on a fixed port,
 * SQLite file, `adopt: 'manual'`) with simulated devices over MQTT, each with its broker account.
 * All are adopted as one job; the host stops mid-way and starts again on the same data folder.
 * The devices reconnect to the new broker and are discovered again; the job resumes with the same
 * id from its last saved batch and completes. Every device is adopted once and audited once
 * (`device.audit`, action `adopt`, naming the job); a device that never comes back is counted
 * skipped once the others are back and none more came for {@link RESUME_QUIET_MS}; one adopted by
 * hand meanwhile is skipped. A crash between a batch's adopts and its save is played by rewinding
 * the saved progress one batch and deleting two of its audits: the resume finds those devices
 * adopted, and audits the two once more (`recovered`), not twice.
 * Before, the job lived in memory: the restart forgot it and the rest were neither adopted nor
 * reported.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADOPT_BULK_EVENT, RESUME_QUIET_MS } from '../../../src/host/api/bulk-adopt.js';
import type { HostApiHandle } from '../../../src/host/api.js';
import { createHostApi } from '../../../src/host/api.js';
import type { App } from '../../../src/host/app.js';
import { startApp } from '../../../src/host/app.js';
import type { AdoptBulkView, DiscoveredView, Method } from '../../../src/host/contract.js';
import { silentLogger } from '../../../src/runtime/runtime.js';
import type { SimFleet } from '../../../src/sim/sim-fleet.js';
import { startSimFleet } from '../../../src/sim/sim-fleet.js';
import { DATABASE_FILE_NAME, openSqliteStore } from '../../../src/store/index.js';
import { rawExec } from '../../store/helpers.js';
import { freePort, uniqueId, waitFor } from '../../transports/helpers.js';

const SIMULATED = 200;

let dir: string;
let port: number;
let app: App | undefined;
let api: HostApiHandle | undefined;
let sim: SimFleet | undefined;
const prefix = `rs${uniqueId()}`.toLowerCase();

async function start(): Promise<void> {
  app = await startApp({
    dataDir: dir,
    logger: silentLogger,
    broker: { port },
    adopt: 'manual',
    demo: false,
  });
  api = createHostApi(app);
}

async function stop(): Promise<void> {
  api?.close();
  await app?.stop();
  api = undefined;
  app = undefined;
}

async function call<T>(method: Method, args: object, actor = 'ana'): Promise<T> {
  const r = await api!.call(method, args, { actor });
  if (!r.ok) throw new Error(`${method}: ${r.error.code}: ${r.error.message}`);
  return r.value as T;
}

/** Polls an async condition every 100 ms; throws naming `what` after `timeoutMs`. */
async function until(predicate: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await predicate()); ) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const status = () => call<AdoptBulkView | null>('adoptBulkStatus', {});
const discovered = async () =>
  (await call<DiscoveredView[]>('discovered', { limit: 1000 })).filter((d) => d.id.startsWith(prefix));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fv-bulk-restart-'));
  port = await freePort();
  await start();
  const accounts = app!.brokerAccounts!;
  sim = await startSimFleet({
    mqttUrl: app!.brokerUrl!,
    mqtt: SIMULATED,
    idPrefix: prefix,
    telemetryIntervalMs: 60_000,
    concurrency: 10,
    startTimeoutMs: 120_000,
    credentials: (id) => ({ username: id, password: accounts.issueDevice(id) }),
  });
  await until(async () => (await discovered()).length === SIMULATED, 60_000, 'all discovered');
}, 240_000);

afterAll(async () => {
  await sim?.stop();
  await stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('a bulk adoption across a host restart', () => {
  it('resumes with the same id after a restart mid-way; each device adopted and audited once', async () => {
    const started = await call<AdoptBulkView>('adoptBulk', { filter: { text: prefix, except: [] } });
    expect(started).toMatchObject({ state: 'running', total: SIMULATED, done: 0 });
    const stored = await app!.store.loadAdoptJob('local');
    expect(stored).toMatchObject({ ok: true, value: { id: started.id, progress: { state: 'running' } } });
    const ids = stored!.ok ? stored!.value.ids : [];
    const total = ids.length;
    expect(total).toBe(SIMULATED);

    // Stop the host once two batches went through, and before the end.
    await until(async () => ((await status())?.done ?? 0) >= 32, 30_000, 'two batches adopted');
    await stop();

    // As if it had died (kill -9) before saving its last batch, and between the adopt and the
    // audit of two of that batch's devices: the saved progress one batch back, two audits lost.
    const file = join(dir, DATABASE_FILE_NAME);
    const saved = await openSqliteStore({ file });
    const job = await saved.loadAdoptJob('local');
    const p = job!.ok ? job!.value.progress : undefined;
    expect(p).toMatchObject({ state: 'running', failed: 0, skipped: 0 });
    expect(p!.done % 16).toBe(0);
    expect(p!.done).toBeGreaterThanOrEqual(16);
    expect(p!.done).toBeLessThan(total);
    const rewound = p!.done - 16;
    await saved.updateAdoptJob(started.id, { ...p!, done: rewound, adopted: rewound });
    await saved.close();
    const unaudited = ids.slice(rewound, rewound + 2);
    await rawExec(
      file,
      `DELETE FROM events WHERE kind = 'device.audit' AND device_id IN ('${unaudited.join("', '")}')`,
    );

    // The last device of the job goes away while the host is down: it is never heard again.
    const gone = ids[total - 1]!;
    await sim!.mqtt.find((d) => d.device.id === gone)!.stop();

    await start();
    const resumed = (await status())!;
    expect(resumed).toMatchObject({
      id: started.id,
      state: 'running',
      total,
      done: rewound,
      adopted: rewound,
      startedBy: 'ana',
    });
    expect(resumed.resumedAt).toBeGreaterThan(started.startedAt);

    // Someone adopts one of the last batch by hand while the job waits for that batch (its gone
    // device holds it until no more devices come back).
    const byHand = ids[total - 2]!;
    await until(
      async () => (await discovered()).some((d) => d.id === byHand),
      60_000,
      `${byHand} heard again`,
    );
    expect((await status())?.waiting).toBeGreaterThan(0);
    await call('adopt', { id: byHand }, 'bo');

    const deadline = Date.now() + 90_000 + RESUME_QUIET_MS;
    let last = resumed;
    while (last.state === 'running') {
      if (Date.now() > deadline) throw new Error(`still running: ${JSON.stringify(last)}`);
      await new Promise((r) => setTimeout(r, 200));
      last = (await status())!;
    }
    expect(last).toMatchObject({
      id: started.id,
      state: 'finished',
      total,
      done: total,
      adopted: total - 2,
      failed: 0,
      skipped: 2, // the gone device, and the one adopted by hand
      failures: [],
      cancelledBy: null,
      waiting: 0,
    });
    for (const id of ids) expect(app!.fleet.has(id), id).toBe(id !== gone);
    await until(async () => (await discovered()).length === 0, 20_000, 'none left discovered');

    // One adoption audit per device across both runs of the host: the job's (two written again
    // at the resume, marked recovered), and bo's.
    const audits = await app!.store.queryEvents({ kind: 'device.audit', order: 'asc', limit: 1000 });
    const adopted = audits.items.flatMap((i) => (i.ok ? [i.value] : []));
    expect(adopted.map((e) => e.deviceId).sort()).toEqual(ids.filter((id) => id !== gone).sort());
    for (const e of adopted)
      expect(e.data).toMatchObject(
        e.deviceId === byHand
          ? { action: 'adopt', actor: 'bo' }
          : { action: 'adopt', actor: 'ana', job: started.id },
      );
    const recovered = adopted.filter((e) => (e.data as { recovered?: boolean }).recovered === true);
    expect(recovered.map((e) => e.deviceId).sort()).toEqual([...unaudited].sort());

    const log = await app!.store.queryEvents({ kind: ADOPT_BULK_EVENT, order: 'asc', limit: 10 });
    expect(log.items.flatMap((i) => (i.ok ? [(i.value.data as { action: string }).action] : []))).toEqual([
      'started',
      'resumed',
      'finished',
    ]);
    expect(await app!.store.loadAdoptJob('local')).toMatchObject({
      ok: true,
      value: { id: started.id, progress: { state: 'finished', done: total, skipped: 2 } },
    });
    await waitFor(
      () => ids.every((id) => id === gone || app!.fleet.device(id)?.state === 'connected'),
      30_000,
      'the adopted devices connected',
    );

    // Another restart: the ended job is still the status, and nothing runs again.
    await stop();
    await start();
    expect(await status()).toMatchObject({ id: started.id, state: 'finished', adopted: total - 2 });
  }, 300_000);
});

/**
 * Bulk adoption on the host (src/host/api/bulk-adopt.ts), over the real app: embedded broker,
 * SQLite file, `adopt: 'manual'`, simulated devices of our own protocol over MQTT (each with its
 * broker account) and a Homie device (a real homie-device peer). One `adoptBulk` call adopts all
 * that match a filter, through the single adopt's path (the Homie device too), counts each
 * outcome, audits each device with who started it; a second start while it runs is refused
 * `busy`; a job can be cancelled; ids gone or of an unknown kind are counted as such. Before, "Adopt
 * all" was a loop in the page that stopped silently when the page went away.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matchesDiscovered } from '../../../renderer/src/lib/discovered.js';
import { ADOPT_BULK_EVENT, BATCH_SIZE, matchesDiscoveredText } from '../../../src/host/api/bulk-adopt.js';
import type { HostApiHandle } from '../../../src/host/api.js';
import { createHostApi } from '../../../src/host/api.js';
import type { App } from '../../../src/host/app.js';
import { startApp } from '../../../src/host/app.js';
import type { AdoptBulkView, DiscoveredView, Method } from '../../../src/host/contract.js';
import { silentLogger } from '../../../src/runtime/runtime.js';
import type { SimFleet } from '../../../src/sim/sim-fleet.js';
import { startSimFleet } from '../../../src/sim/sim-fleet.js';
import type { DeviceId, HelloMessage } from '../../../src/transports/protocol.js';
import { runCleanups, startPeer } from '../../conventions/homie-helpers.js';
import { uniqueId, waitFor } from '../../transports/helpers.js';

const SIMULATED = 60;
const LATER = 300;

let dir: string;
let app: App;
let api: HostApiHandle;
let sim: SimFleet | undefined;
const prefix = `bulk${uniqueId()}`.toLowerCase();
const homieId = `${prefix}-homie`;

async function call<T>(method: Method, args: object, actor = 'ana'): Promise<T> {
  const r = await api.call(method, args, { actor });
  if (!r.ok) throw new Error(`${method}: ${r.error.code}: ${r.error.message}`);
  return r.value as T;
}

const discovered = () => call<DiscoveredView[]>('discovered', { limit: 1000 });
const status = () => call<AdoptBulkView | null>('adoptBulkStatus', {});

const hello = (id: string, kind: string): HelloMessage => ({
  v: 1,
  type: 'hello',
  deviceId: id as DeviceId,
  kind,
  boot: 1,
  firmware: { version: '1.0.0', slot: 'A', confirmed: true, slots: { A: '1.0.0', B: null } },
  capabilities: [],
});

/** Devices the link hub hears from as the MQTT link would deliver them (cheap, for the big jobs). */
function deliver(ids: readonly string[], kind = 'fleetvisor.generic'): void {
  const link = { via: 'mqtt', presence: 'status' as const, send: () => true };
  for (const id of ids) app.links.hub!.deliver(id as DeviceId, hello(id, kind), link);
}

/** Polls the job until it ends, keeping every `done` seen on the way. */
async function follow(): Promise<{ last: AdoptBulkView; seen: number[] }> {
  const seen: number[] = [];
  for (const deadline = Date.now() + 60_000; ; ) {
    const v = await status();
    if (!v) throw new Error('no bulk adoption');
    seen.push(v.done);
    if (v.state !== 'running') return { last: v, seen };
    if (Date.now() > deadline) throw new Error(`still running: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fv-bulk-adopt-'));
  app = await startApp({
    dataDir: dir,
    logger: silentLogger,
    broker: { port: 0 },
    adopt: 'manual',
    demo: false,
  });
  api = createHostApi(app);
  const accounts = app.brokerAccounts!;
  sim = await startSimFleet({
    mqttUrl: app.brokerUrl!,
    mqtt: SIMULATED,
    idPrefix: prefix,
    telemetryIntervalMs: 60_000,
    // Each connection's account is checked by the broker: a busy machine needs longer than 15 s.
    concurrency: 10,
    startTimeoutMs: 60_000,
    credentials: (id) => ({ username: id, password: accounts.issueDevice(id) }),
  });
  const homieSecret = accounts.issueDevice(homieId, { convention: 'homie', base: 'homie' });
  await startPeer(app.brokerUrl!, {
    id: homieId,
    base: 'homie',
    firmware: '2.1.0',
    username: homieId,
    password: homieSecret,
  });
  let rows: DiscoveredView[] = [];
  const all = () => rows.filter((d) => d.id.startsWith(prefix)).length === SIMULATED + 1;
  for (const deadline = Date.now() + 30_000; !all(); ) {
    if (Date.now() > deadline) throw new Error(`${SIMULATED + 1} discovered expected, got ${rows.length}`);
    await new Promise((r) => setTimeout(r, 100));
    rows = await discovered();
  }
}, 90_000);

afterAll(async () => {
  await sim?.stop();
  await runCleanups();
  api?.close();
  await app?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('adoptBulk on a real app', () => {
  it('adopts every simulated device and the Homie device matching a filter in one call; progress; busy; audit', async () => {
    const except = `${prefix}-m007`;
    const started = await call<AdoptBulkView>('adoptBulk', { filter: { text: prefix, except: [except] } });
    expect(started).toMatchObject({
      state: 'running',
      total: SIMULATED, // 60 simulated + the Homie device − the one hidden
      startedBy: 'ana',
      selection: { text: prefix, except: 1 },
      finishedAt: null,
    });
    expect(started.id).toMatch(/^adopt-\d+$/);

    const refused = await api.call('adoptBulk', { ids: [except] }, { actor: 'bo' });
    expect(refused.ok ? 'ok' : refused.error.code).toBe('busy');
    expect(refused.ok ? '' : refused.error.message).toContain(started.id);

    const { last, seen } = await follow();
    // Progress moves: seen while running below the total, never backwards, done in the end.
    expect(seen[0]).toBeLessThan(SIMULATED);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(last).toMatchObject({
      id: started.id,
      state: 'finished',
      total: SIMULATED,
      done: SIMULATED,
      adopted: SIMULATED,
      failed: 0,
      skipped: 0,
      failures: [],
      cancelledBy: null,
    });
    expect(last.finishedAt).toBeGreaterThanOrEqual(last.startedAt);

    const simulated = sim!.mqtt.map((d) => d.device.id).filter((id) => id !== except);
    for (const id of [...simulated, homieId]) expect(app.fleet.has(id), id).toBe(true);
    expect(app.fleet.has(except)).toBe(false);
    expect(app.fleet.device(homieId)?.kind).toBe('homie.device');
    // Adopted devices leave the list and come online, as after a single adopt.
    expect((await discovered()).map((d) => d.id).filter((id) => id.startsWith(prefix))).toEqual([except]);
    await waitFor(
      () => simulated.every((id) => app.fleet.device(id)?.state === 'connected'),
      20_000,
      'the adopted devices connected',
    );

    const audits = await app.store.queryEvents({ kind: 'device.audit', order: 'asc', limit: 1000 });
    const mine = audits.items.flatMap((i) => (i.ok ? [i.value] : []));
    expect(mine).toHaveLength(SIMULATED);
    for (const e of mine) expect(e.data).toMatchObject({ action: 'adopt', actor: 'ana', job: started.id });
    const jobEvents = await app.store.queryEvents({ kind: ADOPT_BULK_EVENT, order: 'asc', limit: 10 });
    expect(jobEvents.items.flatMap((i) => (i.ok ? [i.value.data] : []))).toEqual([
      {
        action: 'started',
        job: started.id,
        actor: 'ana',
        total: SIMULATED,
        selection: { text: prefix, except: 1 },
      },
      {
        action: 'finished',
        job: started.id,
        actor: 'ana',
        total: SIMULATED,
        adopted: SIMULATED,
        failed: 0,
        skipped: 0,
      },
    ]);
  }, 90_000);

  it('counts each outcome of explicit ids: adopted, failed by code, skipped when gone', async () => {
    const unknown = `${prefix}-odd`;
    deliver([unknown], 'acme.unknown');
    const gone = `${prefix}-m001`; // adopted above: no longer discovered
    const r = await call<AdoptBulkView>('adoptBulk', {
      ids: [`${prefix}-m007`, unknown, gone, 'nobody-here', gone],
    });
    expect(r.total).toBe(4); // the same id twice is asked once
    const { last } = await follow();
    expect(last).toMatchObject({ state: 'finished', done: 4, adopted: 1, failed: 1, skipped: 2 });
    expect(last.selection).toEqual({ ids: 4 });
    expect(last.failures).toEqual([
      { code: 'unknownKind', count: 1, message: expect.stringContaining('acme.unknown'), ids: [unknown] },
    ]);
    expect(app.fleet.has(`${prefix}-m007`)).toBe(true);
  }, 30_000);

  it('refuses a filter matching nothing, and a cancel with nothing running', async () => {
    const none = await api.call('adoptBulk', { filter: { text: 'matches-no-device-at-all' } });
    expect(none.ok ? 'ok' : none.error.code).toBe('notFound');
    const both = await api.call('adoptBulk', { ids: ['x'], filter: { text: '' } });
    expect(both.ok ? 'ok' : both.error.code).toBe('badRequest');
    const cancel = await api.call('adoptBulkCancel', {});
    expect(cancel.ok ? 'ok' : cancel.error.code).toBe('notFound');
  });

  it('cancels a running job after the batch in flight; a new job adopts the rest', async () => {
    const later = Array.from({ length: LATER }, (_, i) => `${prefix}-later-${String(i).padStart(3, '0')}`);
    deliver(later);
    await call('adoptBulk', { filter: { text: `${prefix}-later-` } });
    const cancelled = await call<AdoptBulkView>('adoptBulkCancel', {}, 'bo');
    expect(cancelled).toMatchObject({ state: 'cancelled', cancelledBy: 'bo', total: LATER, failed: 0 });
    expect(cancelled.done).toBeLessThan(LATER);
    expect(cancelled.done).toBeLessThanOrEqual(BATCH_SIZE * 2);
    const inFleet = later.filter((id) => app.fleet.has(id));
    expect(inFleet).toHaveLength(cancelled.adopted);
    expect(await status()).toMatchObject({ id: cancelled.id, state: 'cancelled' });

    const rest = await call<AdoptBulkView>('adoptBulk', { filter: { text: `${prefix}-later-` } });
    expect(rest.total).toBe(LATER - cancelled.adopted);
    const { last } = await follow();
    expect(last).toMatchObject({ state: 'finished', adopted: LATER - cancelled.adopted, failed: 0 });
    for (const id of later) expect(app.fleet.has(id), id).toBe(true);
  }, 60_000);
});

describe('the filter is the Discovered view’s', () => {
  it('matches the same rows as the view for the same text', () => {
    const rows: DiscoveredView[] = [
      {
        id: 'Pump-1',
        convention: 'own',
        kind: 'fleetvisor.generic',
        firmware: '1.4.2',
        via: 'mqtt',
        firstSeen: 0,
        lastSeen: 0,
        reason: 'manual',
      },
      {
        id: 'boiler',
        convention: 'homie',
        kind: 'homie.device',
        firmware: '',
        via: 'mqtt:homie',
        firstSeen: 0,
        lastSeen: 0,
        reason: 'manual',
      },
      {
        id: 'G1-line4',
        convention: 'sparkplug',
        kind: 'sparkplug.node',
        firmware: '',
        via: 'sparkplug:G1/line4',
        firstSeen: 0,
        lastSeen: 0,
        reason: 'adoptionPaused',
      },
      {
        id: 'x9',
        convention: 'own',
        kind: 'acme.unknown',
        firmware: '0.1',
        via: 'serial:/dev/ttyUSB0',
        firstSeen: 0,
        lastSeen: 0,
        reason: 'unknownKind',
      },
    ];
    for (const text of ['', 'pump', 'PUMP-1', 'homie', 'spark', '1.4', 'usb', 'paused', 'unknown', 'nothing'])
      expect(
        rows.filter((d) => matchesDiscoveredText(d, text)),
        text,
      ).toEqual(rows.filter((d) => matchesDiscovered(d, text)));
  });
});

/**
 * The fleet's change signals on a real PostgreSQL database (src/cluster/fleet-changes.ts,
 * src/cluster/signalling-store.ts): two instances' signals on one database of this file's own.
 * - ids signalled on beta are heard on alpha (and on beta), a storm of changes goes out as one
 *   notification per coalescing period, `all` is heard as such;
 * - alpha's listening connection killed by the server (pg_terminate_backend): a change signalled
 *   while it is down is missed, and once it listens again alpha is told `all` (reconnected);
 * - the store an instance's fleet writes through signals the devices of its committed writes of
 *   rows a remote row shows, and nothing for a write refused (fenced) or for other events.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetChange, FleetChanges } from '../../src/cluster/fleet-changes.js';
import {
  CHANGES_COALESCE_MS,
  changesListenerName,
  createFleetChanges,
} from '../../src/cluster/fleet-changes.js';
import { signallingStore } from '../../src/cluster/signalling-store.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import type { PostgresStore } from '../../src/store/postgres-store.js';
import { openPostgresStore } from '../../src/store/postgres-store.js';
import type { TestDatabase } from '../store/postgres-helpers.js';
import { createTestDatabase } from '../store/postgres-helpers.js';
import { waitFor } from '../transports/helpers.js';

let db: TestDatabase;
let store: PostgresStore;
let alpha: FleetChanges;
let beta: FleetChanges;
const heard = { alpha: [] as FleetChange[], beta: [] as FleetChange[] };

const idsHeard = (list: readonly FleetChange[], from: string) =>
  list.flatMap((c) => (c.kind === 'devices' && c.from === from ? c.ids : []));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  db = await createTestDatabase();
  store = await openPostgresStore({ url: db.url });
  const open = async (name: 'alpha' | 'beta') => {
    const c = createFleetChanges({ db: store.pool, url: db.url, instanceId: name, logger: silentLogger });
    c.subscribe((change) => heard[name].push(change));
    await c.start();
    return c;
  };
  alpha = await open('alpha');
  beta = await open('beta');
}, 30_000);

afterAll(async () => {
  await alpha?.stop();
  await beta?.stop();
  await store?.close();
  await db?.drop();
});

describe('fleet changes on PostgreSQL', () => {
  it("hears beta's ids on alpha, and on beta itself", async () => {
    beta.changed(['pump-1', 'pump-2']);
    await waitFor(() => idsHeard(heard.alpha, 'beta').length === 2, 5000, 'alpha to hear beta');
    expect(idsHeard(heard.alpha, 'beta')).toEqual(['pump-1', 'pump-2']);
    await waitFor(() => idsHeard(heard.beta, 'beta').length === 2, 5000, 'beta to hear itself');
  });

  it('sends a storm of changes as one notification per coalescing period, every id in it', async () => {
    heard.alpha.length = 0;
    const before = beta.stats().notices;
    const started = performance.now();
    const ids: string[] = [];
    for (let i = 0; i < 400; i++) {
      ids.push(`storm-${i}`);
      beta.changed([`storm-${i}`, `storm-${i}`]);
      if (i % 20 === 0) await sleep(5);
    }
    await waitFor(() => new Set(idsHeard(heard.alpha, 'beta')).size === 400, 5000, 'every id');
    const took = performance.now() - started;
    const notices = beta.stats().notices - before;
    expect(notices).toBeLessThanOrEqual(Math.ceil(took / CHANGES_COALESCE_MS) + 1);
    expect(notices).toBe(heard.alpha.length);
    expect(new Set(idsHeard(heard.alpha, 'beta'))).toEqual(new Set(ids));
    expect(idsHeard(heard.alpha, 'beta')).toHaveLength(400);
  });

  it('hears all as all', async () => {
    heard.alpha.length = 0;
    beta.changedAll();
    beta.changed(['in-the-same-flush']);
    await waitFor(() => heard.alpha.length > 0, 5000, 'all');
    expect(heard.alpha).toEqual([{ kind: 'all', from: 'beta', why: 'signalled' }]);
  });

  it('after its listening connection is killed, listens again and says all (reconnected)', async () => {
    heard.alpha.length = 0;
    const killed = await db.query<{ killed: boolean }>(
      'SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1',
      [changesListenerName('alpha')],
    );
    expect(killed).toEqual([{ killed: true }]);
    await waitFor(() => !alpha.listening(), 5000, 'alpha to see its connection gone');
    // Signalled while alpha does not listen: missed by it (beta, listening, hears it).
    const sentBefore = beta.stats().notices;
    beta.changed(['while-alpha-was-down']);
    await waitFor(() => beta.stats().notices > sentBefore, 5000, 'the notice sent');
    const missed = !alpha.listening();
    await waitFor(() => alpha.listening(), 5000, 'alpha to listen again');
    await waitFor(() => heard.alpha.some((c) => c.kind === 'all'), 5000, 'all after the reconnect');
    expect(heard.alpha.filter((c) => c.kind === 'all')).toEqual([
      { kind: 'all', from: null, why: 'reconnected' },
    ]);
    if (missed) expect(idsHeard(heard.alpha, 'beta')).not.toContain('while-alpha-was-down');
    expect(alpha.stats().reconnects).toBe(1);
    beta.changed(['after-the-reconnect']);
    await waitFor(() => idsHeard(heard.alpha, 'beta').includes('after-the-reconnect'), 5000, 'heard again');
  });

  it('the signalling store names the devices of committed writes a remote row shows, nothing else', async () => {
    const signalled: string[] = [];
    const s = signallingStore(store, (ids) => signalled.push(...ids));
    expect((await s.upsertDevice({ id: 'sig-1', kind: 'fleetvisor.generic', name: 'One' })).ok).toBe(true);
    expect(signalled).toEqual(['sig-1']);
    await s.saveSnapshot({
      deviceId: 'sig-1',
      kind: 'fleetvisor.generic',
      snapshot: {},
      deadlines: [],
      version: 1,
    });
    expect((await s.setDeviceStatus('sig-1', { firmware: '1.2.3' })).ok).toBe(true);
    await s.appendEvents([
      { at: Date.now(), deviceId: 'sig-1', kind: 'device.online', data: {} },
      { at: Date.now(), deviceId: 'sig-2', kind: 'device.failed', data: {} },
      { at: Date.now(), deviceId: 'sig-3', kind: 'device.audit', data: {} },
      { at: Date.now(), kind: 'device.online', data: {} },
    ]);
    expect(signalled).toEqual(['sig-1', 'sig-1', 'sig-1', 'sig-1', 'sig-2']);
    // Refused: nothing changed, nothing said.
    expect((await s.setDeviceStatus('no-such-device', {})).ok).toBe(false);
    store.setFence({ owner: 'nobody', tokenOf: () => undefined });
    try {
      await expect(
        s.saveSnapshot({
          deviceId: 'sig-1',
          kind: 'fleetvisor.generic',
          snapshot: {},
          deadlines: [],
          version: 1,
        }),
      ).rejects.toMatchObject({ code: 'fenced' });
    } finally {
      store.setFence(undefined);
    }
    expect((await s.deleteDevice('sig-1')).ok).toBe(true);
    expect(signalled).toEqual(['sig-1', 'sig-1', 'sig-1', 'sig-1', 'sig-2', 'sig-1']);
  });
});

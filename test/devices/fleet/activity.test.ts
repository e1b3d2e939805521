/**
 * Telemetry through the fleet (src/devices/fleet/activity.ts) on a real SQLite file: the messages
 * of one turn go to the store as one append, and each caller still gets its own count — its
 * duplicates and refused points are its own, not its neighbours' in the same append.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createFleet, type Fleet } from '../../../src/devices/fleet.js';
import { genericDevice } from '../../../src/devices/generic-device.js';
import { createRuntime } from '../../../src/runtime/runtime.js';
import { openSqliteStore, type SqliteStore } from '../../../src/store/sqlite-store.js';
import { tempDir } from '../../store/helpers.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A fleet with device `d` on a store whose appends are counted. */
async function rig(): Promise<{ fleet: Fleet; store: SqliteStore; appends: () => number }> {
  const tmp = tempDir();
  cleanups.push(tmp.cleanup);
  const store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 5 });
  let appends = 0;
  const append = store.appendTelemetry.bind(store);
  store.appendTelemetry = (points, options) => {
    appends++;
    return append(points, options);
  };
  const runtime = createRuntime({});
  cleanups.push(() => runtime.dispose());
  cleanups.push(() => store.close().catch(() => {}));
  const fleet = createFleet({ runtime, store, kinds: [genericDevice], reconcileIntervalMs: 0 });
  await fleet.start();
  cleanups.push(() => fleet.stop());
  const added = await fleet.addDevice({ id: 'd', kind: 'fleetvisor.generic' });
  expect(added.ok).toBe(true);
  return { fleet, store, appends: () => appends };
}

const stored = async (store: SqliteStore, metric: string) =>
  (await store.queryTelemetry('d', metric, 0, Date.now() + 60_000, 1)).reduce((n, b) => n + b.count, 0);

describe('fleet telemetry, one store append per turn', () => {
  it('appends a turn once and tells each caller its own count', async () => {
    const { fleet, store, appends } = await rig();
    const results = Promise.all([
      fleet.ingestTelemetry('d', { temp: 20, rssi: -60 }, 1000, { boot: 1, seq: 1 }),
      // the same message again in the same append: the first is kept, this one is all duplicates
      fleet.ingestTelemetry('d', { temp: 20, rssi: -60 }, 1000, { boot: 1, seq: 1 }),
      // one value the store refuses
      fleet.ingestTelemetry('d', { temp: 21, rssi: Number.NaN }, 1001, { boot: 1, seq: 2 }),
      fleet.ingestTelemetry('d', {}, 1002),
      fleet.ingestTelemetry('ghost', { temp: 1 }),
      fleet.ingestTelemetry('d', { temp: 22 }),
    ]);
    expect(await results).toEqual([
      { ok: true, value: 2 },
      { ok: true, value: 0 },
      { ok: true, value: 1 },
      { ok: true, value: 0 },
      { ok: false, error: { code: 'notFound', message: "telemetry for unknown device 'ghost'" } },
      { ok: true, value: 1 },
    ]);
    expect(appends()).toBe(1);
    // A later turn is a later append; a late duplicate is still found.
    expect(await fleet.ingestTelemetry('d', { temp: 21 }, 1001, { boot: 1, seq: 2 })).toEqual({
      ok: true,
      value: 0,
    });
    expect(appends()).toBe(2);
    expect(await stored(store, 'temp')).toBe(3);
    expect(await stored(store, 'rssi')).toBe(1);
  });

  it('queueTelemetry: the callers of a turn share one promise, settled once it is committed', async () => {
    const { fleet, store, appends } = await rig();
    const a = fleet.queueTelemetry('d', { temp: 20, rssi: -60 }, 1000, { boot: 1, seq: 1 });
    const b = fleet.queueTelemetry('d', { temp: 21 }, 1001, { boot: 1, seq: 2 });
    // ingestTelemetry in the same turn still gets its own count, past the others' points
    const c = fleet.ingestTelemetry('d', { temp: 21, rssi: -61 }, 1001, { boot: 1, seq: 2 });
    const ghost = fleet.queueTelemetry('ghost', { temp: 1 });
    expect(b).toBe(a);
    expect(await a).toEqual({ ok: true, value: undefined });
    expect(await c).toEqual({ ok: true, value: 1 }); // temp of seq 2 was b's
    expect(await ghost).toEqual({
      ok: false,
      error: { code: 'notFound', message: "telemetry for unknown device 'ghost'" },
    });
    expect(appends()).toBe(1);
    expect(await stored(store, 'temp')).toBe(2);
    expect(await stored(store, 'rssi')).toBe(2);
    // The next turn is another promise.
    expect(fleet.queueTelemetry('d', { temp: 22 }, 1002, { boot: 1, seq: 3 })).not.toBe(a);
  });

  it('queueTelemetry: a refused turn is refused for every caller, with the store code', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const store = await openSqliteStore({
      file: tmp.file,
      telemetryFlushMs: 1000,
      telemetryBatchMax: 2,
      telemetryBufferMax: 2,
    });
    cleanups.push(() => store.close().catch(() => {}));
    const runtime = createRuntime({});
    cleanups.push(() => runtime.dispose());
    const fleet = createFleet({ runtime, store, kinds: [genericDevice], reconcileIntervalMs: 0 });
    await fleet.start();
    cleanups.push(() => fleet.stop());
    expect((await fleet.addDevice({ id: 'd', kind: 'fleetvisor.generic' })).ok).toBe(true);
    // The first turn waits in the store's buffer (one point of two), the second (two) is refused whole.
    const first = fleet.queueTelemetry('d', { temp: 1 }, null, { boot: 1, seq: 1 });
    await new Promise((r) => setImmediate(r));
    const a = fleet.queueTelemetry('d', { temp: 2 }, null, { boot: 1, seq: 2 });
    const b = fleet.queueTelemetry('d', { temp: 3 }, null, { boot: 1, seq: 3 });
    expect(await a).toMatchObject({ ok: false, error: { code: 'overloaded' } });
    expect(await b).toBe(await a);
    expect(await first).toEqual({ ok: true, value: undefined });
  });

  it('a store that fails the append fails every caller of the turn with its error', async () => {
    const { fleet, store } = await rig();
    await store.close();
    const a = fleet.ingestTelemetry('d', { temp: 1 }, null, { boot: 1, seq: 1 });
    const b = fleet.ingestTelemetry('d', { temp: 2 }, null, { boot: 1, seq: 2 });
    await expect(a).rejects.toMatchObject({ code: 'closed' });
    await expect(b).rejects.toMatchObject({ code: 'closed' });
  });
});

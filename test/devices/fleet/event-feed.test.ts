/**
 * The fleet's event feed (src/devices/fleet/event-feed.ts) on a real SQLite file and a simulated
 * clock: each event goes to the watchers, the device event log and the lifecycle summary, once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Entry } from '../../../src/devices/fleet/context.js';
import { newEntry } from '../../../src/devices/fleet/context.js';
import { createEventFeed } from '../../../src/devices/fleet/event-feed.js';
import type { FleetEvent } from '../../../src/devices/fleet/types.js';
import { genericDevice } from '../../../src/devices/generic-device.js';
import { createSimulatedClock } from '../../../src/runtime/clock.js';
import { createRuntime } from '../../../src/runtime/runtime.js';
import { openSqliteStore, type SqliteStore } from '../../../src/store/sqlite-store.js';
import type { DeviceRecord } from '../../../src/store/store.js';
import { recordingLogger, tempDir } from '../../store/helpers.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function rig() {
  const tmp = tempDir();
  cleanups.push(tmp.cleanup);
  const store: SqliteStore = await openSqliteStore({ file: tmp.file });
  cleanups.push(() => store.close().catch(() => {}));
  const clock = createSimulatedClock({ wallStartMs: 1_700_000_000_000 });
  const logger = recordingLogger();
  const runtime = createRuntime({ clock, logger });
  cleanups.push(() => runtime.dispose());
  const entries = new Map<string, Entry>();
  const feed = createEventFeed(runtime, store, entries);
  return { store, clock, logger, runtime, entries, feed };
}

const settle = async (feed: { pending(): Promise<void> | undefined }) => {
  while (feed.pending() !== undefined) await feed.pending();
};

describe('the fleet event feed', () => {
  it('hands each event to every watcher with the wall time; one that throws is reported, the others still hear', async () => {
    const { clock, logger, feed } = await rig();
    const heard: FleetEvent[] = [];
    const heardToo: string[] = [];
    feed.watchEvents(() => {
      throw new Error('watcher bug');
    });
    feed.watchEvents((e) => heard.push(e));
    const stop = feed.watchEvents((e) => heardToo.push(e.kind));
    clock.advance(250);
    feed.logEvent('device.added', 'pump-1', { kind: 'fleetvisor.generic' });
    stop();
    feed.logEvent('device.removed', 'pump-1', null);
    expect(heard).toEqual([
      {
        kind: 'device.added',
        deviceId: 'pump-1',
        at: 1_700_000_000_250,
        data: { kind: 'fleetvisor.generic' },
      },
      { kind: 'device.removed', deviceId: 'pump-1', at: 1_700_000_000_250, data: null },
    ]);
    expect(heardToo).toEqual(['device.added']);
    const reports = logger.lines.filter((l) => l.level === 'error').map((l) => l.message);
    expect(reports).toEqual([
      'fleet: an event watcher threw on device.added',
      'fleet: an event watcher threw on device.removed',
    ]);
    await settle(feed);
  });

  it('stores every event in the device event log, in order', async () => {
    const { store, feed } = await rig();
    feed.logEvent('device.added', 'pump-1', { kind: 'fleetvisor.generic' });
    feed.logEvent('device.online', 'pump-1', { via: 'mqtt' });
    feed.logEvent('fleet.note', undefined, 'no device');
    expect(feed.pending()).toBeDefined();
    await settle(feed);
    const page = await store.queryEvents({ limit: 10 });
    const rows = page.items.map((r) => (r.ok ? [r.value.kind, r.value.deviceId, r.value.data] : r));
    expect(rows).toEqual([
      ['device.added', 'pump-1', { kind: 'fleetvisor.generic' }],
      ['device.online', 'pump-1', { via: 'mqtt' }],
      ['fleet.note', undefined, 'no device'],
    ]);
  });

  it('counts lifecycle events into the summary, with the devices online read from the entries', async () => {
    const { clock, logger, runtime, store, entries, feed } = await rig();
    const record = (id: string): DeviceRecord => ({
      id,
      kind: genericDevice.kind,
      name: id,
      tags: [],
      attributes: {},
      spec: {},
      status: {},
      createdAt: 0,
      updatedAt: 0,
    });
    const up = newEntry(runtime, record('pump-1'), genericDevice);
    up.link = { up: true, via: 'mqtt', since: 0, reason: null };
    entries.set('pump-1', up);
    entries.set('pump-2', newEntry(runtime, record('pump-2'), genericDevice));
    feed.logEvent('device.online', 'pump-1', { via: 'mqtt' });
    expect(logger.lines.filter((l) => l.level === 'info')).toEqual([]);
    clock.advance(5000);
    const info = logger.lines.filter((l) => l.level === 'info').map((l) => l.message);
    expect(info).toEqual(['devices: 1 of 2 online (1 came online)']);
    // Stop logs what is left and arms nothing more.
    feed.logEvent('device.added', 'pump-3', {});
    feed.stop();
    expect(logger.lines.filter((l) => l.level === 'info').map((l) => l.message)).toEqual([
      'devices: 1 of 2 online (1 came online)',
      'devices: 1 added',
    ]);
    await settle(feed);
    expect((await store.queryEvents({ limit: 10 })).items).toHaveLength(2);
  });
});

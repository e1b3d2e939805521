/**
 * A snapshot saved by an older app in a state the kind's machine no longer has (the generic
 * kind's `updating.*` states, removed in issue 14): on a real SQLite file, the device comes back
 * running in the machine's initial state instead of failed, with one `device.snapshotMigrated`
 * event saying which state was dropped and why; its record, its event log and its other devices
 * are untouched. The check itself is a pure function of the machine and the state value.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { unknownStateOf } from '../../../src/devices/fleet/snapshot-migration.js';
import type { Fleet } from '../../../src/devices/fleet.js';
import { createFleet } from '../../../src/devices/fleet.js';
import { genericDevice } from '../../../src/devices/generic-device.js';
import type { SimulatedClock } from '../../../src/runtime/clock.js';
import { createSimulatedClock } from '../../../src/runtime/clock.js';
import { createRuntime } from '../../../src/runtime/runtime.js';
import { startMqttSimDevice } from '../../../src/sim/mqtt-device.js';
import type { SqliteStore } from '../../../src/store/sqlite-store.js';
import { openSqliteStore } from '../../../src/store/sqlite-store.js';
import { startEmbeddedBroker } from '../../../src/transports/embedded-broker.js';
import { createLinks } from '../../../src/transports/links.js';
import { rawAll, rawRun, tempDir } from '../../store/helpers.js';
import { waitFor } from '../../transports/helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function open(file: string, clock: SimulatedClock): Promise<{ store: SqliteStore; fleet: Fleet }> {
  const store = await openSqliteStore({ file, telemetryFlushMs: 0, now: () => clock.wallNow() });
  const fleet = createFleet({
    runtime: createRuntime({ clock }),
    store,
    kinds: [genericDevice],
    reconcileIntervalMs: 0,
  });
  cleanups.push(async () => {
    await fleet.stop().catch(() => {});
    await store.close().catch(() => {});
  });
  return { store, fleet };
}

const NOW = 1_800_000_000_000;

/**
 * The row an app from before issue 14 saved for a generic device mid-update: state
 * `updating.transfer`, its context with the update's target, the step timeout and the liveness
 * timeout running (the old kind kept liveness in the updating states).
 */
function oldUpdatingSnapshot(at: number): { snapshot: string; deadlines: string } {
  const stepTimer = 'xstate.after.updateStepTimeout.device.updating.transfer';
  const timers = [
    {
      kind: 'after',
      id: stepTimer,
      event: { type: stepTimer },
      delayMs: 120_000,
      wallDeadlineMs: at + 120_000,
    },
    {
      kind: 'named',
      id: 'liveness',
      event: { type: 'LIVENESS_TIMEOUT' },
      delayMs: 30_000,
      wallDeadlineMs: at + 30_000,
    },
  ];
  const machine = {
    status: 'active',
    value: { updating: 'transfer' },
    historyValue: {},
    context: {
      connectTimeoutMs: 10_000,
      updateStepTimeoutMs: 120_000,
      attempts: 0,
      firmware: '1.0.0',
      target: '1.1.0',
      lastError: null,
    },
    children: {},
  };
  return {
    snapshot: JSON.stringify({ machine, timers, stateEnteredAt: at }),
    deadlines: JSON.stringify(
      timers.map((t) => ({
        label: `${t.kind}:${t.id}`,
        wallDeadlineMs: t.wallDeadlineMs,
        delayMs: t.delayMs,
      })),
    ),
  };
}

describe('a snapshot in a state the machine no longer has', () => {
  it('restores the device in the initial state with a device.snapshotMigrated event; nothing else is lost', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const clock = createSimulatedClock({ wallStartMs: NOW });
    const first = await open(tmp.file, clock);
    await first.fleet.start();
    for (const id of ['old', 'fine'])
      await first.fleet.addDevice({
        id,
        name: `Pump ${id}`,
        kind: 'fleetvisor.generic',
        tags: ['hall-3'],
        attributes: { connectTimeoutMs: 10_000 },
        spec: { firmware: '1.1.0' },
      });
    await first.fleet.act('old', 'connect', {}, 'alice');
    await first.fleet.act('fine', 'connect', {}, 'alice');
    await first.fleet.stop();
    await first.store.close();
    // What the older app wrote: its device row (with the attribute it had then) and its snapshot.
    const old = oldUpdatingSnapshot(NOW);
    await rawRun(
      tmp.file,
      'UPDATE snapshots SET snapshot = ?, deadlines = ?, version = 1 WHERE device_id = ?',
      [old.snapshot, old.deadlines, 'old'],
    );
    await rawRun(
      tmp.file,
      `UPDATE devices SET attributes = '{"connectTimeoutMs":10000,"livenessTimeoutMs":30000,"updateStepTimeoutMs":120000}' WHERE id = 'old'`,
    );
    const eventsBefore = await rawAll<{ kind: string }>(
      tmp.file,
      "SELECT kind FROM events WHERE device_id = 'old' ORDER BY seq",
    );
    expect(eventsBefore.map((e) => e.kind)).toContain('device.state');

    const later = createSimulatedClock({ wallStartMs: NOW + 5_000 });
    const second = await open(tmp.file, later);
    expect(await second.fleet.start()).toEqual({ started: 2, failed: [] });
    const device = second.fleet.device('old')!;
    expect(device).toMatchObject({
      health: 'running',
      state: 'disconnected',
      failure: undefined,
      // Not a crash of its machine (before, xstate refused the snapshot: a crash and a restart).
      restarts: 0,
      name: 'Pump old',
      tags: ['hall-3'],
    });
    // The old step timeout and liveness timeout went with the state.
    expect(device.timers).toEqual([]);
    expect(second.fleet.device('fine')).toMatchObject({ health: 'running', state: 'connecting' });

    await second.fleet.flush();
    const migrated = await second.store.queryEvents({
      deviceId: 'old',
      kind: 'device.snapshotMigrated',
      limit: 10,
    });
    expect(migrated.items).toHaveLength(1);
    const item = migrated.items[0]!;
    if (!item.ok) throw new Error(item.error.message);
    const data = item.value.data as Record<string, unknown>;
    expect(data).toMatchObject({
      from: 'updating.transfer',
      to: 'disconnected',
      timers: ['after:xstate.after.updateStepTimeout.device.updating.transfer', 'named:liveness'],
      context: { firmware: '1.0.0', target: '1.1.0' },
    });
    expect(data.reason).toBe(
      "the fleetvisor.generic machine has no state 'updating' (saved by an app version that had it)",
    );
    expect(
      await second.store.queryEvents({ deviceId: 'fine', kind: 'device.snapshotMigrated', limit: 10 }),
    ).toMatchObject({
      items: [],
    });
    // Its record and its event log are as they were; the event log only gained.
    const record = await second.store.getDevice('old');
    expect(record).toMatchObject({
      ok: true,
      value: { name: 'Pump old', tags: ['hall-3'], spec: { firmware: '1.1.0' } },
    });
    const eventsAfter = await rawAll<{ kind: string }>(
      tmp.file,
      "SELECT kind FROM events WHERE device_id = 'old' ORDER BY seq",
    );
    expect(eventsAfter.slice(0, eventsBefore.length)).toEqual(eventsBefore);
    expect(eventsAfter.map((e) => e.kind)).not.toContain('device.failed');
    expect(eventsAfter.map((e) => e.kind)).not.toContain('device.crashed');
    const audit = await second.store.queryCommands({ deviceId: 'old', limit: 10 });
    expect(audit.items).toHaveLength(1);

    // It takes the life cycle again from the start: connect, then its connect timeout runs.
    expect(await second.fleet.act('old', 'connect', {})).toMatchObject({
      ok: true,
      value: { state: 'connecting' },
    });
    expect(second.fleet.device('old')!.timers).toMatchObject([{ kind: 'after', delayMs: 10_000 }]);
    await second.fleet.stop();
    await second.store.close();

    // The new snapshot replaced the old row: the next start migrates nothing.
    const rows = await rawAll<{ snapshot: string }>(
      tmp.file,
      "SELECT snapshot FROM snapshots WHERE device_id = 'old'",
    );
    expect(JSON.parse(rows[0]!.snapshot).machine.value).toBe('connecting');
    const third = await open(tmp.file, later);
    expect(await third.fleet.start()).toEqual({ started: 2, failed: [] });
    expect(third.fleet.device('old')!.state).toBe('connecting');
    await third.fleet.flush();
    const again = await third.store.queryEvents({
      deviceId: 'old',
      kind: 'device.snapshotMigrated',
      limit: 10,
    });
    expect(again.items).toHaveLength(1);
  });
});

describe('over a real link', () => {
  it('the device whose old state was dropped connects again when it says hello', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const first = await open(tmp.file, createSimulatedClock({ wallStartMs: Date.now() }));
    await first.fleet.start();
    await first.fleet.addDevice({ id: 'pump-9', kind: 'fleetvisor.generic', attributes: {} });
    await first.fleet.stop();
    await first.store.close();
    const old = oldUpdatingSnapshot(Date.now());
    await rawRun(tmp.file, "UPDATE snapshots SET snapshot = ?, deadlines = ? WHERE device_id = 'pump-9'", [
      old.snapshot,
      old.deadlines,
    ]);

    const broker = await startEmbeddedBroker({ port: 0 });
    cleanups.push(() => broker.close());
    const store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 20 });
    const runtime = createRuntime({});
    const links = createLinks({
      runtime,
      store,
      mqtt: { url: broker.url, reconnect: { initialMs: 50, maxMs: 300, jitter: 0.5, stableMs: 2000 } },
    });
    const fleet = createFleet({
      runtime,
      store,
      kinds: [genericDevice],
      carrier: links.carrier,
      reconcileIntervalMs: 0,
    });
    cleanups.push(async () => {
      await links.stop();
      await fleet.stop();
      await store.close();
      runtime.dispose();
    });
    expect(await fleet.start()).toEqual({ started: 1, failed: [] });
    expect(fleet.device('pump-9')).toMatchObject({ health: 'running', state: 'disconnected', restarts: 0 });
    await links.attach(fleet, { adopt: 'manual' });
    const device = await startMqttSimDevice(broker.url, { id: 'pump-9', telemetryIntervalMs: 1000 });
    cleanups.push(() => device.stop());
    await waitFor(() => fleet.device('pump-9')?.state === 'connected', 8000, 'pump-9 connected');
    expect(fleet.device('pump-9')).toMatchObject({ health: 'running', restarts: 0 });
    await fleet.flush();
    const kinds = (await store.queryEvents({ deviceId: 'pump-9', limit: 50 })).items.flatMap((r) =>
      r.ok ? [r.value.kind] : [],
    );
    expect(kinds.filter((k) => k === 'device.snapshotMigrated')).toHaveLength(1);
    expect(kinds).not.toContain('device.crashed');
  });
});

describe('unknownStateOf', () => {
  const machine = setup({}).createMachine({
    id: 'm',
    initial: 'idle',
    states: {
      idle: {},
      running: { initial: 'slow', states: { slow: {}, fast: {} } },
      both: { type: 'parallel', states: { left: { initial: 'a', states: { a: {} } }, right: {} } },
    },
  });
  it.each([
    ['idle', undefined],
    ['running', undefined],
    [{ running: 'fast' }, undefined],
    [{ running: {} }, undefined],
    [{ both: { left: 'a', right: {} } }, undefined],
    ['updating', 'updating'],
    [{ updating: 'transfer' }, 'updating'],
    [{ running: 'warp' }, 'running.warp'],
    [{ both: { left: 'b', right: {} } }, 'both.left.b'],
    [{ both: { middle: {} } }, 'both.middle'],
    [{ idle: 'nested' }, 'idle.nested'],
    [42, '42'],
    [null, 'null'],
  ])('%j → %s', (value, expected) => {
    expect(unknownStateOf(machine, value)).toBe(expected);
  });
});

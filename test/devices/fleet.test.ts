/**
 * The fleet over a real SQLite file, on a simulated clock: devices as persisted, supervised
 * resources that come back after crashes and app restarts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { defineDevice } from '../../src/devices/define-device.js';
import type { Fleet } from '../../src/devices/fleet.js';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import type { SimulatedClock } from '../../src/runtime/clock.js';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { rawRun, tempDir } from '../store/helpers.js';

/** A kind whose device code can be made to throw, to test crashes. */
const fragileMachine = setup({
  types: {} as {
    context: { count: number };
    events: { type: 'ARM' } | { type: 'BUMP' } | { type: 'POISON' } | { type: 'DISARM' };
  },
  actions: {
    explode: () => {
      throw new Error('device code crashed');
    },
  },
}).createMachine({
  id: 'fragile',
  initial: 'idle',
  context: { count: 0 },
  states: {
    idle: { on: { ARM: 'armed', BUMP: { actions: assign({ count: ({ context }) => context.count + 1 }) } } },
    armed: {
      after: { 60000: 'idle' },
      on: {
        POISON: { actions: 'explode' },
        DISARM: 'idle',
        BUMP: { actions: assign({ count: ({ context }) => context.count + 1 }) },
      },
    },
  },
});
const fragile = defineDevice({
  kind: 'test.fragile',
  attributes: z.object({}),
  machine: fragileMachine,
  actions: {
    arm: { args: z.object({}), toEvent: () => ({ type: 'ARM' }) },
    bump: { args: z.object({}), toEvent: () => ({ type: 'BUMP' }) },
    poison: { args: z.object({}), toEvent: () => ({ type: 'POISON' }) },
  },
});

interface Rig {
  clock: SimulatedClock;
  store: SqliteStore;
  fleet: Fleet;
  file: string;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function open(file: string, clock: SimulatedClock, reconcileIntervalMs = 0): Promise<Rig> {
  const store = await openSqliteStore({ file, telemetryFlushMs: 0, now: () => clock.wallNow() });
  const runtime = createRuntime({ clock });
  const fleet = createFleet({ runtime, store, kinds: [genericDevice, fragile], reconcileIntervalMs });
  cleanups.push(async () => {
    await fleet.stop().catch(() => {});
    await store.close().catch(() => {});
  });
  return { clock, store, fleet, file };
}

async function rig(reconcileIntervalMs = 0): Promise<Rig> {
  const tmp = tempDir();
  cleanups.push(tmp.cleanup);
  const r = await open(
    tmp.file,
    createSimulatedClock({ wallStartMs: 1_800_000_000_000 }),
    reconcileIntervalMs,
  );
  await r.fleet.start();
  return r;
}

const settle = () => flushMicrotasks(3);

describe('devices as persisted, supervised resources', () => {
  it('adds a device, drives it with validated actions, and audits every command', async () => {
    const { fleet, store } = await rig();
    expect(
      (
        await fleet.addDevice({
          id: 'sensor-1',
          kind: 'fleetvisor.generic',
          attributes: { connectTimeoutMs: 5000 },
        })
      ).ok,
    ).toBe(true);
    expect(fleet.device('sensor-1')).toMatchObject({ state: 'disconnected', health: 'running' });
    expect(await fleet.act('sensor-1', 'identify', { seconds: 'soon' })).toMatchObject({
      ok: false,
      error: { code: 'badArgs' },
    });
    expect(await fleet.act('sensor-1', 'selfDestruct', {})).toMatchObject({
      ok: false,
      error: { code: 'unknownAction' },
    });
    // A device command needs a link to go out on; this fleet has none.
    expect(await fleet.act('sensor-1', 'reboot', {})).toMatchObject({
      ok: false,
      error: { code: 'noLink' },
    });
    const connect = await fleet.act('sensor-1', 'connect', {}, 'alice');
    expect(connect).toMatchObject({ ok: true, value: { state: 'connecting' } });
    const timers = fleet.device('sensor-1')!.timers;
    expect(timers).toHaveLength(1);
    expect(timers[0]).toMatchObject({ kind: 'after', delayMs: 5000 });
    const audit = await store.queryCommands({ deviceId: 'sensor-1', limit: 10 });
    expect(audit.items).toHaveLength(1);
    expect(audit.items[0]).toMatchObject({
      ok: true,
      value: { action: 'connect', actor: 'alice', status: 'succeeded', result: { state: 'connecting' } },
    });
    // Already connecting: the machine takes no CONNECT there.
    expect(await fleet.act('sensor-1', 'connect', {})).toMatchObject({
      ok: false,
      error: { code: 'notAllowedInState' },
    });
  });

  it('refuses bad ids (wildcards, slashes, empty), unknown kinds and invalid attributes with a clear error', async () => {
    const { fleet } = await rig();
    for (const id of ['a/+', 'room#1', '', '$SYS', 'x'.repeat(65), 'tab\there'])
      expect(await fleet.addDevice({ id, kind: 'fleetvisor.generic' })).toMatchObject({
        ok: false,
        error: { code: 'badDeviceId' },
      });
    expect(await fleet.addDevice({ id: 'd1', kind: 'toaster' })).toMatchObject({
      ok: false,
      error: { code: 'unknownKind' },
    });
    const bad = await fleet.addDevice({
      id: 'd1',
      kind: 'fleetvisor.generic',
      attributes: { connectTimeoutMs: -5 },
    });
    expect(bad).toMatchObject({ ok: false, error: { code: 'badAttributes' } });
    if (!bad.ok) expect(bad.error.message).toContain('connectTimeoutMs');
    expect(await fleet.act('nobody', 'connect', {})).toMatchObject({
      ok: false,
      error: { code: 'notFound' },
    });
    expect(fleet.list()).toHaveLength(0);
  });

  it('a crashed device restarts in its last state with the remaining time of its timeout', async () => {
    const { fleet, clock } = await rig();
    await fleet.addDevice({ id: 'f1', kind: 'test.fragile' });
    await fleet.act('f1', 'arm', {});
    await fleet.act('f1', 'bump', {});
    await clock.advanceAsync(20_000);
    const before = fleet.machineOf('f1')!;
    await fleet.act('f1', 'poison', {});
    await settle();
    const after = fleet.machineOf('f1')!;
    expect(after).not.toBe(before);
    expect(fleet.device('f1')).toMatchObject({ state: 'armed', restarts: 1, health: 'running' });
    expect(after.getSnapshot()?.context.count).toBe(1);
    expect(after.timers()[0]!.wallDeadlineMs - clock.wallNow()).toBe(40_000);
    await clock.advanceAsync(40_000);
    expect(fleet.device('f1')!.state).toBe('idle');
  });

  it('a poison device is failed after its intensity with the reason; the others run on; restart brings it back', async () => {
    const { fleet, store } = await rig();
    await fleet.addDevice({ id: 'poison', kind: 'test.fragile' });
    await fleet.addDevice({ id: 'healthy', kind: 'test.fragile' });
    await fleet.act('poison', 'arm', {});
    await fleet.act('healthy', 'arm', {});
    for (let i = 0; i < 4; i++) {
      await fleet.act('poison', 'poison', {});
      await settle();
    }
    const failed = fleet.device('poison')!;
    expect(failed.health).toBe('failed');
    expect(failed.failure?.code).toBe('crashLoop');
    expect(failed.failure?.message).toContain('device code crashed');
    expect(await fleet.act('poison', 'bump', {})).toMatchObject({
      ok: false,
      error: { code: 'deviceFailed' },
    });
    expect(fleet.device('healthy')).toMatchObject({ health: 'running', state: 'armed' });
    expect((await fleet.act('healthy', 'bump', {})).ok).toBe(true);
    expect(fleet.supervisor.alive).toBe(true);
    const back = await fleet.restartDevice('poison');
    expect(back).toMatchObject({ ok: true, value: { health: 'running', state: 'armed' } });
    expect(await fleet.restartDevice('healthy')).toMatchObject({ ok: false, error: { code: 'notFailed' } });
    await fleet.flush();
    const events = await store.queryEvents({ deviceId: 'poison', kind: 'device.failed', limit: 10 });
    expect(events.items).toHaveLength(1);
  });

  it('after an app restart every device is back in its state, and a deadline that passed meanwhile fires at once', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const clock = createSimulatedClock({ wallStartMs: 1_800_000_000_000 });
    const first = await open(tmp.file, clock);
    await first.fleet.start();
    await first.fleet.addDevice({
      id: 'a',
      kind: 'fleetvisor.generic',
      attributes: { connectTimeoutMs: 10_000 },
    });
    await first.fleet.addDevice({ id: 'b', kind: 'test.fragile' });
    await first.fleet.addDevice({ id: 'c', kind: 'test.fragile' });
    await first.fleet.act('a', 'connect', {});
    await first.fleet.act('b', 'arm', {});
    await first.fleet.act('c', 'bump', {});
    await clock.advanceAsync(4000);
    await first.fleet.stop();
    await first.store.close();

    // the app was down for 30 s: a's 10 s connect timeout passed, b's 60 s timeout has 26 s left
    const second = await open(tmp.file, createSimulatedClock({ wallStartMs: clock.wallNow() + 30_000 }));
    const summary = await second.fleet.start();
    expect(summary).toEqual({ started: 3, failed: [] });
    expect(second.fleet.device('b')).toMatchObject({ state: 'armed' });
    expect(second.fleet.device('b')!.timers[0]!.wallDeadlineMs - second.clock.wallNow()).toBe(26_000);
    expect(second.fleet.machineOf('c')!.getSnapshot()?.context.count).toBe(1);
    expect(second.fleet.device('a')!.state).toBe('connecting');
    await second.clock.advanceAsync(0);
    expect(second.fleet.device('a')!.state).toBe('disconnected');
  });

  it('bad data marks only that device failed: an unparsable snapshot, an unknown kind, invalid attributes', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const clock = createSimulatedClock();
    const first = await open(tmp.file, clock);
    await first.fleet.start();
    for (const id of ['good', 'corrupt', 'alien', 'badattrs'])
      await first.fleet.addDevice({ id, kind: 'test.fragile' });
    for (const id of ['good', 'corrupt', 'alien', 'badattrs']) await first.fleet.act(id, 'arm', {});
    await first.fleet.stop();
    await first.store.close();
    await rawRun(
      tmp.file,
      "UPDATE snapshots SET snapshot = '{\"machine\": {\"val' WHERE device_id = 'corrupt'",
    );
    await rawRun(tmp.file, "UPDATE devices SET kind = 'toaster' WHERE id = 'alien'");
    await rawRun(tmp.file, "UPDATE snapshots SET kind = 'toaster' WHERE device_id = 'alien'");
    await rawRun(
      tmp.file,
      "UPDATE devices SET kind = 'fleetvisor.generic', attributes = '{\"connectTimeoutMs\": \"soon\"}' WHERE id = 'badattrs'",
    );

    const second = await open(tmp.file, clock);
    const summary = await second.fleet.start();
    expect(summary.started).toBe(1);
    const codes = Object.fromEntries(summary.failed.map((f) => [f.id, f.code]));
    expect(codes).toEqual({ corrupt: 'badSnapshot', alien: 'unknownKind', badattrs: 'badAttributes' });
    expect(second.fleet.device('good')).toMatchObject({ health: 'running', state: 'armed' });
    expect(second.fleet.device('alien')!.failure?.message).toContain("unknown kind 'toaster'");
    // the operator can bring the corrupt one back from scratch
    expect(await second.fleet.restartDevice('corrupt')).toMatchObject({ ok: true, value: { state: 'idle' } });
  });
});

describe('liveness, telemetry and reconciliation', () => {
  it('telemetry pushes the liveness deadline back without going through the machine; silence disconnects', async () => {
    const { fleet, clock, store } = await rig();
    await fleet.addDevice({ id: 's', kind: 'fleetvisor.generic', attributes: { livenessTimeoutMs: 30_000 } });
    await fleet.act('s', 'connect', {});
    fleet.machineOf('s')!.send({ type: 'HELLO', firmware: '1.0.0' });
    expect(fleet.device('s')!.state).toBe('connected');
    for (let i = 0; i < 5; i++) {
      await clock.advanceAsync(20_000);
      expect(await fleet.ingestTelemetry('s', { temp: 20 + i })).toEqual({ ok: true, value: 1 });
    }
    expect(fleet.device('s')!.state).toBe('connected');
    expect(fleet.device('s')!.timers.find((t) => t.id === 'liveness')).toBeTruthy();
    await clock.advanceAsync(30_000);
    expect(fleet.device('s')).toMatchObject({ state: 'disconnected' });
    expect(fleet.machineOf('s')!.getSnapshot()?.context.lastError).toBe('no heartbeat');
    const buckets = await store.queryTelemetry('s', 'temp', 0, clock.wallNow() + 1, 1);
    expect(buckets[0]).toMatchObject({ count: 5, min: 20, max: 24 });
    expect(await fleet.ingestTelemetry('ghost', { temp: 1 })).toMatchObject({
      ok: false,
      error: { code: 'notFound' },
    });
  });

  it('firmware drift between spec and status becomes an event, with no corrective action', async () => {
    const { fleet, store } = await rig();
    await fleet.addDevice({ id: 's', kind: 'fleetvisor.generic', spec: { firmware: '2.0.0' } });
    await fleet.act('s', 'connect', {});
    fleet.machineOf('s')!.send({ type: 'HELLO', firmware: '1.0.0' });
    await fleet.reportStatus('s', { firmware: '1.0.0' });
    // The generic kind has no update action (issue 14): the drift is reported, nothing is run.
    expect(fleet.device('s')!.drift).toEqual([{ field: 'firmware', desired: '2.0.0', reported: '1.0.0' }]);
    expect(fleet.device('s')!.state).toBe('connected');
    await fleet.flush();
    const drift = await store.queryEvents({ deviceId: 's', kind: 'device.drift', limit: 5 });
    expect(drift.items).toHaveLength(1);
    const audit = await store.queryCommands({ deviceId: 's', limit: 5 });
    expect(audit.items.map((c) => c.ok && [c.value.action, c.value.actor])).not.toContainEqual([
      expect.anything(),
      'system:reconciler',
    ]);
    expect(await fleet.setSpec('s', { firmware: 'not ok!' })).toMatchObject({
      ok: false,
      error: { code: 'badSpec' },
    });
  });

  it('a device held in a state past its deadline is reported stuck by the periodic reconciler', async () => {
    const stuckKind = defineDevice({
      ...genericDevice,
      kind: 'test.sticky',
      stuckAfterMs: { connecting: 1000 },
    });
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const clock = createSimulatedClock();
    const store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 0, now: () => clock.wallNow() });
    const fleet = createFleet({
      runtime: createRuntime({ clock }),
      store,
      kinds: [stuckKind],
      reconcileIntervalMs: 500,
    });
    cleanups.push(async () => {
      await fleet.stop();
      await store.close();
    });
    await fleet.start();
    await fleet.addDevice({ id: 'slow', kind: 'test.sticky', attributes: { connectTimeoutMs: 600_000 } });
    await fleet.act('slow', 'connect', {});
    await clock.advanceAsync(1000);
    await settle();
    expect(fleet.device('slow')!.stuck).toBeUndefined();
    await clock.advanceAsync(1000);
    await settle();
    expect(fleet.device('slow')!.stuck).toMatchObject({ state: 'connecting', limitMs: 1000 });
  });
});

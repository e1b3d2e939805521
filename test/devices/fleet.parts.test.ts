/**
 * The fleet's parts in their own right, over a real SQLite file on a simulated clock: restore
 * after an app restart, crash-loop classification, link sync and liveness, the reconcile loop.
 * The kind here is the test's own, so these tests read the fleet, not the generic device.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { z } from 'zod';
import type { CommandCarrier, CommandErrorCode, TrackedCommand } from '../../src/devices/command-tracker.js';
import type { Drift } from '../../src/devices/define-device.js';
import { defineDevice } from '../../src/devices/define-device.js';
import type { Fleet, FleetActivity } from '../../src/devices/fleet.js';
import { createFleet } from '../../src/devices/fleet.js';
import type { Failure, Result } from '../../src/lib/result.js';
import type { SimulatedClock } from '../../src/runtime/clock.js';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import type { Logger } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { JsonObject } from '../../src/store/store.js';
import { tempDir } from '../store/helpers.js';

type LinkedEvent =
  | { type: 'CONNECT' }
  | { type: 'HELLO'; firmware: string }
  | { type: 'LINK_DOWN'; reason: string }
  | { type: 'LIVENESS_TIMEOUT' }
  | { type: 'BUMP' }
  | { type: 'CRASH' }
  | { type: 'CALIBRATE' };

const linkedMachine = setup({
  types: {} as {
    context: { count: number; firmware: string | null; lastDown: string | null };
    events: LinkedEvent;
  },
  actions: {
    explode: () => {
      throw new Error('linked device code crashed');
    },
    bump: assign({ count: ({ context }) => context.count + 1 }),
  },
}).createMachine({
  id: 'linked',
  initial: 'disconnected',
  context: { count: 0, firmware: null, lastDown: null },
  states: {
    disconnected: { on: { CONNECT: 'connecting', BUMP: { actions: 'bump' }, CRASH: { actions: 'explode' } } },
    connecting: {
      after: { 5000: 'disconnected' },
      on: {
        HELLO: { target: 'connected', actions: assign({ firmware: ({ event }) => event.firmware }) },
        LINK_DOWN: { target: 'disconnected', actions: assign({ lastDown: ({ event }) => event.reason }) },
      },
    },
    connected: {
      on: {
        LINK_DOWN: { target: 'disconnected', actions: assign({ lastDown: ({ event }) => event.reason }) },
        LIVENESS_TIMEOUT: { target: 'disconnected', actions: assign({ lastDown: 'silent' }) },
        BUMP: { actions: 'bump' },
        CRASH: { actions: 'explode' },
        CALIBRATE: 'calibrating',
      },
    },
    calibrating: { after: { 1000: 'connected' } },
  },
});

const linked = defineDevice({
  kind: 'test.linked',
  attributes: z.object({ livenessMs: z.number().int().default(10_000) }),
  machine: linkedMachine,
  actions: {
    connect: { args: z.object({}), toEvent: () => ({ type: 'CONNECT' }) },
    bump: { args: z.object({}), toEvent: () => ({ type: 'BUMP' }) },
    crash: { args: z.object({}), toEvent: () => ({ type: 'CRASH' }) },
    calibrate: { args: z.object({}), toEvent: () => ({ type: 'CALIBRATE' }) },
    setLevel: { args: z.object({ level: z.number() }), command: 'setLevel' },
  },
  spec: z.object({ level: z.number().optional(), calibrated: z.boolean().optional() }).loose(),
  reconcile: ({ spec, status }) => {
    const drift: Drift[] = [];
    if (typeof spec.level === 'number' && spec.level !== status.level)
      drift.push({
        field: 'level',
        desired: spec.level,
        reported: status.level ?? null,
        action: { name: 'setLevel', args: { level: spec.level } },
      });
    if (spec.calibrated === true && status.calibrated !== true)
      drift.push({
        field: 'calibrated',
        desired: true,
        reported: status.calibrated ?? null,
        action: { name: 'calibrate', args: {} },
      });
    return drift;
  },
  liveness: {
    states: ['connected'],
    timeoutMs: (a: { livenessMs: number }) => a.livenessMs,
    event: { type: 'LIVENESS_TIMEOUT' },
  },
});

/** A carrier that keeps what it puts on the wire (the device side is the test). */
interface WireCarrier extends CommandCarrier {
  readonly wire: TrackedCommand[];
}
function wireCarrier(): WireCarrier {
  const wire: TrackedCommand[] = [];
  return {
    name: 'test',
    queuesWhileOffline: true,
    resendsAfterDrop: true,
    replyTimeoutMs: 60_000,
    wire,
    prepare: (command): Result<JsonObject, Failure<CommandErrorCode>> => ({ ok: true, value: command.args }),
    dispatch(command) {
      wire.push(command);
      return 'sent';
    },
  };
}

interface Rig {
  clock: SimulatedClock;
  store: SqliteStore;
  fleet: Fleet;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function open(
  file: string,
  clock: SimulatedClock,
  extra: {
    reconcileIntervalMs?: number;
    deviceMaxRestarts?: number;
    devicePeriodMs?: number;
    logger?: Logger;
  } = {},
): Promise<Rig> {
  const store = await openSqliteStore({ file, telemetryFlushMs: 0, now: () => clock.wallNow() });
  const { logger, ...fleetOptions } = extra;
  const runtime = createRuntime({ clock, ...(logger ? { logger } : {}) });
  const fleet = createFleet({ runtime, store, kinds: [linked], reconcileIntervalMs: 0, ...fleetOptions });
  cleanups.push(async () => {
    await fleet.stop().catch(() => {});
    await store.close().catch(() => {});
  });
  return { clock, store, fleet };
}

async function rig(extra: Parameters<typeof open>[2] = {}): Promise<Rig> {
  const tmp = tempDir();
  cleanups.push(tmp.cleanup);
  const r = await open(tmp.file, createSimulatedClock({ wallStartMs: 1_800_000_000_000 }), extra);
  await r.fleet.start();
  return r;
}

const settle = () => flushMicrotasks(3);
/** Waits (real time, at most 2 s) for work that goes through SQLite's I/O. */
async function until(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition() && waited < 2000; waited += 5)
    await new Promise((resolve) => setTimeout(resolve, 5));
}
const contextOf = (fleet: Fleet, id: string) =>
  fleet.machineOf(id)!.getSnapshot()?.context as {
    count: number;
    firmware: string | null;
    lastDown: string | null;
  };
const eventsOf = async (store: SqliteStore, deviceId: string, kind: string) =>
  (await store.queryEvents({ deviceId, kind, limit: 50 })).items;

describe('restore after an app restart', () => {
  it('resumes each timer with the time that remained, keeps when the state was entered, and forgets removed devices', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const clock = createSimulatedClock({ wallStartMs: 1_800_000_000_000 });
    const first = await open(tmp.file, clock);
    await first.fleet.start();
    await first.fleet.addDevice({ id: 'a', kind: 'test.linked' });
    await first.fleet.addDevice({ id: 'gone', kind: 'test.linked' });
    await first.fleet.act('a', 'bump', {});
    await first.fleet.act('a', 'connect', {});
    const enteredAt = first.fleet.device('a')!.stateEnteredAt;
    await clock.advanceAsync(1500);
    expect((await first.fleet.removeDevice('gone')).ok).toBe(true);
    await first.fleet.stop();
    await first.store.close();

    // down for 2 s: the deadline is absolute, so 'a' has 5000 - 1500 - 2000 = 1500 ms left
    const second = await open(tmp.file, createSimulatedClock({ wallStartMs: clock.wallNow() + 2000 }));
    expect(await second.fleet.start()).toEqual({ started: 1, failed: [] });
    expect(second.fleet.device('gone')).toBeUndefined();
    const a = second.fleet.device('a')!;
    expect(a).toMatchObject({
      state: 'connecting',
      stateEnteredAt: enteredAt,
      health: 'running',
      restarts: 0,
    });
    expect(a.timers[0]!.wallDeadlineMs - second.clock.wallNow()).toBe(1500);
    expect(contextOf(second.fleet, 'a').count).toBe(1);
    // the link is unknown until the links layer reports it again
    expect(a.link).toEqual({ up: false, via: null, since: null, reason: null });
    await second.clock.advanceAsync(1499);
    expect(second.fleet.device('a')!.state).toBe('connecting');
    await second.clock.advanceAsync(1);
    expect(second.fleet.device('a')!.state).toBe('disconnected');
  });

  it('a snapshot of another version is refused with the reason; the device restarts from scratch on request', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const clock = createSimulatedClock();
    const first = await open(tmp.file, clock);
    await first.fleet.start();
    await first.fleet.addDevice({ id: 'v', kind: 'test.linked' });
    await first.fleet.act('v', 'connect', {});
    await first.fleet.stop();
    await first.store.close();

    const store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 0, now: () => clock.wallNow() });
    const fleet = createFleet({
      runtime: createRuntime({ clock }),
      store,
      kinds: [{ ...linked, snapshotVersion: 2 }],
      reconcileIntervalMs: 0,
    });
    cleanups.push(async () => {
      await fleet.stop();
      await store.close();
    });
    const summary = await fleet.start();
    expect(summary.started).toBe(0);
    expect(summary.failed).toEqual([{ id: 'v', code: 'badSnapshot', message: expect.any(String) }]);
    expect(summary.failed[0]!.message).toContain('snapshot version 1, the app reads version 2');
    expect(fleet.device('v')).toMatchObject({ health: 'failed', failure: { code: 'badSnapshot' } });
    expect(await fleet.act('v', 'bump', {})).toMatchObject({ ok: false, error: { code: 'deviceFailed' } });
    expect(await fleet.restartDevice('v')).toMatchObject({
      ok: true,
      value: { state: 'disconnected', health: 'running' },
    });
  });
});

describe('crash-loop classification', () => {
  it('past its intensity the device is failed with crashLoop, the intensity and the last crash; its events are stored', async () => {
    const { fleet, store } = await rig({ deviceMaxRestarts: 2, devicePeriodMs: 1000 });
    await fleet.addDevice({ id: 'p', kind: 'test.linked' });
    await fleet.addDevice({ id: 'q', kind: 'test.linked' });
    await fleet.act('p', 'bump', {});
    for (let i = 0; i < 3; i++) {
      await fleet.act('p', 'crash', {});
      await settle();
    }
    const p = fleet.device('p')!;
    expect(p).toMatchObject({
      health: 'failed',
      restarts: 2,
      pid: undefined,
      failure: { code: 'crashLoop' },
    });
    expect(p.failure!.message).toBe(
      'crashed more than 2 times within 1000 ms; last: error: linked device code crashed',
    );
    expect(fleet.device('q')).toMatchObject({ health: 'running' });
    expect(fleet.supervisor.alive).toBe(true);
    await fleet.flush();
    expect(await eventsOf(store, 'p', 'device.crashed')).toHaveLength(3);
    expect(await eventsOf(store, 'p', 'device.failed')).toHaveLength(1);
    // back from its last good state: the bump before the crashes is kept
    expect(await fleet.restartDevice('p')).toMatchObject({ ok: true, value: { health: 'running' } });
    expect(contextOf(fleet, 'p').count).toBe(1);
  });

  it('crashes spread wider than the period are restarted every time', async () => {
    const { fleet, clock } = await rig({ deviceMaxRestarts: 2, devicePeriodMs: 1000 });
    await fleet.addDevice({ id: 'p', kind: 'test.linked' });
    for (let i = 0; i < 5; i++) {
      await fleet.act('p', 'crash', {});
      await settle();
      await clock.advanceAsync(600);
    }
    expect(fleet.device('p')).toMatchObject({ health: 'running', restarts: 5, failure: undefined });
  });

  it('stopping the fleet fails no device', async () => {
    const { fleet } = await rig();
    await fleet.addDevice({ id: 'p', kind: 'test.linked' });
    await fleet.stop();
    expect(fleet.device('p')!.failure).toBeUndefined();
    expect(fleet.device('p')!.health).toBe('stopped');
  });
});

describe('link sync and liveness', () => {
  it('linkUp brings the machine to connected with the firmware; linkDown sends LINK_DOWN; a repeat changes nothing, a restate replaces the reason', async () => {
    const { fleet, clock, store } = await rig();
    await fleet.addDevice({ id: 'd', kind: 'test.linked' });
    expect(fleet.linkUp('d', { via: 'mqtt', firmware: '1.2.3' })).toEqual({ ok: true, value: undefined });
    expect(fleet.device('d')).toMatchObject({
      state: 'connected',
      link: { up: true, via: 'mqtt', since: clock.wallNow(), reason: null },
    });
    expect(contextOf(fleet, 'd').firmware).toBe('1.2.3');
    await clock.advanceAsync(100);
    fleet.linkUp('d', { via: 'mqtt', firmware: '1.2.3' }); // the same link again: no new `since`
    expect(fleet.device('d')!.link.since).toBe(clock.wallNow() - 100);

    fleet.linkDown('d', 'offline (last will)');
    expect(fleet.device('d')).toMatchObject({
      state: 'disconnected',
      link: { up: false, via: 'mqtt', reason: 'offline (last will)' },
    });
    expect(contextOf(fleet, 'd').lastDown).toBe('offline (last will)');
    fleet.linkDown('d', 'broker gone');
    expect(fleet.device('d')!.link.reason).toBe('offline (last will)');
    fleet.linkDown('d', 'broker gone', { restate: true });
    expect(fleet.device('d')!.link.reason).toBe('broker gone');
    await fleet.flush();
    expect(await eventsOf(store, 'd', 'device.online')).toHaveLength(1);
    const offline = await eventsOf(store, 'd', 'device.offline');
    expect(offline.map((e) => (e.ok ? (e.value.data as JsonObject).reason : null)).sort()).toEqual([
      'broker gone',
      'offline (last will)',
    ]);
  });

  it('a machine restarted after its link went away meets the link as it is now', async () => {
    const { fleet } = await rig();
    await fleet.addDevice({ id: 'd', kind: 'test.linked' });
    fleet.linkUp('d', { via: 'serial:/dev/ttyUSB0', firmware: '2.0.0' });
    const before = fleet.machineOf('d')!;
    before.send({ type: 'CRASH' });
    expect(before.alive).toBe(false);
    fleet.linkDown('d', 'port vanished'); // while no machine runs
    await settle();
    const after = fleet.machineOf('d')!;
    expect(after).not.toBe(before);
    expect(fleet.device('d')).toMatchObject({ state: 'disconnected', restarts: 1 });
    expect(contextOf(fleet, 'd').lastDown).toBe('port vanished');
  });

  it('silence past the liveness timeout shows the link down; the next sign of life brings link, machine and commands back', async () => {
    const { fleet, clock, store } = await rig();
    const carrier = wireCarrier();
    fleet.setCarrier('test.linked', carrier);
    await fleet.addDevice({ id: 'd', kind: 'test.linked', attributes: { livenessMs: 10_000 } });
    fleet.linkUp('d', { via: 'mqtt', firmware: '1.0.0' });
    expect(fleet.device('d')!.timers.map((t) => t.id)).toContain('liveness');
    for (let i = 0; i < 3; i++) {
      await clock.advanceAsync(8000);
      expect(fleet.touch('d')).toEqual({ ok: true, value: undefined });
    }
    await clock.advanceAsync(8000);
    expect((await fleet.ingestTelemetry('d', { temp: 21 })).ok).toBe(true);
    expect(fleet.device('d')!.state).toBe('connected');

    await clock.advanceAsync(10_000);
    expect(fleet.device('d')).toMatchObject({
      state: 'disconnected',
      link: { up: false, via: 'mqtt', reason: 'silent: no message within 10000 ms (liveness)' },
    });
    const pending = await fleet.act('d', 'setLevel', { level: 3 });
    expect(pending).toMatchObject({ ok: true, value: { commandStatus: 'pending' } });
    expect(carrier.wire).toHaveLength(0);

    fleet.touch('d');
    expect(fleet.device('d')).toMatchObject({
      state: 'connected',
      link: { up: true, via: 'mqtt', reason: null },
    });
    expect(carrier.wire.map((c) => c.action)).toEqual(['setLevel']);
    await fleet.flush();
    const online = await eventsOf(store, 'd', 'device.online');
    expect(
      online.map((e) => (e.ok ? ((e.value.data as JsonObject).after ?? null) : undefined)).sort(),
    ).toEqual([null, 'silence'].sort());
  });

  it('a link drop reported while the device is silent replaces the silence as the reason', async () => {
    const { fleet, clock } = await rig();
    await fleet.addDevice({ id: 'd', kind: 'test.linked', attributes: { livenessMs: 1000 } });
    fleet.linkUp('d', { via: 'mqtt', firmware: null });
    fleet.machineOf('d')!.send({ type: 'HELLO', firmware: '1.0.0' });
    await clock.advanceAsync(1000);
    expect(fleet.device('d')!.link.reason).toContain('silent');
    fleet.linkDown('d', 'offline (last will)');
    expect(fleet.device('d')!.link).toMatchObject({ up: false, reason: 'offline (last will)' });
    // no longer silent: a heartbeat does not bring the link back, a hello does
    fleet.touch('d');
    expect(fleet.device('d')!.link.up).toBe(false);
    fleet.linkUp('d', { via: 'mqtt', firmware: '1.0.0' });
    expect(fleet.device('d')).toMatchObject({ state: 'connected', link: { up: true } });
  });

  it('reports from unknown devices are refused with notFound', async () => {
    const { fleet } = await rig();
    expect(fleet.linkUp('ghost', { via: 'mqtt', firmware: null })).toMatchObject({
      ok: false,
      error: { code: 'notFound' },
    });
    expect(fleet.linkDown('ghost', 'x')).toMatchObject({ ok: false, error: { code: 'notFound' } });
    expect(fleet.touch('ghost')).toMatchObject({ ok: false, error: { code: 'notFound' } });
    expect(await fleet.reportStatus('ghost', {})).toMatchObject({ ok: false, error: { code: 'notFound' } });
    expect(await fleet.setSpec('ghost', {})).toMatchObject({ ok: false, error: { code: 'notFound' } });
  });
});

describe('the reconcile loop', () => {
  it('a status report the store cannot write is reported, not thrown (the link hub fires and forgets it)', async () => {
    const errors: string[] = [];
    const logger: Logger = {
      debug: () => {},
      info: () => {},
      warn: () => {},
      error: (message) => errors.push(message),
    };
    const { fleet, store } = await rig({ logger });
    expect((await fleet.addDevice({ id: 'st-1', kind: 'test.linked', name: 'st-1' })).ok).toBe(true);
    await store.close();
    await expect(fleet.reportStatus('st-1', { firmware: '2.0.0' })).resolves.toMatchObject({ ok: true });
    expect(errors.some((m) => m.includes('the reported status of st-1 was not stored'))).toBe(true);
  });

  it('the periodic pass sends one corrective command at a time, and stops once status agrees', async () => {
    const { fleet, clock } = await rig({ reconcileIntervalMs: 1000 });
    const carrier = wireCarrier();
    fleet.setCarrier('test.linked', carrier);
    await fleet.addDevice({ id: 'd', kind: 'test.linked', spec: { level: 5 } });
    fleet.linkUp('d', { via: 'mqtt', firmware: '1.0.0' });
    // each pass waits for the audit write (real SQLite I/O) before the next is scheduled
    for (let i = 0; i < 3; i++) {
      await clock.advanceAsync(1000);
      await until(() => fleet.commands.open('d').length === 1);
    }
    expect(fleet.device('d')!.drift).toEqual([
      { field: 'level', desired: 5, reported: null, action: { name: 'setLevel', args: { level: 5 } } },
    ]);
    expect(carrier.wire.map((c) => [c.action, c.args, c.actor])).toEqual([
      ['setLevel', { level: 5 }, 'system:reconciler'],
    ]);
    expect(fleet.commands.settle(carrier.wire[0]!.commandId, { ok: true }, 'd')).toBe('completed');
    await fleet.reportStatus('d', { level: 5 });
    expect(fleet.device('d')!.drift).toEqual([]);
    for (let i = 0; i < 3; i++) {
      await clock.advanceAsync(1000);
      await fleet.flush();
    }
    expect(carrier.wire).toHaveLength(1);
    expect(fleet.commands.open('d')).toEqual([]);
  });

  it('an event as corrective action waits until the machine can take it', async () => {
    const { fleet, store } = await rig();
    await fleet.addDevice({ id: 'd', kind: 'test.linked', spec: { calibrated: true } });
    await fleet.reportStatus('d', { calibrated: false });
    expect(fleet.device('d')).toMatchObject({ state: 'disconnected', drift: [{ field: 'calibrated' }] });
    expect((await store.queryCommands({ deviceId: 'd', limit: 5 })).items).toHaveLength(0);
    fleet.linkUp('d', { via: 'mqtt', firmware: '1.0.0' });
    await fleet.reconcileNow();
    expect(fleet.device('d')!.state).toBe('calibrating');
    const audit = await store.queryCommands({ deviceId: 'd', limit: 5 });
    expect(audit.items.map((c) => c.ok && [c.value.action, c.value.actor])).toEqual([
      ['calibrate', 'system:reconciler'],
    ]);
    await fleet.flush();
    expect(await eventsOf(store, 'd', 'device.drift')).toHaveLength(1);
  });

  it('a spec the kind refuses is refused with badSpec and changes nothing', async () => {
    const { fleet } = await rig();
    await fleet.addDevice({ id: 'd', kind: 'test.linked', spec: { level: 1 } });
    const r = await fleet.setSpec('d', { level: 'high' });
    expect(r).toMatchObject({ ok: false, error: { code: 'badSpec' } });
    if (!r.ok) expect(r.error.message).toContain('level');
    expect(fleet.device('d')!.spec).toEqual({ level: 1 });
  });
});

describe('the activity feed', () => {
  it('tells every observer of telemetry and signs of life; one that throws is reported and the others still hear', async () => {
    const errors: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn() {}, error: (message) => errors.push(message) };
    const { fleet, clock } = await rig({ logger });
    await fleet.addDevice({ id: 'd', kind: 'test.linked' });
    const heard: FleetActivity[] = [];
    fleet.observe(() => {
      throw new Error('a broken view');
    });
    const stop = fleet.observe((a) => heard.push(a));
    expect(await fleet.ingestTelemetry('d', { temp: 21.5 }, 42)).toEqual({ ok: true, value: 1 });
    await clock.advanceAsync(10);
    fleet.touch('d');
    expect(heard).toEqual([
      { type: 'telemetry', deviceId: 'd', at: clock.wallNow() - 10, values: { temp: 21.5 }, deviceTs: 42 },
      { type: 'seen', deviceId: 'd', at: clock.wallNow() },
    ]);
    expect(errors.filter((m) => m === 'fleet: an activity observer threw')).toHaveLength(2);
    stop();
    fleet.touch('d');
    expect(heard).toHaveLength(2);
  });

  it('a carrier serves its kind until it unregisters; then a device command has noLink', async () => {
    const { fleet } = await rig();
    await fleet.addDevice({ id: 'd', kind: 'test.linked' });
    const carrier = wireCarrier();
    const unregister = fleet.setCarrier('test.linked', carrier);
    fleet.linkUp('d', { via: 'mqtt', firmware: '1.0.0' });
    expect(await fleet.act('d', 'setLevel', { level: 1 })).toMatchObject({
      ok: true,
      value: { commandStatus: 'sent', state: 'connected' },
    });
    unregister();
    expect(await fleet.act('d', 'setLevel', { level: 2 })).toMatchObject({
      ok: false,
      error: { code: 'noLink' },
    });
    expect(carrier.wire.map((c) => c.args)).toEqual([{ level: 1 }]);
  });
});

/**
 * The alarm engine on a real fleet over a real SQLite file, on a simulated clock: rules as
 * event-manager handlers fed by telemetry, lifecycle and ticks; alarms kept with who acked,
 * shelved and cleared them; a rule that throws is removed and reported while the rest runs on.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { z } from 'zod';
import type { AlarmEngine } from '../../src/alarms/alarm-engine.js';
import { createAlarmEngine } from '../../src/alarms/alarm-engine.js';
import { compileRule } from '../../src/alarms/evaluate.js';
import { openSqliteAlarmStore } from '../../src/alarms/sqlite-alarm-store.js';
import { defineDevice } from '../../src/devices/define-device.js';
import type { Fleet } from '../../src/devices/fleet.js';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import type { SimulatedClock } from '../../src/runtime/clock.js';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import type { RuntimeEvent } from '../../src/runtime/events.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { recordingLogger, tempDir } from '../store/helpers.js';

const fragile = defineDevice({
  kind: 'test.fragile',
  attributes: z.object({}),
  machine: setup({
    types: {} as { context: { n: number }; events: { type: 'POISON' } | { type: 'BUMP' } },
    actions: {
      explode: () => {
        throw new Error('device code crashed');
      },
    },
  }).createMachine({
    id: 'fragile',
    initial: 'idle',
    context: { n: 0 },
    states: {
      idle: {
        on: {
          POISON: { actions: 'explode' },
          BUMP: { actions: assign({ n: ({ context }) => context.n + 1 }) },
        },
      },
    },
  }),
  actions: { poison: { args: z.object({}), toEvent: () => ({ type: 'POISON' }) } },
});

interface Rig {
  clock: SimulatedClock;
  runtime: Runtime;
  fleet: Fleet;
  alarms: AlarmEngine;
  events: RuntimeEvent[];
  logger: ReturnType<typeof recordingLogger>;
  close: () => Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function rig(
  file: string,
  extra: { compile?: typeof compileRule; configFile?: string; clock?: SimulatedClock } = {},
): Promise<Rig> {
  const clock = extra.clock ?? createSimulatedClock({ wallStartMs: 1_800_000_000_000 });
  const logger = recordingLogger();
  const runtime = createRuntime({ clock, logger });
  const events: RuntimeEvent[] = [];
  runtime.events.subscribe((e) => events.push(e));
  const store = await openSqliteStore({ file, telemetryFlushMs: 0, now: () => clock.wallNow() });
  const fleet = createFleet({ runtime, store, kinds: [genericDevice, fragile], reconcileIntervalMs: 0 });
  await fleet.start();
  const alarmStore = await openSqliteAlarmStore({ file });
  const alarms = createAlarmEngine({
    runtime,
    fleet,
    store: alarmStore,
    ...(extra.compile ? { compile: extra.compile } : {}),
    ...(extra.configFile ? { configFile: extra.configFile } : {}),
  });
  await alarms.start();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await alarms.stop();
    await alarmStore.close();
    await fleet.stop();
    await store.close();
  };
  cleanups.push(close);
  return { clock, runtime, fleet, alarms, events, logger, close };
}

const hot = {
  id: 'hot',
  type: 'threshold',
  metric: 'temp',
  op: 'above',
  value: 10,
  forMs: 2000,
  hysteresis: 1,
};

describe('alarm engine', () => {
  it('a threshold rule raises after its duration; ack, shelve and clear are kept with who and when', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const r = await rig(tmp.file);
    await r.fleet.addDevice({ id: 'd1', kind: 'fleetvisor.generic' });
    await r.fleet.addDevice({ id: 'd2', kind: 'fleetvisor.generic' });
    const set = await r.alarms.setRule({ ...hot, severity: 'critical' }, 'alice');
    expect(set).toMatchObject({
      ok: true,
      value: { status: 'running', description: 'temp above 10 for 2 s (hysteresis 1)' },
    });
    expect(await r.alarms.setRule({ ...hot, op: 'over' }, 'alice')).toMatchObject({
      ok: false,
      error: { code: 'badRule', message: expect.stringContaining('op:') },
    });
    const seen: string[] = [];
    r.alarms.listen((a, e) => seen.push(`${e} ${a.id} ${a.deviceId}`));

    await r.fleet.ingestTelemetry('d1', { temp: 22 });
    await r.fleet.ingestTelemetry('d2', { temp: 5 });
    await r.clock.advanceAsync(1000);
    await r.alarms.settle();
    expect(r.alarms.counts().active).toBe(0);
    await r.clock.advanceAsync(1000);
    await r.alarms.settle();
    expect(seen).toEqual(['raised 1 d1']);
    expect(r.alarms.counts()).toMatchObject({ active: 1, unacked: 1, bySeverity: { critical: 1 } });
    const [a] = await r.alarms.list({ state: 'active', limit: 10 });
    expect(a).toMatchObject({
      id: 1,
      ruleId: 'hot',
      deviceId: 'd1',
      severity: 'critical',
      value: 22,
      ackedAt: null,
    });
    expect(a?.raisedAt).toBe(r.clock.wallNow());

    expect(await r.alarms.ack(1, 'bob')).toMatchObject({
      ok: true,
      value: { ackedBy: 'bob', ackedAt: r.clock.wallNow() },
    });
    expect(r.alarms.counts()).toMatchObject({ active: 1, unacked: 0 });
    expect(await r.alarms.ack(99, 'bob')).toMatchObject({ ok: false, error: { code: 'notFound' } });
    expect(await r.alarms.list({ state: 'unacked', limit: 10 })).toEqual([]);

    const shelved = await r.alarms.shelve(1, 60_000, 'carol');
    expect(shelved).toMatchObject({
      ok: true,
      value: { shelvedBy: 'carol', shelvedUntil: r.clock.wallNow() + 60_000 },
    });
    expect(r.alarms.counts()).toMatchObject({ shelved: 1 });
    expect(await r.alarms.list({ state: 'shelved', limit: 10 })).toHaveLength(1);

    // In the hysteresis band: still up; below it: cleared by the system.
    await r.fleet.ingestTelemetry('d1', { temp: 9.5 });
    await r.alarms.settle();
    expect(r.alarms.counts().active).toBe(1);
    await r.fleet.ingestTelemetry('d1', { temp: 8 });
    await r.alarms.settle();
    expect(r.alarms.counts().active).toBe(0);
    const [cleared] = await r.alarms.list({ state: 'cleared', limit: 10 });
    expect(cleared).toMatchObject({ id: 1, clearedBy: 'system', ackedBy: 'bob', shelvedBy: 'carol' });
    expect(await r.alarms.shelve(1, 1000, 'carol')).toMatchObject({
      ok: false,
      error: { code: 'notActive' },
    });
    // Filters: severity, device.
    expect(await r.alarms.list({ severity: 'minor', limit: 10 })).toEqual([]);
    expect(await r.alarms.list({ deviceId: 'd1', limit: 10 })).toHaveLength(1);
    expect(await r.alarms.list({ deviceId: 'd2', limit: 10 })).toEqual([]);
    expect(seen).toEqual(['raised 1 d1', 'acked 1 d1', 'shelved 1 d1', 'cleared 1 d1']);
  });

  it('lifecycle rules: offline for a duration, crash loop; a scope that leaves a device out clears its alarm', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const r = await rig(tmp.file);
    await r.fleet.addDevice({ id: 'p', kind: 'test.fragile' });
    await r.fleet.addDevice({ id: 'g', kind: 'fleetvisor.generic' });
    r.fleet.linkUp('g', { via: 'mqtt', firmware: '1.0.0' });
    expect(
      (await r.alarms.setRule({ id: 'off', type: 'offline', forMs: 5000, severity: 'minor' }, 'ops')).ok,
    ).toBe(true);
    expect(
      (await r.alarms.setRule({ id: 'loop', type: 'crashLoop', scope: { kind: 'test.fragile' } }, 'ops')).ok,
    ).toBe(true);
    await r.alarms.settle();
    r.fleet.linkDown('g', 'offline (last will)');
    await r.clock.advanceAsync(4000);
    await r.alarms.settle();
    // 'p' never came online: offline since the rule was set, as 'g' since its link went down.
    expect(await r.alarms.list({ state: 'active', limit: 10 })).toEqual([]);
    await r.clock.advanceAsync(1000);
    await r.alarms.settle();
    expect(
      (await r.alarms.list({ state: 'active', ruleId: 'off', limit: 10 })).map((a) => a.deviceId),
    ).toEqual(['g', 'p']);
    r.fleet.linkUp('g', { via: 'mqtt', firmware: '1.0.0' });
    await r.alarms.settle();
    expect(
      (await r.alarms.list({ state: 'active', ruleId: 'off', limit: 10 })).map((a) => a.deviceId),
    ).toEqual(['p']);

    for (let i = 0; i < 4; i++) {
      await r.fleet.act('p', 'poison', {});
      await flushMicrotasks(3);
    }
    expect(r.fleet.device('p')?.failure?.code).toBe('crashLoop');
    await r.alarms.settle();
    expect(await r.alarms.list({ state: 'active', ruleId: 'loop', limit: 10 })).toMatchObject([
      { deviceId: 'p', severity: 'major' },
    ]);
    expect(await r.fleet.restartDevice('p')).toMatchObject({ ok: true });
    await r.alarms.settle();
    expect(await r.alarms.list({ state: 'active', ruleId: 'loop', limit: 10 })).toEqual([]);

    // A scope that leaves the device out clears its alarm.
    await r.alarms.setRule(
      { id: 'off', type: 'offline', forMs: 5000, severity: 'minor', scope: { tag: 'none' } },
      'eve',
    );
    expect((await r.alarms.list({ ruleId: 'off', deviceId: 'p', limit: 1 }))[0]?.clearedBy).toBe(
      'rule changed by eve',
    );
    expect(await r.alarms.deleteRule('off', 'ops')).toEqual({ ok: true, value: { deleted: 'off' } });
    expect(await r.alarms.list({ state: 'active', limit: 10 })).toEqual([]);
    expect(await r.alarms.deleteRule('off', 'ops')).toMatchObject({ ok: false, error: { code: 'notFound' } });
  });

  it('circuitOpen follows the command circuit breaker of the device: raised when it opens, cleared when it closes', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const r = await rig(tmp.file);
    await r.fleet.addDevice({ id: 'g', kind: 'fleetvisor.generic' });
    await r.alarms.setRule({ id: 'cb', type: 'circuitOpen', severity: 'warning' }, 'ops');
    const command = (n: number, status: 'timedOut' | 'succeeded') => ({
      commandId: `c${n}`,
      deviceId: 'g',
      action: 'ping',
      args: {},
      actor: 'test',
      carrier: 'protocol',
      status,
      requestedAt: 0,
      expiresAt: null,
      sentAt: 0,
      attempts: 1,
      completedAt: 1,
    });
    for (let i = 0; i < 5; i++) {
      expect(r.fleet.guards.check({ deviceId: 'g', action: 'ping' })).toBeUndefined();
      r.fleet.guards.settled?.(command(i, 'timedOut'));
    }
    expect(r.fleet.guards.breakerState('g')).toBe('open');
    await r.alarms.settle();
    expect(await r.alarms.list({ state: 'active', limit: 10 })).toMatchObject([
      { ruleId: 'cb', deviceId: 'g', severity: 'warning', message: 'command circuit breaker open' },
    ]);
    // An answer from the device closes the breaker, and the alarm clears.
    r.fleet.guards.settled?.(command(9, 'succeeded'));
    expect(r.fleet.guards.breakerState('g')).toBe('closed');
    await r.alarms.settle();
    expect(r.alarms.counts().active).toBe(0);
  });

  it('a rule that throws is removed and reported; the other rules and the fleet run on; saving it again reinstalls it', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    let explode = true;
    const compile: typeof compileRule = (rule, applies) => {
      const real = compileRule(rule, applies);
      if (rule.id !== 'boom') return real;
      return {
        ...real,
        handle(input, emit) {
          if (explode && input.type === 'telemetry') throw new Error('rule bug');
          real.handle(input, emit);
        },
      };
    };
    const r = await rig(tmp.file, { compile });
    await r.fleet.addDevice({ id: 'd1', kind: 'fleetvisor.generic' });
    await r.alarms.setRule({ id: 'boom', type: 'threshold', metric: 'temp', op: 'above', value: 0 }, 'ops');
    await r.alarms.setRule({ ...hot, forMs: 0 }, 'ops');
    expect(r.alarms.manager?.whichHandlers()).toEqual(['rule:boom', 'rule:hot']);
    expect((await r.fleet.ingestTelemetry('d1', { temp: 30 })).ok).toBe(true);
    await r.alarms.settle();
    expect(r.alarms.manager?.whichHandlers()).toEqual(['rule:hot']);
    expect(r.alarms.manager?.alive).toBe(true);
    expect(r.events).toContainEqual(
      expect.objectContaining({ type: 'handler.removed', handlerId: 'rule:boom', error: expect.any(Error) }),
    );
    expect(
      r.logger.lines.some((l) => l.level === 'error' && /handler rule:boom of alarms threw/.test(l.message)),
    ).toBe(true);
    expect(r.alarms.rules().find((v) => v.rule.id === 'boom')).toMatchObject({
      status: 'crashed',
      error: 'rule bug',
    });
    expect(await r.alarms.list({ state: 'active', limit: 10 })).toMatchObject([
      { ruleId: 'hot', deviceId: 'd1' },
    ]);
    expect(r.fleet.device('d1')?.health).toBe('running');

    explode = false;
    await r.alarms.setRule({ id: 'boom', type: 'threshold', metric: 'temp', op: 'above', value: 0 }, 'ops');
    expect(r.alarms.rules().find((v) => v.rule.id === 'boom')?.status).toBe('running');
    await r.fleet.ingestTelemetry('d1', { temp: 31 });
    await r.alarms.settle();
    expect((await r.alarms.list({ state: 'active', limit: 10 })).map((a) => a.ruleId).sort()).toEqual([
      'boom',
      'hot',
    ]);
  });

  it('rules and open alarms survive a restart; the config file adds rules, a bad one is skipped with its field named', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const clock = createSimulatedClock({ wallStartMs: 1_800_000_000_000 });
    const first = await rig(tmp.file, { clock });
    await first.fleet.addDevice({ id: 'd1', kind: 'fleetvisor.generic' });
    await first.alarms.setRule({ ...hot, forMs: 0 }, 'ops');
    await first.fleet.ingestTelemetry('d1', { temp: 30 });
    await first.alarms.settle();
    await first.close();

    const configFile = join(tmp.dir, 'alarm-rules.json');
    writeFileSync(
      configFile,
      JSON.stringify([
        { id: 'cold', type: 'threshold', metric: 'temp', op: 'below', value: 0 },
        { id: 'bad', type: 'threshold', metric: 'temp', op: 'above', value: 'ten' },
      ]),
    );
    const second = await rig(tmp.file, { clock, configFile });
    expect(second.alarms.rules().map((v) => `${v.rule.id} ${v.updatedBy} ${v.active}`)).toEqual([
      'hot ops 1',
      'cold config 0',
    ]);
    expect(second.logger.lines.some((l) => /alarm rule \[1\] .* skipped: value:/.test(l.message))).toBe(true);
    expect(second.alarms.counts().active).toBe(1);
    await second.fleet.ingestTelemetry('d1', { temp: 5 });
    await second.alarms.settle();
    expect(second.alarms.counts().active).toBe(0);
    expect(await second.alarms.list({ limit: 10 })).toMatchObject([{ id: 1, clearedBy: 'system' }]);
  });
});

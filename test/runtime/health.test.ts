import { describe, expect, it } from 'vitest';
import { createSimulatedClock } from '../../src/runtime/clock.js';
import type { RuntimeEvent } from '../../src/runtime/events.js';
import type { HealthLevel, HealthStatus } from '../../src/runtime/health.js';
import { createHealthRegistry, isHealthStatus, worstHealth } from '../../src/runtime/health.js';
import { ProcessBase } from '../../src/runtime/process.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';

class Service extends ProcessBase {
  constructor(rt: Runtime) {
    super(rt, 'server', 'service');
  }
  protected terminate(): void {}
}

function setup() {
  const clock = createSimulatedClock();
  const rt = createRuntime({ clock });
  const events: RuntimeEvent[] = [];
  rt.events.subscribe((e) => events.push(e));
  return { rt, clock, events, health: createHealthRegistry(rt) };
}

const answerAfter = (rt: Runtime, ms: number, status: HealthStatus) =>
  new Promise<HealthStatus>((resolve) => rt.timers.schedule(ms, () => resolve(status)));

describe('createHealthRegistry', () => {
  it('with no checks the aggregate is ok', async () => {
    const { health } = setup();
    expect(await health.checkAll()).toEqual({ status: 'ok', checks: [] });
  });

  it('the aggregate is the worst status, and each check is listed in registration order', async () => {
    const { health } = setup();
    health.register('broker', () => ({ status: 'ok' }));
    health.register('db', async () => ({ status: 'degraded', detail: 'WAL is 80 MB' }));
    expect(await health.checkAll()).toEqual({
      status: 'degraded',
      checks: [
        { name: 'broker', status: 'ok', durationMs: 0 },
        { name: 'db', status: 'degraded', detail: 'WAL is 80 MB', durationMs: 0 },
      ],
    });
    health.register('serial', () => ({ status: 'down', detail: 'ttyUSB0 gone' }));
    expect((await health.checkAll()).status).toBe('down');
  });

  it('a check that throws or rejects counts as down, with the reason', async () => {
    const { health } = setup();
    health.register('throws', () => {
      throw new Error('no socket');
    });
    health.register('rejects', () => Promise.reject(new Error('query failed')));
    const report = await health.checkAll();
    expect(report.status).toBe('down');
    expect(report.checks).toEqual([
      { name: 'throws', status: 'down', detail: 'check threw: no socket', durationMs: 0 },
      { name: 'rejects', status: 'down', detail: 'check failed: query failed', durationMs: 0 },
    ]);
  });

  it('a check that exceeds the timeout counts as down; the timeout runs on the runtime timers', async () => {
    const { rt, clock, health } = setup();
    health.register('stuck', () => new Promise<HealthStatus>(() => {}));
    let report: Awaited<ReturnType<typeof health.checkAll>> | undefined;
    void health.checkAll(2000).then((r) => {
      report = r;
    });
    await clock.advanceAsync(1999);
    expect(report).toBeUndefined();
    expect(rt.timers.ownedBy(0).map((t) => t.label)).toEqual(['health:stuck']);
    await clock.advanceAsync(1);
    expect(report).toEqual({
      status: 'down',
      checks: [{ name: 'stuck', status: 'down', detail: 'no answer within 2000 ms', durationMs: 2000 }],
    });
  });

  it('runs the checks concurrently: two 1000 ms checks take 1000 ms, not 2000', async () => {
    const { rt, clock, health } = setup();
    health.register('a', () => answerAfter(rt, 1000, { status: 'ok' }));
    health.register('b', () => answerAfter(rt, 1000, { status: 'ok' }));
    let doneAt: number | undefined;
    void health.checkAll(5000).then(() => {
      doneAt = clock.now();
    });
    await clock.advanceAsync(1000);
    expect(doneAt).toBe(1000);
    expect(rt.timers.size()).toBe(0); // both timeouts were cancelled
  });

  it('an answer that is not a health status counts as down', async () => {
    const { health } = setup();
    health.register('garbage', () => ({ status: 'fine' }) as unknown as HealthStatus);
    health.register('nothing', () => undefined as unknown as HealthStatus);
    const report = await health.checkAll();
    expect(report.checks.map((c) => [c.status, c.detail])).toEqual([
      ['down', 'invalid health status: {"status":"fine"}'],
      ['down', 'invalid health status: undefined'],
    ]);
  });

  it('a late answer after the timeout does not change the report', async () => {
    const { rt, clock, health } = setup();
    health.register('slow', () => answerAfter(rt, 3000, { status: 'ok' }));
    const report = health.checkAll(1000);
    await clock.advanceAsync(3000);
    expect((await report).checks[0]).toMatchObject({ status: 'down', durationMs: 1000 });
  });

  it('names are unique; unregister removes a check', async () => {
    const { health } = setup();
    expect(health.register('db', () => ({ status: 'ok' }))).toEqual({ ok: true });
    expect(health.register('db', () => ({ status: 'down' }))).toMatchObject({
      ok: false,
      error: { code: 'alreadyRegistered' },
    });
    health.register('broker', () => ({ status: 'ok' }));
    expect(health.names()).toEqual(['db', 'broker']);
    expect(health.unregister('db')).toBe(true);
    expect(health.unregister('db')).toBe(false);
    expect(health.names()).toEqual(['broker']);
  });

  it('a check tied to a process goes away when the process exits, so its restart can register again', async () => {
    const { rt, health } = setup();
    const first = new Service(rt);
    expect(health.register('link', () => ({ status: 'ok' }), { process: first })).toEqual({ ok: true });
    first.kill();
    expect(health.names()).toEqual([]);
    const restarted = new Service(rt);
    expect(health.register('link', () => ({ status: 'ok' }), { process: restarted })).toEqual({ ok: true });
    expect(health.register('other', () => ({ status: 'ok' }), { process: first })).toMatchObject({
      ok: false,
      error: { code: 'noproc' },
    });
  });

  it('an old process exiting does not remove a newer check registered under its name', async () => {
    const { rt, health } = setup();
    const old = new Service(rt);
    health.register('link', () => ({ status: 'ok' }), { process: old });
    health.unregister('link');
    health.register('link', () => ({ status: 'degraded' }));
    old.kill();
    expect(health.names()).toEqual(['link']);
  });

  it('each check emits a duration measurement', async () => {
    const { rt, clock, events, health } = setup();
    health.register('db', () => answerAfter(rt, 30, { status: 'degraded' }));
    const report = health.checkAll();
    await clock.advanceAsync(30);
    await report;
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'measurement',
        name: 'health.check',
        value: 30,
        unit: 'ms',
        tags: { check: 'db', status: 'degraded' },
      }),
    );
  });

  it('misuse throws: an empty name, a missing check, a negative timeout', async () => {
    const { health } = setup();
    expect(() => health.register('', () => ({ status: 'ok' }))).toThrow(TypeError);
    // @ts-expect-error: check is required
    expect(() => health.register('x')).toThrow(TypeError);
    await expect(health.checkAll(-1)).rejects.toThrow(RangeError);
  });
});

describe('worstHealth and isHealthStatus', () => {
  it.each<[HealthLevel[], HealthLevel]>([
    [[], 'ok'],
    [['ok', 'ok'], 'ok'],
    [['ok', 'degraded'], 'degraded'],
    [['degraded', 'down', 'ok'], 'down'],
  ])('worst of %j is %s', (levels, worst) => {
    expect(worstHealth(levels)).toBe(worst);
  });

  it('accepts only a known status with an optional string detail', () => {
    expect(isHealthStatus({ status: 'ok' })).toBe(true);
    expect(isHealthStatus({ status: 'down', detail: 'x' })).toBe(true);
    expect(isHealthStatus({ status: 'down', detail: 3 })).toBe(false);
    expect(isHealthStatus({ status: 'great' })).toBe(false);
    expect(isHealthStatus(null)).toBe(false);
  });
});

/**
 * What `whichChildren` / `countChildren` answer while a group restart waits for a slow child to
 * stop. OTP answers such calls only after the restart, so a caller never sees a half-done one;
 * our queries are synchronous snapshots, so they show the children being restarted as
 * `restarting` (a spec, not active — OTP's own rule for a restarting child, count_children).
 */
import { describe, expect, it } from 'vitest';
import { startDynamicSupervisor } from '../../src/runtime/dynamic-supervisor.js';
import type { Process } from '../../src/runtime/process.js';
import type { Supervisor, SupervisorOptions } from '../../src/runtime/supervisor.js';
import { startSupervisor } from '../../src/runtime/supervisor.js';
import type { TestRig } from './helpers.js';
import { createRig, TestWorker, workers } from './helpers.js';

async function start(rig: TestRig, options: SupervisorOptions): Promise<Supervisor> {
  const res = await startSupervisor(rig.rt, options);
  if (!res.ok) throw new Error(res.error.message);
  return res.value;
}

const statuses = (sup: Supervisor) => Object.fromEntries(sup.whichChildren().map((c) => [c.id, c.status]));

describe('queries while a group restart waits for a slow child to stop', () => {
  it('one_for_all: no child of the group is reported stopped; all show restarting, then running', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      strategy: 'oneForAll',
      children: [w.spec('a'), { ...w.spec('slow', { stopTakesMs: 1000 }), shutdown: 5000 }, w.spec('c')],
    });
    w.get('a').crash();
    await rig.settle();
    // c is stopped, slow is being asked to stop and takes 1 s.
    expect(w.get('slow').status).toBe('stopping');
    expect(statuses(sup)).toEqual({ a: 'restarting', slow: 'restarting', c: 'restarting' });
    for (const c of sup.whichChildren()) expect(c.pid).toBeUndefined();
    expect(sup.countChildren()).toEqual({ specs: 3, active: 0, supervisors: 0, workers: 3 });

    await rig.clock.advanceAsync(1000);
    await rig.settle();
    expect(statuses(sup)).toEqual({ a: 'running', slow: 'running', c: 'running' });
    expect(sup.countChildren()).toEqual({ specs: 3, active: 3, supervisors: 0, workers: 3 });
  });

  it('rest_for_one: the restarted tail shows restarting, the children before it stay running', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      strategy: 'restForOne',
      children: [w.spec('a'), w.spec('b'), { ...w.spec('slow', { stopTakesMs: 1000 }), shutdown: 5000 }],
    });
    w.get('b').crash();
    await rig.settle();
    expect(statuses(sup)).toEqual({ a: 'running', b: 'restarting', slow: 'restarting' });
    expect(sup.countChildren()).toMatchObject({ specs: 3, active: 1 });
    await rig.clock.advanceAsync(1000);
    await rig.settle();
    expect(statuses(sup)).toEqual({ a: 'running', b: 'running', slow: 'running' });
  });

  it('one_for_one: a child whose start is slow shows restarting, never stopped, until it runs', async () => {
    const rig = createRig();
    const w = workers(rig);
    let slowStart = false;
    const plain = w.spec('a');
    const sup = await start(rig, {
      children: [
        {
          id: 'a',
          start: () =>
            slowStart
              ? new Promise((resolve) => rig.rt.timers.schedule(500, () => resolve(plain.start())))
              : plain.start(),
        },
      ],
    });
    slowStart = true;
    w.get('a').crash();
    await rig.settle();
    expect(statuses(sup)).toEqual({ a: 'restarting' });
    await rig.clock.advanceAsync(500);
    await rig.settle();
    expect(statuses(sup)).toEqual({ a: 'running' });
  });

  it('after a failed group restart only the failed child shows restarting, the others stopped (OTP try_again_restart)', async () => {
    const rig = createRig();
    const w = workers(rig);
    let fail = false;
    const b = w.spec('b');
    const sup = await start(rig, {
      strategy: 'oneForAll',
      maxRestarts: 1000,
      children: [
        w.spec('a'),
        {
          id: 'b',
          start: () => {
            if (fail) throw new Error('cannot start');
            return b.start();
          },
        },
        w.spec('c'),
      ],
    });
    fail = true;
    w.get('a').crash();
    await rig.settle();
    expect(statuses(sup)).toEqual({ a: 'stopped', b: 'restarting', c: 'stopped' });
    fail = false;
    await rig.clock.advanceAsync(1);
    await rig.settle();
    expect(statuses(sup)).toEqual({ a: 'running', b: 'running', c: 'running' });
  });

  it('a dynamic supervisor shows a child whose restart is slow to start as restarting, not running without a pid', async () => {
    const rig = createRig();
    const res = startDynamicSupervisor(rig.rt, { name: 'fleet' });
    if (!res.ok) throw new Error(res.error.message);
    const sup = res.value;
    let hold: (() => void) | undefined;
    let current: TestWorker | undefined;
    const make = () => {
      current = new TestWorker(rig.rt, 'dev', rig);
      return current;
    };
    const spec = {
      start: (): Process | Promise<Process> =>
        current ? new Promise<Process>((resolve) => (hold = () => resolve(make()))) : make(),
    };
    await sup.startChild(spec, 'dev');
    current!.crash();
    await rig.settle();
    expect(sup.whichChildren().map((c) => c.status)).toEqual(['restarting']);
    expect(sup.countChildren()).toMatchObject({ specs: 1, active: 0 });
    hold!();
    await rig.settle();
    expect(sup.whichChildren().map((c) => c.status)).toEqual(['running']);
  });
});

import { describe, expect, it } from 'vitest';
import type { ExitReason } from '../../src/runtime/exit-reason.js';
import { errorExit, KILLED, NORMAL, SHUTDOWN, shutdownWith } from '../../src/runtime/exit-reason.js';
import type { ChildSpec, RestartType } from '../../src/runtime/index.js';
import type { Supervisor, SupervisorOptions } from '../../src/runtime/supervisor.js';
import { startSupervisor, supervisorChild } from '../../src/runtime/supervisor.js';
import type { TestRig } from './helpers.js';
import { createRig, workers } from './helpers.js';

async function start(rig: TestRig, options: SupervisorOptions): Promise<Supervisor> {
  const res = await startSupervisor(rig.rt, options);
  if (!res.ok) throw new Error(res.error.message);
  return res.value;
}

const pidsOf = (sup: Supervisor) => Object.fromEntries(sup.whichChildren().map((c) => [c.id, c.pid]));

describe('restart types × exit reasons (OTP permanent_*, transient_*, temporary_*)', () => {
  const reasons: [string, ExitReason][] = [
    ['normal', NORMAL],
    ['shutdown', SHUTDOWN],
    ['shutdown with a detail', shutdownWith('done')],
    ['an error', errorExit(new Error('crash'))],
    ['killed', KILLED],
  ];
  const expected: Record<RestartType, (r: ExitReason) => boolean> = {
    permanent: () => true,
    transient: (r) => r.type === 'error' || r.type === 'killed',
    temporary: () => false,
  };
  for (const restart of ['permanent', 'transient', 'temporary'] as const) {
    for (const [label, reason] of reasons) {
      const restarted = expected[restart](reason);
      it(`a ${restart} child that exits with ${label} is ${restarted ? '' : 'not '}restarted`, async () => {
        const rig = createRig();
        const w = workers(rig);
        const sup = await start(rig, { maxRestarts: 5, children: [{ ...w.spec('a'), restart }] });
        const first = w.get('a');
        first.exitWith(reason);
        await rig.settle();
        const counts = sup.countChildren();
        if (restarted) {
          expect(w.get('a')).not.toBe(first);
          expect(w.get('a').alive).toBe(true);
          expect(counts).toEqual({ specs: 1, active: 1, supervisors: 0, workers: 1 });
        } else if (restart === 'temporary') {
          // OTP R3: a temporary child's spec is dropped, counts go to zero.
          expect(counts).toEqual({ specs: 0, active: 0, supervisors: 0, workers: 0 });
        } else {
          expect(w.get('a')).toBe(first);
          expect(sup.whichChildren()[0]).toMatchObject({ id: 'a', status: 'stopped', pid: undefined });
          expect(counts).toEqual({ specs: 1, active: 0, supervisors: 0, workers: 1 });
        }
      });
    }
  }
});

describe('strategies', () => {
  it('one_for_one restarts only the crashed child; its siblings keep their pids', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      strategy: 'oneForOne',
      children: [w.spec('a'), w.spec('b'), w.spec('c')],
    });
    const before = pidsOf(sup);
    w.get('b').crash();
    await rig.settle();
    const after = pidsOf(sup);
    expect(after.a).toBe(before.a);
    expect(after.c).toBe(before.c);
    expect(after.b).not.toBe(before.b);
    expect(w.get('b').alive).toBe(true);
  });

  it('one_for_all stops every other child newest first, then restarts all in start order; no old pid survives', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      strategy: 'oneForAll',
      children: [w.spec('a'), w.spec('b'), w.spec('c')],
    });
    const before = pidsOf(sup);
    rig.log.length = 0;
    w.get('b').crash();
    await rig.settle();
    expect(rig.log).toEqual(['stop:c', 'stop:a', 'start:a', 'start:b', 'start:c']);
    const after = pidsOf(sup);
    for (const id of ['a', 'b', 'c']) expect(after[id]).not.toBe(before[id]);
  });

  it('rest_for_one restarts the crashed child and the ones started after it, in start order', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      strategy: 'restForOne',
      children: [w.spec('a'), w.spec('b'), w.spec('c'), w.spec('d')],
    });
    const before = pidsOf(sup);
    rig.log.length = 0;
    w.get('b').crash();
    await rig.settle();
    expect(rig.log).toEqual(['stop:d', 'stop:c', 'start:b', 'start:c', 'start:d']);
    const after = pidsOf(sup);
    expect(after.a).toBe(before.a);
    for (const id of ['b', 'c', 'd']) expect(after[id]).not.toBe(before[id]);
  });

  it('a temporary bystander of a one_for_all restart is not restarted and does not count toward intensity', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      strategy: 'oneForAll',
      maxRestarts: 1,
      children: [w.spec('a'), { ...w.spec('temp'), restart: 'temporary' }],
    });
    w.get('a').crash();
    await rig.settle();
    expect(sup.alive).toBe(true);
    expect(sup.whichChildren().map((c) => c.id)).toEqual(['a']);
    expect(sup.restartsInWindow()).toBe(1);
  });

  it('one_for_all redoes the group restart when another child fails to start during it', async () => {
    const rig = createRig();
    const w = workers(rig);
    let failB = false;
    const b = w.spec('b');
    const sup = await start(rig, {
      strategy: 'oneForAll',
      maxRestarts: 10,
      children: [
        w.spec('a'),
        {
          id: 'b',
          start: () => {
            if (failB) throw new Error('b cannot start');
            return b.start();
          },
        },
      ],
    });
    failB = true;
    w.get('a').crash();
    await rig.settle();
    // a was restarted, then stopped again because b failed: nothing runs, b is restarting
    expect(w.get('a').alive).toBe(false);
    expect(sup.whichChildren().find((c) => c.id === 'b')?.status).toBe('restarting');
    failB = false;
    await rig.clock.advanceAsync(0);
    expect(w.get('a').alive).toBe(true);
    expect(w.get('b').alive).toBe(true);
    expect(sup.countChildren().active).toBe(2);
  });
});

describe('restart intensity', () => {
  it('three restarts inside the period are allowed; the fourth stops every child in reverse order and the supervisor exits with shutdown', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      maxRestarts: 3,
      periodMs: 5000,
      children: [w.spec('a'), w.spec('b'), w.spec('c')],
    });
    for (let i = 0; i < 3; i++) {
      w.get('b').crash();
      await rig.clock.advanceAsync(100);
      expect(sup.alive).toBe(true);
    }
    expect(sup.restartsInWindow()).toBe(3);
    rig.log.length = 0;
    w.get('b').crash();
    await rig.settle();
    expect(sup.alive).toBe(false);
    expect(sup.exitReason).toEqual(shutdownWith('reached_max_restart_intensity'));
    expect(rig.log).toEqual(['stop:c', 'stop:a']);
    expect(rig.events.some((e) => e.type === 'supervisor.gaveUp' && e.childId === 'b')).toBe(true);
  });

  it('restarts spaced wider than the period never add up (OTP multiple_restarts)', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, { maxRestarts: 1, periodMs: 1000, children: [w.spec('a')] });
    for (let i = 0; i < 20; i++) {
      await rig.clock.advanceAsync(2100);
      w.get('a').crash();
      await rig.settle();
    }
    expect(sup.alive).toBe(true);
    expect(sup.whichChildren()[0]?.restartCount).toBe(20);
  });

  it('a nested supervisor that gives up escalates to its parent, which restarts it with its static children', async () => {
    const rig = createRig();
    const w = workers(rig);
    const root = await start(rig, {
      name: 'root',
      maxRestarts: 5,
      children: [supervisorChild(rig.rt, 'inner', { maxRestarts: 0, children: [w.spec('x'), w.spec('y')] })],
    });
    const innerBefore = root.whichChildren()[0]!.process!;
    const xBefore = w.get('x');
    w.get('x').crash();
    await rig.settle();
    expect(innerBefore.alive).toBe(false);
    const innerAfter = root.whichChildren()[0]!.process!;
    expect(innerAfter.pid).not.toBe(innerBefore.pid);
    expect(innerAfter.alive).toBe(true);
    expect(w.get('x')).not.toBe(xBefore);
    expect(w.get('x').alive && w.get('y').alive).toBe(true);
    expect(root.restartsInWindow()).toBe(1);
  });
});

describe('start and shutdown', () => {
  it('children start in order and stop in reverse order', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, { children: [w.spec('a'), w.spec('b'), w.spec('c')] });
    expect(rig.log).toEqual(['start:a', 'start:b', 'start:c']);
    rig.log.length = 0;
    await sup.stop();
    expect(rig.log).toEqual(['stop:c', 'stop:b', 'stop:a']);
    expect(sup.exitReason).toEqual(SHUTDOWN);
  });

  it('a child still running after its shutdown time is killed; well-behaved siblings exit with shutdown', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      children: [w.spec('good'), { ...w.spec('stuck', { stopTakesMs: 'never' }), shutdown: 300 }],
    });
    const stopping = sup.stop();
    await rig.clock.advanceAsync(299);
    expect(w.get('stuck').alive).toBe(true);
    await rig.clock.advanceAsync(1);
    await stopping;
    expect(w.get('stuck').exitReason).toEqual(KILLED);
    expect(w.get('stuck').released).toBe(true);
    expect(w.get('good').exitReason).toEqual(SHUTDOWN);
  });

  it('brutalKill kills at once; infinity waits as long as the child needs', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      children: [
        { ...w.spec('patient', { stopTakesMs: 60_000 }), shutdown: 'infinity' },
        { ...w.spec('brutal', { stopTakesMs: 'never' }), shutdown: 'brutalKill' },
      ],
    });
    const stopping = sup.stop();
    await rig.settle();
    expect(w.get('brutal').exitReason).toEqual(KILLED);
    await rig.clock.advanceAsync(59_999);
    expect(w.get('patient').alive).toBe(true);
    await rig.clock.advanceAsync(1);
    await stopping;
    expect(w.get('patient').exitReason).toEqual(SHUTDOWN);
  });

  it('a child that exits on its own while being stopped keeps its own reason and shutdown completes', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      children: [w.spec('a', { exitOnStopWith: errorExit(new Error('racing')) }), w.spec('b')],
    });
    await sup.stop();
    expect(w.get('a').exitReason?.type).toBe('error');
    expect(sup.alive).toBe(false);
  });

  it('a child that fails to start stops the children already started, in reverse, and the start fails with the reason', async () => {
    const rig = createRig();
    const w = workers(rig);
    const res = await startSupervisor(rig.rt, {
      children: [
        w.spec('a'),
        w.spec('b'),
        {
          id: 'bad',
          start: () => {
            throw new Error('port busy');
          },
        },
        w.spec('never-started'),
      ],
    });
    expect(res.ok).toBe(false);
    if (res.ok) return;
    expect(res.error.code).toBe('startFailed');
    expect(res.error.message).toContain('port busy');
    expect(rig.log).toEqual(['start:a', 'start:b', 'stop:b', 'stop:a']);
  });

  it('a late callback from a killed child is dropped: no second exit, no restart counted', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      maxRestarts: 1,
      children: [{ ...w.spec('slow', { stopTakesMs: 'never' }), shutdown: 100 }],
    });
    const old = w.get('slow');
    const terminating = sup.terminateChild('slow');
    await rig.clock.advanceAsync(100);
    expect((await terminating).ok).toBe(true);
    expect(old.exitReason).toEqual(KILLED);
    old.crash('late crash from a dead process');
    await rig.settle();
    expect(old.exitReason).toEqual(KILLED);
    expect(sup.restartsInWindow()).toBe(0);
    expect(sup.whichChildren()[0]?.status).toBe('stopped');
  });
});

describe('child administration (OTP child_adm, count_children)', () => {
  it('returns OTP closed results: alreadyStarted, alreadyPresent, running, notFound; terminate is idempotent', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, { children: [w.spec('a')] });
    const dup = await sup.startChild(w.spec('a'));
    expect(dup).toMatchObject({ ok: false, error: { code: 'alreadyStarted', pid: w.get('a').pid } });
    expect(await sup.restartChild('a')).toMatchObject({ ok: false, error: { code: 'running' } });
    expect(await sup.deleteChild('a')).toMatchObject({ ok: false, error: { code: 'running' } });
    expect(await sup.terminateChild('a')).toEqual({ ok: true, value: undefined });
    expect(await sup.terminateChild('a')).toEqual({ ok: true, value: undefined });
    expect(await sup.startChild(w.spec('a'))).toMatchObject({ ok: false, error: { code: 'alreadyPresent' } });
    const restarted = await sup.restartChild('a');
    expect(restarted.ok && restarted.value?.pid).toBe(w.get('a').pid);
    await sup.terminateChild('a');
    expect(await sup.deleteChild('a')).toEqual({ ok: true, value: undefined });
    expect(await sup.deleteChild('a')).toMatchObject({ ok: false, error: { code: 'notFound' } });
    expect(await sup.terminateChild('nope')).toMatchObject({ ok: false, error: { code: 'notFound' } });
    expect(sup.getChildSpec('nope')).toMatchObject({ ok: false, error: { code: 'notFound' } });
    await sup.stop();
    expect(await sup.startChild(w.spec('z'))).toMatchObject({ ok: false, error: { code: 'noproc' } });
  });

  it('start returning ignore keeps a permanent spec without a process and drops a temporary one', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      children: [
        w.spec('a'),
        { id: 'ignored', start: () => null },
        { id: 'ignored-temp', start: () => null, restart: 'temporary' },
      ],
    });
    expect(sup.countChildren()).toEqual({ specs: 2, active: 1, supervisors: 0, workers: 2 });
    expect(sup.whichChildren().find((c) => c.id === 'ignored')).toMatchObject({
      pid: undefined,
      status: 'stopped',
    });
  });

  it('a stopped child keeps the reason its last process ended (OTP shows only undefined)', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, { children: [{ ...w.spec('t'), restart: 'transient' }, w.spec('p')] });
    const info = (id: string) => sup.whichChildren().find((c) => c.id === id);
    expect(info('p')?.lastExit).toBeUndefined();
    w.get('t').finish();
    await rig.settle();
    expect(info('t')).toMatchObject({ status: 'stopped', lastExit: NORMAL });
    w.get('p').crash('wire cut');
    await rig.settle();
    expect(info('p')?.status).toBe('running');
    expect(info('p')?.lastExit).toEqual(errorExit(new Error('wire cut')));
    await sup.terminateChild('p');
    expect(info('p')).toMatchObject({ status: 'stopped', lastExit: SHUTDOWN });
  });

  it('a child whose start fails via startChild is not kept', async () => {
    const rig = createRig();
    const sup = await start(rig, {});
    const res = await sup.startChild({
      id: 'x',
      start: () => {
        throw new Error('nope');
      },
    });
    expect(res).toMatchObject({ ok: false, error: { code: 'startFailed' } });
    expect(sup.countChildren().specs).toBe(0);
  });

  it('whichChildren lists newest first and countChildren stays consistent with 1,000 children', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {});
    for (let i = 0; i < 1000; i++)
      await sup.startChild({ ...w.spec(`c${i}`), type: i % 10 === 0 ? 'supervisor' : 'worker' });
    for (let i = 0; i < 1000; i += 3) await sup.terminateChild(`c${i}`);
    expect(sup.whichChildren()[0]?.id).toBe('c999');
    expect(sup.countChildren()).toEqual({ specs: 1000, active: 666, supervisors: 100, workers: 900 });
  });
});

describe('significant children and autoShutdown', () => {
  it('anySignificant: a temporary significant child exiting on its own shuts the supervisor down', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      autoShutdown: 'anySignificant',
      children: [w.spec('link'), { ...w.spec('ota'), restart: 'temporary', significant: true }],
    });
    w.get('ota').finish();
    await rig.settle();
    expect(sup.alive).toBe(false);
    expect(sup.exitReason).toEqual(SHUTDOWN);
    expect(w.get('link').exitReason).toEqual(SHUTDOWN);
  });

  it('stopping a significant child through the API does not shut the supervisor down', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      autoShutdown: 'anySignificant',
      children: [w.spec('link'), { ...w.spec('ota'), restart: 'transient', significant: true }],
    });
    await sup.terminateChild('ota');
    await rig.settle();
    expect(sup.alive).toBe(true);
  });

  it('a transient significant child is restarted after a crash and shuts the supervisor down only on a normal exit', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      autoShutdown: 'anySignificant',
      maxRestarts: 3,
      children: [{ ...w.spec('ota'), restart: 'transient', significant: true }],
    });
    w.get('ota').crash();
    await rig.settle();
    expect(sup.alive).toBe(true);
    expect(w.get('ota').alive).toBe(true);
    w.get('ota').finish();
    await rig.settle();
    expect(sup.alive).toBe(false);
  });

  it('allSignificant: only the exit of the last significant child shuts the supervisor down', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      autoShutdown: 'allSignificant',
      children: [
        { ...w.spec('s1'), restart: 'temporary', significant: true },
        { ...w.spec('s2'), restart: 'temporary', significant: true },
        w.spec('other'),
      ],
    });
    w.get('s1').finish();
    await rig.settle();
    expect(sup.alive).toBe(true);
    w.get('s2').crash();
    await rig.settle();
    expect(sup.alive).toBe(false);
  });

  it('a significant child stopped as a bystander of a sibling restart does not shut the supervisor down', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      strategy: 'oneForAll',
      autoShutdown: 'anySignificant',
      maxRestarts: 3,
      children: [w.spec('a'), { ...w.spec('sig'), restart: 'transient', significant: true }],
    });
    w.get('a').crash();
    await rig.settle();
    expect(sup.alive).toBe(true);
    expect(w.get('sig').alive).toBe(true);
  });
});

describe('a child stuck in a failing restart loop (OTP hanging_restart_loop)', () => {
  async function loopingSupervisor(rig: TestRig) {
    const w = workers(rig);
    let fail = false;
    const a = w.spec('a');
    const sup = await start(rig, {
      maxRestarts: 1000,
      periodMs: 60_000,
      children: [
        {
          id: 'a',
          start: () => {
            if (fail) throw new Error('cannot start');
            return a.start();
          },
        },
        w.spec('b'),
      ],
    });
    fail = true;
    w.get('a').crash();
    await rig.settle();
    return { sup, w };
  }

  it('shows restarting; restartChild and deleteChild answer restarting', async () => {
    const rig = createRig();
    const { sup } = await loopingSupervisor(rig);
    expect(sup.whichChildren().find((c) => c.id === 'a')?.status).toBe('restarting');
    expect(sup.countChildren()).toMatchObject({ specs: 2, active: 1 });
    expect(await sup.restartChild('a')).toMatchObject({ ok: false, error: { code: 'restarting' } });
    expect(await sup.deleteChild('a')).toMatchObject({ ok: false, error: { code: 'restarting' } });
  });

  it('terminateChild ends the loop and supervisor shutdown still works', async () => {
    const rig = createRig();
    const { sup, w } = await loopingSupervisor(rig);
    expect(await sup.terminateChild('a')).toEqual({ ok: true, value: undefined });
    const triesBefore = sup.restartsInWindow();
    await rig.clock.advanceAsync(10);
    expect(sup.restartsInWindow()).toBe(triesBefore);
    expect(sup.whichChildren().find((c) => c.id === 'a')?.status).toBe('stopped');
    await sup.stop();
    expect(w.get('b').exitReason).toEqual(SHUTDOWN);
  });

  it('each failed try counts toward the intensity, so the loop ends with the supervisor giving up', async () => {
    const rig = createRig();
    const w = workers(rig);
    const sup = await start(rig, {
      maxRestarts: 5,
      children: [
        {
          id: 'a',
          start: (() => {
            let n = 0;
            return () => {
              if (n++ > 0) throw new Error('cannot start');
              return w.spec('a').start();
            };
          })(),
        },
      ],
    });
    w.get('a').crash();
    for (let i = 0; i < 10; i++) await rig.clock.advanceAsync(1);
    expect(sup.alive).toBe(false);
    // five tries allowed (each a restart inside the window), the sixth gives up before trying
    expect(rig.events.filter((e) => e.type === 'child.startFailed')).toHaveLength(5);
  });
});

describe('spec and flag validation at the boundary', () => {
  const bad: [string, unknown, string][] = [
    ['a missing id', { start: () => null }, 'missingId'],
    ['a missing start', { id: 'a' }, 'missingStart'],
    ['a bad restart type', { id: 'a', start: () => null, restart: 'sometimes' }, 'badRestart'],
    ['a negative shutdown', { id: 'a', start: () => null, shutdown: -10 }, 'badShutdown'],
    ['a bad type', { id: 'a', start: () => null, type: 'daemon' }, 'badType'],
    [
      'a significant permanent child',
      { id: 'a', start: () => null, significant: true },
      'significantPermanent',
    ],
  ];
  for (const [label, spec, code] of bad) {
    it(`rejects ${label} with code ${code}`, async () => {
      const rig = createRig();
      const res = await startSupervisor(rig.rt, {
        autoShutdown: 'anySignificant',
        children: [spec as ChildSpec],
      });
      expect(res).toMatchObject({ ok: false, error: { code } });
    });
  }

  it('rejects duplicate ids, significant children under autoShutdown never, and bad flags; ignores unknown flags', async () => {
    const rig = createRig();
    const s = { id: 'a', start: () => null };
    expect(await startSupervisor(rig.rt, { children: [s, s] })).toMatchObject({
      ok: false,
      error: { code: 'duplicateId' },
    });
    expect(
      await startSupervisor(rig.rt, { children: [{ ...s, restart: 'transient', significant: true }] }),
    ).toMatchObject({ ok: false, error: { code: 'significantWithoutAutoShutdown' } });
    const flags: [Record<string, unknown>, string][] = [
      [{ strategy: 'simpleOneForOne' }, 'badStrategy'],
      [{ maxRestarts: Number.POSITIVE_INFINITY }, 'badMaxRestarts'],
      [{ periodMs: 0 }, 'badPeriod'],
      [{ autoShutdown: 'sometimes' }, 'badAutoShutdown'],
    ];
    for (const [f, code] of flags)
      expect(await startSupervisor(rig.rt, f as SupervisorOptions)).toMatchObject({
        ok: false,
        error: { code },
      });
    const withUnknown = await startSupervisor(rig.rt, { children: [], extra: 1 } as SupervisorOptions);
    expect(withUnknown.ok).toBe(true);
  });

  it('fills OTP defaults: permanent worker, shutdown 5000 for workers and infinity for supervisors', async () => {
    const rig = createRig();
    const sup = await start(rig, {
      children: [
        { id: 'w', start: () => null },
        { id: 's', start: () => null, type: 'supervisor' },
      ],
    });
    expect(sup.getChildSpec('w')).toMatchObject({
      ok: true,
      value: { restart: 'permanent', type: 'worker', shutdown: 5000, significant: false },
    });
    expect(sup.getChildSpec('s')).toMatchObject({ ok: true, value: { shutdown: 'infinity' } });
  });
});

import { describe, expect, it } from 'vitest';
import type { DynamicChildSpec } from '../../src/runtime/dynamic-supervisor.js';
import { startDynamicSupervisor } from '../../src/runtime/dynamic-supervisor.js';
import { KILLED, SHUTDOWN, shutdownWith } from '../../src/runtime/exit-reason.js';
import type { Pid } from '../../src/runtime/process.js';
import type { TestRig, WorkerOptions } from './helpers.js';
import { createRig, TestWorker } from './helpers.js';

function fleet(rig: TestRig, options: Parameters<typeof startDynamicSupervisor>[1] = {}) {
  const res = startDynamicSupervisor(rig.rt, { name: 'fleet', ...options });
  if (!res.ok) throw new Error(res.error.message);
  return res.value;
}

function deviceSpec(
  rig: TestRig,
  current: Map<string, TestWorker>,
  options: WorkerOptions = {},
): DynamicChildSpec<string> {
  return {
    start: (id) => {
      const w = new TestWorker(rig.rt, id, rig, options);
      current.set(id, w);
      return w;
    },
  };
}

describe('dynamic supervisor (Elixir DynamicSupervisor)', () => {
  it('starts children on demand from one shared spec and restarts only the one that crashed', async () => {
    const rig = createRig();
    const sup = fleet(rig);
    const current = new Map<string, TestWorker>();
    const spec = deviceSpec(rig, current);
    for (const id of ['d1', 'd2', 'd3']) expect((await sup.startChild(spec, id)).ok).toBe(true);
    const d1 = current.get('d1')!;
    const d3 = current.get('d3')!;
    current.get('d2')!.crash();
    await rig.settle();
    expect(current.get('d2')!.alive).toBe(true);
    expect(current.get('d1')).toBe(d1);
    expect(current.get('d3')).toBe(d3);
    expect(sup.countChildren()).toEqual({ specs: 3, active: 3, supervisors: 0, workers: 3 });
    expect(sup.whichChildren().find((c) => c.id === 'd2')?.restartCount).toBe(1);
  });

  it('refuses a child past maxChildren, and a child in a restart loop still counts toward it', async () => {
    const rig = createRig();
    const sup = fleet(rig, { maxChildren: 2, maxRestarts: 100, periodMs: 60_000 });
    const current = new Map<string, TestWorker>();
    let failing = false;
    const base = deviceSpec(rig, current);
    const spec: DynamicChildSpec<string> = {
      start: (id) => {
        if (failing && id === 'd1') throw new Error('port gone');
        return base.start(id);
      },
    };
    await sup.startChild(spec, 'd1');
    await sup.startChild(spec, 'd2');
    expect(await sup.startChild(spec, 'd3')).toMatchObject({ ok: false, error: { code: 'maxChildren' } });
    failing = true;
    current.get('d1')!.crash();
    await rig.settle();
    expect(sup.whichChildren().find((c) => c.id === 'd1')?.status).toBe('restarting');
    expect(sup.countChildren()).toMatchObject({ specs: 2, active: 1 });
    await sup.terminateChild(current.get('d2')!.pid);
    expect((await sup.startChild(spec, 'd3')).ok).toBe(true);
    expect(await sup.startChild(spec, 'd4')).toMatchObject({ ok: false, error: { code: 'maxChildren' } });
  });

  it('terminateChild takes a pid; an unknown pid gives notFound', async () => {
    const rig = createRig();
    const sup = fleet(rig);
    const current = new Map<string, TestWorker>();
    await sup.startChild(deviceSpec(rig, current), 'd1');
    expect(await sup.terminateChild(current.get('d1')!.pid)).toEqual({ ok: true, value: undefined });
    expect(current.get('d1')!.exitReason).toEqual(SHUTDOWN);
    expect(await sup.terminateChild(999_999 as Pid)).toMatchObject({
      ok: false,
      error: { code: 'notFound' },
    });
    expect(sup.countChildren().specs).toBe(0);
  });

  it('a restart whose start says ignore removes the child', async () => {
    const rig = createRig();
    const sup = fleet(rig);
    const current = new Map<string, TestWorker>();
    let ignore = false;
    const base = deviceSpec(rig, current);
    await sup.startChild({ start: (id: string) => (ignore ? null : base.start(id)) }, 'd1');
    ignore = true;
    current.get('d1')!.crash();
    await rig.settle();
    expect(sup.countChildren().specs).toBe(0);
  });

  it('gives up past its intensity (Elixir default: 3 within 5 s), stopping every child', async () => {
    const rig = createRig();
    const sup = fleet(rig);
    const current = new Map<string, TestWorker>();
    const spec = deviceSpec(rig, current);
    await sup.startChild(spec, 'poison');
    await sup.startChild(spec, 'healthy');
    for (let i = 0; i < 3; i++) {
      current.get('poison')!.crash();
      await rig.settle();
    }
    expect(sup.alive).toBe(true);
    current.get('poison')!.crash();
    await rig.settle();
    expect(sup.alive).toBe(false);
    expect(sup.exitReason).toEqual(shutdownWith('reached_max_restart_intensity'));
    expect(current.get('healthy')!.exitReason).toEqual(SHUTDOWN);
  });

  it('stops all children concurrently: total time is bounded by the shutdown value, not the sum', async () => {
    const rig = createRig();
    const sup = fleet(rig);
    const current = new Map<string, TestWorker>();
    const slow: DynamicChildSpec<string> = {
      ...deviceSpec(rig, current, { stopTakesMs: 'never' }),
      shutdown: 1000,
    };
    for (let i = 0; i < 5; i++) await sup.startChild(slow, `d${i}`);
    const stopping = sup.stop();
    await rig.clock.advanceAsync(1000);
    await stopping;
    expect(rig.clock.now()).toBe(1000);
    for (const w of current.values()) expect(w.exitReason).toEqual(KILLED);
  });

  it('rejects significant children and bad options with a code naming the field', async () => {
    const rig = createRig();
    const sup = fleet(rig);
    const res = await sup.startChild(
      { start: () => null, significant: true } as DynamicChildSpec<string>,
      'x',
    );
    expect(res).toMatchObject({ ok: false, error: { code: 'badSignificant' } });
    expect(startDynamicSupervisor(rig.rt, { maxChildren: -1 })).toMatchObject({
      ok: false,
      error: { field: 'maxChildren' },
    });
    expect(startDynamicSupervisor(rig.rt, { periodMs: 0 })).toMatchObject({
      ok: false,
      error: { code: 'badPeriod' },
    });
  });

  it('starting and stopping 10,000 children keeps counts exact', async () => {
    const rig = createRig();
    const sup = fleet(rig);
    const current = new Map<string, TestWorker>();
    const spec = deviceSpec(rig, current);
    const pids: Pid[] = [];
    for (let i = 0; i < 10_000; i++) {
      const r = await sup.startChild(spec, `d${i}`);
      if (r.ok && r.value) pids.push(r.value.pid);
    }
    expect(sup.countChildren().active).toBe(10_000);
    for (let i = 0; i < pids.length; i += 2) await sup.terminateChild(pids[i]!);
    expect(sup.countChildren()).toEqual({ specs: 5000, active: 5000, supervisors: 0, workers: 5000 });
  });
});

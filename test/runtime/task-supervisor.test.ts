import { describe, expect, it } from 'vitest';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import type { RuntimeEvent } from '../../src/runtime/events.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { TaskResult } from '../../src/runtime/task-supervisor.js';
import { startTaskSupervisor } from '../../src/runtime/task-supervisor.js';

function setup() {
  const clock = createSimulatedClock();
  const rt = createRuntime({ clock });
  const events: RuntimeEvent[] = [];
  rt.events.subscribe((e) => events.push(e));
  return { rt, clock, events };
}

/** Resolves after `ms` of simulated time; rejects when `signal` aborts, if given. */
function sleep(rt: Runtime, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const ref = rt.timers.schedule(ms, resolve);
    signal?.addEventListener('abort', () => {
      rt.timers.cancel(ref);
      reject(signal.reason);
    });
  });
}

/** Never settles and ignores its signal: a task that must be killed. */
const stubborn = () => new Promise<never>(() => {});

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

describe('startTaskSupervisor: startChild', () => {
  it('runs a temporary task that exits normal when its function resolves, then leaves the children', async () => {
    const { rt, clock, events } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    let ran = false;
    const r = tasks.startChild(async () => {
      await sleep(rt, 100);
      ran = true;
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const task = r.value;
    expect(task.kind).toBe('task');
    expect(tasks.kind).toBe('supervisor');
    expect(tasks.whichChildren()).toEqual([task]);
    expect(tasks.countChildren()).toEqual({ specs: 1, active: 1, supervisors: 0, workers: 1 });
    await clock.advanceAsync(100);
    expect(ran).toBe(true);
    expect(await task.whenExited()).toEqual({ type: 'normal' });
    expect(tasks.whichChildren()).toEqual([]);
    expect(tasks.countChildren()).toEqual({ specs: 0, active: 0, supervisors: 0, workers: 0 });
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'process.started', pid: task.pid, parent: tasks.pid }),
    );
  });

  it('a task that rejects or throws exits with that error and is reported; the supervisor lives on', async () => {
    const { rt, events } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    const rejects = tasks.startChild(async () => {
      throw new Error('upload failed');
    });
    const throws = tasks.startChild(() => {
      throw new Error('bad args');
    });
    if (!rejects.ok || !throws.ok) throw new Error('not started');
    expect(await rejects.value.whenExited()).toMatchObject({
      type: 'error',
      error: { message: 'upload failed' },
    });
    expect(await throws.value.whenExited()).toMatchObject({ type: 'error', error: { message: 'bad args' } });
    expect(tasks.alive).toBe(true);
    const reports = events.filter((e) => e.type === 'report');
    expect(reports.map((e) => e.error?.message).sort()).toEqual(['bad args', 'upload failed']);
  });

  it('refuses a task beyond maxChildren, and accepts again once one has finished', async () => {
    const { rt, clock } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs', maxChildren: 2 });
    tasks.startChild(() => sleep(rt, 100));
    tasks.startChild(() => sleep(rt, 200));
    const third = tasks.startChild(() => sleep(rt, 100));
    expect(third).toMatchObject({ ok: false, error: { code: 'maxChildren' } });
    await clock.advanceAsync(100);
    expect(tasks.startChild(() => sleep(rt, 100)).ok).toBe(true);
    expect(tasks.countChildren().active).toBe(2);
  });

  it('a task can be killed: its signal aborts and whatever it does afterwards is ignored', async () => {
    const { rt, clock } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    let finishedAfterKill = false;
    const r = tasks.startChild(async () => {
      await sleep(rt, 100);
      finishedAfterKill = true;
    });
    if (!r.ok) throw new Error('not started');
    await flushMicrotasks();
    r.value.kill();
    expect(r.value.signal.aborted).toBe(true);
    expect(r.value.exitReason).toEqual({ type: 'killed' });
    await clock.advanceAsync(100);
    expect(finishedAfterKill).toBe(true);
    expect(r.value.exitReason).toEqual({ type: 'killed' });
  });
});

describe('asyncNolink', () => {
  it('await gives the value of a task that resolves', async () => {
    const { rt, clock } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    const handle = tasks.asyncNolink(async () => {
      await sleep(rt, 300);
      return 'v1.2.3';
    });
    const result = handle.await(1000);
    await clock.advanceAsync(300);
    expect(await result).toEqual({ ok: true, value: 'v1.2.3' });
    // Awaiting again gives the same result.
    expect(await handle.await()).toEqual({ ok: true, value: 'v1.2.3' });
  });

  it('a failing task does not crash the caller: await gives exited with the error', async () => {
    const { rt, events } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    const handle = tasks.asyncNolink(async () => {
      throw new Error('device refused');
    });
    const r = await handle.await();
    expect(r).toMatchObject({ ok: false, error: { code: 'exited', reason: { type: 'error' } } });
    if (!r.ok) expect(r.error.message).toContain('device refused');
    expect(tasks.alive).toBe(true);
    // The caller got the error as a value: nothing is reported on its behalf.
    expect(events.filter((e) => e.type === 'report')).toEqual([]);
  });

  it('await times out through the runtime timers and leaves the task running', async () => {
    const { rt, clock } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    const handle = tasks.asyncNolink(async () => {
      await sleep(rt, 5000);
      return 42;
    });
    let first: TaskResult<number> | undefined;
    void handle.await(1000).then((r) => {
      first = r;
    });
    await clock.advanceAsync(999);
    expect(first).toBeUndefined();
    await clock.advanceAsync(1);
    expect(first).toMatchObject({ ok: false, error: { code: 'timeout' } });
    expect(handle.task?.alive).toBe(true);
    const second = handle.await(10_000);
    await clock.advanceAsync(4000);
    expect(await second).toEqual({ ok: true, value: 42 });
    expect(rt.timers.size()).toBe(0);
  });

  it('shutdown stops the task (aborting its signal) and gives its result', async () => {
    const { rt, clock } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    const handle = tasks.asyncNolink((signal) => sleep(rt, 10_000, signal));
    await flushMicrotasks();
    const r = await handle.shutdown();
    expect(r).toMatchObject({ ok: false, error: { code: 'exited', reason: { type: 'shutdown' } } });
    expect(handle.task?.signal.aborted).toBe(true);

    const done = tasks.asyncNolink(() => 'already done');
    await clock.advanceAsync(0);
    expect(await done.shutdown()).toEqual({ ok: true, value: 'already done' });
  });

  it('a start refused for maxChildren or after the supervisor stopped is the handle result', async () => {
    const { rt } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs', maxChildren: 1 });
    tasks.asyncNolink(stubborn);
    const refused = tasks.asyncNolink(() => 1);
    expect(refused.task).toBeUndefined();
    expect(await refused.await()).toMatchObject({ ok: false, error: { code: 'maxChildren' } });
    tasks.kill();
    expect(await tasks.asyncNolink(() => 1).await()).toMatchObject({ ok: false, error: { code: 'noproc' } });
  });
});

describe('stopping the task supervisor', () => {
  it('stops every task concurrently: cooperative tasks exit at once, stubborn ones are killed after their shutdown', async () => {
    const { rt, clock } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    const signals: AbortSignal[] = [];
    const polite = tasks.startChild((signal) => {
      signals.push(signal);
      return sleep(rt, 60_000, signal);
    });
    const stubbornA = tasks.startChild((signal) => {
      signals.push(signal);
      return stubborn();
    });
    const stubbornB = tasks.startChild(stubborn, { shutdown: 2000 });
    if (!polite.ok || !stubbornA.ok || !stubbornB.ok) throw new Error('not started');
    await flushMicrotasks();
    let stoppedAt: number | undefined;
    void tasks.stop().then(() => {
      stoppedAt = clock.now();
    });
    await flushMicrotasks();
    expect(signals.every((s) => s.aborted)).toBe(true);
    expect(polite.value.exitReason).toEqual({ type: 'shutdown' });
    await clock.advanceAsync(2000);
    expect(stubbornB.value.exitReason).toEqual({ type: 'killed' });
    expect(stubbornA.value.alive).toBe(true);
    await clock.advanceAsync(3000);
    expect(stubbornA.value.exitReason).toEqual({ type: 'killed' });
    // Concurrent: bounded by the longest shutdown (5000 default), not their sum.
    expect(stoppedAt).toBe(5000);
    expect(tasks.exitReason).toEqual({ type: 'shutdown' });
    expect(tasks.whichChildren()).toEqual([]);
  });

  it('no task can start while it stops or after (noproc)', async () => {
    const { rt } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    tasks.startChild(stubborn, { shutdown: 'brutalKill' });
    const stopping = tasks.stop();
    expect(tasks.startChild(() => 1)).toMatchObject({ ok: false, error: { code: 'noproc' } });
    await stopping;
    expect(tasks.startChild(() => 1)).toMatchObject({ ok: false, error: { code: 'noproc' } });
  });

  it('killing it kills every task and aborts their signals', async () => {
    const { rt } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    const a = tasks.startChild(stubborn);
    const b = tasks.startChild(stubborn);
    if (!a.ok || !b.ok) throw new Error('not started');
    tasks.kill();
    expect(a.value.exitReason).toEqual({ type: 'killed' });
    expect(b.value.exitReason).toEqual({ type: 'killed' });
    expect(a.value.signal.aborted && b.value.signal.aborted).toBe(true);
  });

  it('a task stopped before its function got to run never runs it', async () => {
    const { rt } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    let ran = false;
    const r = tasks.startChild(() => {
      ran = true;
    });
    if (!r.ok) throw new Error('not started');
    await r.value.stop();
    await flushMicrotasks();
    expect(ran).toBe(false);
    expect(r.value.exitReason).toEqual({ type: 'shutdown' });
  });
});

describe('asyncStream', () => {
  /** A task function taking `durations[item]` ms, tracking how many run at once. */
  function tracked(rt: Runtime, durations: Record<number, number>) {
    const stats = { running: 0, max: 0, started: [] as number[] };
    const fn = async (item: number, signal: AbortSignal) => {
      stats.running++;
      stats.max = Math.max(stats.max, stats.running);
      stats.started.push(item);
      try {
        await sleep(rt, durations[item] ?? 10, signal);
        if (item < 0) throw new Error(`bad item ${item}`);
        return item * 10;
      } finally {
        stats.running--;
      }
    };
    return { fn, stats };
  }

  it('yields one result per item in input order, never running more than maxConcurrency at once', async () => {
    const { rt, clock } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    const { fn, stats } = tracked(rt, { 1: 300, 2: 50, 3: 100, 4: 10, 5: 200, 6: 20 });
    const results = collect(tasks.asyncStream([1, 2, 3, 4, 5, 6], fn, { maxConcurrency: 3 }));
    await clock.advanceAsync(2000);
    expect(await results).toEqual([10, 20, 30, 40, 50, 60].map((value) => ({ ok: true, value })));
    expect(stats.max).toBeLessThanOrEqual(3);
    expect(stats.max).toBe(3);
    expect(tasks.whichChildren()).toEqual([]);
  });

  it('runs two at a time by default', async () => {
    const { rt, clock } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    const { fn, stats } = tracked(rt, {});
    const results = collect(tasks.asyncStream([1, 2, 3, 4, 5], fn));
    await clock.advanceAsync(1000);
    expect(await results).toHaveLength(5);
    expect(stats.max).toBe(2);
  });

  it('unordered yields results as tasks finish', async () => {
    const { rt, clock } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    const { fn } = tracked(rt, { 1: 300, 2: 100, 3: 50 });
    const results = collect(tasks.asyncStream([1, 2, 3], fn, { maxConcurrency: 3, ordered: false }));
    await clock.advanceAsync(1000);
    expect(await results).toEqual([30, 20, 10].map((value) => ({ ok: true, value })));
  });

  it('a failing item yields exited and the stream goes on', async () => {
    const { rt, clock } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    const { fn } = tracked(rt, {});
    const results = collect(tasks.asyncStream([1, -1, 2], fn));
    await clock.advanceAsync(1000);
    const [a, b, c] = await results;
    expect(a).toEqual({ ok: true, value: 10 });
    expect(b).toMatchObject({ ok: false, error: { code: 'exited', reason: { type: 'error' } } });
    expect(c).toEqual({ ok: true, value: 20 });
  });

  it('onTimeout killTask: the slow task is killed, its item yields timeout, the others go on', async () => {
    const { rt, clock } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    const { fn, stats } = tracked(rt, { 1: 50, 2: 10_000, 3: 50 });
    const results = collect(
      tasks.asyncStream([1, 2, 3], fn, { maxConcurrency: 2, timeoutMs: 1000, onTimeout: 'killTask' }),
    );
    await clock.advanceAsync(999);
    expect(stats.running).toBe(1); // item 2 still running, 1 and 3 done
    await clock.advanceAsync(1);
    expect(await results).toEqual([
      { ok: true, value: 10 },
      { ok: false, error: { code: 'timeout', message: expect.stringContaining('1000 ms') } },
      { ok: true, value: 30 },
    ]);
    await flushMicrotasks();
    expect(stats.running).toBe(0); // its signal aborted the sleep
    expect(rt.timers.size()).toBe(0);
  });

  it('onTimeout exit (the default): the timeout is the last result and every running task is killed', async () => {
    const { rt, clock } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    const { fn, stats } = tracked(rt, { 1: 10, 2: 10_000, 3: 8000, 4: 10 });
    const results = collect(tasks.asyncStream([1, 2, 3, 4, 5], fn, { maxConcurrency: 2, timeoutMs: 1000 }));
    await clock.advanceAsync(1500);
    expect(await results).toEqual([
      { ok: true, value: 10 },
      { ok: false, error: { code: 'timeout', message: expect.any(String) } },
    ]);
    await flushMicrotasks();
    expect(stats.started).toEqual([1, 2, 3]);
    expect(stats.running).toBe(0);
    expect(tasks.whichChildren()).toEqual([]);
  });

  it('is lazy, and breaking out of the loop kills the tasks still running', async () => {
    const { rt, clock } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    const { fn, stats } = tracked(rt, { 1: 10, 2: 500, 3: 500 });
    const stream = tasks.asyncStream([1, 2, 3, 4], fn, { maxConcurrency: 3 });
    await flushMicrotasks();
    expect(stats.started).toEqual([]);
    const firstOnly = (async () => {
      for await (const r of stream) return r;
    })();
    await clock.advanceAsync(10);
    expect(await firstOnly).toEqual({ ok: true, value: 10 });
    // Item 1 finishing freed a slot for item 4; 2, 3 and 4 were running when the loop broke.
    expect(stats.started).toEqual([1, 2, 3, 4]);
    await flushMicrotasks();
    expect(stats.running).toBe(0);
    expect(tasks.whichChildren()).toEqual([]);
    await clock.advanceAsync(1000);
    expect(stats.started).toEqual([1, 2, 3, 4]);
  });

  it('holds at most maxConcurrency finished results for a slow consumer', async () => {
    const { rt, clock } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    const { fn, stats } = tracked(rt, {});
    const iterator = tasks.asyncStream([1, 2, 3, 4, 5, 6], fn, { maxConcurrency: 2 })[Symbol.asyncIterator]();
    const first = iterator.next();
    await clock.advanceAsync(100);
    expect(await first).toEqual({ done: false, value: { ok: true, value: 10 } });
    await clock.advanceAsync(100);
    // 1 consumed, 2 and 3 done and waiting: no more start until the consumer takes one.
    expect(stats.started).toEqual([1, 2, 3]);
    await iterator.return?.();
  });

  it('a stream over a supervisor that stops ends with noproc', async () => {
    const { rt, clock } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    const { fn } = tracked(rt, { 1: 100, 2: 100, 3: 100 });
    const results = collect(tasks.asyncStream([1, 2, 3], fn, { maxConcurrency: 1 }));
    await clock.advanceAsync(50);
    await tasks.stop();
    await clock.advanceAsync(100);
    const out = await results;
    expect(out[0]).toMatchObject({ ok: false, error: { code: 'exited', reason: { type: 'shutdown' } } });
    expect(out[1]).toMatchObject({ ok: false, error: { code: 'noproc' } });
    expect(out).toHaveLength(2);
  });

  it('rejects bad options at the call (misuse)', () => {
    const { rt } = setup();
    const tasks = startTaskSupervisor(rt, { name: 'jobs' });
    const fn = (n: number) => n;
    expect(() => tasks.asyncStream([1], fn, { maxConcurrency: 0 })).toThrow(RangeError);
    expect(() => tasks.asyncStream([1], fn, { timeoutMs: -5 })).toThrow(RangeError);
    // @ts-expect-error: not an option
    expect(() => tasks.asyncStream([1], fn, { onTimeout: 'ignore' })).toThrow(RangeError);
  });
});

describe('configuration (misuse throws)', () => {
  it('rejects a bad maxChildren and a bad task shutdown, naming the field', () => {
    const { rt } = setup();
    expect(() => startTaskSupervisor(rt, { name: 'x', maxChildren: -1 })).toThrow(/maxChildren/);
    expect(() => startTaskSupervisor(rt, { name: 'x', maxChildren: 1.5 })).toThrow(/maxChildren/);
    const tasks = startTaskSupervisor(rt, { name: 'x' });
    expect(() => tasks.startChild(() => 1, { shutdown: -10 })).toThrow(/shutdown/);
    // @ts-expect-error: not a shutdown
    expect(() => tasks.startChild(() => 1, { shutdown: 'soon' })).toThrow(/shutdown/);
  });
});

import { describe, expect, it } from 'vitest';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import type { Pid } from '../../src/runtime/process.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { StartTaskResult, TaskFn, TaskOptions, TaskResult } from '../../src/runtime/task-process.js';
import { TaskProcess } from '../../src/runtime/task-process.js';
import type { AsyncStreamOptions } from '../../src/runtime/task-stream.js';
import { TaskStream } from '../../src/runtime/task-stream.js';

const OPTIONS: Required<AsyncStreamOptions> = {
  maxConcurrency: 2,
  timeoutMs: 1000,
  onTimeout: 'exit',
  ordered: true,
};

/** A spawn that starts real task processes, refusing the items listed in `refuse`. */
function spawner(rt: Runtime, refuse: (name: string) => 'maxChildren' | 'noproc' | undefined) {
  const started: string[] = [];
  const tasks: TaskProcess<unknown>[] = [];
  const spawn = <T>(fn: TaskFn<T>, options: TaskOptions, onValue: (value: T) => void): StartTaskResult<T> => {
    const name = options.name ?? 'task';
    const code = refuse(name);
    if (code) return { ok: false, error: { code, message: `refused ${name}` } };
    started.push(name);
    const task = new TaskProcess<T>(rt, 0 as Pid, name, 5000, fn, onValue, false);
    tasks.push(task as TaskProcess<unknown>);
    return { ok: true, value: task };
  };
  return { spawn, started, tasks };
}

function setup() {
  const clock = createSimulatedClock();
  return { rt: createRuntime({ clock }), clock };
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

describe('TaskStream (the stream of a task supervisor, with its spawn injected)', () => {
  it('names each task after the supervisor and the item index, and yields in input order', async () => {
    const { rt } = setup();
    const { spawn, started } = spawner(rt, () => undefined);
    const stream = new TaskStream(rt.timers, 'jobs', spawn, ['a', 'b', 'c'], (s) => s.toUpperCase(), OPTIONS);
    expect(await collect(stream.results())).toEqual(['A', 'B', 'C'].map((value) => ({ ok: true, value })));
    expect(started).toEqual(['jobs:stream[0]', 'jobs:stream[1]', 'jobs:stream[2]']);
  });

  it('a start refused with maxChildren is that item’s result and the stream goes on', async () => {
    const { rt } = setup();
    const { spawn } = spawner(rt, (name) => (name === 'jobs:stream[1]' ? 'maxChildren' : undefined));
    const results = await collect(
      new TaskStream(rt.timers, 'jobs', spawn, [1, 2, 3], (n) => n, OPTIONS).results(),
    );
    expect(results).toEqual([
      { ok: true, value: 1 },
      { ok: false, error: { code: 'maxChildren', message: 'refused jobs:stream[1]' } },
      { ok: true, value: 3 },
    ]);
  });

  it('an input iterator that throws ends the stream with its error and kills the running tasks', async () => {
    const { rt, clock } = setup();
    const { spawn, tasks } = spawner(rt, () => undefined);
    function* items() {
      yield 1;
      throw new Error('bad input');
    }
    const slow = () => new Promise<number>(() => {});
    const results: TaskResult<number>[] = [];
    const run = (async () => {
      for await (const r of new TaskStream(rt.timers, 'jobs', spawn, items(), slow, OPTIONS).results())
        results.push(r);
    })();
    await expect(run).rejects.toThrow('bad input');
    expect(results).toEqual([]);
    expect(tasks).toHaveLength(1);
    expect(tasks[0]!.exitReason).toEqual({ type: 'killed' });
    expect(tasks[0]!.signal.aborted).toBe(true);
    expect(rt.timers.size()).toBe(0);
    await clock.advanceAsync(2000);
    await flushMicrotasks();
    expect(results).toEqual([]);
  });

  it('closes the input iterator when the consumer stops early, not when the input ran out', async () => {
    const { rt } = setup();
    const { spawn } = spawner(rt, () => undefined);
    let closed = 0;
    const input = (n: number): Iterable<number> => ({
      [Symbol.iterator]: () => {
        let i = 0;
        return {
          next: () => (i < n ? { done: false, value: i++ } : { done: true, value: undefined }),
          return: () => {
            closed++;
            return { done: true, value: undefined };
          },
        };
      },
    });
    for await (const r of new TaskStream(rt.timers, 'jobs', spawn, input(10), (n) => n, OPTIONS).results()) {
      expect(r).toEqual({ ok: true, value: 0 });
      break;
    }
    expect(closed).toBe(1);
    await collect(new TaskStream(rt.timers, 'jobs', spawn, input(2), (n) => n, OPTIONS).results());
    expect(closed).toBe(1);
  });
});

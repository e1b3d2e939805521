import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PidIndex } from '../../src/runtime/pid-index.js';
import type { Pid } from '../../src/runtime/process.js';

interface Item {
  pid: Pid;
  tag: number;
}

const item = (pid: number, tag = 0): Item => ({ pid: pid as Pid, tag });

/** Every answer the index gives, next to the Map it stands for. */
function expectSame(index: PidIndex<Item>, map: Map<Pid, Item>, probe: Iterable<number>) {
  expect(index.size).toBe(map.size);
  expect(index.values()).toEqual([...map.values()]);
  for (const pid of probe) expect(index.get(pid as Pid)).toBe(map.get(pid as Pid));
}

describe('PidIndex: a Map<Pid, T> in insertion order, smaller', () => {
  it('finds, removes and lists items added in pid order, the way a supervisor adds its children', () => {
    const index = new PidIndex<Item>((i) => i.pid);
    const map = new Map<Pid, Item>();
    for (let pid = 1; pid <= 1000; pid++) {
      const it = item(pid);
      index.add(it);
      map.set(it.pid, it);
    }
    // A restart: the old pid goes, the child comes back under a new, higher one.
    for (let pid = 1; pid <= 1000; pid += 3) {
      expect(index.delete(pid as Pid)).toBe(map.delete(pid as Pid));
      const again = item(pid + 10_000);
      index.add(again);
      map.set(again.pid, again);
    }
    expect(index.delete(5 as Pid)).toBe(true);
    map.delete(5 as Pid);
    expect(index.delete(5 as Pid)).toBe(false);
    expectSame(index, map, [0, 1, 2, 5, 6, 999, 1000, 10_001, 10_004, 20_000]);
    // Most children removed (a fleet shrinking): the removed slots are dropped, answers stay.
    for (let pid = 1; pid <= 900; pid++) {
      expect(index.delete(pid as Pid)).toBe(map.delete(pid as Pid));
    }
    expectSame(index, map, [1, 899, 900, 901, 1000, 10_001, 10_901, 10_997]);
  });

  it('keeps the Map answers when pids come out of order (a start handing back an older process)', () => {
    const index = new PidIndex<Item>((i) => i.pid);
    const map = new Map<Pid, Item>();
    for (const pid of [10, 20, 30, 5, 40, 20]) {
      const it = item(pid, pid === 20 ? map.size : 0);
      index.add(it);
      map.set(it.pid, it);
    }
    expectSame(index, map, [5, 10, 20, 30, 40, 50]);
    index.clear();
    expect(index.size).toBe(0);
    expect(index.values()).toEqual([]);
  });

  it('answers as a Map does after any sequence of adds and deletes', () => {
    const op = fc.oneof(
      fc.record({ add: fc.nat(60), tag: fc.nat(3) }),
      fc.record({ next: fc.constant(true) }),
      fc.record({ del: fc.nat(400) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const index = new PidIndex<Item>((i) => i.pid);
        const map = new Map<Pid, Item>();
        let top = 60;
        for (const o of ops) {
          if ('del' in o) expect(index.delete(o.del as Pid)).toBe(map.delete(o.del as Pid));
          else {
            // Mostly the next pid up (as the runtime hands them out), sometimes any pid.
            const it = 'next' in o ? item(++top) : item(o.add, o.tag);
            index.add(it);
            map.set(it.pid, it);
          }
        }
        expectSame(
          index,
          map,
          Array.from({ length: top + 2 }, (_, i) => i),
        );
      }),
      { numRuns: 300 },
    );
  });
});

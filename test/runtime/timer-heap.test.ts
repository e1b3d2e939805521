import { describe, expect, it } from 'vitest';
import {
  compactHeap,
  compactIfWasteful,
  dropCancelledTop,
  heapPop,
  heapPush,
  pendingOf,
} from '../../src/runtime/timer-heap.js';
import { TimerEntry } from '../../src/runtime/timers.js';

let ids = 0;
function entry(deadlineMs: number, owner = 1, label = `t${deadlineMs}`): TimerEntry {
  const e = new TimerEntry();
  e.id = ++ids;
  e.deadlineMs = deadlineMs;
  e.wallDeadlineMs = 1_000_000 + deadlineMs;
  e.delayMs = deadlineMs;
  e.owner = owner;
  e.label = label;
  e.fn = () => {};
  return e;
}

function drain(heap: TimerEntry[]): string[] {
  const out: string[] = [];
  for (let e = heapPop(heap); e; e = heapPop(heap)) out.push(e.label);
  return out;
}

describe('the timer heap', () => {
  it('pops by deadline, and equal deadlines in the order they were armed', () => {
    const heap: TimerEntry[] = [];
    for (const [d, label] of [
      [50, 'c'],
      [10, 'a'],
      [30, 'b1'],
      [90, 'd'],
      [30, 'b2'],
      [0, 'first'],
      [30, 'b3'],
    ] as const)
      heapPush(heap, entry(d, 1, label));
    expect(drain(heap)).toEqual(['first', 'a', 'b1', 'b2', 'b3', 'c', 'd']);
    expect(heapPop(heap)).toBeUndefined();
  });

  it('keeps its order over many pushes and pops (a sorted drain)', () => {
    const heap: TimerEntry[] = [];
    const deadlines = Array.from({ length: 500 }, (_, i) => (i * 7919) % 1000);
    for (const d of deadlines) heapPush(heap, entry(d));
    const popped: number[] = [];
    for (let i = 0; i < 200; i++) popped.push(heapPop(heap)!.deadlineMs);
    for (const d of [5, 999, 0]) heapPush(heap, entry(d));
    for (let e = heapPop(heap); e; e = heapPop(heap)) popped.push(e.deadlineMs);
    const firstPart = popped.slice(0, 200);
    expect(firstPart).toEqual([...firstPart].sort((a, b) => a - b));
    const rest = popped.slice(200);
    expect(rest).toEqual([...rest].sort((a, b) => a - b));
    expect(popped).toHaveLength(503);
  });

  it('dropCancelledTop pops cancelled entries until the top is live', () => {
    const heap: TimerEntry[] = [];
    const [a, b, c] = [entry(1), entry(2), entry(3)];
    for (const e of [a, b, c]) heapPush(heap, e);
    a.fn = undefined;
    b.fn = undefined;
    expect(dropCancelledTop(heap)).toBe(2);
    expect(heap[0]).toBe(c);
    expect(dropCancelledTop(heap)).toBe(0);
    c.fn = undefined;
    expect(dropCancelledTop(heap)).toBe(1);
    expect(heap).toEqual([]);
  });

  it('compactHeap drops cancelled entries and keeps the order of the rest', () => {
    const heap: TimerEntry[] = [];
    const all = Array.from({ length: 40 }, (_, i) => entry(40 - i));
    for (const e of all) heapPush(heap, e);
    for (const e of all) if (e.deadlineMs % 3 !== 0) e.fn = undefined;
    compactHeap(heap);
    expect(heap).toHaveLength(13);
    expect(drain(heap)).toEqual(Array.from({ length: 13 }, (_, i) => `t${(i + 1) * 3}`));
  });

  it.each([
    [64, 100, false],
    [65, 131, false],
    [65, 130, true],
    [100, 150, true],
  ])('compactIfWasteful: %d cancelled of %d compacts: %s', (cancelled, size, compacts) => {
    const heap: TimerEntry[] = [];
    const all = Array.from({ length: size }, (_, i) => entry(i));
    for (const e of all) heapPush(heap, e);
    for (const e of all.slice(0, cancelled)) e.fn = undefined;
    const left = compactIfWasteful(heap, cancelled);
    expect(left).toBe(compacts ? 0 : cancelled);
    expect(heap).toHaveLength(compacts ? size - cancelled : size);
  });

  it('pendingOf lists one owner’s live entries, earliest first, as plain info', () => {
    const heap: TimerEntry[] = [];
    const [x, y, z, other] = [entry(30, 7, 'x'), entry(10, 7, 'y'), entry(20, 7, 'z'), entry(5, 8, 'o')];
    for (const e of [x, y, z, other]) heapPush(heap, e);
    z.fn = undefined;
    expect(pendingOf(heap, 7)).toEqual([
      { owner: 7, label: 'y', deadlineMs: 10, wallDeadlineMs: 1_000_010, delayMs: 10 },
      { owner: 7, label: 'x', deadlineMs: 30, wallDeadlineMs: 1_000_030, delayMs: 30 },
    ]);
    expect(pendingOf(heap, 9)).toEqual([]);
  });
});

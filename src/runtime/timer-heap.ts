/**
 * The binary min-heap under the timer service (timers.ts): entries in a plain array, ordered by
 * deadline, then by id (the order they were armed in). Pure functions over that array. A
 * cancelled entry (its `fn` cleared) stays where it is until it reaches the top or the heap is
 * compacted; that is what makes cancelling O(1).
 *
 * @example
 * const heap: TimerEntry[] = [];
 * heapPush(heap, entry);
 * const due = heap[0]; // earliest deadline
 * heapPop(heap);
 */
import type { TimerEntry, TimerInfo } from './timers.js';

type Entry = TimerEntry;

const less = (a: Entry, b: Entry) =>
  a.deadlineMs < b.deadlineMs || (a.deadlineMs === b.deadlineMs && a.id < b.id);

function siftUp(heap: Entry[], i: number): void {
  const e = heap[i]!;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const p = heap[parent]!;
    if (!less(e, p)) break;
    heap[i] = p;
    i = parent;
  }
  heap[i] = e;
}

function siftDown(heap: Entry[], i: number): void {
  const n = heap.length;
  const e = heap[i]!;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    const c = r < n && less(heap[r]!, heap[l]!) ? r : l;
    if (!less(heap[c]!, e)) break;
    heap[i] = heap[c]!;
    i = c;
  }
  heap[i] = e;
}

/** Adds an entry in its place. */
export function heapPush(heap: Entry[], e: Entry): void {
  heap.push(e);
  siftUp(heap, heap.length - 1);
}

/** Takes the top entry (the earliest deadline) off the heap. */
export function heapPop(heap: Entry[]): Entry | undefined {
  const top = heap[0];
  const last = heap.pop();
  if (heap.length > 0 && last) {
    heap[0] = last;
    siftDown(heap, 0);
  }
  return top;
}

/** Drops every cancelled entry and restores the heap order, in O(n). */
export function compactHeap(heap: Entry[]): void {
  let w = 0;
  for (let r = 0; r < heap.length; r++) {
    const e = heap[r]!;
    if (e.fn) heap[w++] = e;
  }
  heap.length = w;
  for (let i = (w >> 1) - 1; i >= 0; i--) siftDown(heap, i);
}

/** Pops the cancelled entries off the top, so the top is live (or the heap empty); returns how many. */
export function dropCancelledTop(heap: Entry[]): number {
  let dropped = 0;
  while (heap.length > 0 && !heap[0]!.fn) {
    heapPop(heap);
    dropped++;
  }
  return dropped;
}

/**
 * Compacts the heap once cancelled entries are over 64 and at least half of it, so a timeout
 * re-armed a million times does not leave a million dead entries behind. Takes the count of
 * cancelled entries in the heap and returns it afterwards.
 */
export function compactIfWasteful(heap: Entry[], cancelled: number): number {
  if (cancelled > 64 && cancelled * 2 >= heap.length) {
    compactHeap(heap);
    return 0;
  }
  return cancelled;
}

/** The pending entries of one owner, earliest first (a scan: for inspection). */
export function pendingOf(heap: readonly Entry[], owner: number): TimerInfo[] {
  return heap
    .filter((e) => e.fn !== undefined && e.owner === owner)
    .sort((a, b) => a.deadlineMs - b.deadlineMs)
    .map((e) => ({
      owner: e.owner,
      label: e.label,
      deadlineMs: e.deadlineMs,
      wallDeadlineMs: e.wallDeadlineMs,
      delayMs: e.delayMs,
    }));
}

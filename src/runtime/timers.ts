/**
 * One shared timer structure per runtime: a binary min-heap of absolute deadlines driven by a
 * single host timer, instead of one `setTimeout` per actor and transition.
 *
 * Every entry knows its owner (a pid) and a label, so the UI can count each running timeout
 * down and the store can persist its absolute deadline. Cancelling is O(1) (the entry is marked
 * and skipped); the heap is compacted when cancelled entries outnumber live ones, so a device
 * that re-arms its timeout a million times does not leave a million dead entries behind. The
 * heap itself (ordering, compaction) is timer-heap.ts; this module drives it with the host timer.
 *
 * @example
 * const timers = createTimerService(createRealClock());
 * const ref = timers.schedule(5_000, () => console.log('connect timeout'), { owner: pid, label: 'connect' });
 * timers.cancel(ref);
 */
import type { Clock, ClockHandle } from './clock.js';
import { compactIfWasteful, dropCancelledTop, heapPop, heapPush, pendingOf } from './timer-heap.js';

export interface TimerInfo {
  /** Owner process id (or 0 for runtime-internal timers). */
  readonly owner: number;
  /** What the timer is for, e.g. `state:connecting`, `xstate.after.5000.device.connecting`. */
  readonly label: string;
  /** Monotonic deadline (clock.now() units). */
  readonly deadlineMs: number;
  /** Wall-clock deadline (epoch ms), for persistence and for the UI's countdown. */
  readonly wallDeadlineMs: number;
  /** The delay it was armed with. */
  readonly delayMs: number;
}

export interface TimerRef extends TimerInfo {
  readonly id: number;
}

/**
 * What a timer calls: a function, or an object whose `onTimer()` runs (lets a process keep one
 * small object per timer instead of a closure per arm).
 */
export type TimerCallback = (() => void) | { onTimer(): void };

/**
 * A pending timer. A caller that keeps per-timer state may extend it and arm the object itself
 * ({@link TimerService.arm}): one object per armed timeout instead of an entry plus its own
 * record pointing at it (a machine process keeps 100k of them).
 */
export class TimerEntry implements TimerRef {
  id = 0;
  deadlineMs = 0;
  wallDeadlineMs = 0;
  delayMs = 0;
  owner = 0;
  label = '';
  /** Undefined once cancelled or fired: O(1) cancel, no index. */
  fn: TimerCallback | undefined = undefined;
}

type Entry = TimerEntry;

export interface TimerMeta {
  owner?: number;
  label?: string;
}

export interface TimerService {
  readonly clock: Clock;
  schedule(delayMs: number, fn: TimerCallback, meta?: TimerMeta): TimerRef;
  /**
   * Arms a caller-made entry whose `onTimer()` runs when it fires (a fresh entry: each is armed
   * once) and returns it; it is the ref to cancel.
   */
  arm<E extends TimerEntry & { onTimer(): void }>(entry: E, delayMs: number, owner: number, label: string): E;
  /** Cancels a pending timer; returns false if it already fired or was cancelled. */
  cancel(ref: TimerRef): boolean;
  isPending(ref: TimerRef): boolean;
  /**
   * Pending timers of one owner, earliest first. A scan: for inspection, not hot paths
   * (each process keeps the refs of its own timers and cancels them itself).
   */
  ownedBy(owner: number): TimerInfo[];
  /** Number of pending timers. */
  size(): number;
  /** Stops the host timer and drops every pending timer. */
  dispose(): void;
}

export function createTimerService(clock: Clock): TimerService {
  const heap: Entry[] = [];
  let liveCount = 0;
  let nextId = 1;
  let cancelledInHeap = 0;
  let hostHandle: ClockHandle | undefined;
  let hostDeadline = Number.POSITIVE_INFINITY;
  let firing = false;
  let disposed = false;

  const forget = (e: Entry) => {
    e.fn = undefined;
    liveCount--;
  };

  const rearm = () => {
    if (disposed || firing) return;
    cancelledInHeap -= dropCancelledTop(heap);
    const top = heap[0];
    const wanted = top ? top.deadlineMs : Number.POSITIVE_INFINITY;
    if (wanted === hostDeadline) return;
    if (hostHandle !== undefined) clock.clearTimeout(hostHandle);
    hostHandle = undefined;
    hostDeadline = wanted;
    if (top) hostHandle = clock.setTimeout(onHostTimer, Math.max(0, wanted - clock.now()));
  };

  function onHostTimer() {
    hostHandle = undefined;
    hostDeadline = Number.POSITIVE_INFINITY;
    firing = true;
    try {
      const now = clock.now();
      for (;;) {
        cancelledInHeap -= dropCancelledTop(heap);
        const top = heap[0];
        if (!top || top.deadlineMs > now) break;
        heapPop(heap);
        const fn = top.fn!;
        forget(top);
        runCallback(fn);
      }
    } finally {
      firing = false;
      rearm();
    }
  }

  function insert<E extends TimerEntry>(
    e: E,
    delayMs: number,
    owner: number,
    label: string,
    fn: TimerCallback,
  ): E {
    if (disposed) throw new Error('TimerService: schedule after dispose');
    const d = Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0;
    e.id = nextId++;
    e.deadlineMs = clock.now() + d;
    e.wallDeadlineMs = clock.wallNow() + d;
    e.delayMs = d;
    e.owner = owner;
    e.label = label;
    e.fn = fn;
    heapPush(heap, e);
    liveCount++;
    if (e.deadlineMs < hostDeadline) rearm();
    return e;
  }

  return {
    clock,
    schedule: (delayMs, fn, meta) =>
      insert(new TimerEntry(), delayMs, meta?.owner ?? 0, meta?.label ?? '', fn),
    arm: (entry, delayMs, owner, label) => insert(entry, delayMs, owner, label, entry),
    cancel(ref) {
      const e = ref as Entry;
      if (!e.fn) return false;
      forget(e);
      cancelledInHeap = compactIfWasteful(heap, cancelledInHeap + 1);
      // The host timer is left armed: if it fires early it finds nothing due and re-arms for
      // the real top. Re-arming here would cost a host clear+set on every re-armed timeout.
      return true;
    },
    isPending: (ref) => (ref as Entry).fn !== undefined,
    ownedBy: (owner) => pendingOf(heap, owner),
    size: () => liveCount,
    dispose() {
      disposed = true;
      if (hostHandle !== undefined) clock.clearTimeout(hostHandle);
      hostHandle = undefined;
      for (const e of heap) e.fn = undefined;
      liveCount = 0;
      heap.length = 0;
    },
  };
}

/** Runs a due timer's callback. */
function runCallback(fn: TimerCallback): void {
  try {
    if (typeof fn === 'function') fn();
    else fn.onTimer();
  } catch (error) {
    // A timer callback must not break the shared structure; the owner's adapter reports
    // its own failures, so this only guards against a bug in one.
    queueMicrotask(() => {
      throw error;
    });
  }
}

/**
 * Items found by pid, kept in the order they were added: a dynamic supervisor's children, one
 * per device. The same answers as a `Map<Pid, T>` (an item added again under its pid keeps its
 * place, iteration in insertion order), at about a quarter of the memory.
 *
 * Why not a Map: its table doubles, so it costs 37–46 B an entry. Pids only grow, so items added
 * one after another arrive in pid order, and a sorted array searched by halves costs 8–12 B an
 * item. A removed item leaves its pid in its slot, so the search still works, until removed
 * slots are over 32 and half of the array. Should an item come with a pid below the last one
 * (a start function handing back a process started earlier), sorted order and insertion order
 * part: the index moves into a Map from then on.
 *
 * @example
 * const children = new PidIndex<Child>((c) => c.pid);
 * children.add(child);
 * children.get(child.pid); // → child
 * children.delete(child.pid);
 */
import type { Pid } from './process.js';

export class PidIndex<T extends object> {
  /** An item, or the pid of a removed one; keys ascending. */
  private slots: (T | Pid)[] = [];
  private removed = 0;
  private map: Map<Pid, T> | undefined = undefined;

  /** `pidOf` must give the pid an item was added under for as long as it is in the index. */
  constructor(private readonly pidOf: (item: T) => Pid) {}

  get size(): number {
    return this.map ? this.map.size : this.slots.length - this.removed;
  }

  /** Adds `item` under its pid; an item already there under that pid is replaced in its place. */
  add(item: T): void {
    const pid = this.pidOf(item);
    if (this.map) {
      this.map.set(pid, item);
      return;
    }
    const slots = this.slots;
    const last = slots.length - 1;
    if (last < 0 || this.keyAt(last) < pid) {
      slots.push(item);
      return;
    }
    const i = this.find(pid);
    if (i >= 0 && typeof slots[i] === 'object') {
      slots[i] = item;
      return;
    }
    if (i === last) {
      // Its pid was the last one removed: back in the last slot, it is still added last.
      slots[i] = item;
      this.removed--;
      return;
    }
    this.toMap().set(pid, item);
  }

  get(pid: Pid): T | undefined {
    if (this.map) return this.map.get(pid);
    const i = this.find(pid);
    const slot = i >= 0 ? this.slots[i] : undefined;
    return typeof slot === 'object' ? slot : undefined;
  }

  /** Removes the item under `pid`; false when there is none. */
  delete(pid: Pid): boolean {
    if (this.map) return this.map.delete(pid);
    const i = this.find(pid);
    if (i < 0 || typeof this.slots[i] === 'number') return false;
    this.slots[i] = pid;
    this.removed++;
    if (this.removed > 32 && this.removed * 2 > this.slots.length) this.compact();
    return true;
  }

  /** The items in the order they were added (a copy: the index may change while it is used). */
  values(): T[] {
    if (this.map) return [...this.map.values()];
    const out: T[] = [];
    for (const slot of this.slots) if (typeof slot === 'object') out.push(slot);
    return out;
  }

  clear(): void {
    this.slots = [];
    this.removed = 0;
    this.map = undefined;
  }

  private keyAt(i: number): Pid {
    const slot = this.slots[i]!;
    return typeof slot === 'object' ? this.pidOf(slot) : slot;
  }

  /** The slot holding `pid` (an item or a removed one), or -1. */
  private find(pid: Pid): number {
    let lo = 0;
    let hi = this.slots.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const key = this.keyAt(mid);
      if (key === pid) return mid;
      if (key < pid) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  private compact(): void {
    this.slots = this.values();
    this.removed = 0;
  }

  private toMap(): Map<Pid, T> {
    const map = new Map<Pid, T>();
    for (const item of this.values()) map.set(this.pidOf(item), item);
    this.map = map;
    this.slots = [];
    this.removed = 0;
    return map;
  }
}

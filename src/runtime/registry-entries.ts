/**
 * The entries of a registry (registry.ts), indexed twice — by key, and by the process that owns
 * them — and kept in step: a process is linked to once, on its first entry, and every entry of
 * it goes when it exits. The registry adds the semantics on top (unique or duplicate keys, its
 * errors, dispatch).
 */
import type { Pid, Process } from './process.js';
import type { RegistryEntry } from './registry.js';

export interface Entry<V> extends RegistryEntry<V> {
  readonly owner: Owner<V>;
}

export interface Owner<V> {
  readonly process: Process;
  readonly entries: Set<Entry<V>>;
  unlink: () => void;
}

export class RegistryEntries<V> {
  private readonly byKey = new Map<string, Set<Entry<V>>>();
  private readonly owners = new Map<Pid, Owner<V>>();
  /** Number of entries. */
  size = 0;

  /** Adds an entry of `process` under `key`; its first entry links to the process's exit. */
  add(key: string, process: Process, value: V | undefined): void {
    let owner = this.owners.get(process.pid);
    if (!owner) {
      const created: Owner<V> = { process, entries: new Set(), unlink: () => {} };
      created.unlink = process.onExit(() => this.removeOwner(created));
      this.owners.set(process.pid, created);
      owner = created;
    }
    const entry: Entry<V> = { key, pid: process.pid, process, value, owner };
    owner.entries.add(entry);
    let set = this.byKey.get(key);
    if (!set) {
      set = new Set();
      this.byKey.set(key, set);
    }
    set.add(entry);
    this.size++;
  }

  /** Removes one entry; with its owner's last entry, the owner and its exit link go too. */
  remove(entry: Entry<V>): void {
    const set = this.byKey.get(entry.key);
    if (set?.delete(entry)) {
      this.size--;
      if (set.size === 0) this.byKey.delete(entry.key);
    }
    entry.owner.entries.delete(entry);
    if (entry.owner.entries.size === 0) {
      entry.owner.unlink();
      this.owners.delete(entry.pid);
    }
  }

  removeOwner(owner: Owner<V>): void {
    for (const entry of [...owner.entries]) this.remove(entry);
  }

  /**
   * The entries under `key` whose process is alive, in registration order. Exit listeners run
   * synchronously on exit, but another listener may run first and look the process up: the
   * liveness check keeps "lookups never return dead processes" true even then.
   */
  live(key: string): Entry<V>[] {
    const set = this.byKey.get(key);
    if (!set) return [];
    const out: Entry<V>[] = [];
    for (const entry of set) {
      if (entry.process.alive) out.push(entry);
      else this.removeOwner(entry.owner);
    }
    return out;
  }

  /** The owner registered with this pid, if it holds any entry. */
  ownerOf(pid: Pid): Owner<V> | undefined {
    return this.owners.get(pid);
  }
}

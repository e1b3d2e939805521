/**
 * A value kept in this browser's localStorage under one key, read once, validated by `parse` (a
 * damaged or foreign entry reads as what `parse` makes of it, never a throw), shared by every
 * component that uses it and re-rendered on change. Storage that is off or full keeps the value for
 * this page only.
 *
 * @example
 * const prefs = createStoredValue('fleetvisor.fleetColumns', parseColumnPrefs);
 * const value = useStoredValue(prefs);
 * prefs.set({ ...value, metrics: ['temp'] });
 */
import { useSyncExternalStore } from 'react';

export interface StoredValue<T> {
  get(): T;
  set(next: T): void;
  subscribe(listener: () => void): () => void;
}

export function createStoredValue<T>(key: string, parse: (raw: unknown) => T): StoredValue<T> {
  const listeners = new Set<() => void>();
  let value: T | undefined;
  const read = (): T => {
    try {
      const raw = typeof localStorage === 'undefined' ? null : localStorage.getItem(key);
      return parse(raw === null ? undefined : JSON.parse(raw));
    } catch {
      return parse(undefined);
    }
  };
  return {
    get() {
      if (value === undefined) value = read();
      return value;
    },
    set(next) {
      value = next;
      try {
        localStorage.setItem(key, JSON.stringify(next));
      } catch {
        // storage off or full: kept for this page only
      }
      for (const listener of [...listeners]) listener();
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export function useStoredValue<T>(stored: StoredValue<T>): T {
  return useSyncExternalStore(stored.subscribe, stored.get);
}

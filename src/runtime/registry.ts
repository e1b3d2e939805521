/**
 * A process registry with Elixir `Registry` semantics: unique or duplicate string keys, values
 * per entry, dispatch to every entry under a key (pub/sub), and via-names for supervisors.
 *
 * One instance per call, no module-level state. Entries are removed when their process exits,
 * and lookups never return a dead process.
 *
 * Deviations from Elixir, on purpose:
 * - the process is passed explicitly (there is no `self()`);
 * - `dispatch` calls the callback once per entry rather than once with the list, and a callback
 *   that throws is reported and does not stop the other entries (one subscriber's failure must
 *   not starve the others).
 *
 * @example
 * const names = createRegistry(runtime, { keys: 'unique', name: 'devices' });
 * const r = names.register('device:42', server);
 * if (!r.ok && r.error.code === 'alreadyRegistered') console.log('taken by', r.error.pid);
 * names.whereis('device:42'); // → server, until it exits
 *
 * const topics = createRegistry<string>(runtime, { keys: 'duplicate' });
 * topics.register('telemetry', viewA, 'chart');
 * topics.register('telemetry', viewB, 'table');
 * topics.dispatch('telemetry', (entry) => (entry.process as ServerProcess).cast(sample));
 */
import type { Pid, Process } from './process.js';
import type { Entry } from './registry-entries.js';
import { RegistryEntries } from './registry-entries.js';
import type { Runtime } from './runtime.js';

export type RegistryKeys = 'unique' | 'duplicate';

export interface RegistryOptions {
  /** `unique`: at most one process per key; `duplicate`: any number (pub/sub). */
  keys: RegistryKeys;
  /** Shown in reports. */
  name?: string;
}

export interface RegistryEntry<V = unknown> {
  readonly key: string;
  readonly pid: Pid;
  readonly process: Process;
  readonly value: V | undefined;
}

/**
 * - `alreadyRegistered`: a unique key is held by a live process (OTP `already_started`; the pid
 *   is the holder's, which is the caller's own when it registers the same key twice);
 * - `noproc`: the process has already exited.
 */
export type RegisterError =
  | { readonly code: 'alreadyRegistered'; readonly pid: Pid; readonly message: string }
  | { readonly code: 'noproc'; readonly message: string };

export type RegisterResult = { readonly ok: true } | { readonly ok: false; readonly error: RegisterError };

export interface Registry<V = unknown> {
  readonly name: string;
  readonly mode: RegistryKeys;
  /** Registers `process` under `key` with an optional value. */
  register(key: string, process: Process, value?: V): RegisterResult;
  /** Live entries under `key`, in registration order (empty when none). */
  lookup(key: string): RegistryEntry<V>[];
  /** The process holding a unique key, or undefined. Throws on a duplicate registry (misuse). */
  whereis(key: string): Process | undefined;
  /** Removes every entry of `process` under `key`; false when it held none. */
  unregister(key: string, process: Process): boolean;
  /** The keys `process` is registered under, in registration order (a key repeats per entry). */
  keys(process: Process): string[];
  /**
   * Calls `fn` for every live entry under `key` (those registered when dispatch starts, minus any
   * that exit or unregister meanwhile) and returns how many entries it was called for. A
   * throwing `fn` is reported; the others still run.
   */
  dispatch(key: string, fn: (entry: RegistryEntry<V>) => void): number;
  /** Number of live entries. */
  count(): number;
}

const toPublic = <V>(e: Entry<V>): RegistryEntry<V> => ({
  key: e.key,
  pid: e.pid,
  process: e.process,
  value: e.value,
});

export function createRegistry<V = unknown>(runtime: Runtime, options: RegistryOptions): Registry<V> {
  if (options.keys !== 'unique' && options.keys !== 'duplicate')
    throw new TypeError(
      `createRegistry: options.keys must be 'unique' or 'duplicate', got ${String(options.keys)}`,
    );
  const mode = options.keys;
  const name = options.name ?? 'registry';
  const entries = new RegistryEntries<V>();

  const checkKey = (key: string, fn: string) => {
    if (typeof key !== 'string' || key.length === 0)
      throw new TypeError(`${name}.${fn}: key must be a non-empty string`);
  };

  const registry: Registry<V> = {
    name,
    mode,
    register(key, process, value) {
      checkKey(key, 'register');
      if (!process.alive)
        return {
          ok: false,
          error: { code: 'noproc', message: `${process.name} (pid ${process.pid}) has exited` },
        };
      if (mode === 'unique') {
        const holder = entries.live(key)[0];
        if (holder)
          return {
            ok: false,
            error: {
              code: 'alreadyRegistered',
              pid: holder.pid,
              message: `${key} is already registered in ${name} by ${holder.process.name} (pid ${holder.pid})`,
            },
          };
      }
      entries.add(key, process, value);
      return { ok: true };
    },
    lookup(key) {
      return entries.live(key).map(toPublic);
    },
    whereis(key) {
      if (mode !== 'unique') throw new TypeError(`${name}.whereis: only for a unique registry, use lookup`);
      return entries.live(key)[0]?.process;
    },
    unregister(key, process) {
      const owner = entries.ownerOf(process.pid);
      if (!owner || owner.process !== process) return false;
      let removed = false;
      for (const entry of [...owner.entries]) {
        if (entry.key !== key) continue;
        entries.remove(entry);
        removed = true;
      }
      return removed;
    },
    keys(process) {
      const owner = entries.ownerOf(process.pid);
      if (!owner || owner.process !== process || !process.alive) return [];
      return [...owner.entries].map((e) => e.key);
    },
    dispatch(key, fn) {
      let called = 0;
      for (const entry of entries.live(key)) {
        // An earlier call may have stopped or unregistered a later entry.
        if (!entry.process.alive || !entry.owner.entries.has(entry)) continue;
        called++;
        try {
          fn(toPublic(entry));
        } catch (error) {
          runtime.report(`${name}.dispatch(${key}) threw for ${entry.process.name}`, error, entry.pid);
        }
      }
      return called;
    },
    count() {
      return entries.size;
    },
  };
  return registry;
}

/**
 * A name for one process in a unique registry, OTP's `{via, Module, Name}`: a supervisor (or a
 * server) is given a ViaName and registers the process it starts under it. A clash with a
 * process started elsewhere gives `alreadyRegistered` with that process's pid (OTP
 * `already_started_outside_supervisor`).
 *
 * @example
 * const via = viaName(names, 'fleet:root');
 * via.register(supervisor); // { ok: true }, or { ok: false, error: { code: 'alreadyRegistered', pid } }
 * via.whereis(); // → supervisor
 */
export interface ViaName {
  readonly registry: Registry;
  readonly key: string;
  register(process: Process): RegisterResult;
  whereis(): Process | undefined;
  unregister(process: Process): boolean;
}

export function viaName<V>(registry: Registry<V>, key: string, value?: V): ViaName {
  if (registry.mode !== 'unique') throw new TypeError(`viaName: ${registry.name} must have unique keys`);
  if (typeof key !== 'string' || key.length === 0)
    throw new TypeError('viaName: key must be a non-empty string');
  return {
    registry: registry as Registry,
    key,
    register: (process) => registry.register(key, process, value),
    whereis: () => registry.whereis(key),
    unregister: (process) => registry.unregister(key, process),
  };
}

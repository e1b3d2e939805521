/**
 * Stored snapshots in a state the kind's machine no longer has. A kind's machine changes between
 * app versions (issue 14 removed the generic kind's `updating.*` states); a device saved by an
 * older app in such a state would not restore at all (xstate refuses the snapshot), and the device
 * would come back failed. Instead its machine starts afresh in its initial state, and the device
 * event log says what was dropped (`device.snapshotMigrated`).
 *
 * The check runs in the devices layer, on the stored state value, before the snapshot reaches the
 * runtime: a snapshot that fits goes on unchanged.
 */

import type { AnyStateMachine } from 'xstate';
import { formatStateValue } from '../../runtime/index.js';
import type { JsonValue } from '../../store/store.js';
import type { StoredState } from './context.js';

/** A state node as far as the walk needs it: its child states by key. */
interface StateNodeLike {
  readonly states: Readonly<Record<string, StateNodeLike>>;
}

/**
 * The first part of `value` (dotted from the root, `updating` or `running.warp`) that names no
 * state of `machine`; undefined when every part of it does.
 *
 * @example
 * unknownStateOf(genericMachine, { updating: 'transfer' }); // 'updating'
 * unknownStateOf(genericMachine, 'connected'); // undefined
 */
export function unknownStateOf(machine: AnyStateMachine, value: unknown): string | undefined {
  return walk(machine.root as unknown as StateNodeLike, value, '');
}

function walk(node: StateNodeLike, value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return Object.hasOwn(node.states, value) ? undefined : path + value;
  if (value === null || typeof value !== 'object') return path + String(value);
  for (const [key, sub] of Object.entries(value as Record<string, unknown>)) {
    if (!Object.hasOwn(node.states, key)) return path + key;
    const unknown = walk(node.states[key]!, sub, `${path}${key}.`);
    if (unknown !== undefined) return unknown;
  }
  return undefined;
}

/** A dropped context larger than this (as JSON) is not copied into the event. */
const MAX_CONTEXT_CHARS = 4096;

/** What `device.snapshotMigrated` says, but `to`, known once the fresh machine runs. */
export interface DroppedState {
  /** The stored state, as the UI writes states (`updating.transfer`). */
  readonly from: string;
  readonly reason: string;
  /** The stored timeouts that went with it, as `kind:id`. */
  readonly timers: readonly string[];
  /** The stored machine context, for the record (omitted past {@link MAX_CONTEXT_CHARS}). */
  readonly context: JsonValue;
}

/**
 * Whether a stored device state fits the kind's machine: undefined when it does (restore it as
 * it is), else what is dropped and why (start the machine afresh and log it).
 */
export function dropUnfitState(
  kind: string,
  machine: AnyStateMachine,
  stored: StoredState,
): DroppedState | undefined {
  const m = stored.machine as { value?: unknown; context?: JsonValue } | null;
  const unknown = unknownStateOf(machine, m?.value);
  if (unknown === undefined) return undefined;
  const context = m?.context ?? null;
  return {
    from: formatStateValue(m?.value),
    reason: `the ${kind} machine has no state '${unknown}' (saved by an app version that had it)`,
    timers: stored.timers.map((t) => `${t.kind}:${t.id}`),
    context: JSON.stringify(context).length <= MAX_CONTEXT_CHARS ? context : '(omitted: too large)',
  };
}

/**
 * What a machine process persists: its snapshot and the absolute deadlines of its running
 * timeouts ({@link PersistedMachineState}), and the compact form a hibernated machine keeps of
 * them (one short JSON string, {@link encodeHibernated}).
 *
 * @example
 * const json = encodeHibernated(machine.getPersistedSnapshot(snapshot), timers);
 * const { snapshot, timers } = decodeHibernated(json); // the same state, defaults filled in
 */
import type { EventObject } from 'xstate';
import type { MachineTimer, TimerKind } from './machine-timeouts.js';

/** Everything needed to bring the machine back: its persisted snapshot and running timeouts. */
export interface PersistedMachineState {
  readonly snapshot: unknown;
  readonly timers: readonly MachineTimer[];
}

/**
 * A hibernated machine as one short JSON string: the persisted snapshot without its defaults
 * (status active, empty history and children) and each timer as a tuple, its event left out
 * when it is just `{ type: id }` (xstate's `after` events).
 */
export function encodeHibernated(snapshot: unknown, timers: readonly MachineTimer[]): string {
  const { status, historyValue, children, ...rest } = snapshot as Record<string, unknown>;
  const s: Record<string, unknown> = rest;
  if (status !== 'active') s.status = status;
  if (historyValue && Object.keys(historyValue).length > 0) s.historyValue = historyValue;
  if (children && Object.keys(children).length > 0) s.children = children;
  const t = timers.map((x) => {
    const tuple: unknown[] = [x.kind, x.id, x.wallDeadlineMs, x.delayMs];
    if (!(x.event.type === x.id && Object.keys(x.event).length === 1)) tuple.push(x.event);
    return tuple;
  });
  return flat(JSON.stringify([s, t]));
}

/**
 * V8's JSON.stringify returns a rope (a tree of the parts it built, ~100 B more than the text for
 * a short result); a hibernated machine keeps its string for long, so it keeps one flat copy.
 * UTF-8 is lossless here: JSON.stringify escapes lone surrogates.
 */
function flat(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}

export function decodeHibernated(json: string): PersistedMachineState {
  const [s, t] = JSON.parse(json) as [
    Record<string, unknown>,
    [TimerKind, string, number, number, EventObject?][],
  ];
  const snapshot = { status: 'active', historyValue: {}, children: {}, ...s };
  const timers = t.map(([kind, id, wallDeadlineMs, delayMs, event]) => ({
    kind,
    id,
    wallDeadlineMs,
    delayMs,
    event: event ?? { type: id },
  }));
  return { snapshot, timers };
}

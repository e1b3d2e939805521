/**
 * The API's views of core records: a device row, an event, a command, a machine's states — plain
 * data for the contract (src/host/contract.ts), built without side effects.
 *
 * @example
 * row(fleet.device('pump-1')!, lastSeenAt); // { id, name, state, link, lastSeen, timers, … }
 */
import type { DeviceView } from '../../devices/fleet.js';
import type { CommandAuditRecord, EventRecord } from '../../store/store.js';
import type { CommandView, DeviceRow, EventView, Json, MachineStateView, MachineView } from '../contract.js';

/** A row of the fleet table; `lastSeen` is the API's own record of the device's last message. */
export const row = (
  d: DeviceView,
  lastSeen: number | null,
  breaker: 'closed' | 'open' | 'halfOpen' = 'closed',
  convention?: string,
): DeviceRow => ({
  id: d.id,
  name: d.name,
  kind: d.kind,
  tags: d.tags,
  health: d.health,
  state: d.state,
  stateEnteredAt: d.stateEnteredAt,
  link: d.link,
  firmware: typeof d.status.firmware === 'string' ? d.status.firmware : null,
  lastSeen,
  restarts: d.restarts,
  drift: d.drift.length,
  failure: d.failure ? { code: d.failure.code, message: d.failure.message } : null,
  timers: d.timers.map((t) => ({
    kind: t.kind,
    key: t.id,
    event: t.event.type,
    deadline: t.wallDeadlineMs,
    delayMs: t.delayMs,
  })),
  // Absent while closed: nothing added to 10,000 rows in the usual case.
  ...(breaker !== 'closed' ? { breaker } : {}),
  // Absent for our own protocol's devices, for the same reason.
  ...(convention !== undefined ? { convention } : {}),
});

export function eventView(e: EventRecord): EventView {
  return { seq: e.seq, at: e.at, deviceId: e.deviceId ?? null, kind: e.kind, data: e.data as Json };
}

type CommandFields = Pick<
  CommandAuditRecord,
  | 'commandId'
  | 'deviceId'
  | 'action'
  | 'args'
  | 'actor'
  | 'status'
  | 'requestedAt'
  | 'completedAt'
  | 'expiresAt'
  | 'result'
  | 'error'
>;

/** One shape for a command, whether it is still open (the outbox) or audited (the store). */
export function commandView(c: CommandFields): CommandView {
  return {
    commandId: c.commandId,
    deviceId: c.deviceId,
    action: c.action,
    args: c.args as Json,
    actor: c.actor,
    status: c.status,
    requestedAt: c.requestedAt,
    completedAt: c.completedAt,
    expiresAt: c.expiresAt,
    result: c.result as Json,
    error: c.error,
  };
}

interface XStateNode {
  readonly key: string;
  readonly path: readonly string[];
  readonly initial?: { readonly target?: readonly XStateNode[] };
  readonly states: Readonly<Record<string, XStateNode>>;
  readonly transitions: ReadonlyMap<
    string,
    readonly { readonly eventType: string; readonly target?: readonly XStateNode[] }[]
  >;
  readonly after: readonly {
    readonly eventType: string;
    readonly delay: string | number;
    readonly target?: readonly XStateNode[];
  }[];
}

/** The machine's states and transitions as plain data, for the diagram. */
export function describeMachine(machine: { readonly id: string; readonly root: unknown }): MachineView {
  const describe = (n: XStateNode, parent: XStateNode | undefined): MachineStateView => {
    const targetOf = (t?: readonly XStateNode[]) =>
      t && t.length > 0 ? t.map((x) => x.path.join('.')).join(', ') : null;
    const out: { event: string; target: string | null }[] = [];
    for (const [event, list] of n.transitions) {
      if (event.startsWith('xstate.after')) continue;
      for (const t of list) out.push({ event, target: targetOf(t.target) });
    }
    for (const a of n.after ?? []) out.push({ event: `after ${a.delay}`, target: targetOf(a.target) });
    const initialTarget = parent?.initial?.target?.[0];
    return {
      path: n.path.join('.'),
      initial: initialTarget === n,
      transitions: out,
      children: Object.values(n.states ?? {}).map((c) => describe(c, n)),
    };
  };
  const root = machine.root as XStateNode;
  return { id: machine.id, states: Object.values(root.states).map((s) => describe(s, root)) };
}

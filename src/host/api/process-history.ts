/**
 * The restart timelines of the observer panel: per process name, how each of its processes ended
 * (the reason, when) and what took its place (restarted by its supervisor, with the restarts in
 * its window and how long it took, or started again some other way), read from the runtime's
 * event stream.
 *
 * Keyed by process name, not pid: a pid lives for one process, while a child's replacement keeps
 * its name (a device's machine is named after the device, its supervisor `device:<id>`), across
 * restarts of the child and of its supervisors, and across an operator's restart of a failed
 * device. Names are not unique by contract: two same-named processes would share a timeline.
 *
 * Bounded whatever the fleet's size or the crash rate: at most {@link ProcessHistoryLimits} entries
 * per name, names (the least recently touched go first) and remembered exits by pid. Nothing is
 * kept per running process, only per exit.
 *
 * @example
 * const history = new ProcessHistory(runtime.events, () => runtime.clock.wallNow());
 * history.timeline('pump-7'); // [{ at, pid: 41, kind: 'crash', reason: 'killed', replacedBy: { pid: 57, by: 'restart', … } }]
 * history.exitOf(41)?.name;   // 'pump-7': the name of a pid that has exited
 * history.close();
 */
import type { EventStream, RuntimeEvent } from '../../runtime/events.js';
import type { ExitReason } from '../../runtime/exit-reason.js';
import { formatExitReason, isGaveUp } from '../../runtime/exit-reason.js';
import type { ProcessLifeEntry } from '../contract.js';

export interface ProcessHistoryLimits {
  /** Entries kept per process name; default 20. */
  readonly perName?: number;
  /** Names kept; default 1,000. */
  readonly names?: number;
  /** Exits remembered by pid (to attach a restart to the exit it answers); default 1,000. */
  readonly exits?: number;
}

type Successor = NonNullable<ProcessLifeEntry['replacedBy']>;
type Entry = { -readonly [K in keyof ProcessLifeEntry]: ProcessLifeEntry[K] };

/** An exit's kind: a crash is what a supervisor restarts a transient child for (and a give-up). */
export function exitKind(reason: ExitReason): 'crash' | 'stop' {
  return reason.type === 'error' || reason.type === 'killed' || isGaveUp(reason) ? 'crash' : 'stop';
}

export class ProcessHistory {
  /** Wall-clock ms since when exits are known. */
  readonly since: number;
  private readonly byName = new Map<string, Entry[]>();
  private readonly exits = new Map<number, { readonly name: string; readonly entry: Entry }>();
  /** Supervisors that gave up, until their exit: what to say of it. */
  private readonly gaveUp = new Map<number, string>();
  private readonly perName: number;
  private readonly names: number;
  private readonly maxExits: number;
  private readonly off: () => void;

  constructor(events: EventStream, now: () => number, limits: ProcessHistoryLimits = {}) {
    this.since = now();
    this.perName = limits.perName ?? 20;
    this.names = limits.names ?? 1000;
    this.maxExits = limits.exits ?? 1000;
    this.off = events.subscribe((e) => this.on(e));
  }

  /** The exits of processes named `name`, oldest first. */
  timeline(name: string): readonly ProcessLifeEntry[] {
    return this.byName.get(name) ?? [];
  }

  /** What the host saw of an exited pid (while it is among the remembered exits). */
  exitOf(pid: number): { readonly name: string; readonly at: number; readonly reason: string } | undefined {
    const e = this.exits.get(pid);
    return e ? { name: e.name, at: e.entry.at, reason: e.entry.reason } : undefined;
  }

  close(): void {
    this.off();
  }

  private on(e: RuntimeEvent): void {
    switch (e.type) {
      case 'process.exited':
        this.exited(e.pid, e.name, e.reason, e.at);
        return;
      case 'process.started':
        this.startedAgain(e.name, { pid: e.pid, at: e.at, by: 'start' });
        return;
      case 'child.restarted': {
        const exit = e.oldPid === undefined ? undefined : this.exits.get(e.oldPid);
        if (!exit || e.pid === undefined) return;
        // Its replacement was announced by `process.started` just before: say it was a restart.
        exit.entry.replacedBy = {
          pid: e.pid,
          at: e.at,
          by: 'restart',
          restartsInWindow: e.restartsInWindow,
          maxRestarts: e.maxRestarts,
          durationMs: e.durationMs,
        };
        return;
      }
      case 'supervisor.gaveUp':
        this.gaveUp.set(
          e.supervisor,
          `more than ${e.maxRestarts} restarts within ${e.periodMs} ms, the last of child '${e.childId}'`,
        );
        return;
    }
  }

  private exited(pid: number, name: string, reason: ExitReason, at: number): void {
    const gaveUp = this.gaveUp.get(pid);
    if (gaveUp !== undefined) this.gaveUp.delete(pid);
    const formatted = formatExitReason(reason);
    const entry: Entry = {
      at,
      pid,
      kind: gaveUp !== undefined ? 'gaveUp' : exitKind(reason),
      reason: gaveUp !== undefined ? `${formatted} (${gaveUp})` : formatted,
    };
    let list = this.byName.get(name);
    if (list)
      this.byName.delete(name); // re-inserted last: the least recently touched go first
    else list = [];
    list.push(entry);
    if (list.length > this.perName) list.shift();
    this.byName.set(name, list);
    if (this.byName.size > this.names) this.byName.delete(this.byName.keys().next().value!);
    this.exits.set(pid, { name, entry });
    if (this.exits.size > this.maxExits) this.exits.delete(this.exits.keys().next().value!);
  }

  /** A process started under a name that has exits: the latest one without a successor gets it. */
  private startedAgain(name: string, successor: Successor): void {
    const last = this.byName.get(name)?.at(-1);
    if (last && !last.replacedBy) last.replacedBy = successor;
  }
}

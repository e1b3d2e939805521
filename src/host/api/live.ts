/**
 * What the API keeps about the live fleet, from what reaches the fleet whatever the device's
 * convention (`fleet.observe`: telemetry and signs of life), the runtime's event stream
 * (transitions, process starts, exits, restarts) and the command tracker (round trips). It tells
 * a {@link LiveMarks} — the push stream — what changed, so each client learns only *which* rows,
 * points and whether the tree are stale.
 *
 * @example
 * const live = new LiveFigures(app, stream);
 * live.lastSeen('pump-1'); // wall-clock ms, or null
 * live.close();
 */
import type { FleetActivity } from '../../devices/fleet.js';
import type { RuntimeEvent } from '../../runtime/events.js';
import type { App } from '../app.js';

/** What a change means for the clients of the push stream. */
export interface LiveMarks {
  /** A device's row changed. */
  device(id: string): void;
  /** The supervision tree changed. */
  tree(): void;
  /** A new value of one metric. */
  telemetry(id: string, metric: string, at: number, value: number): void;
}

export interface Transition {
  readonly at: number;
  readonly from: string;
  readonly to: string;
}

const TRANSITIONS_KEPT = 20;
const LATENCIES_KEPT = 500;

export class LiveFigures {
  /** Messages that reached the fleet since the API started (telemetry and signs of life). */
  activityTotal = 0;
  /** Restarts done by any supervisor since the API started. */
  restarts = 0;
  private readonly seen = new Map<string, number>();
  private readonly marked = new Map<string, number>();
  private readonly transitionsOf = new Map<string, Transition[]>();
  /** ms, the last completed commands. */
  readonly latencies: number[] = [];
  private readonly offs: (() => void)[];

  constructor(
    private readonly app: App,
    private readonly marks: LiveMarks,
  ) {
    this.offs = [
      app.runtime.events.subscribe((e) => this.onRuntime(e)),
      app.fleet.observe((a) => this.onActivity(a)),
      // A breaker opening or closing changes the device's row.
      app.fleet.guards.listen((id) => this.marks.device(id)),
      app.fleet.commands.listen((cmd) => {
        if (cmd.status === 'succeeded' && cmd.sentAt !== null && cmd.completedAt !== null) {
          this.latencies.push(cmd.completedAt - cmd.sentAt);
          if (this.latencies.length > LATENCIES_KEPT) this.latencies.shift();
        }
      }),
    ];
  }

  lastSeen(id: string): number | null {
    return this.seen.get(id) ?? null;
  }

  transitions(id: string): readonly Transition[] {
    return this.transitionsOf.get(id) ?? [];
  }

  close(): void {
    for (const off of this.offs.splice(0)) off();
  }

  private onRuntime(e: RuntimeEvent): void {
    const fleet = this.app.fleet;
    if (e.type === 'state.transition' && fleet.has(e.name)) {
      let list = this.transitionsOf.get(e.name);
      if (!list) {
        list = [];
        this.transitionsOf.set(e.name, list);
      }
      list.push({ at: this.app.runtime.clock.wallNow(), from: e.from, to: e.to });
      if (list.length > TRANSITIONS_KEPT) list.shift();
      // The tree shows each machine's state: it is stale after any transition, not only after a
      // process starts or exits (the stream sends it at most every 500 ms).
      this.marks.device(e.name);
      this.marks.tree();
      return;
    }
    if (e.type === 'child.restarted') this.restarts++;
    if (
      e.type === 'process.started' ||
      e.type === 'process.exited' ||
      e.type === 'child.restarted' ||
      e.type === 'supervisor.gaveUp'
    ) {
      this.marks.tree();
      // A device's own processes changed: its row (health, restarts) changed too.
      const name = 'name' in e && typeof e.name === 'string' ? e.name : undefined;
      const id = name?.startsWith('device:') ? name.slice(7) : name;
      if (id && fleet.has(id)) this.marks.device(id);
    }
  }

  // Every convention's devices feed the same figures: what reaches the fleet, not what one link
  // layer heard.
  private onActivity(activity: FleetActivity): void {
    this.activityTotal++;
    const { deviceId: id, at } = activity;
    this.seen.set(id, at);
    // "Last seen" moves in whole seconds on screen: a row goes out at most once a second for it.
    const marked = this.marked.get(id);
    if (marked === undefined || at - marked >= 1000) {
      this.marked.set(id, at);
      this.marks.device(id);
    }
    if (activity.type === 'telemetry')
      for (const metric in activity.values)
        if (Object.hasOwn(activity.values, metric))
          this.marks.telemetry(id, metric, at, activity.values[metric]!);
  }
}

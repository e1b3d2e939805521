/**
 * What the fleet hears from its devices: telemetry (stored, never a machine event) and signs of
 * life; both push the liveness deadline back and feed {@link Fleet.observe}.
 *
 * Telemetry of one turn goes to the store as one append (issue 16): a link hands over a socket
 * read's messages one by one, each in its own tick, and the microtask queue runs only after them,
 * so the points of a whole read are appended together at the turn's end. A caller of
 * `ingestTelemetry` still gets its own promise and its own count (`perPoint`): a `then` on the
 * turn's one promise. A caller of `queueTelemetry` (a link's hot path) gets the turn's outcome,
 * one promise shared by every such caller of the turn: nothing is made per message but its points.
 */

import type { StoreResult, TelemetryAppendSummary, TelemetryPoint } from '../../store/store.js';
import type { FleetContext } from './context.js';
import { fail } from './context.js';
import { pushLiveness } from './link-sync.js';
import type { Fleet, FleetActivity, FleetResult } from './types.js';

type Appended = StoreResult<TelemetryAppendSummary, 'overloaded'>;

/**
 * The telemetry of one turn, waiting for the microtask that appends it. Each `ingestTelemetry`
 * caller's promise is `appended.then(answer)`: the reactions of one promise run in the order they
 * were added, so `answer`, one function for the whole turn, meets those callers in order and gives
 * each its count. `queueTelemetry` callers share {@link Turn.outcome}.
 */
class Turn {
  readonly points: TelemetryPoint[] = [];
  /** Per `ingestTelemetry` caller, in order: where its points start in `points`, and how many. */
  readonly starts: number[] = [];
  readonly counts: number[] = [];
  /** Settles with the store's answer for the whole turn. */
  readonly appended: Promise<Appended>;
  settle!: (appended: Appended | PromiseLike<Appended>) => void;
  fail!: (error: unknown) => void;
  /** The next caller `answer` meets. */
  private caller = 0;
  private refused: FleetResult<number> | undefined;
  private shared: Promise<FleetResult<undefined>> | undefined;

  constructor() {
    this.appended = new Promise<Appended>((settle, reject) => {
      this.settle = settle;
      this.fail = reject;
    });
  }

  /** The turn's outcome for `queueTelemetry` callers: one promise, made on first use. */
  outcome(): Promise<FleetResult<undefined>> {
    this.shared ??= this.appended.then(outcomeOf);
    return this.shared;
  }

  readonly answer = (r: Appended): FleetResult<number> => {
    const at = this.starts[this.caller]!;
    const count = this.counts[this.caller++]!;
    // The store's own code (`overloaded`: its write buffer is full), so whoever counts the loss
    // names its cause; the fleet being stopped is not it (issue 12 §0).
    if (!r.ok) {
      this.refused ??= fail(r.error.code, r.error.message);
      return this.refused;
    }
    // Its points, less those the store skipped (`perPoint`).
    const skipped = r.value.skipped;
    let written = count;
    if (skipped !== undefined) for (let k = at; k < at + count; k++) if (skipped[k] !== 0) written--;
    return okCount(written);
  };
}

const OK: FleetResult<undefined> = Object.freeze({ ok: true as const, value: undefined });
const outcomeOf = (r: Appended): FleetResult<undefined> => (r.ok ? OK : fail(r.error.code, r.error.message));

const PER_POINT = { perPoint: true } as const;

/** `{ ok: true, value: n }` for the usual small n, made once (frozen: shared by every caller). */
const OK_COUNTS = Array.from({ length: 65 }, (_, n) => Object.freeze({ ok: true as const, value: n }));
const okCount = (n: number): FleetResult<number> => OK_COUNTS[n] ?? { ok: true, value: n };

export type Activity = Pick<Fleet, 'observe' | 'ingestTelemetry' | 'queueTelemetry' | 'touch'>;

export function createActivity(ctx: FleetContext): Activity {
  const { runtime, entries } = ctx;
  let turn: Turn | undefined;

  const appendTurn = (): void => {
    const t = turn!;
    turn = undefined;
    try {
      t.settle(ctx.store.appendTelemetry(t.points, PER_POINT));
    } catch (error) {
      t.fail(error);
    }
  };

  /** Adds a message's points to this turn's append: how many, or why not. Throws what liveness threw. */
  const add = (
    id: string,
    values: Readonly<Record<string, number>>,
    deviceTs: number | null,
    origin: { readonly boot: number; readonly seq: number } | undefined,
  ): number | FleetResult<never> => {
    const e = entries.get(id);
    if (!e) return fail('notFound', `telemetry for unknown device '${String(id).slice(0, 80)}'`);
    const receivedAt = runtime.clock.wallNow();
    pushLiveness(ctx, e);
    if (observers.size > 0) emit({ type: 'telemetry', deviceId: id, at: receivedAt, values, deviceTs });
    if (turn === undefined) {
      turn = new Turn();
      queueMicrotask(appendTurn);
    }
    const points = turn.points;
    const before = points.length;
    for (const metric in values)
      if (Object.hasOwn(values, metric))
        points.push(
          origin
            ? {
                deviceId: id,
                metric,
                deviceTs,
                receivedAt,
                value: values[metric]!,
                boot: origin.boot,
                seq: origin.seq,
              }
            : { deviceId: id, metric, deviceTs, receivedAt, value: values[metric]! },
        );
    return points.length - before;
  };

  const observers = new Set<(activity: FleetActivity) => void>();
  const emit = (activity: FleetActivity) => {
    for (const o of observers) {
      try {
        o(activity);
      } catch (error) {
        runtime.report('fleet: an activity observer threw', error);
      }
    }
  };

  return {
    observe(listener) {
      observers.add(listener);
      return () => observers.delete(listener);
    },

    ingestTelemetry(id, values, deviceTs = null, origin) {
      let added: number | FleetResult<never>;
      try {
        added = add(id, values, deviceTs, origin);
      } catch (error) {
        return Promise.reject(error);
      }
      if (typeof added !== 'number') return Promise.resolve(added);
      const t = turn!;
      t.starts.push(t.points.length - added);
      t.counts.push(added);
      return t.appended.then(t.answer);
    },

    queueTelemetry(id, values, deviceTs = null, origin) {
      let added: number | FleetResult<never>;
      try {
        added = add(id, values, deviceTs, origin);
      } catch (error) {
        return Promise.reject(error);
      }
      if (typeof added !== 'number') return Promise.resolve(added);
      return turn!.outcome();
    },

    touch(id) {
      const e = entries.get(id);
      if (!e) return fail('notFound', `sign of life from unknown device '${String(id).slice(0, 80)}'`);
      pushLiveness(ctx, e);
      if (observers.size > 0) emit({ type: 'seen', deviceId: id, at: runtime.clock.wallNow() });
      return { ok: true, value: undefined };
    },
  };
}

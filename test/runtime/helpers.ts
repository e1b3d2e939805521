/** Test processes and a deterministic runtime for the runtime's tests. */
import type { SimulatedClock } from '../../src/runtime/clock.js';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import type { RuntimeEvent } from '../../src/runtime/events.js';
import type { ExitReason } from '../../src/runtime/exit-reason.js';
import { errorExit, NORMAL } from '../../src/runtime/exit-reason.js';
import { ProcessBase } from '../../src/runtime/process.js';
import type { Runtime } from '../../src/runtime/runtime.js';
import { createRuntime } from '../../src/runtime/runtime.js';

export interface TestRig {
  rt: Runtime;
  clock: SimulatedClock;
  events: RuntimeEvent[];
  /** Runs every queued promise continuation (no simulated time passes). */
  settle(): Promise<void>;
  /** Order in which test workers were started and stopped, by name. */
  log: string[];
}

export function createRig(): TestRig {
  const clock = createSimulatedClock();
  const rt = createRuntime({ clock });
  const events: RuntimeEvent[] = [];
  rt.events.subscribe((e) => events.push(e));
  return { rt, clock, events, settle: () => flushMicrotasks(), log: [] };
}

export interface WorkerOptions {
  /** How long a graceful stop takes: ms of simulated time, 'never' (ignores stop), default 0. */
  stopTakesMs?: number | 'never';
  /** Exit reason to use when asked to stop, instead of the one asked for (a racing child). */
  exitOnStopWith?: ExitReason;
}

/** A worker process the test can crash, finish or make slow to stop. */
export class TestWorker extends ProcessBase {
  released = false;
  constructor(
    rt: Runtime,
    name: string,
    private readonly rig: TestRig,
    private readonly options: WorkerOptions = {},
  ) {
    super(rt, 'server', name);
    rig.log.push(`start:${name}`);
    this.started();
  }
  crash(message = 'boom'): void {
    this.exit(errorExit(new Error(message)));
  }
  finish(): void {
    this.exit(NORMAL);
  }
  exitWith(reason: ExitReason): void {
    this.exit(reason);
  }
  protected terminate(): Promise<void> | void {
    this.rig.log.push(`stop:${this.name}`);
    const { stopTakesMs = 0, exitOnStopWith } = this.options;
    if (exitOnStopWith) {
      this.exit(exitOnStopWith);
      return;
    }
    if (stopTakesMs === 'never') return new Promise<void>(() => {});
    if (stopTakesMs === 0) return;
    return new Promise<void>((resolve) => {
      this.runtime.timers.schedule(stopTakesMs, resolve);
    });
  }
  protected override release(): void {
    this.released = true;
    this.rig.log.push(`kill:${this.name}`);
  }
}

/** A start function factory that records each started worker under its id. */
export function workers(rig: TestRig) {
  const current = new Map<string, TestWorker>();
  const spec = (id: string, options: WorkerOptions = {}) => ({
    id,
    start: () => {
      const w = new TestWorker(rig.rt, id, rig, options);
      current.set(id, w);
      return w;
    },
  });
  return { current, spec, get: (id: string) => current.get(id)! };
}

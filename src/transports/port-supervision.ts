/**
 * What the serial manager and the Modbus bridge need to show their per-port processes as a
 * supervisor's children (runtime `SupervisorLike`): the children as `ChildInfo` rows, their
 * counts, and the restarts inside the intensity window.
 *
 * These supervisors restart a port's process after the port's jittered backoff (reconnect.ts),
 * not at once as OTP's one_for_one does: a port that is unplugged or refuses to open would
 * otherwise burn the restart intensity in milliseconds. So the window is shown (restarts in the
 * last `periodMs` against `maxRestarts`) but never makes them give up: the backoff bounds the
 * rate instead. A port whose device node is absent is a child `stopped` (nothing to run), one
 * waiting for its backoff is `restarting`.
 *
 * @example
 * const window = new RestartWindow(() => runtime.clock.now(), 60_000);
 * window.add(); // a port's process was started again
 * window.count(); // 1
 * portChildInfo({ id: '/dev/ttyUSB0', process: link, status: 'running', restartCount: 1, lastExit: undefined });
 */
import type { ExitReason } from '../runtime/exit-reason.js';
import type { Process } from '../runtime/process.js';
import { addRestart, restartsInWindow } from '../runtime/restart-intensity.js';
import type { ChildCounts, ChildInfo, ChildStatus } from '../runtime/supervisor.js';

/** Shown, not enforced (see the module note): restarts per window before a port would look in trouble. */
export const PORT_MAX_RESTARTS = 10;
export const PORT_PERIOD_MS = 60_000;

export interface PortChild {
  /** The port path. */
  readonly id: string;
  readonly process: Process | undefined;
  readonly status: ChildStatus;
  readonly restartCount: number;
  readonly lastExit: ExitReason | undefined;
}

/** One port's process as a worker child (permanent: its port is reopened whatever the exit). */
export function portChildInfo(c: PortChild): ChildInfo {
  const running = c.process?.alive === true ? c.process : undefined;
  return {
    id: c.id,
    pid: running?.pid,
    process: running,
    status: running ? 'running' : c.status === 'running' ? 'restarting' : c.status,
    type: 'worker',
    restart: 'permanent',
    significant: false,
    restartCount: c.restartCount,
    lastExit: c.lastExit,
  };
}

export function countPortChildren(children: readonly ChildInfo[]): ChildCounts {
  let active = 0;
  for (const c of children) if (c.process?.alive) active++;
  return { specs: children.length, active, supervisors: 0, workers: children.length };
}

/** Restart times of one supervisor, newest first, kept inside `periodMs`. */
export class RestartWindow {
  private times: number[] = [];

  constructor(
    private readonly now: () => number,
    private readonly periodMs: number,
  ) {}

  add(): void {
    this.times = addRestart(this.times, this.now(), {
      maxRestarts: Number.POSITIVE_INFINITY,
      periodMs: this.periodMs,
    }).times;
  }

  count(): number {
    return restartsInWindow(this.times, this.now(), this.periodMs);
  }
}

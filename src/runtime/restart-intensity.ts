/**
 * Restart intensity as a pure function, exactly as OTP's supervisor counts it.
 *
 * A restart at `nowMs` is added to the times still inside the window (`t >= nowMs - periodMs`);
 * if more than `maxRestarts` restarts are then inside the window, the supervisor gives up.
 * So `maxRestarts: 3` allows three restarts within the period and the fourth stops the
 * supervisor; restarts spaced wider than the period never add up.
 *
 * @example
 * let times: number[] = [];
 * ({ times, decision } = addRestart(times, clock.now(), { maxRestarts: 3, periodMs: 5000 }));
 * if (decision === 'giveUp') shutDownEverything();
 */
export interface Intensity {
  readonly maxRestarts: number;
  readonly periodMs: number;
}

export interface RestartDecision {
  /** Restart times inside the window, newest first, including this one. */
  readonly times: number[];
  readonly decision: 'restart' | 'giveUp';
}

export function addRestart(times: readonly number[], nowMs: number, intensity: Intensity): RestartDecision {
  const threshold = nowMs - intensity.periodMs;
  const kept: number[] = [nowMs];
  for (const t of times) {
    if (t < threshold) break; // newest first: everything after is older still
    kept.push(t);
  }
  return { times: kept, decision: kept.length <= intensity.maxRestarts ? 'restart' : 'giveUp' };
}

/** Restarts still inside the window at `nowMs` (what the UI draws against the maximum). */
export function restartsInWindow(times: readonly number[], nowMs: number, periodMs: number): number {
  const threshold = nowMs - periodMs;
  let n = 0;
  for (const t of times) {
    if (t < threshold) break;
    n++;
  }
  return n;
}

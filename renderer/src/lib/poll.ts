/**
 * Asks, hands the answer over, waits `refreshMs`, asks again: one request at a time, so an older
 * answer can never land after a newer one and a slow host never has calls piling up (a fixed
 * interval did both: the Discovered view's count jumped back from 912 to 2,000 mid-adoption).
 * Nothing is handed over after `stop()`.
 *
 * @example
 * const stop = pollInTurn(() => client.call('stats', {}), (r) => show(r), 1000);
 * // later
 * stop();
 */
export interface PollTimers {
  readonly setTimeout: (fn: () => void, ms: number) => number;
  readonly clearTimeout: (id: number) => void;
}

const browserTimers: PollTimers = {
  setTimeout: (fn, ms) => window.setTimeout(fn, ms),
  clearTimeout: (id) => window.clearTimeout(id),
};

/** Starts at once; `refreshMs` undefined or 0: asks once. Answers the stop function. */
export function pollInTurn<T>(
  ask: () => Promise<T>,
  answer: (value: T) => void,
  refreshMs: number | undefined,
  failed: (error: unknown) => void,
  timers: PollTimers = browserTimers,
): () => void {
  let running = true;
  let timer: number | undefined;
  const turn = async () => {
    timer = undefined;
    try {
      const value = await ask();
      if (running) answer(value);
    } catch (error) {
      if (running) failed(error);
    }
    if (running && refreshMs) timer = timers.setTimeout(() => void turn(), refreshMs);
  };
  void turn();
  return () => {
    running = false;
    if (timer !== undefined) timers.clearTimeout(timer);
  };
}

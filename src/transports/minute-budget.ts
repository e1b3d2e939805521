/**
 * A budget per minute: at most `perMinute` takes succeed in a window of 60 s that opens with the
 * first take; the rest are refused and counted. The first refusal of a window can raise an alarm
 * (`exceeded`), and when the window ends its refusals are told once (`ended`), so a flood writes
 * one summary instead of a line per item. Time goes through the injected clock.
 *
 * @example
 * const announce = createMinuteBudget({ clock, perMinute: 20, ended: (n) => n && log.warn('…', { count: n }) });
 * if (announce.take()) log.info('new device waits for adoption', { deviceId });
 */
import type { Clock } from '../runtime/clock.js';

/** The window of every budget. */
export const MINUTE_MS = 60_000;

export interface MinuteBudgetOptions {
  readonly clock: Pick<Clock, 'setTimeout'>;
  readonly perMinute: number;
  /** The first refusal of a window (an alarm: said once per window). */
  readonly exceeded?: () => void;
  /** The window ended, `refused` takes past the budget in it (0 too). */
  readonly ended?: (refused: number) => void;
}

export interface MinuteBudget {
  /** True while this window's budget lasts; false (counted) past it. */
  take(): boolean;
}

export function createMinuteBudget(options: MinuteBudgetOptions): MinuteBudget {
  const { clock, perMinute } = options;
  let window: { taken: number; refused: number } | undefined;
  return {
    take() {
      if (!window) {
        const w = { taken: 0, refused: 0 };
        window = w;
        clock.setTimeout(() => {
          window = undefined;
          options.ended?.(w.refused);
        }, MINUTE_MS);
      }
      if (window.taken < perMinute) {
        window.taken++;
        return true;
      }
      if (window.refused++ === 0) options.exceeded?.();
      return false;
    },
  };
}

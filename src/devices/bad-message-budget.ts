/**
 * The per-device budget of bad messages written one by one — the one rule behind the link hub's
 * bad messages (src/transports/bad-messages.ts), the Homie model's bad input and refused topics
 * (src/conventions/homie/homie-model.ts) and the device event log's rate-limited events
 * (src/devices/device-event-log.ts `limited`, Sparkplug's bad messages among them).
 *
 * A window of `windowMs` opens with the first message after the last window ended. In it, the
 * first `max` messages are written one by one; the rest are only counted (`errorSuppressed`), and
 * the first of those says so (`firstSuppressed`) so that the caller can sum them up when the
 * window ends. A budget shared by many devices (the link hub's, across them all) is checked
 * after the device's own: a message within the device's budget but past the shared one is
 * `sharedFull`, and does not use the device's budget. Counting every message (by code) and
 * writing the summaries stay with the caller, which knows its event kinds.
 *
 * The window lives in the caller's own record (a device's session, a map entry): admitting a
 * message allocates nothing.
 *
 * @example
 * const limit = { max: 10, windowMs: 60_000 };
 * switch (admitBadMessage(session, now, limit)) {
 *   case 'write': log.warn('bad message', …); break;
 *   case 'firstSuppressed': clock.setTimeout(summarize, session.errorWindowStart + 60_000 - now); break;
 *   case 'suppressed': break; // counted only
 * }
 */

/** One key's window, as fields of the record that owns it. */
export interface BadMessageWindow {
  /** When the current window opened (ms); a message `windowMs` or more after it opens the next. */
  errorWindowStart: number;
  /** Written one by one in the current window. */
  errorEvents: number;
  /** Counted only, past the budget, since the caller last summed them up (the caller resets it). */
  errorSuppressed: number;
}

export interface BadMessageLimit {
  /** Written one by one per window. */
  readonly max: number;
  readonly windowMs: number;
}

/**
 * `write`: within the budget, counted as written. `firstSuppressed`: the first past it in this
 * window. `suppressed`: another past it. `sharedFull`: within the key's budget, past the shared one.
 */
export type BadMessageVerdict = 'write' | 'firstSuppressed' | 'suppressed' | 'sharedFull';

/** A fresh window (no message yet); the first message opens it. */
export const newBadMessageWindow = (): BadMessageWindow => ({
  errorWindowStart: 0,
  errorEvents: 0,
  errorSuppressed: 0,
});

/**
 * A bad message at `now`: whether it is written one by one or only counted, updating `w`.
 * `sharedFull`: a budget shared with other keys has nothing left this window.
 */
export function admitBadMessage(
  w: BadMessageWindow,
  now: number,
  limit: BadMessageLimit,
  sharedFull = false,
): BadMessageVerdict {
  if (now - w.errorWindowStart >= limit.windowMs) {
    w.errorWindowStart = now;
    w.errorEvents = 0;
  }
  if (w.errorEvents >= limit.max) return w.errorSuppressed++ === 0 ? 'firstSuppressed' : 'suppressed';
  if (sharedFull) return 'sharedFull';
  w.errorEvents++;
  return 'write';
}

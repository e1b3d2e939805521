/**
 * What the link hub knows of one device: its link, presence (hello, status), the dedupe window
 * over `(boot, seq)` and its counters. Pure data and one pure function ({@link firstTime}), so the
 * window is tested without a broker.
 *
 * @example
 * const s = newSession();
 * firstTime(s, 1, 1); // true
 * firstTime(s, 1, 1); // false: a duplicate
 * firstTime(s, 1, 3); // true; s.gaps === 1
 */
import type { BadMessageWindow } from '../devices/bad-message-budget.js';
import type { HelloMessage, Message } from './protocol.js';
import { seqDelta } from './protocol.js';

/** One link as the hub sees it. `via` names it for people: `mqtt`, `serial:/dev/ttyUSB0`. */
export interface LinkHandle {
  readonly via: string;
  /** `mqtt`: presence comes from retained status messages; `serial`: the hello is the connection. */
  readonly presence: 'status' | 'hello';
  /** Puts a host → device message on this link; false when it cannot (closed). */
  send(deviceId: string, message: Message): boolean;
}

const WINDOW = 1024;

/**
 * The bad-message budget's window (src/devices/bad-message-budget.ts) is part of the session: bad
 * messages past it are counted, and written as one summary when it ends (src/transports/bad-messages.ts).
 */
export interface Session extends BadMessageWindow {
  link: LinkHandle | undefined;
  online: boolean;
  hello: HelloMessage | undefined;
  /** The last `status` seen (MQTT). */
  status: { state: 'online' | 'offline'; boot: number; conn: number } | undefined;
  // Dedupe window over (boot, seq): `top` is the newest seq; `seen` is a ring of bits by seq.
  winBoot: number | undefined;
  top: number;
  seen: Uint32Array;
  received: number;
  duplicates: number;
  gaps: number;
  /** Bad messages by code. */
  errors: Record<string, number>;
  /** Work queued behind an adoption in progress. */
  pending: Promise<void> | undefined;
  /** The last time it went offline: when, on which link, and whether its own status said so. */
  down: { at: number; via: string; byStatus: boolean } | undefined;
}

export const newSession = (): Session => ({
  link: undefined,
  online: false,
  hello: undefined,
  status: undefined,
  winBoot: undefined,
  top: 0,
  seen: new Uint32Array(WINDOW / 32),
  received: 0,
  duplicates: 0,
  gaps: 0,
  errors: {},
  errorEvents: 0,
  errorSuppressed: 0,
  errorWindowStart: 0,
  pending: undefined,
  down: undefined,
});

/**
 * Records (boot, seq); false when it was seen already. Gaps are counted, never fatal.
 * The window is a ring of WINDOW bits indexed by `seq mod WINDOW`: an in-order message clears
 * the one slot it moves past and sets its own, O(1) and allocation-free on the hot path.
 */
export function firstTime(s: Session, boot: number, seq: number): boolean {
  const seen = s.seen;
  const slot = seq & (WINDOW - 1);
  if (s.winBoot !== boot) {
    s.winBoot = boot;
    s.top = seq;
    seen.fill(0);
    seen[slot >>> 5]! |= 1 << (slot & 31);
    return true;
  }
  const d = seqDelta(s.top, seq);
  if (d === 0) return false;
  if (d > 0) {
    if (d > 1) s.gaps += d - 1;
    if (d >= WINDOW) seen.fill(0);
    else
      for (let i = 1; i <= d; i++) {
        const k = (s.top + i) & (WINDOW - 1);
        seen[k >>> 5]! &= ~(1 << (k & 31));
      }
    s.top = seq;
    seen[slot >>> 5]! |= 1 << (slot & 31);
    return true;
  }
  if (-d >= WINDOW) return true; // older than the window: cannot tell, keep it (never lose data)
  const bit = 1 << (slot & 31);
  if ((seen[slot >>> 5]! & bit) !== 0) return false;
  seen[slot >>> 5]! |= bit;
  return true;
}

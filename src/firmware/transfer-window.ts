/**
 * The transfer of an update job as a pure value (docs/protocol.md §5): what the device holds
 * (`offset`, contiguous from 0), how far the chunks went out (`sentUpTo`), at most a window of
 * bytes in flight, and what each `fw.ack` does to it. The job (update-job-process.ts) sends the
 * chunks and keeps the timers; this decides which bytes go next, with no device and no clock.
 *
 * @example
 * let w = beginAcked(createTransferWindow(image.length, { chunkBytes: 1024, window: 4 }), 0);
 * for (let c = nextChunk(w); c; c = nextChunk(w)) { send(c.start, c.end); w = chunkSent(w, c.end); }
 * const { window, verdict } = chunkAcked(w, ack.offset); // 'advanced', 'gap', 'complete', …
 */
import { LIMITS } from '../transports/protocol.js';

export interface TransferWindow {
  readonly size: number;
  readonly chunkBytes: number;
  /** Bytes in flight at most: a whole number of chunks. */
  readonly windowBytes: number;
  /** Bytes the device acknowledged holding, contiguous from 0. */
  readonly offset: number;
  /** Where the next chunk starts (the far edge of what was sent). */
  readonly sentUpTo: number;
  /** Whether the device answered `fw.begin` (until then, `fw.begin` is what is said). */
  readonly began: boolean;
  /** `fw.begin` said again after the device forgot the transfer (bounded). */
  readonly rebegun: number;
  /** The offset the window last went back to on a gap (once per offset); -1 before any. */
  readonly rewoundAt: number;
  /** Chunks sent again (no ack in time, or the device asked to go back). */
  readonly resent: number;
}

/** How many times `fw.begin` is said again when the device answers a chunk with `unknownTransfer`. */
export const MAX_REBEGINS = 3;

/** A transfer not yet begun; `chunkBytes` defaults to 4096 (at most `LIMITS.chunkBytes`), `window` to 8 chunks. */
export function createTransferWindow(
  size: number,
  options: { readonly chunkBytes?: number | undefined; readonly window?: number | undefined } = {},
): TransferWindow {
  const chunkBytes = Math.min(options.chunkBytes ?? 4096, LIMITS.chunkBytes);
  return {
    size,
    chunkBytes,
    windowBytes: Math.max(1, options.window ?? 8) * chunkBytes,
    offset: 0,
    sentUpTo: 0,
    began: false,
    rebegun: 0,
    rewoundAt: -1,
    resent: 0,
  };
}

/** The next chunk the window lets out, or undefined when it is full or everything went out. */
export function nextChunk(w: TransferWindow): { readonly start: number; readonly end: number } | undefined {
  if (w.sentUpTo >= w.size || w.sentUpTo - w.offset >= w.windowBytes) return undefined;
  return { start: w.sentUpTo, end: Math.min(w.size, w.sentUpTo + w.chunkBytes) };
}

/** A chunk went out, up to `end`. */
export function chunkSent(w: TransferWindow, end: number): TransferWindow {
  return { ...w, sentUpTo: end };
}

/** `fw.begin` answered: the device holds `ackOffset` bytes, and the chunks start from there. */
export function beginAcked(w: TransferWindow, ackOffset: number): TransferWindow {
  const offset = Math.min(ackOffset, w.size);
  return { ...w, began: true, offset, sentUpTo: offset };
}

/** The chunks go again from what the device holds. */
export function backToHeld(w: TransferWindow): TransferWindow {
  return { ...w, sentUpTo: w.offset };
}

/** No ack in time: every chunk past the acknowledged offset counts as sent again. */
export function countResent(w: TransferWindow): TransferWindow {
  return { ...w, resent: w.resent + Math.ceil((w.sentUpTo - w.offset) / w.chunkBytes) };
}

/** Back from a lost link or a reboot: `fw.begin` is said again (it answers the offset). */
export function beginAgain(w: TransferWindow): TransferWindow {
  return { ...w, began: false };
}

/**
 * The device answered a chunk `unknownTransfer` (a reset, a new begin from elsewhere): begin
 * again, which answers what it still holds; undefined once that was tried {@link MAX_REBEGINS} times.
 */
export function transferForgotten(w: TransferWindow): TransferWindow | undefined {
  if (w.rebegun >= MAX_REBEGINS) return undefined;
  return { ...w, rebegun: w.rebegun + 1, began: false };
}

/** The image is on the device already (on trial): the transfer counts as done. */
export function heldAll(w: TransferWindow): TransferWindow {
  return { ...w, offset: w.size };
}

/**
 * What a chunk's ack means:
 * - `shrunk`: the device holds less than it said (its storage was reset): go on from there;
 * - `gap`: a chunk past what it holds came, so one was lost: go back now (once per offset), not
 *   after the ack timeout;
 * - `advanced`: it holds more; `complete`: it holds the whole image;
 * - `ignored`: nothing new (a duplicate, or the gap was already gone back for).
 */
export type ChunkAckVerdict = 'shrunk' | 'gap' | 'advanced' | 'complete' | 'ignored';

/** A chunk's ack (no error) with the offset the device now holds. */
export function chunkAcked(
  w: TransferWindow,
  ackOffset: number,
): { readonly window: TransferWindow; readonly verdict: ChunkAckVerdict } {
  if (ackOffset < w.offset)
    return {
      window: { ...w, offset: ackOffset, sentUpTo: ackOffset, rewoundAt: ackOffset },
      verdict: 'shrunk',
    };
  if (ackOffset === w.offset && w.sentUpTo > w.offset + w.chunkBytes && w.rewoundAt !== w.offset)
    return { window: { ...countResent(w), rewoundAt: w.offset, sentUpTo: w.offset }, verdict: 'gap' };
  if (ackOffset > w.offset) {
    const offset = Math.min(ackOffset, w.size);
    return { window: { ...w, offset }, verdict: offset >= w.size ? 'complete' : 'advanced' };
  }
  return { window: w, verdict: 'ignored' };
}

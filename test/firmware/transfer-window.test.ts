/**
 * The update job's transfer window, pure (no device, no clock): which chunk goes next within the
 * window, what fw.begin's offset and each chunk's ack do to it (advance, complete, a gap gone back
 * for once per offset, a device holding less than it said), an ack timeout counting resends, and
 * fw.begin said again a bounded number of times after the device forgot the transfer.
 */
import { describe, expect, it } from 'vitest';
import type { TransferWindow } from '../../src/firmware/transfer-window.js';
import {
  backToHeld,
  beginAcked,
  beginAgain,
  chunkAcked,
  chunkSent,
  countResent,
  createTransferWindow,
  heldAll,
  MAX_REBEGINS,
  nextChunk,
  transferForgotten,
} from '../../src/firmware/transfer-window.js';
import { LIMITS } from '../../src/transports/protocol.js';

/** Sends what the window lets out; returns the chunks sent and the window after. */
function pumpAll(w: TransferWindow): { sent: [number, number][]; window: TransferWindow } {
  const sent: [number, number][] = [];
  for (let c = nextChunk(w); c; c = nextChunk(w)) {
    sent.push([c.start, c.end]);
    w = chunkSent(w, c.end);
  }
  return { sent, window: w };
}

describe('transfer window', () => {
  it('defaults to 4096-byte chunks, 8 in flight, and caps the chunk at the protocol limit', () => {
    const w = createTransferWindow(100_000);
    expect(w).toMatchObject({ chunkBytes: 4096, windowBytes: 8 * 4096, offset: 0, began: false, resent: 0 });
    expect(createTransferWindow(10, { chunkBytes: 1_000_000 }).chunkBytes).toBe(LIMITS.chunkBytes);
    expect(createTransferWindow(10, { chunkBytes: 100, window: 0 }).windowBytes).toBe(100);
  });

  it('lets out a window of chunks from the offset fw.begin answers, the last one short', () => {
    const w = beginAcked(createTransferWindow(1000, { chunkBytes: 100, window: 3 }), 750);
    expect(w).toMatchObject({ began: true, offset: 750, sentUpTo: 750 });
    expect(pumpAll(w).sent).toEqual([
      [750, 850],
      [850, 950],
      [950, 1000],
    ]);
  });

  it('never lets more than the window be in flight, and moves on as acks come', () => {
    let w = beginAcked(createTransferWindow(1000, { chunkBytes: 100, window: 2 }), 0);
    let out = pumpAll(w);
    expect(out.sent).toEqual([
      [0, 100],
      [100, 200],
    ]);
    const acked = chunkAcked(out.window, 100);
    expect(acked.verdict).toBe('advanced');
    out = pumpAll(acked.window);
    expect(out.sent).toEqual([[200, 300]]);
    w = out.window;
    expect(nextChunk(w)).toBeUndefined();
  });

  it('a fw.begin offset past the size is read as the whole image', () => {
    expect(beginAcked(createTransferWindow(500), 9999).offset).toBe(500);
  });

  it('says complete once the device holds the whole image (an ack past the end counts as the end)', () => {
    const w = pumpAll(beginAcked(createTransferWindow(300, { chunkBytes: 100 }), 0)).window;
    expect(chunkAcked(w, 200).verdict).toBe('advanced');
    const done = chunkAcked(w, 400);
    expect(done.verdict).toBe('complete');
    expect(done.window.offset).toBe(300);
  });

  it('goes back for a lost chunk at once, once per offset, counting the chunks sent again', () => {
    const w = pumpAll(beginAcked(createTransferWindow(1000, { chunkBytes: 100, window: 4 }), 0)).window;
    // Chunk 0 lost: the device answers the next chunks still holding 0.
    const gap = chunkAcked(w, 0);
    expect(gap.verdict).toBe('gap');
    expect(gap.window).toMatchObject({ offset: 0, sentUpTo: 0, rewoundAt: 0, resent: 4 });
    const again = pumpAll(gap.window).window;
    // The other late acks of the first round do not send the window again.
    expect(chunkAcked(again, 0).verdict).toBe('ignored');
  });

  it('does not call one chunk in flight a gap', () => {
    const w = chunkSent(beginAcked(createTransferWindow(1000, { chunkBytes: 100 }), 0), 100);
    expect(chunkAcked(w, 0).verdict).toBe('ignored');
  });

  it('goes on from what the device holds when it holds less than it said', () => {
    const w = pumpAll(
      chunkAcked(pumpAll(beginAcked(createTransferWindow(1000, { chunkBytes: 100 }), 0)).window, 500).window,
    ).window;
    const shrunk = chunkAcked(w, 200);
    expect(shrunk.verdict).toBe('shrunk');
    expect(shrunk.window).toMatchObject({ offset: 200, sentUpTo: 200, rewoundAt: 200 });
    expect(nextChunk(shrunk.window)).toEqual({ start: 200, end: 300 });
  });

  it('an ack timeout counts what was in flight as sent again; the chunks go from what is held', () => {
    const w = pumpAll(beginAcked(createTransferWindow(1000, { chunkBytes: 100, window: 3 }), 200)).window;
    const timedOut = backToHeld(countResent(w));
    expect(timedOut).toMatchObject({ resent: 3, offset: 200, sentUpTo: 200 });
    expect(countResent(createTransferWindow(1000, { chunkBytes: 300 })).resent).toBe(0);
  });

  it('says fw.begin again after a hello, and after a forgotten transfer at most MAX_REBEGINS times', () => {
    const begun = beginAcked(createTransferWindow(1000), 0);
    expect(beginAgain(begun)).toMatchObject({ began: false, rebegun: 0 });
    let w: TransferWindow | undefined = begun;
    for (let i = 1; i <= MAX_REBEGINS; i++) {
      w = transferForgotten(beginAcked(w!, 0));
      expect(w).toMatchObject({ began: false, rebegun: i });
    }
    expect(transferForgotten(beginAcked(w!, 0))).toBeUndefined();
  });

  it('an image already on the device counts as held', () => {
    expect(heldAll(createTransferWindow(1234)).offset).toBe(1234);
  });
});

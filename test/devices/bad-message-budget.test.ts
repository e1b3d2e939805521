import { describe, expect, it } from 'vitest';
import type { BadMessageVerdict } from '../../src/devices/bad-message-budget.js';
import { admitBadMessage, newBadMessageWindow } from '../../src/devices/bad-message-budget.js';

const limit = { max: 3, windowMs: 60_000 };

/** The verdicts of messages at these times (ms), the shared budget full or not for each. */
function verdicts(times: readonly number[], sharedFull: readonly boolean[] = []): BadMessageVerdict[] {
  const w = newBadMessageWindow();
  return times.map((t, i) => admitBadMessage(w, t, limit, sharedFull[i] ?? false));
}

describe('bad-message budget', () => {
  it.each<[string, number[], boolean[], BadMessageVerdict[]]>([
    ['within the budget: written', [1000, 2000, 3000], [], ['write', 'write', 'write']],
    [
      'past it: the first says so, the rest are counted only',
      [1000, 2000, 3000, 4000, 5000],
      [],
      ['write', 'write', 'write', 'firstSuppressed', 'suppressed'],
    ],
    [
      'a message a window after the first opens the next window',
      [1000, 2000, 3000, 4000, 61_000, 62_000],
      [],
      ['write', 'write', 'write', 'firstSuppressed', 'write', 'write'],
    ],
    [
      'the next window opens at its first message, not on a grid',
      [70_000, 71_000, 72_000, 129_999, 130_000],
      [],
      ['write', 'write', 'write', 'firstSuppressed', 'write'],
    ],
    [
      'a shared budget that is full: not written, the device keeps its own budget',
      [1000, 2000, 3000, 4000, 5000],
      [true, true, false, false, false],
      ['sharedFull', 'sharedFull', 'write', 'write', 'write'],
    ],
    [
      "past the device's budget, the device's verdict wins over the shared one",
      [1000, 2000, 3000, 4000],
      [false, false, false, true],
      ['write', 'write', 'write', 'firstSuppressed'],
    ],
  ])('%s', (_name, times, shared, expected) => {
    expect(verdicts(times, shared)).toEqual(expected);
  });

  it('counts what it leaves out until the caller sums it up', () => {
    const w = newBadMessageWindow();
    for (let t = 1; t <= 10; t++) admitBadMessage(w, t, limit);
    expect(w).toEqual({ errorWindowStart: 0, errorEvents: 3, errorSuppressed: 7 });
    w.errorSuppressed = 0; // summed up (the caller's summary)
    expect(admitBadMessage(w, 11, limit)).toBe('firstSuppressed');
    // A new window: the budget is back; what is left out is counted on.
    expect(admitBadMessage(w, 60_000, limit)).toBe('write');
    expect(w).toEqual({ errorWindowStart: 60_000, errorEvents: 1, errorSuppressed: 1 });
  });
});

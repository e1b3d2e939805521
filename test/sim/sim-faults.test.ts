/** Fault settings merged (src/sim/sim-faults.ts): what clears a fault, and what is refused. */
import { describe, expect, it } from 'vitest';
import { mergeFaults } from '../../src/sim/sim-faults.js';

describe('mergeFaults', () => {
  it('merges, and undefined, false or 0 clears a fault', () => {
    const on = mergeFaults({}, { mute: true, slowReplyMs: 200, garbage: true });
    expect(on).toEqual({ mute: true, slowReplyMs: 200, garbage: true });
    expect(mergeFaults(on, { mute: false, slowReplyMs: 0, crashLoopOnBoot: true })).toEqual({
      garbage: true,
      crashLoopOnBoot: true,
    });
    expect(mergeFaults(on, { garbage: undefined })).toEqual({ mute: true, slowReplyMs: 200 });
  });

  it('refuses a negative or infinite slowReplyMs', () => {
    expect(() => mergeFaults({}, { slowReplyMs: -1 })).toThrow(RangeError);
    expect(() => mergeFaults({}, { slowReplyMs: Number.POSITIVE_INFINITY })).toThrow(/slowReplyMs/);
  });
});

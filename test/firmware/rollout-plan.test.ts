/**
 * A rollout's plan, pure (no job, no clock): waves cut from the frozen list, each wave's
 * concurrency, the devices placed in their waves and restored from a saved snapshot, the failure
 * bounds (a count, a share), and what an ended wave means (below threshold unless waived, the
 * next wave, completed).
 */
import { describe, expect, it } from 'vitest';
import {
  countDevices,
  DEFAULT_WAVES,
  devicesView,
  initialDevices,
  pastFailureBounds,
  waveConcurrency,
  waveEnds,
  waveOutcome,
} from '../../src/firmware/rollout-plan.js';
import type { RolloutDeviceState } from '../../src/firmware/rollout-types.js';

const counts = (c: Partial<Record<RolloutDeviceState, number>>) => ({
  pending: 0,
  updating: 0,
  waitingRetry: 0,
  succeeded: 0,
  failed: 0,
  skipped: 0,
  ...c,
});

describe('rollout plan', () => {
  it('cuts the default waves: a canary, then 5 %, 25 % and all; small lists drop the empty waves', () => {
    expect(waveEnds(100, DEFAULT_WAVES)).toEqual([1, 5, 25, 100]);
    expect(waveEnds(3, DEFAULT_WAVES)).toEqual([1, 3]);
    expect(waveEnds(1, DEFAULT_WAVES)).toEqual([1]);
    expect(waveEnds(0, DEFAULT_WAVES)).toEqual([]);
  });

  it('always ends with the whole list, even when the waves stop short', () => {
    expect(waveEnds(10, [{ count: 2 }, { share: 0.5 }])).toEqual([2, 5, 10]);
  });

  it('takes each wave its concurrency; waves past the list take the last one; 10 by default', () => {
    expect(waveConcurrency(DEFAULT_WAVES, 0)).toBe(1);
    expect(waveConcurrency(DEFAULT_WAVES, 1)).toBe(10);
    expect(waveConcurrency([{ count: 1 }, { share: 1, maxConcurrent: 3 }], 5)).toBe(3);
  });

  it('places each device in its wave, pending, and restores what a saved rollout knew', () => {
    const order = ['a', 'b', 'c', 'd'];
    const fresh = initialDevices(order, [1, 4]);
    expect([...fresh].map(([id, d]) => [id, d.wave, d.state])).toEqual([
      ['a', 0, 'pending'],
      ['b', 1, 'pending'],
      ['c', 1, 'pending'],
      ['d', 1, 'pending'],
    ]);
    const restored = initialDevices(order, [1, 4], {
      a: { state: 'succeeded', wave: 0, attempts: 1, step: 'succeeded', error: undefined },
      c: { state: 'failed', wave: 1, attempts: 2, step: 'failed', error: { code: 'stalled', message: 'x' } },
      gone: { state: 'failed', wave: 1, attempts: 1, step: undefined, error: undefined },
    });
    expect(restored.has('gone')).toBe(false);
    expect(devicesView(restored)).toEqual({
      a: { state: 'succeeded', wave: 0, attempts: 1, step: 'succeeded', error: undefined },
      b: { state: 'pending', wave: 1, attempts: 0, step: undefined, error: undefined },
      c: { state: 'failed', wave: 1, attempts: 2, step: 'failed', error: { code: 'stalled', message: 'x' } },
      d: { state: 'pending', wave: 1, attempts: 0, step: undefined, error: undefined },
    });
    expect(countDevices(restored.values())).toEqual(counts({ pending: 2, succeeded: 1, failed: 1 }));
  });

  it('failure bounds: a share of the devices tried (20 % by default), or a count when given', () => {
    expect(pastFailureBounds(counts({ succeeded: 4, failed: 1 }), {})).toBeUndefined();
    expect(pastFailureBounds(counts({ succeeded: 3, failed: 1 }), {})).toBe(
      '1 of 4 devices failed (25 %), more than the 20 % allowed',
    );
    expect(pastFailureBounds(counts({ succeeded: 0, failed: 0, pending: 9 }), {})).toBeUndefined();
    expect(pastFailureBounds(counts({ succeeded: 100, failed: 3 }), { maxFailures: 2 })).toBe(
      '3 devices failed, more than the 2 allowed',
    );
    expect(pastFailureBounds(counts({ succeeded: 1, failed: 1 }), { maxFailureShare: 0.5 })).toBeUndefined();
  });

  it('a wave with a device pending, updating or waiting for a retry is still open', () => {
    const at = { wave: 0, waves: 2, successThreshold: 1, waived: -1 };
    for (const open of ['pending', 'updating', 'waitingRetry'] as const)
      expect(waveOutcome(['succeeded', open], at)).toEqual({ kind: 'open' });
  });

  it('an ended wave below its threshold pauses, unless the operator waived it by resuming', () => {
    const at = { wave: 1, waves: 3, successThreshold: 0.9, waived: -1 };
    expect(waveOutcome(['succeeded', 'failed', 'skipped'], at)).toEqual({
      kind: 'belowThreshold',
      reason: 'wave 2: 1 of 3 succeeded, below the 90 % needed',
    });
    expect(waveOutcome(['succeeded', 'failed', 'skipped'], { ...at, waived: 1 })).toEqual({
      kind: 'nextWave',
    });
  });

  it('an ended wave that went well goes to the next one, or completes the rollout when it was the last', () => {
    expect(waveOutcome(['succeeded'], { wave: 0, waves: 2, successThreshold: 1, waived: -1 })).toEqual({
      kind: 'nextWave',
    });
    expect(waveOutcome(['succeeded'], { wave: 1, waves: 2, successThreshold: 1, waived: -1 })).toEqual({
      kind: 'completed',
    });
    expect(waveOutcome([], { wave: 0, waves: 0, successThreshold: 1, waived: -1 })).toEqual({
      kind: 'completed',
    });
  });
});

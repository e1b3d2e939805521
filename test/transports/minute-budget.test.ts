/**
 * A budget per minute on a simulated clock: the window opens with the first take, an alarm on its
 * first refusal, the refusals told once when it ends, and a fresh budget after.
 */
import { describe, expect, it } from 'vitest';
import { createSimulatedClock } from '../../src/runtime/clock.js';
import { createMinuteBudget, MINUTE_MS } from '../../src/transports/minute-budget.js';

function rig(perMinute: number) {
  const clock = createSimulatedClock({ wallStartMs: 1_800_000_000_000 });
  const said: string[] = [];
  const budget = createMinuteBudget({
    clock,
    perMinute,
    exceeded: () => said.push('exceeded'),
    ended: (refused) => said.push(`ended ${refused}`),
  });
  return { clock, said, budget };
}

describe('minute budget', () => {
  it('lets perMinute through, refuses the rest, alarms once and sums up when the minute ends', () => {
    const { clock, said, budget } = rig(3);
    const takes = Array.from({ length: 7 }, () => budget.take());
    expect(takes).toEqual([true, true, true, false, false, false, false]);
    expect(said).toEqual(['exceeded']);
    clock.advance(MINUTE_MS - 1);
    expect(budget.take()).toBe(false);
    expect(said).toEqual(['exceeded']);
    clock.advance(1);
    expect(said).toEqual(['exceeded', 'ended 5']);
    expect(budget.take()).toBe(true);
  });

  it('a window within its budget ends with 0 refused and no alarm', () => {
    const { clock, said, budget } = rig(3);
    budget.take();
    clock.advance(MINUTE_MS);
    expect(said).toEqual(['ended 0']);
  });

  it('opens no window (no timer) until the first take', () => {
    const { clock, said } = rig(3);
    clock.advance(5 * MINUTE_MS);
    expect(said).toEqual([]);
  });

  it('a budget of 0 refuses everything', () => {
    const { budget, said } = rig(0);
    expect([budget.take(), budget.take()]).toEqual([false, false]);
    expect(said).toEqual(['exceeded']);
  });
});

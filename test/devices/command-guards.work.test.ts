/**
 * The breaker's say on work that is not a command (a firmware update job: beginWork, endWork), on
 * a simulated clock with the guards alone: the work ends in a command's terms and counts as one.
 */
import { describe, expect, it } from 'vitest';
import { createCommandGuards } from '../../src/devices/command-guards.js';
import { createSimulatedClock } from '../../src/runtime/clock.js';

const T0 = 1_700_000_000_000;

function rig() {
  const clock = createSimulatedClock({ wallStartMs: T0 });
  const guards = createCommandGuards({
    clock,
    settingsOf: () => ({ breaker: { failures: 2, coolDownMs: 10_000 }, rate: { perSecond: 1, burst: 1 } }),
  });
  const timedOut = {
    status: 'timedOut',
    error: { code: 'stalled', message: 'no progress for 120000 ms' },
  } as const;
  return { clock, guards, timedOut };
}

describe('command guards: work that is not a command', () => {
  it('timed-out work counts as a failure and opens the breaker; then work is refused with the probe time', () => {
    const { guards, timedOut } = rig();
    expect(guards.beginWork('pump-7', 'w1')).toBeUndefined();
    guards.endWork('pump-7', 'w1', timedOut);
    expect(guards.breaker('pump-7')).toMatchObject({ state: 'closed', consecutiveFailures: 1 });
    expect(guards.beginWork('pump-7', 'w2')).toBeUndefined();
    guards.endWork('pump-7', 'w2', timedOut);
    expect(guards.breaker('pump-7')).toMatchObject({
      state: 'open',
      consecutiveFailures: 2,
      lastFailure: 'stalled: no progress for 120000 ms',
      nextProbeAt: T0 + 10_000,
    });
    expect(guards.beginWork('pump-7', 'w3')).toEqual({
      code: 'circuitOpen',
      message: expect.stringContaining('the next probe may go at'),
      retryAt: T0 + 10_000,
    });
    // Other devices are not concerned.
    expect(guards.beginWork('pump-8', 'w4')).toBeUndefined();
  });

  it('half-open: the work is the probe; commands wait for it; its answer closes the breaker', () => {
    const { clock, guards, timedOut } = rig();
    for (const w of ['w1', 'w2']) {
      guards.beginWork('pump-7', w);
      guards.endWork('pump-7', w, timedOut);
    }
    clock.advance(10_000);
    expect(guards.breakerState('pump-7')).toBe('halfOpen');
    expect(guards.beginWork('pump-7', 'probe-job')).toBeUndefined();
    expect(guards.breaker('pump-7').probing).toBe(true);
    // While the job probes, a command and other work are refused.
    expect(guards.check({ deviceId: 'pump-7', action: 'ping' })).toMatchObject({
      code: 'circuitOpen',
      message: expect.stringContaining('a probe is on its way'),
    });
    expect(guards.beginWork('pump-7', 'other')).toMatchObject({ code: 'circuitOpen' });
    // The device answered the job (even with its own error code): it is alive.
    guards.endWork('pump-7', 'probe-job', {
      status: 'failed',
      error: { code: 'hashMismatch', message: 'bad image' },
    });
    expect(guards.breaker('pump-7')).toMatchObject({ state: 'closed', consecutiveFailures: 0, opens: 1 });
  });

  it('a probe job that times out opens it again; a cancelled one lets the next one probe', () => {
    const { clock, guards, timedOut } = rig();
    for (const w of ['w1', 'w2']) {
      guards.beginWork('pump-7', w);
      guards.endWork('pump-7', w, timedOut);
    }
    clock.advance(10_000);
    expect(guards.beginWork('pump-7', 'p1')).toBeUndefined();
    guards.endWork('pump-7', 'p1', { status: 'cancelled' });
    expect(guards.breakerState('pump-7')).toBe('halfOpen');
    expect(guards.breaker('pump-7').probing).toBe(false);
    expect(guards.beginWork('pump-7', 'p2')).toBeUndefined();
    guards.endWork('pump-7', 'p2', timedOut);
    expect(guards.breaker('pump-7')).toMatchObject({ state: 'open', opens: 2, nextProbeAt: T0 + 20_000 });
  });

  it('work takes no rate-limit token', () => {
    const { guards } = rig();
    for (let i = 0; i < 5; i++) expect(guards.beginWork('pump-7', `w${i}`)).toBeUndefined();
    expect(guards.check({ deviceId: 'pump-7', action: 'ping' })).toBeUndefined(); // the one token is there
  });
});

/**
 * One device's circuit breaker as a state machine of its own (src/devices/command-guards-breaker.ts),
 * on a simulated clock: which final statuses count, the refusals while open, the probe's claim,
 * its lapse, and what is told to the listeners.
 */
import { describe, expect, it } from 'vitest';
import type { DeviceBreaker } from '../../src/devices/command-guards-breaker.js';
import {
  admitProbe,
  breakerStateOf,
  breakerView,
  checkBreaker,
  claimProbe,
  isBreakerFailure,
  settleBreaker,
} from '../../src/devices/command-guards-breaker.js';
import type { TrackedCommand } from '../../src/devices/command-tracker.js';
import { createSimulatedClock } from '../../src/runtime/clock.js';
import type { CommandStatus } from '../../src/store/store.js';

const T0 = 1_700_000_000_000;

function rig() {
  const clock = createSimulatedClock({ wallStartMs: T0 });
  const told: string[] = [];
  const env = { clock, changed: (id: string) => told.push(`${id}@${clock.wallNow() - T0}`) };
  const g: DeviceBreaker = {
    breaker: { failures: 2, coolDownMs: 1000 },
    open: false,
    failures: 0,
    opens: 0,
    nextProbeAt: 0,
    probe: undefined,
    probeClaimedAt: 0,
    lastFailure: null,
    coolDown: undefined,
  };
  return { clock, told, env, g };
}

const command = (commandId: string, status: CommandStatus, code?: string): TrackedCommand => ({
  commandId,
  deviceId: 'pump-7',
  action: 'start',
  args: {},
  actor: 'test',
  carrier: 'test',
  status,
  requestedAt: T0,
  expiresAt: null,
  sentAt: null,
  attempts: 1,
  ...(code ? { error: { code, message: `${code} happened` } } : {}),
  completedAt: T0,
});

describe('isBreakerFailure', () => {
  it.each([
    ['timedOut', undefined, true],
    ['failed', 'linkLost', true],
    ['failed', 'noLink', true],
    ['failed', 'busy', false],
    ['succeeded', undefined, false],
    ['cancelled', undefined, false],
    ['expired', undefined, false],
  ] as const)('%s %s → %s', (status, code, counts) => {
    expect(isBreakerFailure(command('c', status, code))).toBe(counts);
  });
});

describe('the breaker', () => {
  it('opens after `failures` in a row, refuses until the cool-down ends, turns half-open by its timer', () => {
    const { clock, told, env, g } = rig();
    settleBreaker(env, 'pump-7', g, command('c1', 'timedOut'));
    expect(breakerStateOf(g, clock)).toBe('closed');
    expect(checkBreaker('pump-7', g, clock.wallNow())).toBeUndefined();
    settleBreaker(env, 'pump-7', g, command('c2', 'failed', 'linkLost'));
    expect(breakerStateOf(g, clock)).toBe('open');
    expect(told).toEqual(['pump-7@0']);
    expect(checkBreaker('pump-7', g, clock.wallNow())).toEqual({
      code: 'circuitOpen',
      message:
        'pump-7: the circuit breaker is open after 2 failures in a row (last: linkLost: linkLost happened); the next probe may go at 2023-11-14T22:13:21.000Z',
      retryAt: T0 + 1000,
    });
    clock.advance(1000);
    expect(told).toEqual(['pump-7@0', 'pump-7@1000']);
    expect(breakerStateOf(g, clock)).toBe('halfOpen');
    expect(checkBreaker('pump-7', g, clock.wallNow())).toBe('probe');
  });

  it("an answer resets the count; the device's own error is an answer", () => {
    const { clock, env, g } = rig();
    settleBreaker(env, 'pump-7', g, command('c1', 'timedOut'));
    settleBreaker(env, 'pump-7', g, command('c2', 'failed', 'busy'));
    settleBreaker(env, 'pump-7', g, command('c3', 'timedOut'));
    expect(g.failures).toBe(1);
    expect(breakerStateOf(g, clock)).toBe('closed');
  });

  it('one probe at a time: claimed, admitted as a command; it fails → open again; a neutral end lets the next one probe', () => {
    const { clock, told, env, g } = rig();
    settleBreaker(env, 'pump-7', g, command('c1', 'timedOut'));
    settleBreaker(env, 'pump-7', g, command('c2', 'timedOut'));
    clock.advance(1000);
    claimProbe(g, clock.wallNow());
    admitProbe(g, 'p1');
    expect(g.probe).toBe('p1');
    expect(checkBreaker('pump-7', g, clock.wallNow())).toMatchObject({ code: 'circuitOpen' });
    expect(breakerView(g, g.breaker, clock)).toMatchObject({ state: 'halfOpen', probing: true, opens: 1 });
    settleBreaker(env, 'pump-7', g, command('p1', 'cancelled'));
    expect(g.probe).toBeUndefined();
    expect(checkBreaker('pump-7', g, clock.wallNow())).toBe('probe');
    claimProbe(g, clock.wallNow());
    admitProbe(g, 'p2');
    settleBreaker(env, 'pump-7', g, command('p2', 'timedOut'));
    expect(breakerView(g, g.breaker, clock)).toMatchObject({
      state: 'open',
      opens: 2,
      nextProbeAt: T0 + 2000,
    });
    clock.advance(1000);
    settleBreaker(env, 'pump-7', g, command('late', 'succeeded'));
    expect(breakerStateOf(g, clock)).toBe('closed');
    expect(g.coolDown).toBeUndefined();
    expect(told).toEqual(['pump-7@0', 'pump-7@1000', 'pump-7@1000', 'pump-7@2000', 'pump-7@2000']);
  });

  it('a claim never admitted lapses after a cool-down, so it cannot block every later probe', () => {
    const { clock, env, g } = rig();
    settleBreaker(env, 'pump-7', g, command('c1', 'timedOut'));
    settleBreaker(env, 'pump-7', g, command('c2', 'timedOut'));
    clock.advance(1000);
    claimProbe(g, clock.wallNow());
    clock.advance(1000);
    expect(checkBreaker('pump-7', g, clock.wallNow())).toMatchObject({ code: 'circuitOpen' });
    clock.advance(1);
    expect(checkBreaker('pump-7', g, clock.wallNow())).toBe('probe');
  });

  it('a view of a device never seen is closed with the given settings', () => {
    const { clock } = rig();
    expect(breakerView(undefined, { failures: 5, coolDownMs: 30_000 }, clock)).toEqual({
      state: 'closed',
      consecutiveFailures: 0,
      opens: 0,
      nextProbeAt: null,
      probing: false,
      lastFailure: null,
      settings: { failures: 5, coolDownMs: 30_000 },
    });
  });
});

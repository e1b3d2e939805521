import { describe, expect, it } from 'vitest';
import { addRestart, restartsInWindow } from '../../src/runtime/restart-intensity.js';

describe('addRestart (OTP restart intensity, G5)', () => {
  const intensity = { maxRestarts: 3, periodMs: 5000 };

  it.each<[string, number[], number, number[], 'restart' | 'giveUp']>([
    ['the first restart', [], 0, [0], 'restart'],
    ['the third within the period', [200, 100], 300, [300, 200, 100], 'restart'],
    ['the fourth within the period', [300, 200, 100], 400, [400, 300, 200, 100], 'giveUp'],
    ['a restart exactly one period after another still counts', [0], 5000, [5000, 0], 'restart'],
    ['restarts older than the period drop out', [6000, 900, 800], 6500, [6500, 6000], 'restart'],
    ['spaced wider than the period never add up', [10_000], 15_001, [15_001], 'restart'],
  ])('%s', (_, times, now, kept, decision) => {
    expect(addRestart(times, now, intensity)).toEqual({ times: kept, decision });
  });

  it('maxRestarts 0 gives up at the first restart', () => {
    expect(addRestart([], 0, { maxRestarts: 0, periodMs: 1000 }).decision).toBe('giveUp');
  });

  it('leaves the times it was given alone', () => {
    const times = [100, 50];
    addRestart(times, 200, intensity);
    expect(times).toEqual([100, 50]);
  });
});

describe('restartsInWindow', () => {
  it.each<[number[], number, number]>([
    [[], 0, 0],
    [[300, 200, 100], 400, 3],
    [[300, 200, 100], 5200, 2],
    [[300, 200, 100], 5301, 0],
  ])('%j at %d → %d', (times, now, n) => {
    expect(restartsInWindow(times, now, 5000)).toBe(n);
  });
});

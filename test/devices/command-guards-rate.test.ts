/**
 * The command guards' token buckets (src/devices/command-guards-rate.ts): one token from each
 * bucket, or none when either is empty, with the refusal's retry time.
 */
import { describe, expect, it } from 'vitest';
import type { TokenBucket } from '../../src/devices/command-guards-rate.js';
import { takeTokens } from '../../src/devices/command-guards-rate.js';

const T0 = 1_700_000_000_000;
const device = (tokens: number) => ({
  bucket: { tokens, at: 0 } as TokenBucket,
  rate: { perSecond: 2, burst: 3 },
});
const fleetRate = { perSecond: 10, burst: 20 };

describe('takeTokens', () => {
  it('takes one token from each bucket', () => {
    const d = device(3);
    const fleet: TokenBucket = { tokens: 20, at: 0 };
    expect(takeTokens('pump-1', d, fleet, fleetRate, 0, T0)).toBeUndefined();
    expect([d.bucket.tokens, fleet.tokens]).toEqual([2, 19]);
  });

  it('an empty device bucket is refused first, with when a token will be there; neither bucket pays', () => {
    const d = device(0.5);
    const fleet: TokenBucket = { tokens: 0, at: 0 };
    expect(takeTokens('pump-1', d, fleet, fleetRate, 0, T0)).toEqual({
      code: 'rateLimited',
      message: 'pump-1: at most 2 commands a second (burst 3); retry at 2023-11-14T22:13:20.250Z',
      retryAt: T0 + 250,
    });
    expect([d.bucket.tokens, fleet.tokens]).toEqual([0.5, 0]);
  });

  it('an empty fleet bucket refuses with the fleet limit; the device keeps its token', () => {
    const d = device(3);
    const fleet: TokenBucket = { tokens: 0.9, at: 0 };
    expect(takeTokens('pump-1', d, fleet, fleetRate, 0, T0)).toEqual({
      code: 'rateLimited',
      message: 'the fleet takes at most 10 commands a second (burst 20); retry at 2023-11-14T22:13:20.010Z',
      retryAt: T0 + 10,
    });
    expect(d.bucket.tokens).toBe(3);
  });

  it('refills both to now first, at most a burst', () => {
    const d = device(0);
    const fleet: TokenBucket = { tokens: 0, at: 0 };
    expect(takeTokens('pump-1', d, fleet, fleetRate, 10_000, T0)).toBeUndefined();
    expect([d.bucket.tokens, d.bucket.at, fleet.tokens, fleet.at]).toEqual([2, 10_000, 19, 10_000]);
  });
});

/**
 * The lease keeper's arithmetic (src/cluster/lease-keeper-plan.ts): renewal at a third of the
 * lease, the local deadline a sixth before its end, the exact share, which shards move, which
 * leases ran out.
 */
import { describe, expect, it } from 'vitest';
import {
  goneShards,
  leaseTiming,
  msToDeadline,
  renewedInTime,
  shardsToHandOver,
  targetShare,
} from '../../src/cluster/lease-keeper-plan.js';

describe('timing', () => {
  it.each([
    [6000, 2000, 1000],
    [2000, 666, 333],
    [2, 1, 0],
  ])('a %i ms lease renews every %i ms and lets go %i ms before its end', (leaseMs, everyMs, safetyMs) => {
    expect(leaseTiming(leaseMs)).toEqual({ everyMs, safetyMs });
  });

  it('a renewal counts only when answered before the local deadline', () => {
    expect(renewedInTime(100, 5099, 6000, 1000)).toBe(true);
    expect(renewedInTime(100, 5100, 6000, 1000)).toBe(false);
  });

  it('the deadline is a safety margin before the lease ends, never in the past', () => {
    expect(msToDeadline(6100, 1000, 100)).toBe(5000);
    expect(msToDeadline(6100, 1000, 9000)).toBe(0);
  });
});

describe('targetShare', () => {
  it('splits the shards exactly; the first `shards mod n` instances by id take one more', () => {
    const live = ['c', 'a', 'b'];
    expect(['a', 'b', 'c'].map((id) => targetShare(live, id, 64))).toEqual([22, 21, 21]);
    expect(['a', 'b', 'c'].map((id) => targetShare(live, id, 65))).toEqual([22, 22, 21]);
    expect(live).toEqual(['c', 'a', 'b']);
  });

  it('counts this instance when the database does not list it yet', () => {
    expect(targetShare(['b'], 'a', 3)).toBe(2);
    expect(targetShare([], 'a', 3)).toBe(3);
  });
});

describe('shardsToHandOver', () => {
  const held = new Map([
    [3, 1],
    [9, 1],
    [1, 2],
    [7, 1],
  ]);
  it('gives the highest-numbered shards beyond the target, at most maxMoves a pass', () => {
    expect(shardsToHandOver(held, 1, 64)).toEqual([9, 7, 3]);
    expect(shardsToHandOver(held, 1, 2)).toEqual([9, 7]);
    expect(shardsToHandOver(held, 4, 64)).toEqual([]);
  });
});

describe('goneShards', () => {
  it('lists held shards the renewal did not extend, or extended at another epoch', () => {
    const held = new Map([
      [1, 5],
      [2, 5],
      [3, 5],
    ]);
    const still = new Map([
      [1, 5],
      [3, 6],
      [4, 1],
    ]);
    expect(goneShards(held, still)).toEqual([2, 3]);
  });
});

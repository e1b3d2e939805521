/**
 * The bounded discovered list on a simulated clock: oldest dropped past its bound (counted, its
 * owner told), new devices announced up to the budget and the rest summed up once per minute,
 * an entry replaced in its place, and `set` for a device let in already.
 */
import { describe, expect, it } from 'vitest';
import { createSimulatedClock } from '../../src/runtime/clock.js';
import type { DiscoveredListStats } from '../../src/transports/discovered-list.js';
import { createDiscoveredList } from '../../src/transports/discovered-list.js';
import { MINUTE_MS } from '../../src/transports/minute-budget.js';

interface Row {
  readonly id: string;
  readonly seen: number;
}

function rig(max: number, announcementsPerMinute: number) {
  const clock = createSimulatedClock({ wallStartMs: 1_800_000_000_000 });
  const dropped: string[] = [];
  const announced: string[] = [];
  const summaries: { count: number; stats: DiscoveredListStats }[] = [];
  const list = createDiscoveredList<Row>({
    clock,
    max,
    announcementsPerMinute,
    dropped: (id, row) => dropped.push(row.id === id ? id : `${id} with another's row`),
    announce: (id) => announced.push(id),
    summarize: (count, stats) => summaries.push({ count, stats }),
  });
  const row = (id: string, seen = 1): Row => ({ id, seen });
  return { clock, list, dropped, announced, summaries, row };
}

describe('discovered list', () => {
  it('keeps at most max, dropping the oldest first and counting them', () => {
    const { list, dropped, row } = rig(3, 100);
    for (const id of ['a', 'b', 'c', 'd', 'e']) list.add(id, row(id));
    expect([...list.values()].map((r) => r.id)).toEqual(['c', 'd', 'e']);
    expect(dropped).toEqual(['a', 'b']);
    expect(list.stats()).toEqual({ listed: 3, dropped: 2, unannounced: 0 });
    expect(list.has('a')).toBe(false);
    expect(list.size).toBe(3);
  });

  it('a device listed again is replaced in its place: no room made, not announced again', () => {
    const { list, dropped, announced, row } = rig(2, 100);
    list.add('a', row('a', 1));
    list.add('b', row('b', 1));
    list.add('a', row('a', 2));
    expect([...list.values()]).toEqual([row('a', 2), row('b', 1)]);
    expect(dropped).toEqual([]);
    expect(announced).toEqual(['a', 'b']);
  });

  it('announces up to the budget a minute, sums up the rest when the minute ends', () => {
    const { clock, list, announced, summaries, row } = rig(1000, 2);
    for (let i = 0; i < 10; i++) list.add(`d${i}`, row(`d${i}`));
    expect(announced).toEqual(['d0', 'd1']);
    expect(list.stats().unannounced).toBe(8);
    expect(summaries).toEqual([]);
    clock.advance(MINUTE_MS);
    expect(summaries).toEqual([{ count: 8, stats: { listed: 10, dropped: 0, unannounced: 8 } }]);
    list.add('next', row('next'));
    expect(announced).toEqual(['d0', 'd1', 'next']);
    clock.advance(MINUTE_MS);
    expect(summaries).toHaveLength(1); // a minute within the budget has nothing to sum up
  });

  it('set replaces, or lists without making room or announcing; delete unlists', () => {
    const { list, dropped, announced, row } = rig(1, 100);
    list.add('a', row('a'));
    list.set('b', row('b'));
    expect(list.size).toBe(2);
    expect(dropped).toEqual([]);
    expect(announced).toEqual(['a']);
    expect(list.delete('a')).toBe(true);
    expect(list.delete('a')).toBe(false);
    expect(list.get('b')).toEqual(row('b'));
  });

  it('a flood of 100,000 invented ids stays at the bound, with 20 announcements and one summary', () => {
    const { clock, list, announced, summaries, row } = rig(10_000, 20);
    for (let i = 0; i < 100_000; i++) list.add(`x${i}`, row(`x${i}`));
    clock.advance(MINUTE_MS);
    expect(list.size).toBe(10_000);
    expect(list.values().next().value?.id).toBe('x90000');
    expect(announced).toHaveLength(20);
    expect(summaries).toEqual([
      { count: 99_980, stats: { listed: 10_000, dropped: 90_000, unannounced: 99_980 } },
    ]);
  });
});

describe('discovered list, the oldest with removals in between', () => {
  it('drops the oldest still listed, whatever was adopted, re-listed or dropped before', () => {
    const { list, dropped, row } = rig(3, 100);
    for (const id of ['a', 'b', 'c']) list.add(id, row(id));
    list.add('d', row('d')); // a dropped
    list.delete('b'); // adopted
    list.add('c', row('c', 2)); // seen again: keeps its place
    list.add('a', row('a', 2)); // back after its drop: the newest
    list.add('e', row('e')); // c is the oldest now
    expect(dropped).toEqual(['a', 'c']);
    expect([...list.values()]).toEqual([row('d'), row('a', 2), row('e')]);
    for (const id of ['d', 'a', 'e']) list.delete(id);
    list.add('f', row('f'));
    list.add('g', row('g'));
    list.add('h', row('h'));
    list.add('i', row('i')); // f
    expect(dropped).toEqual(['a', 'c', 'f']);
    expect([...list.values()].map((r) => r.id)).toEqual(['g', 'h', 'i']);
  });
});

/**
 * The bounded discovered list: oldest dropped past its bound (counted, its owner told), an entry
 * replaced in its place, `set` for a device let in already; and the announcements on a simulated
 * clock: up to the budget a minute, the rest summed up once when it ends.
 */
import { describe, expect, it } from 'vitest';
import { createSimulatedClock } from '../../src/runtime/clock.js';
import { createAnnouncements, createDiscoveredList } from '../../src/transports/discovered-list.js';
import { MINUTE_MS } from '../../src/transports/minute-budget.js';

interface Row {
  readonly id: string;
  readonly seen: number;
}
const row = (id: string, seen = 1): Row => ({ id, seen });

function listOf(max: number) {
  const dropped: string[] = [];
  const list = createDiscoveredList<Row>({
    max,
    dropped: (id, r) => dropped.push(r.id === id ? id : `${id} with another's row`),
  });
  return { list, dropped };
}

function announcementsOf(perMinute: number) {
  const clock = createSimulatedClock({ wallStartMs: 1_800_000_000_000 });
  const summaries: number[] = [];
  const announcements = createAnnouncements({
    clock,
    perMinute,
    summarize: (count) => summaries.push(count),
  });
  return { clock, announcements, summaries };
}

describe('discovered list', () => {
  it('keeps at most max, dropping the oldest first and counting them', () => {
    const { list, dropped } = listOf(3);
    expect(['a', 'b', 'c', 'd', 'e'].map((id) => list.add(id, row(id)))).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    expect([...list.values()].map((r) => r.id)).toEqual(['c', 'd', 'e']);
    expect(dropped).toEqual(['a', 'b']);
    expect(list.stats()).toEqual({ listed: 3, dropped: 2 });
    expect(list.has('a')).toBe(false);
    expect(list.size).toBe(3);
  });

  it('a device listed again is replaced in its place: not new, no room made', () => {
    const { list, dropped } = listOf(2);
    list.add('a', row('a', 1));
    list.add('b', row('b', 1));
    expect(list.add('a', row('a', 2))).toBe(false);
    expect([...list.values()]).toEqual([row('a', 2), row('b', 1)]);
    expect(dropped).toEqual([]);
  });

  it('set replaces, or lists without making room; delete unlists', () => {
    const { list, dropped } = listOf(1);
    list.add('a', row('a'));
    list.set('b', row('b'));
    expect(list.size).toBe(2);
    expect(dropped).toEqual([]);
    expect(list.delete('a')).toBe(true);
    expect(list.delete('a')).toBe(false);
    expect(list.get('b')).toEqual(row('b'));
  });

  it('drops the oldest still listed, whatever was adopted, re-listed or dropped before', () => {
    const { list, dropped } = listOf(3);
    for (const id of ['a', 'b', 'c']) list.add(id, row(id));
    list.add('d', row('d')); // a dropped
    list.delete('b'); // adopted
    list.add('c', row('c', 2)); // seen again: keeps its place
    list.add('a', row('a', 2)); // back after its drop: the newest
    list.add('e', row('e')); // c is the oldest now
    expect(dropped).toEqual(['a', 'c']);
    expect([...list.values()]).toEqual([row('d'), row('a', 2), row('e')]);
    for (const id of ['d', 'a', 'e']) list.delete(id);
    for (const id of ['f', 'g', 'h', 'i']) list.add(id, row(id)); // f dropped
    expect(dropped).toEqual(['a', 'c', 'f']);
    expect([...list.values()].map((r) => r.id)).toEqual(['g', 'h', 'i']);
  });

  it('a flood of 100,000 invented ids stays at the bound', () => {
    const { list, dropped } = listOf(10_000);
    for (let i = 0; i < 100_000; i++) list.add(`x${i}`, row(`x${i}`));
    expect(list.size).toBe(10_000);
    expect(list.values().next().value?.id).toBe('x90000');
    expect(dropped).toHaveLength(90_000);
    expect(list.stats()).toEqual({ listed: 10_000, dropped: 90_000 });
  });
});

describe('announcements', () => {
  it('announces up to the budget a minute, sums up the rest once when the minute ends', () => {
    const { clock, announcements, summaries } = announcementsOf(2);
    expect(Array.from({ length: 10 }, () => announcements.take())).toEqual([
      true,
      true,
      ...Array<boolean>(8).fill(false),
    ]);
    expect(announcements.unannounced).toBe(8);
    expect(summaries).toEqual([]);
    clock.advance(MINUTE_MS);
    expect(summaries).toEqual([8]);
    expect(announcements.take()).toBe(true);
    clock.advance(MINUTE_MS);
    expect(summaries).toEqual([8]); // a minute within the budget has nothing to sum up
    expect(announcements.unannounced).toBe(8);
  });
});

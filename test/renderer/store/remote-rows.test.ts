/**
 * How the fleet table's remote rows take pushes and whole reads (renderer/src/store/remote-rows.ts):
 * a pushed row replaces the held one unless that was read later; a removal removes; a whole read
 * replaces the map except for the devices pushed while it was asked, where the pushed word (a
 * newer row, or a removal) stands.
 */
import { describe, expect, it } from 'vitest';
import { withPushed, withRead } from '../../../renderer/src/store/remote-rows.js';
import type { DeviceRow } from '../../../src/host/contract.js';
import { row } from '../device-rows.js';

const remote = (id: string, state: string, readAt: number): DeviceRow =>
  row(id, { state, remote: { owner: 'beta', readAt, savedAt: readAt - 10 }, lastSeen: null });

const states = (m: ReadonlyMap<string, DeviceRow>) =>
  Object.fromEntries([...m.values()].map((r) => [r.id, `${r.state}@${r.remote?.readAt}`]));

describe('remote rows', () => {
  it('takes a pushed row unless the one held was read later; removes what is removed', () => {
    const held = new Map([
      ['a', remote('a', 'connected', 100)],
      ['b', remote('b', 'connected', 300)],
      ['c', remote('c', 'connected', 100)],
    ]);
    const next = withPushed(
      held,
      [remote('a', 'disconnected', 200), remote('b', 'disconnected', 200), remote('d', 'connecting', 200)],
      ['c'],
    );
    expect(states(next)).toEqual({ a: 'disconnected@200', b: 'connected@300', d: 'connecting@200' });
    expect(states(held)).toEqual({ a: 'connected@100', b: 'connected@300', c: 'connected@100' });
  });

  it('a whole read replaces the map, except for the devices pushed while it was asked', () => {
    const held = new Map([
      ['pushed-newer', remote('pushed-newer', 'disconnected', 500)],
      ['pushed-older', remote('pushed-older', 'connecting', 100)],
      ['added-meanwhile', remote('added-meanwhile', 'connected', 500)],
      ['stale', remote('stale', 'connected', 50)],
    ]);
    const read = new Map([
      ['pushed-newer', remote('pushed-newer', 'connected', 400)],
      ['pushed-older', remote('pushed-older', 'connected', 400)],
      ['removed-meanwhile', remote('removed-meanwhile', 'connected', 400)],
      ['plain', remote('plain', 'connected', 400)],
    ]);
    const next = withRead(
      held,
      read,
      new Set(['pushed-newer', 'pushed-older', 'added-meanwhile', 'removed-meanwhile']),
    );
    expect(states(next)).toEqual({
      'pushed-newer': 'disconnected@500',
      'pushed-older': 'connected@400',
      'added-meanwhile': 'connected@500',
      plain: 'connected@400',
    });
  });
});

/**
 * The fleet table's one map over this instance's pushed rows and the other instances' polled rows
 * (renderer/src/lib/fleet-wide.ts): a pushed row wins over a polled one of the same device, every
 * device counted once, iterated pushed first; no remote rows: the live map itself. And the table's
 * order over it (lib/fleet-sort.ts) interleaves both.
 */
import { describe, expect, it } from 'vitest';
import { sortDevices } from '../../../renderer/src/lib/fleet-sort.js';
import { mergeRows } from '../../../renderer/src/lib/fleet-wide.js';
import type { DeviceRow } from '../../../src/host/contract.js';
import { row } from '../device-rows.js';

const remote = (id: string, owner: string, patch: Partial<DeviceRow> = {}) =>
  row(id, { remote: { owner, readAt: 1000, savedAt: 900 }, lastSeen: null, ...patch });

describe('mergeRows', () => {
  it('answers the live map itself when no remote row is known', () => {
    const own = new Map([['a', row('a')]]);
    expect(mergeRows(own, new Map())).toBe(own);
  });

  it('counts every device once, the pushed row winning over a polled one', () => {
    const own = new Map([
      ['pump-1', row('pump-1')],
      ['pump-3', row('pump-3', { state: 'connecting' })],
    ]);
    const polled = new Map([
      ['pump-2', remote('pump-2', 'beta')],
      // Its shard just moved here: pushed already, still in the last poll.
      ['pump-3', remote('pump-3', 'beta', { state: 'disconnected' })],
    ]);
    const all = mergeRows(own, polled);
    expect(all.size).toBe(3);
    expect(all.get('pump-3')?.state).toBe('connecting');
    expect(all.get('pump-3')?.remote).toBeUndefined();
    expect(all.get('pump-2')?.remote?.owner).toBe('beta');
    expect(all.get('pump-9')).toBeUndefined();
    expect(all.has('pump-2') && all.has('pump-1') && !all.has('pump-9')).toBe(true);
    expect([...all.keys()]).toEqual(['pump-1', 'pump-3', 'pump-2']);
    expect([...all.values()].map((r) => r.remote?.owner ?? 'own')).toEqual(['own', 'own', 'beta']);
    expect([...all].map(([id]) => id)).toEqual(['pump-1', 'pump-3', 'pump-2']);
    const seen: string[] = [];
    all.forEach((r, id) => {
      seen.push(`${id}:${r.state}`);
    });
    expect(seen).toEqual(['pump-1:connected', 'pump-3:connecting', 'pump-2:connected']);
  });

  it('follows the live map as it is mutated, when made again for its new version', () => {
    const own = new Map([['pump-1', row('pump-1')]]);
    const polled = new Map([['pump-2', remote('pump-2', 'beta')]]);
    expect(mergeRows(own, polled).size).toBe(2);
    // The device left this instance (a push removed it); the next poll has not listed it yet.
    own.delete('pump-1');
    expect([...mergeRows(own, polled).keys()]).toEqual(['pump-2']);
  });

  it('sorts both together in the table', () => {
    const own = new Map([
      ['pump-10', row('pump-10')],
      ['pump-2', row('pump-2')],
    ]);
    const polled = new Map([
      ['pump-1', remote('pump-1', 'beta')],
      ['pump-3', remote('pump-3', 'gamma')],
    ]);
    expect(sortDevices(mergeRows(own, polled), 'id', false).map((r) => r.id)).toEqual([
      'pump-1',
      'pump-2',
      'pump-3',
      'pump-10',
    ]);
  });
});

/**
 * The command tracker's table of open commands (src/devices/commands/command-table.ts), without
 * a clock, a store or a carrier: request order per device, closing versus releasing, and how a
 * late confirmation is told from a stranger's.
 */
import { describe, expect, it } from 'vitest';
import type { TrackedCommand } from '../../../src/devices/command-tracker.js';
import { createCommandTable } from '../../../src/devices/commands/command-table.js';

const view = (commandId: string, deviceId: string, requestedAt = 0): TrackedCommand => ({
  commandId,
  deviceId,
  action: 'reboot',
  args: {},
  actor: 'ana',
  carrier: 'protocol',
  status: 'pending',
  requestedAt,
  expiresAt: null,
  sentAt: null,
  attempts: 0,
  completedAt: null,
});

const ids = (entries: readonly { view: TrackedCommand }[]) => entries.map((e) => e.view.commandId);

describe('command table', () => {
  it('keeps open commands by id and by device, in the order they were added', () => {
    const table = createCommandTable();
    table.add(view('a', 'pump-1'));
    table.add(view('b', 'pump-2'));
    table.add(view('c', 'pump-1'));
    expect(ids(table.all())).toEqual(['a', 'b', 'c']);
    expect(ids(table.ofDevice('pump-1'))).toEqual(['a', 'c']);
    expect(table.countOf('pump-1')).toBe(2);
    expect(table.countOf('pump-9')).toBe(0);
    expect(table.ofDevice('pump-9')).toEqual([]);
    expect(table.get('b')?.view.deviceId).toBe('pump-2');
    expect(table.get('z')).toBeUndefined();
  });

  it('gives a copy of a device’s commands, so closing them while iterating misses none', () => {
    const table = createCommandTable();
    for (const id of ['a', 'b', 'c']) table.add(view(id, 'pump-1'));
    const seen: string[] = [];
    for (const e of table.ofDevice('pump-1')) {
      seen.push(e.view.commandId);
      table.close(e);
    }
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(table.countOf('pump-1')).toBe(0);
    expect(table.all()).toEqual([]);
  });

  it('a closed command is remembered as completed by its device; a released one is not', () => {
    const table = createCommandTable();
    const a = table.add(view('a', 'pump-1'));
    table.add(view('b', 'pump-1'));
    table.close(a);
    expect(table.get('a')).toBeUndefined();
    expect(table.completedLately('pump-1', 'a')).toBe(true);
    expect(table.completedLately('pump-2', 'a')).toBe(false); // another device's id is a stranger
    expect(table.completedLately(undefined, 'a')).toBe(true); // no device to go by: any device's
    expect(ids(table.release('pump-1'))).toEqual(['b']);
    expect(table.get('b')).toBeUndefined();
    expect(table.completedLately('pump-1', 'b')).toBe(false);
    expect(table.completedLately(undefined, 'b')).toBe(false);
  });

  it('remembers the last 64 completions per device', () => {
    const table = createCommandTable();
    for (let i = 0; i < 65; i++) table.close(table.add(view(`c${i}`, 'pump-1')));
    expect(table.completedLately('pump-1', 'c0')).toBe(false);
    expect(table.completedLately('pump-1', 'c1')).toBe(true);
    expect(table.completedLately('pump-1', 'c64')).toBe(true);
  });

  it('release forgets the device’s presence only when it had open commands', () => {
    const table = createCommandTable();
    table.setOnline('pump-1', true);
    table.setOnline('pump-2', true);
    table.add(view('a', 'pump-2'));
    expect(table.release('pump-1')).toEqual([]);
    expect(table.isOnline('pump-1')).toBe(true);
    expect(table.release('pump-2')).toHaveLength(1);
    expect(table.isOnline('pump-2')).toBe(false);
    expect([...table.onlineDevices()]).toEqual(['pump-1']);
    table.setOnline('pump-1', false);
    expect(table.isOnline('pump-1')).toBe(false);
  });

  it('sorts each device’s commands oldest first (a reload’s pages come in any order)', () => {
    const table = createCommandTable();
    table.add(view('late', 'pump-1', 30));
    table.add(view('other', 'pump-2', 5));
    table.add(view('early', 'pump-1', 10));
    table.add(view('middle', 'pump-1', 20));
    table.sortOldestFirst();
    expect(ids(table.ofDevice('pump-1'))).toEqual(['early', 'middle', 'late']);
    expect(ids(table.ofDevice('pump-2'))).toEqual(['other']);
  });
});

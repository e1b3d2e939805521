/**
 * The fleet table's order and filter (renderer/src/views/FleetView.tsx): natural order with ties by
 * id in both directions, the same order whatever order it was fed in (the last order is a hint),
 * rows replaced by a push re-sorted by their new values, and the text filter over id, name,
 * firmware and tags.
 */
import { describe, expect, it } from 'vitest';
import { matches, sortDevices } from '../../renderer/src/views/FleetView.js';
import type { DeviceRow } from '../../src/host/contract.js';
import { row } from './device-rows.js';

const fleet = (rows: DeviceRow[]) => new Map(rows.map((r) => [r.id, r]));
const ids = (rows: readonly DeviceRow[]) => rows.map((r) => r.id);

describe('sortDevices', () => {
  const devices = fleet([
    row('pump-10', { restarts: 1, name: 'b' }),
    row('pump-2', { restarts: 1, name: 'A' }),
    row('pump-1', { restarts: 3, name: 'c' }),
  ]);

  it('sorts naturally, ties by id ascending in both directions', () => {
    expect(ids(sortDevices(devices, 'id', false))).toEqual(['pump-1', 'pump-2', 'pump-10']);
    expect(ids(sortDevices(devices, 'id', true))).toEqual(['pump-10', 'pump-2', 'pump-1']);
    expect(ids(sortDevices(devices, 'name', false))).toEqual(['pump-2', 'pump-10', 'pump-1']);
    expect(ids(sortDevices(devices, 'restarts', false))).toEqual(['pump-2', 'pump-10', 'pump-1']);
    expect(ids(sortDevices(devices, 'restarts', true))).toEqual(['pump-1', 'pump-2', 'pump-10']);
  });

  it('gives the same order whatever the last order was, and takes rows added or removed since', () => {
    const last = sortDevices(devices, 'name', true);
    expect(ids(sortDevices(devices, 'restarts', false, last))).toEqual(['pump-2', 'pump-10', 'pump-1']);
    const changed = fleet([row('pump-10', { restarts: 9 }), row('pump-1', { restarts: 3 }), row('pump-3')]);
    expect(ids(sortDevices(changed, 'restarts', false, last))).toEqual(['pump-3', 'pump-1', 'pump-10']);
  });

  it('sorts replaced rows by their new values', () => {
    const first = sortDevices(devices, 'restarts', false);
    const pushed = new Map(devices);
    pushed.set('pump-2', row('pump-2', { restarts: 7, name: 'A' }));
    expect(ids(sortDevices(pushed, 'restarts', false, first))).toEqual(['pump-10', 'pump-1', 'pump-2']);
  });
});

describe('matches', () => {
  const r = row('Pump-7', { name: 'Main Boiler', firmware: '2.1.0-rc', tags: ['Hall-3', 'line-9'] });
  const none = { kind: '', state: '', tag: '' };

  it('finds the text in the id, name, firmware or a tag, case folded', () => {
    for (const text of ['pump-7', 'BOILER', '2.1.0-r', 'hall-3', 'line'])
      expect(matches(r, { ...none, text })).toBe(true);
    expect(matches(r, { ...none, text: 'hall-4' })).toBe(false);
  });

  it('never matches across two fields, and follows a renamed row', () => {
    expect(matches(r, { ...none, text: 'boiler2' })).toBe(false);
    expect(matches(r, { ...none, text: '7main' })).toBe(false);
    expect(matches({ ...r, name: 'Spare valve' }, { ...none, text: 'boiler' })).toBe(false);
    expect(matches({ ...r, tags: ['hall-4'] }, { ...none, text: 'hall-4' })).toBe(true);
  });
});

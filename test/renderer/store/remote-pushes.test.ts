/**
 * Which pushed messages make the device view of another instance's device read its detail again
 * (renderer/src/store/remote-rows.ts `pushNamesRemote`, used by `useRemotePushes`): a diff whose
 * `remote` rows or `remoteRemoved` ids name the device; not a diff of other devices, nor the
 * device among this instance's own rows (its live row keeps that view current).
 */
import { describe, expect, it } from 'vitest';
import { pushNamesRemote } from '../../../renderer/src/store/remote-rows.js';
import type { DeviceRow, Diff } from '../../../src/host/contract.js';
import { row } from '../device-rows.js';

const remote = (id: string): DeviceRow =>
  row(id, { state: 'connected', remote: { owner: 'beta', readAt: 100, savedAt: 90 }, lastSeen: null });

const diff = (parts: Partial<Diff>): Diff => ({
  type: 'diff',
  seq: 1,
  at: 0,
  devices: [],
  removed: [],
  telemetry: [],
  events: [],
  ...parts,
});

describe('pushes that name another instance’s device', () => {
  it.each([
    ['its pushed row', diff({ remote: [remote('b-1'), remote('b-2')] }), true],
    ['its removal', diff({ remoteRemoved: ['b-2'] }), true],
    ['other devices only', diff({ remote: [remote('b-1')], remoteRemoved: ['b-3'] }), false],
    ['no remote part', diff({}), false],
    ['the id among own rows', diff({ devices: [row('b-2')], removed: ['b-2'] }), false],
    ['a resync', { type: 'resync', reason: 'behind' } as const, false],
  ])('%s', (_what, message, named) => {
    expect(pushNamesRemote(message, 'b-2')).toBe(named);
  });
});

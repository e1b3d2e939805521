import { describe, expect, it } from 'vitest';
import { formatStateValue } from '../../src/runtime/machine-lifecycle.js';
import { decodeHibernated, encodeHibernated } from '../../src/runtime/machine-persistence.js';
import type { MachineTimer } from '../../src/runtime/machine-timeouts.js';

const snapshot = {
  status: 'active',
  value: 'connecting',
  context: { attempts: 2 },
  historyValue: {},
  children: {},
};

const after: MachineTimer = {
  kind: 'after',
  id: 'xstate.after.5000.device.connecting',
  event: { type: 'xstate.after.5000.device.connecting' },
  delayMs: 5000,
  wallDeadlineMs: 1_700_000_005_000,
};

const liveness: MachineTimer = {
  kind: 'named',
  id: 'liveness',
  event: { type: 'LIVENESS_TIMEOUT' },
  delayMs: 30_000,
  wallDeadlineMs: 1_700_000_030_000,
};

describe('encodeHibernated / decodeHibernated', () => {
  it('round-trips a snapshot and its timers', () => {
    const json = encodeHibernated(snapshot, [after, liveness]);
    expect(decodeHibernated(json)).toEqual({ snapshot, timers: [after, liveness] });
  });

  it('leaves out the snapshot defaults and an event that is just { type: id }', () => {
    const [s, t] = JSON.parse(encodeHibernated(snapshot, [after, liveness])) as [
      Record<string, unknown>,
      unknown[][],
    ];
    expect(Object.keys(s).sort()).toEqual(['context', 'value']);
    expect(t[0]).toEqual(['after', after.id, after.wallDeadlineMs, 5000]);
    expect(t[1]).toEqual([
      'named',
      'liveness',
      liveness.wallDeadlineMs,
      30_000,
      { type: 'LIVENESS_TIMEOUT' },
    ]);
  });

  it('keeps what differs from the defaults', () => {
    const done = {
      ...snapshot,
      status: 'done',
      historyValue: { 'device.h': [] },
      children: { link: { status: 'active' } },
    };
    const withPayload: MachineTimer = { ...after, event: { type: after.id, extra: 1 } as never };
    const decoded = decodeHibernated(encodeHibernated(done, [withPayload]));
    expect(decoded).toEqual({ snapshot: done, timers: [withPayload] });
  });
});

describe('formatStateValue', () => {
  it.each([
    ['connected', 'connected'],
    [{ running: 'idle' }, 'running.idle'],
    [{ running: { update: 'flashing' } }, 'running.update.flashing'],
    [{ a: 'x', b: 'y' }, '{a.x,b.y}'],
    [42, '42'],
  ])('%j → %s', (value, text) => {
    expect(formatStateValue(value)).toBe(text);
  });
});

/**
 * The three-way step every rule type shares (src/alarms/rule-devices.ts), on plain numbers: a
 * condition raises once it held for forMs, the hysteresis band (null) changes nothing, false
 * clears; ticks raise what waited long enough; a removed device clears and is forgotten.
 */
import { describe, expect, it } from 'vitest';
import type { AlarmChange } from '../../src/alarms/evaluate.js';
import { RuleDevices } from '../../src/alarms/rule-devices.js';

function rig(forMs: number) {
  const devices = new RuleDevices('hot', 'temp above 30', forMs);
  const changes: AlarmChange[] = [];
  const emit = (c: AlarmChange) => changes.push(c);
  const judge = (id: string, bad: boolean | null, atMs: number, value: number | null = null) => {
    const s = devices.stateOf(id);
    s.lastValue = value;
    devices.judge(id, s, bad, atMs, emit);
  };
  const seen = () => changes.map((c) => `${c.type} ${c.deviceId}@${c.atMs}`);
  return { devices, changes, emit, judge, seen };
}

describe('RuleDevices', () => {
  it('raises at once without forMs, with the value in the message, and clears on false', () => {
    const r = rig(0);
    r.judge('d1', true, 5, 31.256);
    expect(r.changes[0]).toEqual({
      type: 'raise',
      ruleId: 'hot',
      deviceId: 'd1',
      atMs: 5,
      value: 31.256,
      message: 'temp above 30: 31.26',
    });
    r.judge('d1', true, 6, 32);
    r.judge('d1', null, 7, 30);
    expect(r.changes).toHaveLength(1);
    r.judge('d1', false, 8, 29);
    expect(r.changes[1]).toMatchObject({
      type: 'clear',
      value: 29,
      message: 'back to normal: temp above 30',
    });
    expect(r.devices.activeDevices()).toEqual([]);
  });

  it('waits out forMs: ticks raise when it has held long enough; the band or false in between resets it', () => {
    const r = rig(1000);
    r.judge('d1', true, 0);
    r.devices.tickPending(999, r.emit);
    expect(r.changes).toEqual([]);
    r.judge('d1', null, 999);
    r.judge('d1', true, 1500);
    r.devices.tickPending(2000, r.emit);
    expect(r.changes).toEqual([]);
    r.devices.tickPending(2500, r.emit);
    expect(r.seen()).toEqual(['raise d1@2500']);
    expect(r.changes[0]?.message).toBe('temp above 30');
    expect(r.devices.activeDevices()).toEqual(['d1']);
  });

  it('a removed device clears its alarm and is forgotten', () => {
    const r = rig(0);
    r.judge('d1', true, 0);
    r.judge('d2', true, 0);
    r.devices.remove('d1', 10, r.emit);
    r.devices.remove('d3', 10, r.emit); // never heard of: nothing
    expect(r.seen()).toEqual(['raise d1@0', 'raise d2@0', 'clear d1@10']);
    expect([...r.devices.all()].map(([id]) => id)).toEqual(['d2']);
  });
});

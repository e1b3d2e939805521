/** The counts the navigation shows, from the open alarms alone (countAlarms in src/alarms/alarm-book.ts). */
import { describe, expect, it } from 'vitest';
import { countAlarms } from '../../src/alarms/alarm-book.js';
import type { AlarmRecord } from '../../src/alarms/sqlite-alarm-store.js';

let nextId = 0;
const alarm = (over: Partial<AlarmRecord>): AlarmRecord => ({
  id: ++nextId,
  ruleId: 'hot',
  deviceId: `d${nextId}`,
  severity: 'major',
  message: 'temp above 30',
  value: 31,
  raisedAt: 0,
  ackedAt: null,
  ackedBy: null,
  clearedAt: null,
  clearedBy: null,
  shelvedUntil: null,
  shelvedBy: null,
  ...over,
});

describe('countAlarms', () => {
  it('counts unacked per severity; a shelved alarm counts as shelved until its time, then as what it is', () => {
    const open = [
      alarm({ severity: 'critical' }),
      alarm({ severity: 'critical' }),
      alarm({ severity: 'minor', ackedAt: 5, ackedBy: 'ops' }),
      alarm({ severity: 'warning', shelvedUntil: 100, shelvedBy: 'ops' }),
    ];
    expect(countAlarms(open, 50)).toEqual({
      active: 4,
      unacked: 2,
      shelved: 1,
      bySeverity: { critical: 2, major: 0, minor: 0, warning: 0 },
    });
    expect(countAlarms(open, 100)).toMatchObject({ unacked: 3, shelved: 0, bySeverity: { warning: 1 } });
    expect(countAlarms([], 0)).toEqual({
      active: 0,
      unacked: 0,
      shelved: 0,
      bySeverity: { critical: 0, major: 0, minor: 0, warning: 0 },
    });
  });
});

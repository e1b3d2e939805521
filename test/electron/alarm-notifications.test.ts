import { describe, expect, it } from 'vitest';
import { alarmNotification } from '../../electron/alarm-notifications.js';
import type { AlarmRecord } from '../../src/alarms/alarm-engine.js';

const alarm: AlarmRecord = {
  id: 7,
  ruleId: 'hot',
  deviceId: 'pump-7',
  severity: 'critical',
  message: 'temp above 30 for 2 s: 31.5',
  value: 31.5,
  raisedAt: 1000,
  ackedAt: null,
  ackedBy: null,
  clearedAt: null,
  clearedBy: null,
  shelvedUntil: null,
  shelvedBy: null,
};

describe('alarm notifications in the desktop shell', () => {
  it('shows a raised alarm, not a shelved one, nor acks, shelving or clearing', () => {
    expect(alarmNotification(alarm, 'raised', 2000)).toEqual({
      title: 'critical alarm: pump-7',
      body: 'temp above 30 for 2 s: 31.5 (rule hot)',
    });
    expect(
      alarmNotification({ ...alarm, shelvedUntil: 5000, shelvedBy: 'ops' }, 'raised', 2000),
    ).toBeUndefined();
    expect(
      alarmNotification({ ...alarm, shelvedUntil: 1500, shelvedBy: 'ops' }, 'raised', 2000),
    ).toBeDefined();
    for (const e of ['acked', 'shelved', 'cleared'] as const)
      expect(alarmNotification(alarm, e, 2000)).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { listAlarmsQuery } from '../../src/alarms/sqlite-alarms.js';

describe('listAlarmsQuery', () => {
  it.each([
    ['all', ' ', []],
    ['active', 'WHERE cleared_at IS NULL ', []],
    ['unacked', 'WHERE cleared_at IS NULL AND acked_at IS NULL ', []],
    ['shelved', 'WHERE cleared_at IS NULL AND shelved_until > ? ', [1000]],
    ['cleared', 'WHERE cleared_at IS NOT NULL ', []],
  ] as const)('state %s', (state, where, params) => {
    expect(listAlarmsQuery({ state, limit: 50 }, 1000)).toEqual({
      sql: `SELECT * FROM alarms ${where}ORDER BY id DESC LIMIT ?`,
      params: [...params, 50],
    });
  });

  it('no state is all', () => {
    expect(listAlarmsQuery({ limit: 5 }, 1000).sql).toBe('SELECT * FROM alarms  ORDER BY id DESC LIMIT ?');
  });

  it('joins every filter with AND, its values in order, the limit last', () => {
    expect(
      listAlarmsQuery(
        { state: 'shelved', severity: 'major', deviceId: 'd1', ruleId: 'hot', cursor: 40, limit: 10 },
        7,
      ),
    ).toEqual({
      sql: 'SELECT * FROM alarms WHERE cleared_at IS NULL AND shelved_until > ? AND severity = ? AND device_id = ? AND rule_id = ? AND id < ? ORDER BY id DESC LIMIT ?',
      params: [7, 'major', 'd1', 'hot', 40, 10],
    });
  });
});

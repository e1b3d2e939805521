/**
 * Alarms on SQLite (migration 7, `alarms`): one row per alarm, replaced whole at every change
 * (raise, ack, shelve, clear), and the filtered, paged list the API and the UI ask for.
 *
 * @example
 * const alarms = createSqliteAlarms(context);
 * await alarms.putAlarm({ id: 1, ruleId: 'hot', deviceId: 'd1', severity: 'major', … });
 * (await alarms.listAlarms({ state: 'active', limit: 50 }, Date.now())).length; // 1
 */
import type { SqlValue } from '../store/sqlite-connection.js';
import type { AlarmContext } from './sqlite-alarm-context.js';

export interface AlarmRecord {
  readonly id: number;
  readonly ruleId: string;
  readonly deviceId: string;
  readonly severity: string;
  readonly message: string;
  readonly value: number | null;
  readonly raisedAt: number;
  readonly ackedAt: number | null;
  readonly ackedBy: string | null;
  readonly clearedAt: number | null;
  readonly clearedBy: string | null;
  readonly shelvedUntil: number | null;
  readonly shelvedBy: string | null;
}

/**
 * `active`: not cleared; `unacked`: active and not acknowledged; `shelved`: active and shelved
 * now; `cleared`; `all`.
 */
export type AlarmStateFilter = 'active' | 'unacked' | 'shelved' | 'cleared' | 'all';

export interface AlarmFilter {
  readonly state?: AlarmStateFilter;
  readonly severity?: string;
  readonly deviceId?: string;
  readonly ruleId?: string;
  /** Alarms with an id below it (paging, newest first). */
  readonly cursor?: number;
  readonly limit: number;
}

export interface SqliteAlarms {
  /** Inserts or replaces the alarm with this id. */
  putAlarm(alarm: AlarmRecord): Promise<void>;
  getAlarm(id: number): Promise<AlarmRecord | undefined>;
  openAlarms(): Promise<AlarmRecord[]>;
  maxAlarmId(): Promise<number>;
  listAlarms(filter: AlarmFilter, wallNow: number): Promise<AlarmRecord[]>;
}

interface AlarmRow {
  id: number;
  rule_id: string;
  device_id: string;
  severity: string;
  message: string;
  value: number | null;
  raised_at: number;
  acked_at: number | null;
  acked_by: string | null;
  cleared_at: number | null;
  cleared_by: string | null;
  shelved_until: number | null;
  shelved_by: string | null;
}

const fromRow = (r: AlarmRow): AlarmRecord => ({
  id: r.id,
  ruleId: r.rule_id,
  deviceId: r.device_id,
  severity: r.severity,
  message: r.message,
  value: r.value,
  raisedAt: r.raised_at,
  ackedAt: r.acked_at,
  ackedBy: r.acked_by,
  clearedAt: r.cleared_at,
  clearedBy: r.cleared_by,
  shelvedUntil: r.shelved_until,
  shelvedBy: r.shelved_by,
});

export function createSqliteAlarms({ conn, queued }: AlarmContext): SqliteAlarms {
  return {
    putAlarm: (a) =>
      queued('save alarm', async () => {
        await conn.run(
          `INSERT OR REPLACE INTO alarms (id, rule_id, device_id, severity, message, value, raised_at, acked_at, acked_by,
             cleared_at, cleared_by, shelved_until, shelved_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            a.id,
            a.ruleId,
            a.deviceId,
            a.severity,
            a.message,
            a.value,
            a.raisedAt,
            a.ackedAt,
            a.ackedBy,
            a.clearedAt,
            a.clearedBy,
            a.shelvedUntil,
            a.shelvedBy,
          ],
        );
      }),
    getAlarm: (id) =>
      queued('read alarm', async () => {
        const r = await conn.get<AlarmRow>('SELECT * FROM alarms WHERE id = ?', [id]);
        return r && fromRow(r);
      }),
    openAlarms: () =>
      queued('read open alarms', async () =>
        (await conn.all<AlarmRow>('SELECT * FROM alarms WHERE cleared_at IS NULL ORDER BY id')).map(fromRow),
      ),
    maxAlarmId: () =>
      queued(
        'read alarm ids',
        async () => (await conn.get<{ n: number | null }>('SELECT max(id) AS n FROM alarms'))?.n ?? 0,
      ),
    listAlarms: (f, wallNow) =>
      queued('list alarms', async () => {
        const { sql, params } = listAlarmsQuery(f, wallNow);
        return (await conn.all<AlarmRow>(sql, params)).map(fromRow);
      }),
  };
}

/** The SELECT of {@link SqliteAlarms.listAlarms}: newest first, `limit` rows at most. */
export function listAlarmsQuery(f: AlarmFilter, wallNow: number): { sql: string; params: SqlValue[] } {
  const where: string[] = [];
  const params: SqlValue[] = [];
  switch (f.state ?? 'all') {
    case 'active':
      where.push('cleared_at IS NULL');
      break;
    case 'unacked':
      where.push('cleared_at IS NULL AND acked_at IS NULL');
      break;
    case 'shelved':
      where.push('cleared_at IS NULL AND shelved_until > ?');
      params.push(wallNow);
      break;
    case 'cleared':
      where.push('cleared_at IS NOT NULL');
      break;
    case 'all':
      break;
  }
  if (f.severity !== undefined) {
    where.push('severity = ?');
    params.push(f.severity);
  }
  if (f.deviceId !== undefined) {
    where.push('device_id = ?');
    params.push(f.deviceId);
  }
  if (f.ruleId !== undefined) {
    where.push('rule_id = ?');
    params.push(f.ruleId);
  }
  if (f.cursor !== undefined) {
    where.push('id < ?');
    params.push(f.cursor);
  }
  params.push(f.limit);
  const sql = `SELECT * FROM alarms ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
  return { sql, params };
}

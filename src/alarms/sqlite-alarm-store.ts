/**
 * The alarms and their rules (migration 7) on the app's SQLite file, through a connection of its
 * own, as the firmware store does: alarm writes are few (a raise, an ack, a clear), and each one
 * is a single statement, so WAL and the busy timeout order them with the app's writer.
 *
 * Every call takes its turn on one queue, so a read sees every write asked for before it.
 *
 * @example
 * const s = await openSqliteAlarmStore({ file });
 * await s.putAlarm({ id: 1, ruleId: 'hot', deviceId: 'd1', severity: 'major', … });
 * (await s.listAlarms({ state: 'active', limit: 50 }, Date.now())).length; // 1
 */
import { resolve } from 'node:path';
import { migrate } from '../store/migrations.js';
import { messageOf } from '../store/records.js';
import type { SqliteConnection, SqlValue } from '../store/sqlite-connection.js';
import { openSqliteConnection } from '../store/sqlite-connection.js';
import { StoreError } from '../store/store.js';
import { type AlarmRule, parseRule } from './rules.js';

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

export interface StoredRule {
  readonly id: string;
  /** The rule, or why its stored JSON does not validate. */
  readonly rule: AlarmRule | undefined;
  readonly error: string | undefined;
  readonly updatedBy: string;
  readonly updatedAt: number;
}

export interface SqliteAlarmStore {
  readonly file: string;
  listRules(): Promise<StoredRule[]>;
  putRule(rule: AlarmRule, actor: string, at: number): Promise<void>;
  /** False when there was no such rule. */
  deleteRule(id: string): Promise<boolean>;
  /** Inserts or replaces the alarm with this id. */
  putAlarm(alarm: AlarmRecord): Promise<void>;
  getAlarm(id: number): Promise<AlarmRecord | undefined>;
  openAlarms(): Promise<AlarmRecord[]>;
  maxAlarmId(): Promise<number>;
  listAlarms(filter: AlarmFilter, wallNow: number): Promise<AlarmRecord[]>;
  close(): Promise<void>;
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

/** Opens the store on the app's database file (migrating it, as every store does). Throws StoreError. */
export async function openSqliteAlarmStore(options: { readonly file: string }): Promise<SqliteAlarmStore> {
  const file = resolve(options.file);
  let conn: SqliteConnection;
  try {
    conn = await openSqliteConnection(file, { readOnly: false });
    await conn.get('PRAGMA journal_mode = WAL');
    await migrate(conn);
  } catch (error) {
    if (error instanceof StoreError) throw error;
    throw new StoreError('openFailed', `alarms: cannot open ${file}: ${messageOf(error)}`, { cause: error });
  }
  const c = conn;
  let closed = false;
  let turn: Promise<unknown> = Promise.resolve();
  const queued = <T>(what: string, body: () => Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(new StoreError('closed', 'the alarm store is closed'));
    const run = turn.then(body).catch((cause: unknown) => {
      throw cause instanceof StoreError
        ? cause
        : new StoreError('writeFailed', `alarms: ${what}: ${messageOf(cause)}`, { cause });
    });
    turn = run.catch(() => {});
    return run;
  };

  return {
    file,
    listRules: () =>
      queued('list rules', async () => {
        const rows = await c.all<{ id: string; body: string; updated_by: string; updated_at: number }>(
          'SELECT * FROM alarm_rules ORDER BY id',
        );
        return rows.map((r) => {
          let parsed: ReturnType<typeof parseRule>;
          try {
            parsed = parseRule(JSON.parse(r.body));
          } catch (error) {
            parsed = { ok: false, error: { code: 'badRule', message: `not JSON: ${messageOf(error)}` } };
          }
          return {
            id: r.id,
            rule: parsed.ok ? parsed.value : undefined,
            error: parsed.ok ? undefined : parsed.error.message,
            updatedBy: r.updated_by,
            updatedAt: r.updated_at,
          };
        });
      }),
    putRule: (rule, actor, at) =>
      queued('save rule', async () => {
        await c.run(
          `INSERT INTO alarm_rules (id, body, updated_by, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
          [rule.id, JSON.stringify(rule), actor, at],
        );
      }),
    deleteRule: (id) =>
      queued(
        'delete rule',
        async () => (await c.run('DELETE FROM alarm_rules WHERE id = ?', [id])).changes > 0,
      ),
    putAlarm: (a) =>
      queued('save alarm', async () => {
        await c.run(
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
        const r = await c.get<AlarmRow>('SELECT * FROM alarms WHERE id = ?', [id]);
        return r && fromRow(r);
      }),
    openAlarms: () =>
      queued('read open alarms', async () =>
        (await c.all<AlarmRow>('SELECT * FROM alarms WHERE cleared_at IS NULL ORDER BY id')).map(fromRow),
      ),
    maxAlarmId: () =>
      queued(
        'read alarm ids',
        async () => (await c.get<{ n: number | null }>('SELECT max(id) AS n FROM alarms'))?.n ?? 0,
      ),
    listAlarms: (f, wallNow) =>
      queued('list alarms', async () => {
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
        return (await c.all<AlarmRow>(sql, params)).map(fromRow);
      }),
    async close() {
      if (closed) return;
      await turn;
      closed = true;
      await c.close();
    },
  };
}

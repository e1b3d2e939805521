/**
 * The alarms and their rules (migration 7) on the app's SQLite file, through a connection of its
 * own, as the firmware store does: alarm writes are few (a raise, an ack, a clear), and each one
 * is a single statement, so WAL and the busy timeout order them with the app's writer.
 *
 * Every call takes its turn on one queue, so a read sees every write asked for before it. The
 * concerns share that queue (sqlite-alarm-context.ts): rules (sqlite-alarm-rules.ts) and alarms
 * (sqlite-alarms.ts).
 *
 * @example
 * const s = await openSqliteAlarmStore({ file });
 * await s.putAlarm({ id: 1, ruleId: 'hot', deviceId: 'd1', severity: 'major', … });
 * (await s.listAlarms({ state: 'active', limit: 50 }, Date.now())).length; // 1
 */
import { resolve } from 'node:path';
import { migrate } from '../store/migrations.js';
import { messageOf } from '../store/records.js';
import type { SqliteConnection } from '../store/sqlite-connection.js';
import { openSqliteConnection } from '../store/sqlite-connection.js';
import { StoreError } from '../store/store.js';
import { createAlarmContext } from './sqlite-alarm-context.js';
import type { SqliteAlarmRules } from './sqlite-alarm-rules.js';
import { createSqliteAlarmRules } from './sqlite-alarm-rules.js';
import type { SqliteAlarms } from './sqlite-alarms.js';
import { createSqliteAlarms } from './sqlite-alarms.js';

export type { StoredRule } from './sqlite-alarm-rules.js';
export type { AlarmFilter, AlarmRecord, AlarmStateFilter } from './sqlite-alarms.js';

export interface SqliteAlarmStore extends SqliteAlarmRules, SqliteAlarms {
  readonly file: string;
  close(): Promise<void>;
}

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
  const context = createAlarmContext(conn);
  return {
    file,
    ...createSqliteAlarmRules(context),
    ...createSqliteAlarms(context),
    close: context.close,
  };
}

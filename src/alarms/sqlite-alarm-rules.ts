/**
 * Alarm rules on SQLite (migration 7, `alarm_rules`): each rule stored as its JSON, read back
 * through the same validation as a new one, so a rule that no longer validates is listed with why.
 *
 * @example
 * const rules = createSqliteAlarmRules(context);
 * await rules.putRule(rule, 'ops', Date.now());
 * for (const r of await rules.listRules()) if (r.error !== undefined) console.log(r.id, r.error);
 */
import { messageOf } from '../store/records.js';
import { type AlarmRule, parseRule } from './rules.js';
import type { AlarmContext } from './sqlite-alarm-context.js';

export interface StoredRule {
  readonly id: string;
  /** The rule, or why its stored JSON does not validate. */
  readonly rule: AlarmRule | undefined;
  readonly error: string | undefined;
  readonly updatedBy: string;
  readonly updatedAt: number;
}

export interface SqliteAlarmRules {
  listRules(): Promise<StoredRule[]>;
  putRule(rule: AlarmRule, actor: string, at: number): Promise<void>;
  /** False when there was no such rule. */
  deleteRule(id: string): Promise<boolean>;
}

interface RuleRow {
  id: string;
  body: string;
  updated_by: string;
  updated_at: number;
}

export function createSqliteAlarmRules({ conn, queued }: AlarmContext): SqliteAlarmRules {
  return {
    listRules: () =>
      queued('list rules', async () => {
        const rows = await conn.all<RuleRow>('SELECT * FROM alarm_rules ORDER BY id');
        return rows.map(storedRule);
      }),
    putRule: (rule, actor, at) =>
      queued('save rule', async () => {
        await conn.run(
          `INSERT INTO alarm_rules (id, body, updated_by, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
          [rule.id, JSON.stringify(rule), actor, at],
        );
      }),
    deleteRule: (id) =>
      queued(
        'delete rule',
        async () => (await conn.run('DELETE FROM alarm_rules WHERE id = ?', [id])).changes > 0,
      ),
  };
}

function storedRule(r: RuleRow): StoredRule {
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
}

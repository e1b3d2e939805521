/**
 * Alarms over the API: `alarms` (filtered, newest first, with the navigation's counts),
 * `alarmAck`, `alarmShelve`, and the rules: `alarmRules`, `alarmRuleSet` (validated by the rule
 * schema; a bad rule is `badRequest` naming the field), `alarmRuleDelete`. The actor is the
 * transport's operator.
 *
 * @example
 * await api.call('alarmRuleSet', { rule: { id: 'hot', type: 'threshold', metric: 'temp', op: 'above', value: 30 } });
 * await api.call('alarms', { state: 'unacked', severity: 'critical' }); // { items, next, counts }
 */
import type { AlarmErrorCode, AlarmResult, RuleView } from '../../alarms/alarm-engine.js';
import type { App } from '../app.js';
import type { AlarmRuleView } from '../contract.js';
import type { Handlers } from './handlers.js';
import { ApiFailure } from './handlers.js';

const DEFAULT_ACTOR = 'api';

const CODES: Record<AlarmErrorCode, string> = {
  badRule: 'badRequest',
  notFound: 'notFound',
  notActive: 'conflict',
};

const unwrap = <T>(r: AlarmResult<T>): T => {
  if (!r.ok) throw new ApiFailure(CODES[r.error.code], r.error.message);
  return r.value;
};

const ruleView = (v: RuleView): AlarmRuleView => ({ ...v, rule: v.rule as AlarmRuleView['rule'] });

export function alarmHandlers(
  app: App,
): Pick<Handlers, 'alarms' | 'alarmAck' | 'alarmShelve' | 'alarmRules' | 'alarmRuleSet' | 'alarmRuleDelete'> {
  const alarms = app.alarms;
  return {
    alarms: async (a) => {
      const items = await alarms.list({
        state: a.state,
        limit: a.limit,
        ...(a.severity !== undefined ? { severity: a.severity } : {}),
        ...(a.deviceId !== undefined ? { deviceId: a.deviceId } : {}),
        ...(a.ruleId !== undefined ? { ruleId: a.ruleId } : {}),
        ...(a.cursor !== undefined ? { cursor: a.cursor } : {}),
      });
      return {
        items,
        next: items.length === a.limit ? (items[items.length - 1]?.id ?? null) : null,
        counts: alarms.counts(),
      };
    },
    alarmAck: async (a, context) => unwrap(await alarms.ack(a.id, context.actor ?? DEFAULT_ACTOR)),
    alarmShelve: async (a, context) =>
      unwrap(await alarms.shelve(a.id, a.forMs, context.actor ?? DEFAULT_ACTOR)),
    alarmRules: async () => alarms.rules().map(ruleView),
    alarmRuleSet: async (a, context) =>
      ruleView(unwrap(await alarms.setRule(a.rule, context.actor ?? DEFAULT_ACTOR))),
    alarmRuleDelete: async (a, context) =>
      unwrap(await alarms.deleteRule(a.id, context.actor ?? DEFAULT_ACTOR)),
  };
}

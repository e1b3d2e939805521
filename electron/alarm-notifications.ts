/**
 * Which alarm changes the desktop shell shows as a notification, and with what text: a raised
 * alarm that is not shelved (acknowledging, shelving and clearing are the operator's own doing or
 * good news, and show in the Alarms view). Kept apart from main.ts so it runs without Electron.
 *
 * @example
 * alarms.listen((a, event) => {
 *   const n = alarmNotification(a, event);
 *   if (n) new Notification(n).show();
 * });
 */
import type { AlarmView } from '../src/host/contract.js';

/** What happened to an alarm (src/alarms/alarm-engine.ts); only `raised` makes a notification. */
export type AlarmEvent = 'raised' | 'acked' | 'shelved' | 'cleared';

export interface AlarmNotice {
  readonly title: string;
  readonly body: string;
}

export function alarmNotification(
  alarm: AlarmView,
  event: AlarmEvent,
  now: number = Date.now(),
): AlarmNotice | undefined {
  if (event !== 'raised') return undefined;
  if (alarm.shelvedUntil !== null && alarm.shelvedUntil > now) return undefined;
  return {
    title: `${alarm.severity} alarm: ${alarm.deviceId}`,
    body: `${alarm.message} (rule ${alarm.ruleId})`,
  };
}

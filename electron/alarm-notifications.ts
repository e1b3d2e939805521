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
import type { AlarmEvent, AlarmRecord } from '../src/host/app.js';

export interface AlarmNotice {
  readonly title: string;
  readonly body: string;
}

export function alarmNotification(
  alarm: AlarmRecord,
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

/**
 * The app's alarms (src/alarms): their store in the SQLite file, the engine over the fleet with
 * the rules of `alarm-rules.json` in the data folder, every change written to the event log.
 *
 * @example
 * const alarms = await startAlarms(setup, { file, fleet, store });
 * alarms.rules(); // the rules in force
 */
import { join } from 'node:path';
import type { AlarmEngine } from '../../alarms/alarm-engine.js';
import { createAlarmEngine } from '../../alarms/alarm-engine.js';
import { openSqliteAlarmStore } from '../../alarms/sqlite-alarm-store.js';
import type { Fleet } from '../../devices/fleet.js';
import type { Store } from '../../store/store.js';
import type { AppSetup } from './setup.js';

/** Alarm rules kept with the configuration (a JSON array of rules, src/alarms/rules.ts). */
export const ALARM_RULES_FILE_NAME = 'alarm-rules.json';

export async function startAlarms(
  setup: AppSetup,
  parts: { readonly file: string; readonly fleet: Fleet; readonly store: Store },
): Promise<AlarmEngine> {
  const { options, runtime, log, stops } = setup;
  const { file, fleet, store } = parts;
  const alarmStore = await openSqliteAlarmStore({ file });
  stops.push(() => alarmStore.close());
  const alarms = createAlarmEngine({
    runtime,
    fleet,
    store: alarmStore,
    configFile: join(options.dataDir, ALARM_RULES_FILE_NAME),
    audit: (kind, deviceId, data) =>
      void store
        .appendEvents([{ at: runtime.clock.wallNow(), deviceId, kind, data }])
        .catch((e: unknown) => log.warn('alarm event not written', { kind, deviceId, error: String(e) })),
  });
  await alarms.start();
  stops.push(() => alarms.stop());
  return alarms;
}

/**
 * The Settings view over the API: `settings` answers the fields, what the data folder's
 * settings.json holds, what this run uses and which saved values a restart would apply;
 * `settingsSave` checks the values as a start would (names, types, then the command line's own
 * parser: a bad port or URL is refused `badSettings` with its message, nothing written), writes the
 * file (0600) and audits `settings.saved` with who saved what.
 *
 * @example
 * await api.call('settingsSave', { values: { adopt: 'manual', 'retention-days': 90 } });
 * // { ok: true, value: { restartNeeded: ['adopt', 'retention-days'], … } }
 */
import type { App } from '../app.js';
import type { SettingsView } from '../contract.js';
import type { AppSettings, SettingValue } from '../settings.js';
import { checkSettings, readSettings, restartNeeded, SETTING_FIELDS, writeSettings } from '../settings.js';
import type { Handlers } from './handlers.js';
import { ApiFailure } from './handlers.js';

function view(s: AppSettings, saved: Readonly<Record<string, SettingValue>>): SettingsView {
  return {
    file: s.file,
    fields: SETTING_FIELDS.map((f) => ({ ...f, choices: f.choices ?? null })),
    saved,
    running: s.running,
    overridden: s.overridden,
    restartNeeded: restartNeeded(saved, s.running, s.overridden),
  };
}

function settingsOf(app: App): AppSettings {
  if (!app.settings)
    throw new ApiFailure(
      'unavailable',
      'this app was started without a settings file (from code, not the command line)',
    );
  return app.settings;
}

export function settingsHandlers(app: App): Pick<Handlers, 'settings' | 'settingsSave'> {
  return {
    settings: async () => {
      const s = settingsOf(app);
      const saved = readSettings(s.file);
      if (!saved.ok) throw new ApiFailure(saved.error.code, saved.error.message);
      return view(s, saved.value);
    },
    settingsSave: async (a, context) => {
      const s = settingsOf(app);
      // Empty text is "not set": the field falls back to its default.
      const values = Object.fromEntries(Object.entries(a.values).filter(([, v]) => v !== '' && v !== false));
      const checked = checkSettings(values);
      if (!checked.ok) throw new ApiFailure(checked.error.code, checked.error.message);
      const problem = s.validate(checked.value);
      if (problem !== undefined) throw new ApiFailure('badSettings', problem);
      try {
        writeSettings(s.file, checked.value);
      } catch (error) {
        throw new ApiFailure('unavailable', `cannot write ${s.file}: ${(error as Error).message}`);
      }
      await app.store.appendEvents(
        [
          {
            at: Date.now(),
            kind: 'settings.saved',
            data: { actor: context.actor ?? 'api', values: checked.value },
          },
        ],
        { durability: 'full' },
      );
      return view(s, checked.value);
    },
  };
}

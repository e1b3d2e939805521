/**
 * Settings saved from the app: the start flags an operator changes most (broker, serial ports,
 * adoption, firmware drift, retention, the UI's port, logging), kept in the data folder's
 * `settings.json` (one JSON object, keys named like the flags, mode 0600) and read at every start
 * before `--config FILE`, the environment and the command line, which win over it. Every one of
 * them takes effect at the next start: the view says which saved values differ from the running
 * ones ("restart to apply"). Secrets never go here (the broker password stays in
 * FLEETVISOR_MQTT_PASSWORD).
 *
 * @example
 * const saved = readSettings(join(dataDir, SETTINGS_FILE)); // { ok: true, value: { adopt: 'manual' } }
 * writeSettings(file, { 'broker-port': 1884, serial: 'auto' });
 * settingsArgs({ 'no-demo': true, serial: 'auto' }); // ['--no-demo', '--serial=auto']
 */
import { existsSync, readFileSync } from 'node:fs';
import { writePrivateFile } from '../lib/private-file.js';
import { err, type Failure, ok, type Result } from '../lib/result.js';

export const SETTINGS_FILE = 'settings.json';

export type SettingValue = string | number | boolean;

export interface SettingField {
  /** The flag's name, without `--`. */
  readonly name: string;
  readonly label: string;
  readonly group: 'Broker' | 'Serial' | 'Devices' | 'Retention' | 'UI and logs';
  readonly kind: 'text' | 'number' | 'boolean' | 'choice';
  readonly choices?: readonly string[];
  readonly help: string;
}

/** What the Settings view offers, in its order. Each takes effect at the next start. */
export const SETTING_FIELDS: readonly SettingField[] = [
  {
    name: 'mqtt-url',
    label: 'External broker URL',
    group: 'Broker',
    kind: 'text',
    help: 'mqtt://, mqtts://, ws:// or wss://; empty: the embedded broker',
  },
  {
    name: 'mqtt-username',
    label: 'External broker user',
    group: 'Broker',
    kind: 'text',
    help: 'its password comes from FLEETVISOR_MQTT_PASSWORD, never from this file',
  },
  {
    name: 'broker-host',
    label: 'Embedded broker listens on',
    group: 'Broker',
    kind: 'text',
    help: '127.0.0.1 (this machine) or 0.0.0.0 (the LAN, with device accounts)',
  },
  {
    name: 'broker-port',
    label: 'Embedded broker port',
    group: 'Broker',
    kind: 'number',
    help: 'default 1883',
  },
  {
    name: 'broker-tls-cert',
    label: 'TLS certificate file',
    group: 'Broker',
    kind: 'text',
    help: 'PEM; with the key, the embedded broker also listens for MQTT over TLS',
  },
  { name: 'broker-tls-key', label: 'TLS key file', group: 'Broker', kind: 'text', help: 'PEM' },
  { name: 'broker-tls-port', label: 'TLS port', group: 'Broker', kind: 'number', help: 'default 8883' },
  {
    name: 'serial',
    label: 'Serial ports',
    group: 'Serial',
    kind: 'text',
    help: 'comma-separated paths (/dev/ttyUSB0,/dev/ttyACM0) or "auto"',
  },
  {
    name: 'adopt',
    label: 'New devices',
    group: 'Devices',
    kind: 'choice',
    choices: ['auto', 'manual'],
    help: 'auto: join the fleet when they say hello; manual: wait in Discovered',
  },
  {
    name: 'firmware-drift',
    label: 'Firmware drift',
    group: 'Devices',
    kind: 'choice',
    choices: ['show', 'update'],
    help: 'a device whose spec asks for another version: report it, or have the reconciler update it',
  },
  {
    name: 'no-demo',
    label: 'No demo fleet',
    group: 'Devices',
    kind: 'boolean',
    help: 'no simulated devices',
  },
  {
    name: 'retention-days',
    label: 'Keep history (days)',
    group: 'Retention',
    kind: 'number',
    help: 'events, finished commands and telemetry; empty: keep everything',
  },
  {
    name: 'telemetry-retention-days',
    label: 'Keep telemetry (days)',
    group: 'Retention',
    kind: 'number',
    help: 'telemetry alone, usually shorter',
  },
  {
    name: 'port',
    label: 'UI port',
    group: 'UI and logs',
    kind: 'number',
    help: 'headless server; empty: the last one if free',
  },
  {
    name: 'log-level',
    label: 'Log level',
    group: 'UI and logs',
    kind: 'choice',
    choices: ['debug', 'info', 'warn', 'error'],
    help: 'default info',
  },
];

const KNOWN = new Map(SETTING_FIELDS.map((f) => [f.name, f]));

/** Checks names and value types (not the values themselves: the command line's parser does). */
export function checkSettings(json: unknown): Result<Record<string, SettingValue>, Failure<'badSettings'>> {
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    return err('badSettings', 'settings are one JSON object of options');
  const out: Record<string, SettingValue> = {};
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    const field = KNOWN.get(name);
    if (!field) return err('badSettings', `'${name.slice(0, 64)}' is not a setting (see the Settings view)`);
    const type = field.kind === 'boolean' ? 'boolean' : field.kind === 'number' ? 'number' : 'string';
    if (typeof value !== type) return err('badSettings', `${name}: a ${type}`);
    if (typeof value === 'string' && value.length > 1000) return err('badSettings', `${name}: too long`);
    out[name] = value as SettingValue;
  }
  return ok(out);
}

/** The file's settings; none when there is no file; a broken file is a failure naming it. */
export function readSettings(file: string): Result<Record<string, SettingValue>, Failure<'badSettings'>> {
  if (!existsSync(file)) return ok({});
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    return err('badSettings', `${file}: ${(error as Error).message}`);
  }
  const checked = checkSettings(json);
  return checked.ok ? checked : err('badSettings', `${file}: ${checked.error.message}`);
}

/** As flags, to go before `--config`'s, the environment's and the command line's own. */
export function settingsArgs(values: Readonly<Record<string, SettingValue>>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(values)) {
    if (value === true) out.push(`--${name}`);
    else if (value !== false) out.push(`--${name}=${value}`);
  }
  return out;
}

/** Writes the file whole (a temporary file renamed over it), readable by the user alone. */
export function writeSettings(file: string, values: Readonly<Record<string, SettingValue>>): void {
  writePrivateFile(file, `${JSON.stringify(values, null, 2)}\n`);
}

/**
 * Saved values that differ from the running ones: what a restart would change. A setting the
 * command line (or `--config`, or the environment) gives is left out: it wins at the next start too.
 */
export function restartNeeded(
  saved: Readonly<Record<string, SettingValue>>,
  running: Readonly<Record<string, SettingValue>>,
  overridden: readonly string[] = [],
): string[] {
  const names = new Set([...Object.keys(saved), ...Object.keys(running)].filter((n) => KNOWN.has(n)));
  return [...names]
    .filter((n) => !overridden.includes(n) && String(saved[n] ?? '') !== String(running[n] ?? ''))
    .sort();
}

/** The settings as the app knows them (from `parseCommandLine`), for the API's Settings view. */
export interface AppSettings {
  readonly file: string;
  /** What the file held at start. */
  readonly saved: Readonly<Record<string, SettingValue>>;
  /** The values this run uses, from every source. */
  readonly running: Readonly<Record<string, SettingValue>>;
  /** Settings given by `--config`, the environment or the command line: they win over the file. */
  readonly overridden: readonly string[];
  /** Checks values as a start would (the command line's parser); a message when they are wrong. */
  readonly validate: (values: Readonly<Record<string, SettingValue>>) => string | undefined;
}

/**
 * The flags of `fleetvisor` (src/host/main.ts, `npm start`) read group by group: where they come
 * from (settings.json, `--config`, the environment, the command line), then one helper per group
 * (logging, demo and adoption, retention, broker, serial, store and cluster, UI server), each
 * validating its flags and throwing a {@link UsageError} that names the flag.
 *
 * @example
 * const { values } = readFlags(['--no-demo', '--serial', 'auto'], process.env);
 * serialPortsOf(values); // 'auto'
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { currentDataDirInput, resolveDataDir } from '../store/data-dir.js';
import { isPostgresUrl } from '../store/postgres-store.js';
import type { MqttSettings } from '../transports/links.js';
import type { AppOptions } from './app.js';
import type { LogLevel } from './console-logger.js';
import { DECLARED_KEYS } from './declared-devices.js';
import type { SettingValue } from './settings.js';
import { readSettings, SETTING_FIELDS, SETTINGS_FILE, settingsArgs } from './settings.js';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The flags as parsed (every value a string or a boolean, as on the command line). */
export type Flags = ReturnType<typeof parseFlags>['values'];

/** The flags with where they came from, and the data folder's saved settings. */
export interface ReadFlags {
  readonly values: Flags;
  readonly settingsDir: string;
  readonly settingsFile: string;
  readonly saved: Record<string, SettingValue>;
  /** The saved settings that a flag from elsewhere overrides. */
  readonly overridden: string[];
}

/**
 * The flags from every source, later ones winning: the data folder's settings.json (saved from
 * the Settings view), `--config`, the environment, then the command line. `undefined` for --help.
 */
export function readFlags(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ReadFlags | undefined {
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags([...configArgs(argv), ...envArgs(env), ...argv]);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError((error as Error).message);
  }
  if (parsed.values.help) return undefined;
  // settings.json lives in the data folder, which the flags above may name: read it second.
  const settingsDir = resolveDataDir({ ...currentDataDirInput(), env, explicit: parsed.values['data-dir'] });
  const settingsFile = join(settingsDir, SETTINGS_FILE);
  const saved = readSettings(settingsFile);
  if (!saved.ok) throw new UsageError(`${saved.error.message} (fix or delete it)`);
  const overridden = Object.keys(parsed.values).filter((name) => SETTING_FIELDS.some((f) => f.name === name));
  if (Object.keys(saved.value).length > 0) {
    try {
      parsed = parseFlags([...settingsArgs(saved.value), ...configArgs(argv), ...envArgs(env), ...argv]);
    } catch (error) {
      throw new UsageError(`${settingsFile}: ${(error as Error).message}`);
    }
  }
  return { values: parsed.values, settingsDir, settingsFile, saved: saved.value, overridden };
}

/** The settings this run uses, by name (what the Settings view shows as running). */
export function runningSettings(v: Flags): Record<string, SettingValue> {
  const running: Record<string, SettingValue> = {};
  for (const f of SETTING_FIELDS) {
    const value = (v as Record<string, string | boolean | undefined>)[f.name];
    if (value !== undefined && value !== false) running[f.name] = value;
  }
  return running;
}

/** --log-level. */
export function logLevelOf(v: Flags): LogLevel {
  const level = (v['log-level'] ?? 'info') as LogLevel;
  if (!['debug', 'info', 'warn', 'error'].includes(level))
    throw new UsageError(`--log-level must be debug, info, warn or error, not '${level}'`);
  return level;
}

/** How the fleet grows: --adopt, --firmware-drift, --no-demo and --demo-devices. */
export function fleetFlagsOf(v: Flags): {
  adopt: AppOptions['adopt'];
  firmwareDrift: AppOptions['firmwareDrift'];
  demo: AppOptions['demo'];
} {
  const adopt = v.adopt;
  if (adopt !== undefined && adopt !== 'auto' && adopt !== 'manual')
    throw new UsageError(`--adopt must be auto or manual, not '${adopt}'`);
  const firmwareDrift = v['firmware-drift'];
  if (firmwareDrift !== undefined && firmwareDrift !== 'show' && firmwareDrift !== 'update')
    throw new UsageError(`--firmware-drift must be show or update, not '${firmwareDrift}'`);
  const demoDevices = v['demo-devices'] === undefined ? undefined : Number(v['demo-devices']);
  if (
    demoDevices !== undefined &&
    !(Number.isInteger(demoDevices) && demoDevices >= 0 && demoDevices <= 10_000)
  )
    throw new UsageError(`--demo-devices must be a number 0…10000, not '${v['demo-devices']}'`);
  const demo = v['no-demo'] ? false : demoDevices !== undefined ? { mqtt: demoDevices } : undefined;
  return { adopt, firmwareDrift, demo };
}

/** --retention-days and --telemetry-retention-days (which defaults to the former). */
export function retentionOf(v: Flags): AppOptions['retention'] {
  const days = (name: 'retention-days' | 'telemetry-retention-days') => {
    const text = v[name];
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!(Number.isFinite(n) && n > 0 && n <= 36_500))
      throw new UsageError(`--${name} must be a number of days over 0 (at most 36500), not '${text}'`);
    return n;
  };
  const retentionDays = days('retention-days');
  const telemetryDays = days('telemetry-retention-days') ?? retentionDays;
  if (retentionDays === undefined && telemetryDays === undefined) return undefined;
  return {
    ...(telemetryDays !== undefined ? { telemetry: telemetryDays } : {}),
    ...(retentionDays !== undefined ? { events: retentionDays, commands: retentionDays } : {}),
  };
}

/** An external broker (--mqtt-*, password from FLEETVISOR_MQTT_PASSWORD) or the embedded one's (--broker-*). */
export function brokerOf(
  v: Flags,
  env: Readonly<Record<string, string | undefined>>,
): { mqtt: MqttSettings | undefined; broker: NonNullable<AppOptions['broker']> } {
  const port = v['broker-port'] === undefined ? undefined : Number(v['broker-port']);
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535))
    throw new UsageError(`--broker-port must be a port number, not '${v['broker-port']}'`);
  const mqtt = externalBrokerOf(v, env);
  const tlsCert = v['broker-tls-cert'];
  const tlsKey = v['broker-tls-key'];
  if ((tlsCert === undefined) !== (tlsKey === undefined))
    throw new UsageError('--broker-tls-cert and --broker-tls-key go together');
  const tlsPort = v['broker-tls-port'] === undefined ? undefined : Number(v['broker-tls-port']);
  if (tlsPort !== undefined && !(Number.isInteger(tlsPort) && tlsPort >= 0 && tlsPort <= 65535))
    throw new UsageError(`--broker-tls-port must be a port number, not '${v['broker-tls-port']}'`);
  if (tlsCert !== undefined && mqtt !== undefined)
    throw new UsageError('--broker-tls-cert is for the embedded broker; it cannot go with --mqtt-url');
  const host = v['broker-host'];
  return {
    mqtt,
    broker: {
      ...(host !== undefined ? { host } : {}),
      ...(port !== undefined ? { port } : {}),
      ...(tlsCert !== undefined && tlsKey !== undefined
        ? {
            tls: {
              certFile: tlsCert,
              keyFile: tlsKey,
              ...(host !== undefined ? { host } : {}),
              ...(tlsPort !== undefined ? { port: tlsPort } : {}),
            },
          }
        : {}),
    },
  };
}

function externalBrokerOf(
  v: Flags,
  env: Readonly<Record<string, string | undefined>>,
): MqttSettings | undefined {
  if (v['mqtt-url'] === undefined) {
    if (v['mqtt-username'] || v['mqtt-ca'] || v['mqtt-cert'] || v['mqtt-key'])
      throw new UsageError(
        '--mqtt-username and the TLS files need --mqtt-url (the embedded broker keeps its own accounts: fleetvisor broker --help)',
      );
    return undefined;
  }
  const url = v['mqtt-url'];
  if (!/^(mqtts?|wss?):\/\/[^\s]+$/.test(url))
    throw new UsageError(`--mqtt-url must start with mqtt://, mqtts://, ws:// or wss://, not '${url}'`);
  const file = (name: 'mqtt-ca' | 'mqtt-cert' | 'mqtt-key') => {
    const path = v[name];
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (error) {
      throw new UsageError(`--${name} ${path}: ${(error as Error).message}`);
    }
  };
  const ca = file('mqtt-ca');
  const cert = file('mqtt-cert');
  const key = file('mqtt-key');
  if ((cert === undefined) !== (key === undefined))
    throw new UsageError('--mqtt-cert and --mqtt-key go together');
  // An empty FLEETVISOR_MQTT_PASSWORD is no password. A password without a user name cannot be
  // sent (MQTT sends a password only with a user name): mqtt.js then closes each connection
  // without a word, and the app said only "could not connect", forever.
  const password = env.FLEETVISOR_MQTT_PASSWORD === '' ? undefined : env.FLEETVISOR_MQTT_PASSWORD;
  if (password !== undefined && v['mqtt-username'] === undefined)
    throw new UsageError(
      'FLEETVISOR_MQTT_PASSWORD is set but --mqtt-username is not: MQTT sends a password only with a user name',
    );
  return {
    url,
    ...(v['mqtt-username'] !== undefined ? { username: v['mqtt-username'] } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
  };
}

/** --serial: a comma-separated list of paths, or "auto". */
export function serialPortsOf(v: Flags): AppOptions['serialPorts'] {
  const serial = v.serial;
  const serialPorts =
    serial === undefined
      ? undefined
      : serial === 'auto'
        ? ('auto' as const)
        : serial
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s.length > 0);
  if (Array.isArray(serialPorts) && serialPorts.length === 0)
    throw new UsageError('--serial needs ports or "auto"');
  return serialPorts;
}

/** --store, --cluster, --instance and --sparkplug-host-id, as the options they set (none for SQLite alone). */
export function storeOptionsOf(v: Flags): Pick<AppOptions, 'storeUrl' | 'cluster'> {
  const storeUrl = v.store;
  if (storeUrl !== undefined && !isPostgresUrl(storeUrl))
    throw new UsageError(
      `--store must be a postgres:// or postgresql:// URL, not '${storeUrl}' (without --store: SQLite in the data folder)`,
    );
  if (v.cluster && storeUrl === undefined)
    throw new UsageError('--cluster needs --store postgres://… (the instances share the fleet through it)');
  if (v.cluster && v['mqtt-url'] === undefined)
    throw new UsageError(
      "--cluster needs --mqtt-url: the instances and the devices share one broker (an embedded broker is one instance's own; docs/scale-out.md)",
    );
  if (v.instance !== undefined && !v.cluster) throw new UsageError('--instance goes with --cluster');
  if (v.instance !== undefined && !/^[A-Za-z0-9._:-]{1,64}$/.test(v.instance))
    throw new UsageError(
      `--instance must be 1–64 letters, digits, '.', '_', ':' or '-', not '${v.instance}'`,
    );
  const hostId = v['sparkplug-host-id'];
  if (hostId !== undefined && !v.cluster)
    throw new UsageError(
      '--sparkplug-host-id goes with --cluster (a single instance is its own Primary Host, named after its data folder)',
    );
  if (hostId !== undefined && !/^[A-Za-z0-9._:-]{1,64}$/.test(hostId))
    throw new UsageError(
      `--sparkplug-host-id must be 1–64 letters, digits, '.', '_', ':' or '-' (it is a topic level of spBv1.0/STATE/…), not '${hostId}'`,
    );
  const cluster = {
    ...(v.instance !== undefined ? { instanceId: v.instance } : {}),
    ...(hostId !== undefined ? { sparkplugHostId: hostId } : {}),
  };
  return {
    ...(storeUrl !== undefined ? { storeUrl } : {}),
    ...(v.cluster ? { cluster } : {}),
  };
}

/** --port and --host of the UI server (port 0: the last start's port when free, else any). */
export function uiServerOf(v: Flags): { port: number; host: string | undefined } {
  const serverPort = v.port === undefined ? 0 : Number(v.port);
  if (!(Number.isInteger(serverPort) && serverPort >= 0 && serverPort <= 65535))
    throw new UsageError(`--port must be a port number, not '${v.port}'`);
  return { port: serverPort, host: v.host };
}

/** The options of a `--config FILE` as flags, to go before the command line's own. */
function configArgs(argv: readonly string[]): string[] {
  const i = argv.findIndex((a) => a === '--config' || a.startsWith('--config='));
  if (i < 0) return [];
  const file = argv[i]!.includes('=') ? argv[i]!.slice('--config='.length) : argv[i + 1];
  if (!file) throw new UsageError('--config needs a file');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UsageError(`--config ${file}: ${(error as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new UsageError(`--config ${file}: must hold one JSON object of options`);
  const out: string[] = [];
  for (const [key, value] of Object.entries(json)) {
    if (key === 'config' || key === 'help')
      throw new UsageError(`--config ${file}: '${key}' cannot be set in a file`);
    if ((DECLARED_KEYS as readonly string[]).includes(key)) continue; // the declared fleet: declared-devices.ts
    if (value === true) out.push(`--${key}`);
    else if (typeof value === 'string' || typeof value === 'number') out.push(`--${key}=${value}`);
    else if (value !== false)
      throw new UsageError(`--config ${file}: '${key}' must be a string, number or boolean`);
  }
  return out;
}

function envArgs(env: Readonly<Record<string, string | undefined>>): string[] {
  const out: string[] = [];
  if (env.FLEETVISOR_MQTT_URL) out.push(`--mqtt-url=${env.FLEETVISOR_MQTT_URL}`);
  if (env.FLEETVISOR_PORT) out.push(`--port=${env.FLEETVISOR_PORT}`);
  return out;
}

function parseFlags(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      'data-dir': { type: 'string' },
      store: { type: 'string' },
      cluster: { type: 'boolean' },
      instance: { type: 'string' },
      'sparkplug-host-id': { type: 'string' },
      'no-demo': { type: 'boolean' },
      'demo-devices': { type: 'string' },
      'mqtt-url': { type: 'string' },
      'mqtt-username': { type: 'string' },
      'mqtt-ca': { type: 'string' },
      'mqtt-cert': { type: 'string' },
      'mqtt-key': { type: 'string' },
      'broker-host': { type: 'string' },
      'broker-port': { type: 'string' },
      'broker-tls-cert': { type: 'string' },
      'broker-tls-key': { type: 'string' },
      'broker-tls-port': { type: 'string' },
      serial: { type: 'string' },
      adopt: { type: 'string' },
      'firmware-drift': { type: 'string' },
      'retention-days': { type: 'string' },
      'telemetry-retention-days': { type: 'string' },
      'log-level': { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      config: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

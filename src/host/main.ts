/**
 * `fleetvisor` on the command line (what `npm start` runs when there is no Electron binary):
 * starts the app headless and logs the fleet's life until Ctrl-C.
 *
 * @example
 * // npm start -- --no-demo --mqtt-url mqtts://broker.lan:8883 --mqtt-ca ca.pem --serial auto
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Convention } from '../conventions/convention.js';
import { homieConvention } from '../conventions/homie/homie-bridge.js';
import { modbusConvention } from '../conventions/modbus/modbus-bridge.js';
import { sparkplugConvention } from '../conventions/sparkplug/sparkplug-bridge.js';
import { currentDataDirInput, resolveDataDir } from '../store/data-dir.js';
import { isPostgresUrl } from '../store/postgres-store.js';
import type { MqttSettings } from '../transports/links.js';
import { createHostApi } from './api.js';
import type { AppOptions } from './app.js';
import { startApp } from './app.js';
import type { LogLevel } from './console-logger.js';
import { createConsoleLogger } from './console-logger.js';
import type { DataFolder } from './data-folder.js';
import { DataFolderLockedError, instanceNames, openDataFolder } from './data-folder.js';
import { DECLARED_KEYS, declaredDevicesOption } from './declared-devices.js';
import type { SettingValue } from './settings.js';
import { readSettings, SETTING_FIELDS, SETTINGS_FILE, settingsArgs } from './settings.js';
import { startUiServer } from './ui-session.js';
import { createUrlReminder } from './url-reminder.js';

export const USAGE = `Usage: npm start -- [options]

With no options: the embedded MQTT broker and a small simulated demo fleet (its own database).

  --data-dir DIR          where the database lives (default: the OS per-user data folder;
                          or FLEETVISOR_DATA_DIR)
  --store URL             keep the fleet in PostgreSQL (postgres://user@host:5432/database;
                          the password from PGPASSWORD or ~/.pgpass) instead of SQLite in the
                          data folder (README: "Running on PostgreSQL")
  --cluster               with --store: share the fleet with the other instances on that
                          database and broker; each supervises the devices of the shards it
                          leases (docs/scale-out.md)
  --instance NAME         this instance's name in the cluster (default: host-pid-random)
  --no-demo               no simulated devices
  --demo-devices N        simulated MQTT devices in the demo (default 6)
  --mqtt-url URL          use this broker instead of the embedded one (mqtt://, mqtts://, ws://, wss://)
  --mqtt-username NAME    broker user; the password comes from FLEETVISOR_MQTT_PASSWORD
  --mqtt-ca FILE          TLS: CA certificate (PEM) to trust
  --mqtt-cert FILE        TLS: client certificate (PEM)
  --mqtt-key FILE         TLS: client key (PEM)
  --broker-host HOST      where the embedded broker listens (default 127.0.0.1; 0.0.0.0 for the LAN)
  --broker-port PORT      embedded broker port (default 1883; a free one if taken)
                          (the embedded broker asks every client for credentials: see
                          \`fleetvisor broker --help\` and the README's "Connecting devices")
  --broker-tls-cert FILE  embedded broker: also listen for MQTT over TLS (for the LAN) with this
  --broker-tls-key FILE   certificate and key (PEM)
  --broker-tls-port PORT  the TLS listener's port (default 8883), on --broker-host or 0.0.0.0
  --serial PORTS          serial ports to open: a comma-separated list of paths, or "auto"
  --adopt auto|manual     unknown devices that say hello join the fleet, or wait for an operator
                          (default: auto in the demo, manual otherwise)
  --retention-days N      delete events, finished commands and telemetry older than N days
                          (hourly; default: keep everything)
  --telemetry-retention-days N
                          telemetry kept this many days instead (it is most of the database)
  --firmware-drift show|update
                          a device whose spec asks for another firmware version: report it
                          (default), or have the reconciler start the update (one stored image
                          of that version for the kind; never again after it failed)
  --port PORT             where the UI and its API are served (default: the last start's port
                          when it is free, so an open tab reconnects; else a free one)
  --host HOST             bind the UI server elsewhere than loopback (warned: anyone who can
                          reach it and has the URL's token can operate the fleet)
  --config FILE           a JSON file with any of these options by name, e.g.
                          {"mqtt-url": "mqtts://broker.lan", "serial": "auto", "no-demo": true};
                          flags given on the command line win
  --log-level LEVEL       debug, info, warn or error (default info)
  --help                  this text

Environment: FLEETVISOR_DATA_DIR, FLEETVISOR_MQTT_URL, FLEETVISOR_MQTT_PASSWORD, FLEETVISOR_PORT.
`;

/** The built renderer (`npm run build:renderer`). */
export const RENDERER_DIST = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'renderer', 'dist');

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parses the command line into app options (pure but for reading certificate files). */
export function parseCommandLine(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
):
  | { help: true }
  | {
      help: false;
      logLevel: LogLevel;
      server: { port: number; host: string | undefined };
      options: Omit<AppOptions, 'logger'>;
    } {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse([...configArgs(argv), ...envArgs(env), ...argv]);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError((error as Error).message);
  }
  if (parsed.values.help) return { help: true };
  // The data folder's settings.json (saved from the Settings view) goes first: --config, the
  // environment and the command line win over it.
  const settingsDir = resolveDataDir({ ...currentDataDirInput(), env, explicit: parsed.values['data-dir'] });
  const settingsFile = join(settingsDir, SETTINGS_FILE);
  const saved = readSettings(settingsFile);
  if (!saved.ok) throw new UsageError(`${saved.error.message} (fix or delete it)`);
  const overridden = Object.keys(parsed.values).filter((name) => SETTING_FIELDS.some((f) => f.name === name));
  if (Object.keys(saved.value).length > 0) {
    try {
      parsed = parse([...settingsArgs(saved.value), ...configArgs(argv), ...envArgs(env), ...argv]);
    } catch (error) {
      throw new UsageError(`${settingsFile}: ${(error as Error).message}`);
    }
  }
  const v = parsed.values;
  const level = (v['log-level'] ?? 'info') as LogLevel;
  if (!['debug', 'info', 'warn', 'error'].includes(level))
    throw new UsageError(`--log-level must be debug, info, warn or error, not '${level}'`);
  const adopt = v.adopt;
  if (adopt !== undefined && adopt !== 'auto' && adopt !== 'manual')
    throw new UsageError(`--adopt must be auto or manual, not '${adopt}'`);
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
  const firmwareDrift = v['firmware-drift'];
  if (firmwareDrift !== undefined && firmwareDrift !== 'show' && firmwareDrift !== 'update')
    throw new UsageError(`--firmware-drift must be show or update, not '${firmwareDrift}'`);
  const port = v['broker-port'] === undefined ? undefined : Number(v['broker-port']);
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535))
    throw new UsageError(`--broker-port must be a port number, not '${v['broker-port']}'`);
  const demoDevices = v['demo-devices'] === undefined ? undefined : Number(v['demo-devices']);
  if (
    demoDevices !== undefined &&
    !(Number.isInteger(demoDevices) && demoDevices >= 0 && demoDevices <= 10_000)
  )
    throw new UsageError(`--demo-devices must be a number 0…10000, not '${v['demo-devices']}'`);

  let mqtt: MqttSettings | undefined;
  if (v['mqtt-url'] !== undefined) {
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
    mqtt = {
      url,
      ...(v['mqtt-username'] !== undefined ? { username: v['mqtt-username'] } : {}),
      ...(env.FLEETVISOR_MQTT_PASSWORD !== undefined ? { password: env.FLEETVISOR_MQTT_PASSWORD } : {}),
      ...(ca ? { ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
    };
  } else if (v['mqtt-username'] || v['mqtt-ca'] || v['mqtt-cert'] || v['mqtt-key'])
    throw new UsageError(
      '--mqtt-username and the TLS files need --mqtt-url (the embedded broker keeps its own accounts: fleetvisor broker --help)',
    );
  const tlsCert = v['broker-tls-cert'];
  const tlsKey = v['broker-tls-key'];
  if ((tlsCert === undefined) !== (tlsKey === undefined))
    throw new UsageError('--broker-tls-cert and --broker-tls-key go together');
  const tlsPort = v['broker-tls-port'] === undefined ? undefined : Number(v['broker-tls-port']);
  if (tlsPort !== undefined && !(Number.isInteger(tlsPort) && tlsPort >= 0 && tlsPort <= 65535))
    throw new UsageError(`--broker-tls-port must be a port number, not '${v['broker-tls-port']}'`);
  if (tlsCert !== undefined && mqtt !== undefined)
    throw new UsageError('--broker-tls-cert is for the embedded broker; it cannot go with --mqtt-url');

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

  const serverPort = v.port === undefined ? 0 : Number(v.port);
  if (!(Number.isInteger(serverPort) && serverPort >= 0 && serverPort <= 65535))
    throw new UsageError(`--port must be a port number, not '${v.port}'`);

  const dataDir = resolveDataDir({ ...currentDataDirInput(), env, explicit: v['data-dir'] });
  const demo = v['no-demo'] ? false : demoDevices !== undefined ? { mqtt: demoDevices } : undefined;
  const running: Record<string, SettingValue> = {};
  for (const f of SETTING_FIELDS) {
    const value = (v as Record<string, string | boolean | undefined>)[f.name];
    if (value !== undefined && value !== false) running[f.name] = value;
  }
  return {
    help: false,
    logLevel: level,
    server: { port: serverPort, host: v.host },
    options: {
      dataDir,
      settings: {
        file: settingsFile,
        saved: saved.value,
        running,
        overridden,
        validate: (values) => {
          try {
            parseCommandLine([...settingsArgs(values), '--data-dir', settingsDir], {});
            return undefined;
          } catch (error) {
            return (error as Error).message;
          }
        },
      },
      ...(mqtt ? { mqtt } : {}),
      ...(storeUrl !== undefined ? { storeUrl } : {}),
      ...(v.cluster ? { cluster: v.instance !== undefined ? { instanceId: v.instance } : {} } : {}),
      ...(serialPorts ? { serialPorts } : {}),
      ...(demo !== undefined ? { demo } : {}),
      ...(adopt ? { adopt } : {}),
      ...(firmwareDrift ? { firmwareDrift } : {}),
      ...declaredDevicesOption(argv, (message) => new UsageError(message)),
      ...(retentionDays !== undefined || telemetryDays !== undefined
        ? {
            retention: {
              ...(telemetryDays !== undefined ? { telemetry: telemetryDays } : {}),
              ...(retentionDays !== undefined ? { events: retentionDays, commands: retentionDays } : {}),
            },
          }
        : {}),
      broker: {
        ...(v['broker-host'] !== undefined ? { host: v['broker-host'] } : {}),
        ...(port !== undefined ? { port } : {}),
        ...(tlsCert !== undefined && tlsKey !== undefined
          ? {
              tls: {
                certFile: tlsCert,
                keyFile: tlsKey,
                ...(v['broker-host'] !== undefined ? { host: v['broker-host'] } : {}),
                ...(tlsPort !== undefined ? { port: tlsPort } : {}),
              },
            }
          : {}),
      },
    },
  };
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

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      'data-dir': { type: 'string' },
      store: { type: 'string' },
      cluster: { type: 'boolean' },
      instance: { type: 'string' },
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

export async function main(argv: readonly string[]): Promise<number> {
  let cli: ReturnType<typeof parseCommandLine>;
  try {
    cli = parseCommandLine(argv, process.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`fleetvisor: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (cli.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  // The terminal may go before the app does (`pkill -f` of an `npm start` tree, a closed SSH
  // session): writing to the broken pipe then emits EPIPE, which would end the app in the middle of
  // its clean stop and leave the data folder's lock behind. Lines that cannot be shown are dropped.
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
    });
  // A busy log scrolls the UI's URL out of sight: it is printed again after 40 lines (at most every 30 s).
  const reminder = createUrlReminder({ write: (text) => process.stdout.write(text), now: () => Date.now() });
  const logger = createConsoleLogger({
    level: cli.logLevel,
    write: (line, level) => {
      (level === 'warn' || level === 'error' ? process.stderr : process.stdout).write(`${line}\n`);
      reminder.lineLogged();
    },
  });
  // One app per data folder: a second start fails here, before it touches the database or the broker.
  let folder: DataFolder;
  try {
    folder = openDataFolder(cli.options.dataDir, { logger });
  } catch (error) {
    if (!(error instanceof DataFolderLockedError)) throw error;
    process.stderr.write(`fleetvisor: ${error.message}\n`);
    return 1;
  }
  const names = instanceNames(folder.instanceId);
  let app: Awaited<ReturnType<typeof startApp>>;
  try {
    app = await startApp({
      ...cli.options,
      ...(cli.options.mqtt ? { mqtt: { clientId: names.mqttClientId, ...cli.options.mqtt } } : {}),
      conventions: instanceConventions(names),
      logger,
    });
  } catch (error) {
    folder.release();
    throw error;
  }
  const api = createHostApi(app);
  // The last start's port and token when the port is free, so an open tab reconnects.
  const server = await startUiServer(
    {
      api,
      ...(app.exports !== undefined ? { exports: app.exports } : {}),
      ...(cli.server.host !== undefined ? { host: cli.server.host } : {}),
      staticDir: RENDERER_DIST,
      logger,
    },
    { dataDir: cli.options.dataDir, port: cli.server.port },
  );
  logger.info('fleetvisor is running headless; Ctrl-C stops it', { broker: app.brokerUrl, demo: app.demo });
  folder.setUrl(server.url); // its origin only: the token stays out of the lock file
  // The other instances' cluster view links here (the origin: each UI asks for its own token).
  app.cluster?.keeper.setApiUrl(new URL(server.url).origin);
  // The URL carries this run's token: it goes to the terminal, never into a log.
  reminder.print(server.url);
  // Ctrl-C, or the app stopping on its own (its root supervisor shut down): exit 1 then, so a
  // service manager restarts it.
  const onItsOwn = await new Promise<boolean>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      // The same signal often comes twice (a terminal's Ctrl-C reaches the whole process group and
      // the launcher forwards it too; `pkill -f` hits the launcher and the app): with the default
      // action back in place the second would kill the app in the middle of its clean stop and
      // leave the data folder's lock. Later ones are ignored; `kill -9` still ends it at once.
      if (stopping) {
        logger.info('already stopping', { signal });
        return;
      }
      stopping = true;
      logger.info('stopping', { signal });
      resolve(false);
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    // Started by the launcher (scripts/start.mjs) with an IPC channel: when the launcher is gone,
    // even killed with -9, the channel closes and the app stops too, instead of running on orphaned
    // with the data folder's lock.
    if (process.channel) {
      process.channel.unref();
      process.once('disconnect', () => stop('launcher gone'));
    }
    void app.whenStopped().then(() => resolve(true));
  });
  await server.close();
  api.close();
  await app.stop();
  folder.release();
  if (onItsOwn) {
    logger.error('fleetvisor stopped on its own (see the errors above)');
    return 1;
  }
  logger.info('stopped cleanly');
  return 0;
}

/**
 * The conventions with this instance's broker names, so two instances on one broker never share
 * a client id or a Sparkplug host id (they would knock each other off and answer for each other).
 */
export function instanceConventions(names: ReturnType<typeof instanceNames>): Convention[] {
  return [
    homieConvention({ clientId: names.homieClientId }),
    sparkplugConvention({ hostId: names.sparkplugHostId, clientId: names.sparkplugClientId }),
    modbusConvention(),
  ];
}

// Run when executed directly (`node --import tsx src/host/main.ts`), not when imported by tests
// or bundled into the Electron main process (which builds the app itself).
if (
  !process.versions.electron &&
  process.argv[1] &&
  import.meta.url === new URL(`file://${process.argv[1]}`).href
) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`fleetvisor: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}

/**
 * `fleetvisor` on the command line (what `npm start` runs when there is no Electron binary):
 * starts the app headless and logs the fleet's life until Ctrl-C.
 *
 * @example
 * // npm start -- --no-demo --mqtt-url mqtts://broker.lan:8883 --mqtt-ca ca.pem --serial auto
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { currentDataDirInput, resolveDataDir } from '../store/data-dir.js';
import { createHostApi } from './api.js';
import { DemoUnavailableError } from './app/demo-accounts.js';
import type { App, AppOptions } from './app.js';
import {
  brokerOf,
  fleetFlagsOf,
  logLevelOf,
  readFlags,
  retentionOf,
  runningSettings,
  serialPortsOf,
  storeOptionsOf,
  UsageError,
  uiServerOf,
} from './command-line.js';
import type { LogLevel } from './console-logger.js';
import { createConsoleLogger } from './console-logger.js';
import type { DataFolder } from './data-folder.js';
import { DataFolderLockedError } from './data-folder.js';
import { declaredDevicesOption } from './declared-devices.js';
import { startInstance } from './instance.js';
import { settingsArgs } from './settings.js';
import { startUiServer } from './ui-session.js';
import { createUrlReminder } from './url-reminder.js';

export { UsageError } from './command-line.js';
export { instanceConventions } from './instance.js';

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
  --sparkplug-host-id ID  with --cluster: the one Sparkplug Primary Host id edge nodes wait for,
                          run by the cluster's leader (default: fleetvisor)
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
                          (default: auto in the demo on the embedded broker, manual otherwise)
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
  const flags = readFlags(argv, env);
  if (flags === undefined) return { help: true };
  const v = flags.values;
  // Each group throws on its first bad flag: of two bad flags in different groups, the earlier
  // group's is the one reported.
  const logLevel = logLevelOf(v);
  const { adopt, firmwareDrift, demo } = fleetFlagsOf(v);
  const retention = retentionOf(v);
  const { mqtt, broker } = brokerOf(v, env);
  const serialPorts = serialPortsOf(v);
  const store = storeOptionsOf(v);
  const server = uiServerOf(v);
  return {
    help: false,
    logLevel,
    server,
    options: {
      dataDir: resolveDataDir({ ...currentDataDirInput(), env, explicit: v['data-dir'] }),
      settings: {
        file: flags.settingsFile,
        saved: flags.saved,
        running: runningSettings(v),
        overridden: flags.overridden,
        validate: (values) => {
          try {
            parseCommandLine([...settingsArgs(values), '--data-dir', flags.settingsDir], {});
            return undefined;
          } catch (error) {
            return (error as Error).message;
          }
        },
      },
      ...(mqtt ? { mqtt } : {}),
      ...store,
      ...(serialPorts ? { serialPorts } : {}),
      ...(demo !== undefined ? { demo } : {}),
      ...(adopt ? { adopt } : {}),
      ...(firmwareDrift ? { firmwareDrift } : {}),
      ...declaredDevicesOption(argv, (message) => new UsageError(message)),
      ...(retention !== undefined ? { retention } : {}),
      broker,
    },
  };
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
  let app: App;
  try {
    ({ app, folder } = await startInstance({ ...cli.options, logger }));
  } catch (error) {
    // Expected refusals, said in a sentence (what to do included), not a stack.
    if (!(error instanceof DataFolderLockedError || error instanceof DemoUnavailableError)) throw error;
    process.stderr.write(`fleetvisor: ${error.message}\n`);
    return 1;
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

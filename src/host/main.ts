/**
 * `fleetvisor` on the command line (what `npm start` runs when there is no Electron binary):
 * starts the app headless and logs the fleet's life until Ctrl-C.
 *
 * @example
 * // npm start -- --no-demo --mqtt-url mqtts://broker.lan:8883 --mqtt-ca ca.pem --serial auto
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { currentDataDirInput, resolveDataDir } from '../store/data-dir.js';
import type { MqttSettings } from '../transports/links.js';
import type { AppOptions } from './app.js';
import { startApp } from './app.js';
import type { LogLevel } from './console-logger.js';
import { createConsoleLogger } from './console-logger.js';

export const USAGE = `Usage: npm start -- [options]

With no options: the embedded MQTT broker and a small simulated demo fleet (its own database).

  --data-dir DIR          where the database lives (default: the OS per-user data folder;
                          or FLEETVISOR_DATA_DIR)
  --no-demo               no simulated devices
  --demo-devices N        simulated MQTT devices in the demo (default 6)
  --mqtt-url URL          use this broker instead of the embedded one (mqtt://, mqtts://, ws://, wss://)
  --mqtt-username NAME    broker user; the password comes from FLEETVISOR_MQTT_PASSWORD
  --mqtt-ca FILE          TLS: CA certificate (PEM) to trust
  --mqtt-cert FILE        TLS: client certificate (PEM)
  --mqtt-key FILE         TLS: client key (PEM)
  --broker-host HOST      where the embedded broker listens (default 127.0.0.1; 0.0.0.0 for the LAN)
  --broker-port PORT      embedded broker port (default 1883; a free one if taken)
  --serial PORTS          serial ports to open: a comma-separated list of paths, or "auto"
  --adopt auto|manual     unknown devices that say hello join the fleet, or wait for an operator
                          (default: auto in the demo, manual otherwise)
  --log-level LEVEL       debug, info, warn or error (default info)
  --help                  this text
`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parses the command line into app options (pure but for reading certificate files). */
export function parseCommandLine(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): { help: true } | { help: false; logLevel: LogLevel; options: Omit<AppOptions, 'logger'> } {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const v = parsed.values;
  if (v.help) return { help: true };
  const level = (v['log-level'] ?? 'info') as LogLevel;
  if (!['debug', 'info', 'warn', 'error'].includes(level))
    throw new UsageError(`--log-level must be debug, info, warn or error, not '${level}'`);
  const adopt = v.adopt;
  if (adopt !== undefined && adopt !== 'auto' && adopt !== 'manual')
    throw new UsageError(`--adopt must be auto or manual, not '${adopt}'`);
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
      '--mqtt-username and the TLS files need --mqtt-url (the embedded broker has no accounts)',
    );

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

  const dataDir = resolveDataDir({ ...currentDataDirInput(), env, explicit: v['data-dir'] });
  const demo = v['no-demo'] ? false : demoDevices !== undefined ? { mqtt: demoDevices } : undefined;
  return {
    help: false,
    logLevel: level,
    options: {
      dataDir,
      ...(mqtt ? { mqtt } : {}),
      ...(serialPorts ? { serialPorts } : {}),
      ...(demo !== undefined ? { demo } : {}),
      ...(adopt ? { adopt } : {}),
      broker: {
        ...(v['broker-host'] !== undefined ? { host: v['broker-host'] } : {}),
        ...(port !== undefined ? { port } : {}),
      },
    },
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      'data-dir': { type: 'string' },
      'no-demo': { type: 'boolean' },
      'demo-devices': { type: 'string' },
      'mqtt-url': { type: 'string' },
      'mqtt-username': { type: 'string' },
      'mqtt-ca': { type: 'string' },
      'mqtt-cert': { type: 'string' },
      'mqtt-key': { type: 'string' },
      'broker-host': { type: 'string' },
      'broker-port': { type: 'string' },
      serial: { type: 'string' },
      adopt: { type: 'string' },
      'log-level': { type: 'string' },
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
  const logger = createConsoleLogger({ level: cli.logLevel });
  const app = await startApp({ ...cli.options, logger });
  logger.info('fleetvisor is running headless; Ctrl-C stops it', {
    broker: app.brokerUrl,
    demo: app.demo,
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info('stopping', { signal });
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await app.stop();
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

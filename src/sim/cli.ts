/**
 * `npm run sim`: runs a fleet of simulated devices until Ctrl-C.
 *
 * Without `--url` (or with `--embedded`) it starts the embedded aedes broker first and prints
 * where it listens. It prints one line per device started, and for serial devices the host end
 * of the pty to open. Exit codes: 0 after SIGINT/SIGTERM, 1 if the fleet cannot start, 2 for
 * bad flags.
 *
 * @example
 * npm run sim -- --mqtt 100 --serial 2
 * npm run sim -- --mqtt 500 --url mqtt://127.0.0.1:1883 --interval 5000
 * npm run sim -- --serial 1 --mqtt 0 --pty-dir /tmp/fleetvisor-sim
 * npm run sim -- --serial 1 --mqtt 0 --no-fw-binary   # firmware chunks as JSON, not binary
 * npm run sim -- --url mqtts://broker.lan:8883 --ca ca.pem --data-dir ~/.local/share/fleetvisor
 */
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { openBrokerAccounts } from '../transports/broker-accounts.js';
import type { EmbeddedBroker } from '../transports/embedded-broker.js';
import { startEmbeddedBroker } from '../transports/embedded-broker.js';
import { socatAvailable } from './pty.js';
import { MAX_INTERVAL_MS, MIN_INTERVAL_MS } from './sim-device.js';
import type { SimFleet } from './sim-fleet.js';
import { DEFAULT_PTY_DIR, startSimFleet } from './sim-fleet.js';

export const USAGE = `Usage: npm run sim -- [options]

Runs simulated Fleetvisor devices (protocol v1) until Ctrl-C.

Options:
  --mqtt N          MQTT devices, ids sim-m001…  (default 10)
  --serial N        serial devices on socat pty pairs, ids sim-s01…  (default 0)
  --url URL         MQTT broker to connect to, e.g. mqtt://127.0.0.1:1883
  --embedded        start the embedded MQTT broker (the default when --url is not given)
  --port N          port for the embedded broker (default 1883; a free port if it is taken)
  --interval MS     telemetry interval, ${MIN_INTERVAL_MS}…${MAX_INTERVAL_MS} ms (default 1000)
  --pty-dir DIR     where the pty links are created (default ${DEFAULT_PTY_DIR})
  --no-fw-binary    devices do not list fw.binary: the host sends them firmware chunks as JSON
                    with base64, as to a device that predates binary chunks (docs/protocol.md
                    §7.1); default: they list it and take binary chunks (serial and MQTT)
  --prefix P        device id prefix (default sim)
  --data-dir DIR    a Fleetvisor data folder: each device gets its own broker account there
                    (username = its id), as the app's embedded broker requires; the embedded
                    broker started here then asks for credentials too
  --provisioning-secret S
                    every device connects with username = its id and this first-contact secret
                    (from \`fleetvisor broker provisioning KIND\`)
  --username U      MQTT username (one for all devices; for a broker with a shared account)
  --password P      MQTT password
  --ca FILE         TLS (mqtts://, wss://): CA certificate (PEM) to trust, e.g. the private CA
                    of the broker's certificate (as the host's --mqtt-ca)
  --cert FILE       TLS: client certificate (PEM), with --key, for a broker that asks devices
                    for one (as the host's --mqtt-cert)
  --key FILE        TLS: client key (PEM) (as the host's --mqtt-key)
  -h, --help        show this help
`;

export interface CliOptions {
  readonly mqtt: number;
  readonly serial: number;
  readonly url: string | undefined;
  readonly embedded: boolean;
  readonly port: number;
  readonly interval: number;
  readonly ptyDir: string;
  /** Devices list `fw.binary` (take binary chunks); `--no-fw-binary` turns it off. */
  readonly fwBinary: boolean;
  readonly prefix: string;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly dataDir: string | undefined;
  readonly provisioningSecret: string | undefined;
  /** `--ca`, `--cert`, `--key`: the files' contents (PEM). */
  readonly tls: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
}

export type CliParse =
  | { readonly kind: 'run'; readonly options: CliOptions }
  | { readonly kind: 'help' }
  | { readonly kind: 'error'; readonly message: string };

function int(value: string | undefined, flag: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new Error(`${flag} must be an integer ${min}…${max}, got '${value}'`);
  }
  return Number(value);
}

/**
 * Parses the command line (without `node script`).
 *
 * @example
 * parseCliArgs(['--mqtt', '5']);   // { kind: 'run', options: { mqtt: 5, serial: 0, … } }
 * parseCliArgs(['--mqtt', 'x']);   // { kind: 'error', message: "--mqtt must be an integer 0…100000, got 'x'" }
 */
export function parseCliArgs(argv: readonly string[]): CliParse {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        mqtt: { type: 'string' },
        serial: { type: 'string' },
        url: { type: 'string' },
        embedded: { type: 'boolean' },
        port: { type: 'string' },
        interval: { type: 'string' },
        'pty-dir': { type: 'string' },
        'no-fw-binary': { type: 'boolean' },
        prefix: { type: 'string' },
        username: { type: 'string' },
        password: { type: 'string' },
        'data-dir': { type: 'string' },
        'provisioning-secret': { type: 'string' },
        ca: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) return { kind: 'help' };
    if (positionals.length > 0) throw new Error(`unexpected argument '${positionals[0]}'`);
    if (values['data-dir'] !== undefined && values['provisioning-secret'] !== undefined)
      throw new Error('use either --data-dir or --provisioning-secret, not both');
    if (values.url !== undefined && values.embedded)
      throw new Error('use either --url or --embedded, not both');
    if (values.url !== undefined && !/^(mqtts?|wss?|tcp|tls):\/\/./.test(values.url)) {
      throw new Error(`--url must look like mqtt://host:port, got '${values.url}'`);
    }
    const tls = tlsFiles(values);
    if (Object.keys(tls).length > 0 && values.url === undefined)
      throw new Error('--ca, --cert and --key are for a broker given by --url (mqtts://…)');
    const prefix = values.prefix ?? 'sim';
    if (!/^[A-Za-z0-9_-]{1,40}$/.test(prefix)) {
      throw new Error(`--prefix must be 1…40 characters from A-Z a-z 0-9 _ -, got '${prefix}'`);
    }
    return {
      kind: 'run',
      options: {
        mqtt: int(values.mqtt, '--mqtt', 0, 100_000, 10),
        serial: int(values.serial, '--serial', 0, 1000, 0),
        url: values.url,
        embedded: values.url === undefined,
        port: int(values.port, '--port', 0, 65535, 1883),
        interval: int(values.interval, '--interval', MIN_INTERVAL_MS, MAX_INTERVAL_MS, 1000),
        ptyDir: values['pty-dir'] ?? DEFAULT_PTY_DIR,
        fwBinary: values['no-fw-binary'] !== true,
        prefix,
        username: values.username,
        password: values.password,
        dataDir: values['data-dir'],
        provisioningSecret: values['provisioning-secret'],
        tls,
      },
    };
  } catch (error) {
    return { kind: 'error', message: error instanceof Error ? error.message : String(error) };
  }
}

/** The `--ca`, `--cert` and `--key` files read (PEM); throws naming the flag whose file cannot be read. */
function tlsFiles(values: { ca?: string; cert?: string; key?: string }): CliOptions['tls'] {
  const read = (flag: 'ca' | 'cert' | 'key'): Buffer | undefined => {
    const path = values[flag];
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (error) {
      throw new Error(`--${flag} ${path}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  const ca = read('ca');
  const cert = read('cert');
  const key = read('key');
  if ((cert === undefined) !== (key === undefined)) throw new Error('--cert and --key go together');
  return { ...(ca && { ca }), ...(cert && { cert }), ...(key && { key }) };
}

export interface CliIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

const defaultIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Runs the CLI until SIGINT/SIGTERM; resolves with the exit code. */
export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  const parsed = parseCliArgs(argv);
  if (parsed.kind === 'help') {
    io.out(USAGE);
    return 0;
  }
  if (parsed.kind === 'error') {
    io.err(`sim: ${parsed.message}`);
    io.err('Run `npm run sim -- --help` for the options.');
    return 2;
  }
  const o = parsed.options;
  if (o.serial > 0 && !socatAvailable()) {
    io.err('sim: serial devices need socat (Debian: apt-get install -y socat)');
    return 1;
  }

  let broker: EmbeddedBroker | undefined;
  let fleet: SimFleet | undefined;
  const keepAlive = setInterval(() => {}, 1 << 30);
  let signalled: (signal: string) => void = () => {};
  const stopped = new Promise<string>((resolve) => {
    signalled = resolve;
  });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // Nothing to stop yet, or a second Ctrl-C while stopping: leave at once.
    if (++signals > 1 || (fleet === undefined && broker === undefined)) process.exit(130);
    signalled(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const shutdown = async () => {
    clearInterval(keepAlive);
    await fleet?.stop();
    await broker?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };

  try {
    let url = o.url;
    const accounts = o.dataDir !== undefined ? openBrokerAccounts(o.dataDir) : undefined;
    if (o.mqtt > 0 && url === undefined) {
      broker = await startEmbeddedBroker({ port: o.port, ...(accounts ? { auth: accounts } : {}) });
      url = broker.url;
      io.out(
        broker.portWasTaken
          ? `embedded MQTT broker listening on ${url} (port ${o.port} was taken, probably by another broker)`
          : `embedded MQTT broker listening on ${url}`,
      );
    }
    const started = Date.now();
    fleet = await startSimFleet({
      ...(url !== undefined && { mqttUrl: url }),
      mqtt: o.mqtt,
      serial: o.serial,
      ptyDir: o.ptyDir,
      binaryChunks: o.fwBinary,
      idPrefix: o.prefix,
      telemetryIntervalMs: o.interval,
      ...(o.username !== undefined && { username: o.username }),
      ...(o.password !== undefined && { password: o.password }),
      ...(Object.keys(o.tls).length > 0 && { tls: o.tls }),
      ...(accounts !== undefined && {
        credentials: (id: string) => ({ username: id, password: accounts.issueDevice(id) }),
      }),
      ...(o.provisioningSecret !== undefined && {
        credentials: (id: string) => ({ username: id, password: o.provisioningSecret! }),
      }),
      onDeviceStarted: (info) =>
        io.out(
          info.link === 'mqtt'
            ? `mqtt    ${info.id}  connected to ${info.url}`
            : `serial  ${info.id}  host port: ${info.hostPath}${o.fwBinary ? '' : '  (no fw.binary: JSON chunks)'}`,
        ),
    });
    io.out(
      `${o.mqtt} MQTT and ${o.serial} serial device(s) running (${Date.now() - started} ms); Ctrl-C to stop`,
    );
    if (fleet.hostPorts.length > 0) io.out(`serial host ports: ${fleet.hostPorts.join(' ')}`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    io.err(`sim: ${message}`);
    if (/self[- ]signed|unable to (get|verify)|certificate/i.test(message))
      io.err(
        "sim: the broker's TLS certificate is not trusted: give the CA that signed it, --ca FILE (PEM), " +
          "as to the host's --mqtt-ca",
      );
    if (/bad username or password|not authori[sz]ed/i.test(message))
      io.err(
        "sim: the broker asks for credentials (Fleetvisor's embedded broker always does): give the app's data folder, " +
          '--data-dir DIR, so each simulated device gets its own account, or a first-contact secret, ' +
          '--provisioning-secret S (fleetvisor broker provisioning KIND prints one)',
      );
    await shutdown();
    return 1;
  }

  const signal = await stopped;
  io.out(`${signal}: stopping…`);
  await shutdown();
  io.out('stopped');
  return 0;
}

function isMain(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === import.meta.url;
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(
        `sim: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exit(1);
    },
  );
}

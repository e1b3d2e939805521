/**
 * The app, assembled: store → links (MQTT, serial) → fleet, with the embedded broker when no
 * broker URL is given, and — with no configuration at all — a small simulated demo fleet, so a
 * newcomer sees live devices at once. The headless server and the Electron main process both
 * start it; neither imports anything else of the core to get going.
 *
 * Supervision: the fleet's `devices` dynamic supervisor and the `links` supervisor run side by
 * side on one runtime; the fleet's command tracker (`fleet.commands`) sits between them.
 *
 * @example
 * const app = await startApp({ dataDir: '/srv/fleetvisor', logger });
 * app.brokerUrl;      // 'mqtt://127.0.0.1:1883' (or the free port used when 1883 was taken)
 * await app.stop();
 */
import { join } from 'node:path';
import type { Convention } from '../conventions/convention.js';
import { homieConvention } from '../conventions/homie/homie-bridge.js';
import { modbusConvention } from '../conventions/modbus/modbus-bridge.js';
import { sparkplugConvention } from '../conventions/sparkplug/sparkplug-bridge.js';
import type { Fleet } from '../devices/fleet.js';
import { createFleet } from '../devices/fleet.js';
import { genericDevice } from '../devices/generic-device.js';
import type { Logger, Runtime } from '../runtime/runtime.js';
import { createRuntime } from '../runtime/runtime.js';
import { socatAvailable } from '../sim/pty.js';
import type { SimFleet } from '../sim/sim-fleet.js';
import { startSimFleet } from '../sim/sim-fleet.js';
import { DATABASE_FILE_NAME } from '../store/data-dir.js';
import type { SqliteStore } from '../store/sqlite-store.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { BrokerAccounts } from '../transports/broker-accounts.js';
import { openBrokerAccounts } from '../transports/broker-accounts.js';
import type { EmbeddedBroker } from '../transports/embedded-broker.js';
import { startEmbeddedBroker } from '../transports/embedded-broker.js';
import type { Links, MqttSettings } from '../transports/links.js';
import { createLinks } from '../transports/links.js';

/** The demo's own database, so demo devices never mix with a real fleet. */
export const DEMO_DATABASE_FILE_NAME = 'demo.sqlite';

export interface AppOptions {
  readonly dataDir: string;
  readonly logger: Logger;
  /** An external broker; without it the embedded broker runs. */
  readonly mqtt?: MqttSettings;
  /**
   * Where the embedded broker listens; default 127.0.0.1:1883 (a free port if taken). It always
   * asks for credentials (accounts in the data folder, see src/transports/broker-accounts.ts);
   * `tls` adds a TLS listener for devices on the LAN.
   */
  readonly broker?: {
    readonly host?: string;
    readonly port?: number;
    readonly tls?: {
      readonly certFile: string;
      readonly keyFile: string;
      readonly host?: string;
      readonly port?: number;
    };
  };
  /** Serial ports to open (`auto`: USB serial adapters as they appear). */
  readonly serialPorts?: readonly string[] | 'auto';
  /**
   * The simulated demo fleet: default on when neither a broker URL nor serial ports are given.
   * It runs against its own database (`demo.sqlite`) in the data folder.
   */
  readonly demo?:
    | boolean
    | { readonly mqtt?: number; readonly serial?: number; readonly telemetryIntervalMs?: number };
  /** Unknown devices that say hello: `auto` adds them, `manual` lists them; default auto in the demo. */
  readonly adopt?: 'auto' | 'manual';
  /**
   * Foreign conventions joining the same fleet; default all of them: Homie (devices under
   * `homie/` on the app's broker), Sparkplug B (the host as a Primary Host Application there),
   * Modbus RTU (devices added with a register map).
   */
  readonly conventions?: readonly Convention[];
}

export interface App {
  readonly runtime: Runtime;
  readonly store: SqliteStore;
  readonly fleet: Fleet;
  readonly links: Links;
  /** Where devices connect over MQTT. */
  readonly brokerUrl: string | undefined;
  readonly broker: EmbeddedBroker | undefined;
  /** The embedded broker's accounts (issue, rotate, revoke device secrets); none with an external broker. */
  readonly brokerAccounts: BrokerAccounts | undefined;
  readonly sim: SimFleet | undefined;
  /** Whether the simulated demo fleet runs. */
  readonly demo: boolean;
  /** Starts or stops the simulated devices (only in demo mode: they live in the demo database). */
  setDemo(on: boolean): Promise<{ ok: true } | { ok: false; message: string }>;
  stop(): Promise<void>;
}

/** Every convention Fleetvisor knows, with its defaults. */
export function defaultConventions(): Convention[] {
  return [homieConvention(), sparkplugConvention(), modbusConvention()];
}

export async function startApp(options: AppOptions): Promise<App> {
  const log = options.logger;
  const demo =
    options.demo === undefined
      ? options.mqtt === undefined && options.serialPorts === undefined
      : options.demo !== false;
  const demoSize = typeof options.demo === 'object' ? options.demo : {};
  const runtime = createRuntime({ logger: log });
  const stack: (() => Promise<void>)[] = [];
  const unwind = async () => {
    for (const stop of stack.splice(0).reverse())
      await stop().catch((error: unknown) => log.error('shutdown step failed', { error }));
  };

  try {
    const file = join(options.dataDir, demo ? DEMO_DATABASE_FILE_NAME : DATABASE_FILE_NAME);
    const store = await openSqliteStore({ file, logger: log });
    stack.push(() => store.close());
    log.info('data', { file });

    let broker: EmbeddedBroker | undefined;
    let brokerAccounts: BrokerAccounts | undefined;
    let mqtt = options.mqtt;
    if (!mqtt) {
      brokerAccounts = openBrokerAccounts(options.dataDir);
      broker = await startEmbeddedBroker({
        host: options.broker?.host ?? '127.0.0.1',
        port: options.broker?.port ?? 1883,
        logger: log,
        auth: brokerAccounts,
        ...(options.broker?.tls ? { tls: options.broker.tls } : {}),
      });
      stack.push(() => broker!.close());
      mqtt = { url: broker.url, ...brokerAccounts.host };
      log.info('embedded MQTT broker: devices connect to it', { url: broker.url });
      if (broker.portWasTaken)
        log.info(
          `to use the broker that runs on port ${options.broker?.port ?? 1883}: --mqtt-url mqtt://127.0.0.1:${options.broker?.port ?? 1883}`,
        );
      if ((options.broker?.host ?? '127.0.0.1') === '127.0.0.1')
        log.info(
          'the embedded broker accepts devices on this machine only; --broker-host 0.0.0.0 opens it to the LAN',
        );
    }

    let sim: SimFleet | undefined;
    let serialPorts = options.serialPorts;
    const serialCount = demoSize.serial ?? (socatAvailable() ? 1 : 0);
    const mqttUrl = mqtt.url;
    const accounts = brokerAccounts;
    const startSim = () =>
      startSimFleet({
        mqttUrl,
        // Like real devices: each its own account (a fresh secret per start of the simulation).
        ...(accounts
          ? { credentials: (id: string) => ({ username: id, password: accounts.issueDevice(id) }) }
          : {}),
        mqtt: demoSize.mqtt ?? 6,
        serial: serialCount,
        ptyDir: join(options.dataDir, 'demo-ports'),
        idPrefix: 'demo',
        telemetryIntervalMs: demoSize.telemetryIntervalMs ?? 2000,
      });
    if (demo) {
      sim = await startSim();
      stack.push(async () => {
        await sim?.stop();
      });
      serialPorts = [...(Array.isArray(serialPorts) ? serialPorts : []), ...sim.hostPorts];
      log.info('demo fleet started (--no-demo turns it off)', {
        mqtt: sim.mqtt.length,
        serial: sim.serial.length,
        ...(serialCount === 0 && !socatAvailable() ? { note: 'no serial demo: socat is not installed' } : {}),
      });
    }

    const links = createLinks({
      runtime,
      store,
      mqtt,
      ...(serialPorts !== undefined && (serialPorts === 'auto' || serialPorts.length > 0)
        ? { serial: { ports: serialPorts } }
        : {}),
    });
    const conventions = options.conventions ?? defaultConventions();
    const fleet = createFleet({
      runtime,
      store,
      kinds: [genericDevice, ...conventions.flatMap((c) => c.kinds)],
      carrier: links.carrier,
    });
    const started = await fleet.start();
    stack.push(() => fleet.stop());
    log.info('fleet loaded', { devices: started.started, failed: started.failed.length });
    for (const f of started.failed) log.warn('device could not start', f);
    const brokerSettings = mqtt;
    await links.attach(
      fleet,
      { adopt: options.adopt ?? (demo ? 'auto' : 'manual') },
      conventions.map((c) => ({
        id: c.name,
        start: () => c.start({ runtime, fleet, store, broker: brokerSettings }),
      })),
    );
    stack.push(() => links.stop());

    // The lifecycle, readable in the terminal until the views arrive.
    const off = runtime.events.subscribe((e) => {
      if (e.type !== 'state.transition' || !fleet.device(e.name)) return;
      const top = (s: string) => s.split('.')[0];
      if (top(e.from) !== top(e.to))
        log.info('device state', { deviceId: e.name, from: e.from, to: e.to, on: e.event });
    });
    stack.push(async () => off());

    let stopping: Promise<void> | undefined;
    return {
      runtime,
      store,
      fleet,
      links,
      brokerUrl: mqtt.url,
      broker,
      brokerAccounts,
      get sim() {
        return sim;
      },
      demo,
      async setDemo(on) {
        if (!demo)
          return {
            ok: false,
            message:
              'the simulated fleet runs only in demo mode (start without --no-demo; it keeps its own database)',
          };
        if (on && !sim) {
          sim = await startSim();
          log.info('demo fleet started again');
        } else if (!on && sim) {
          const s = sim;
          sim = undefined;
          await s.stop();
          log.info('demo fleet stopped: its devices go offline');
        }
        return { ok: true };
      },
      stop() {
        stopping ??= unwind().finally(() => runtime.dispose());
        return stopping;
      },
    } satisfies App;
  } catch (error) {
    await unwind();
    runtime.dispose();
    throw error;
  }
}

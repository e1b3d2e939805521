/**
 * The broker accounts of the demo's simulated MQTT devices: each device its own, like a real
 * device, with a fresh secret per start of the simulation.
 *
 * - **Embedded broker**: issued in the data folder's accounts, which the broker reads at once.
 * - **External broker the host joins without a username**: none. A broker that lets the host in
 *   without an account lets the devices in too.
 * - **External broker the host joins with an account**: created on it through Mosquitto's dynamic
 *   security plugin, whose file `fleetvisor broker mosquitto-dynsec` writes with the host allowed
 *   to manage accounts: each bound to its client id and limited to its topics, as a device added
 *   with `fleetvisor broker device add`; deleted again when the simulation stops. Where the host
 *   cannot create them (a `password_file`, another broker, a plugin file written before the host
 *   could), and the broker does not let a client in without an account either, the start fails at
 *   once with a {@link DemoUnavailableError} that says what to do, instead of the devices waiting
 *   15 s to be refused.
 *
 * @example
 * const accounts = await openDemoAccounts(setup, broker, ['demo-3f9a0c21-m001']);
 * await startSimFleet({ …, ...(accounts.credentials ? { credentials: accounts.credentials } : {}) });
 * await accounts.release(); // after the simulation stopped
 */
import { connectAsync } from 'mqtt';
import {
  dynsecDeviceAccountCommands,
  dynsecRemoveDeviceCommands,
} from '../../transports/broker-accounts-dynsec.js';
import { newSecret } from '../../transports/broker-accounts-hash.js';
import type { MqttSettings } from '../../transports/links.js';
import { sendDynsecCommands } from '../../transports/mosquitto-dynsec-control.js';
import { hostClientOptions } from '../../transports/mqtt-connection.js';
import { instanceIdOf } from '../data-folder.js';
import type { AppBroker } from './broker.js';
import type { AppSetup } from './setup.js';

/** The demo cannot run on this broker; the message says why and what to do. Not a bug: print it, no stack. */
export class DemoUnavailableError extends Error {
  readonly code = 'demoUnavailable';
  constructor(message: string) {
    super(message);
    this.name = 'DemoUnavailableError';
  }
}

export interface DemoAccounts {
  /** Each device's username and password; undefined when the broker asks for none. */
  readonly credentials:
    | ((id: string) => { readonly username: string; readonly password: string })
    | undefined;
  /** Deletes the accounts made on an external broker (logged if it cannot); nothing otherwise. */
  release(): Promise<void>;
}

const WHAT_TO_DO =
  'Write the plugin file with `fleetvisor broker mosquitto-dynsec --out FILE` (again, if yours is older) ' +
  'and restart Mosquitto (README, "Connecting devices"); or start with --no-demo to use this broker for ' +
  'real devices only; or without --mqtt-url for the demo on the embedded broker.';

export async function openDemoAccounts(
  setup: AppSetup,
  broker: Pick<AppBroker, 'mqtt' | 'accounts'>,
  ids: readonly string[],
): Promise<DemoAccounts> {
  const { log, options } = setup;
  const embedded = broker.accounts;
  if (embedded)
    return {
      credentials: (id) => ({ username: id, password: embedded.issueDevice(id) }),
      release: async () => {},
    };
  const mqtt = broker.mqtt;
  if (mqtt.username === undefined || ids.length === 0)
    return { credentials: undefined, release: async () => {} };

  const clientId = `fleetvisor-${instanceIdOf(options.dataDir)}-accounts`;
  const secrets = new Map(ids.map((id) => [id, newSecret()]));
  const created = await sendDynsecCommands(
    mqtt,
    ids.flatMap((id) => dynsecDeviceAccountCommands(id, secrets.get(id)!)),
    { clientId },
  );
  if (created.ok) {
    const refused = created.value.find((a) => a.command.startsWith('create') && a.error !== undefined);
    if (refused)
      throw new DemoUnavailableError(
        `the demo cannot run on ${mqtt.url}: Mosquitto refused its devices' accounts (${refused.command}: ${refused.error}). ${WHAT_TO_DO}`,
      );
    log.info("demo devices' broker accounts created (Mosquitto dynamic security)", {
      url: mqtt.url,
      devices: ids.length,
    });
    return {
      credentials: (id) => ({ username: id, password: secrets.get(id) ?? newSecret() }),
      release: async () => {
        const removed = await sendDynsecCommands(mqtt, ids.flatMap(dynsecRemoveDeviceCommands), { clientId });
        if (!removed.ok) log.warn(`demo devices' broker accounts not deleted: ${removed.error.message}`);
      },
    };
  }
  if (created.error.code === 'unreachable')
    throw new DemoUnavailableError(
      `the demo cannot run: ${created.error.message} (check --mqtt-url, --mqtt-username and FLEETVISOR_MQTT_PASSWORD)`,
    );
  // No accounts made there: maybe the broker needs none from devices.
  if ((await anonymousConnect(mqtt, `${clientId}-probe`)) !== 'refused') {
    log.info('demo devices connect without accounts: the broker lets clients in without one', {
      url: mqtt.url,
    });
    return { credentials: undefined, release: async () => {} };
  }
  const why =
    created.error.code === 'notAllowed'
      ? `${mqtt.username} may not use Mosquitto's dynamic security plugin there: its file was written before the host could manage accounts`
      : "no answer from Mosquitto's dynamic security plugin: a password_file, another broker, or a plugin file written before the host could manage accounts";
  log.debug('demo accounts: the plugin did not take them', { reason: created.error.message });
  throw new DemoUnavailableError(
    `the demo cannot run on ${mqtt.url}: the broker lets no client in without an account, and the host cannot create accounts there for the simulated devices (${why}). ${WHAT_TO_DO}`,
  );
}

/** Whether the broker lets a client in without credentials (`unknown`: it could not be asked). */
async function anonymousConnect(
  mqtt: MqttSettings,
  clientId: string,
): Promise<'accepted' | 'refused' | 'unknown'> {
  const { username: _u, password: _p, ...anonymous } = mqtt;
  try {
    const client = await connectAsync(
      mqtt.url,
      hostClientOptions(anonymous, { clientId, connectTimeoutMs: 3000 }),
    );
    await client.endAsync(true);
    return 'accepted';
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return code === 4 || code === 5 ? 'refused' : 'unknown';
  }
}

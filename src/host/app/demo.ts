/**
 * The simulated demo fleet: MQTT devices on the app's broker, each with its own account, and
 * serial devices on pseudo-terminals (when socat is installed) whose host ends the app opens.
 * It runs only in demo mode, against the demo's own database; the Settings view turns it off and
 * on again.
 *
 * On the embedded broker the devices are `demo-m001`, `demo-s01`, … and join the fleet by the
 * demo's automatic adoption. On an external broker (`--mqtt-url`), which other instances may share,
 * their ids carry this instance's id (`demo-3f9a0c21-m001`: two demos on one broker would otherwise
 * run two devices under one client id, each knocking the other off and both answering its commands),
 * the demo adds its own devices to the fleet itself ({@link AppDemo.declare}), and unknown devices —
 * another instance's demo among them — wait for an operator as without the demo (src/host/app/fleet.ts).
 * Their broker accounts: src/host/app/demo-accounts.ts (on an external broker that asks for
 * accounts, made through Mosquitto's dynamic security plugin, or a clear refusal to start).
 *
 * @example
 * const demoFleet = await startDemo(setup, demo, broker);
 * demoFleet.serialPorts;        // the options' ports, plus the simulated ones in demo mode
 * await demoFleet.declare(fleet); // on an external broker: its devices are in the fleet
 * await demoFleet.setDemo(false); // its devices go offline
 */
import { join } from 'node:path';
import type { Fleet } from '../../devices/fleet.js';
import { genericDevice } from '../../devices/generic-device.js';
import { socatAvailable } from '../../sim/pty.js';
import type { SimFleet } from '../../sim/sim-fleet.js';
import { simDeviceId, startSimFleet } from '../../sim/sim-fleet.js';
import type { App, AppOptions } from '../app.js';
import { instanceIdOf } from '../data-folder.js';
import type { AppBroker } from './broker.js';
import type { DemoAccounts } from './demo-accounts.js';
import { DemoUnavailableError, openDemoAccounts } from './demo-accounts.js';
import type { AppSetup } from './setup.js';

export interface AppDemo extends Pick<App, 'setDemo'> {
  /** The simulated fleet running now, if any. */
  current(): SimFleet | undefined;
  /** The serial ports the links open. */
  readonly serialPorts: AppOptions['serialPorts'];
  /**
   * On an external broker, adds the demo's devices the fleet does not have yet (as an adoption
   * would: name = id); on the embedded broker, or with the demo off, does nothing (there the demo
   * adopts them). A device that cannot be added is logged; the others still are.
   */
  declare(fleet: Fleet): Promise<void>;
}

/**
 * Starts the simulated fleet in demo mode (throws if it cannot: a {@link DemoUnavailableError} when
 * its devices can have no accounts on the broker); otherwise only remembers it is off.
 */
export async function startDemo(
  setup: AppSetup,
  demo: boolean,
  broker: Pick<AppBroker, 'mqtt' | 'accounts'>,
): Promise<AppDemo> {
  const { options, log, stops } = setup;
  const demoSize = typeof options.demo === 'object' ? options.demo : {};
  let sim: SimFleet | undefined;
  let accounts: DemoAccounts | undefined;
  let serialPorts = options.serialPorts;
  const serialCount = demoSize.serial ?? (socatAvailable() ? 1 : 0);
  const mqttUrl = broker.mqtt.url;
  const mqttCount = demoSize.mqtt ?? 6;
  // On a broker other instances may share, the ids carry this instance's (see the file comment).
  const external = options.mqtt !== undefined;
  const idPrefix = external ? `demo-${instanceIdOf(options.dataDir)}` : 'demo';
  const mqttIds = Array.from({ length: mqttCount }, (_, i) => simDeviceId(idPrefix, 'm', i + 1, 3));
  const startSim = async (): Promise<SimFleet> => {
    // Like real devices: each its own account (a fresh secret per start of the simulation).
    accounts = await openDemoAccounts(setup, broker, mqttIds);
    const credentials = accounts.credentials;
    try {
      return await startSimFleet({
        mqttUrl,
        ...(credentials ? { credentials } : {}),
        // They trust the broker the host trusts (`--mqtt-ca`: a private CA); the host's own client
        // certificate is the host's identity, not theirs, and is not lent to them.
        ...(broker.mqtt.ca !== undefined ? { tls: { ca: broker.mqtt.ca } } : {}),
        mqtt: mqttCount,
        serial: serialCount,
        ptyDir: join(options.dataDir, 'demo-ports'),
        idPrefix,
        kind: genericDevice.kind,
        telemetryIntervalMs: demoSize.telemetryIntervalMs ?? 2000,
      });
    } catch (error) {
      await releaseAccounts();
      throw error;
    }
  };
  const releaseAccounts = async () => {
    const made = accounts;
    accounts = undefined;
    await made?.release();
  };
  if (demo) {
    sim = await startSim();
    stops.push(async () => {
      await sim?.stop();
      await releaseAccounts();
    });
    serialPorts = [...(Array.isArray(serialPorts) ? serialPorts : []), ...sim.hostPorts];
    log.info('demo fleet started (--no-demo turns it off)', {
      mqtt: sim.mqtt.length,
      serial: sim.serial.length,
      ...(serialCount === 0 && !socatAvailable() ? { note: 'no serial demo: socat is not installed' } : {}),
    });
  }
  return {
    current: () => sim,
    serialPorts,
    async declare(fleet) {
      if (!external || !sim) return;
      const ids = [...sim.mqtt.map((d) => d.id), ...sim.serial.map((s) => s.device.id)];
      for (const id of ids) {
        if (fleet.device(id)) continue;
        const r = await fleet.addDevice({ id, kind: genericDevice.kind, name: id });
        if (r.ok) log.info('demo device added to the fleet', { deviceId: id });
        else log.warn(`demo device ${id} not added: ${r.error.code}: ${r.error.message}`);
      }
    },
    async setDemo(on) {
      if (!demo)
        return {
          ok: false,
          message:
            'the simulated fleet runs only in demo mode (start without --no-demo; it keeps its own database)',
        };
      if (on && !sim) {
        try {
          sim = await startSim();
        } catch (error) {
          if (error instanceof DemoUnavailableError) return { ok: false, message: error.message };
          throw error;
        }
        log.info('demo fleet started again');
      } else if (!on && sim) {
        const s = sim;
        sim = undefined;
        await s.stop();
        await releaseAccounts();
        log.info('demo fleet stopped: its devices go offline');
      }
      return { ok: true };
    },
  };
}

/**
 * The simulated demo fleet: MQTT devices on the app's broker, each with its own account, and
 * serial devices on pseudo-terminals (when socat is installed) whose host ends the app opens.
 * It runs only in demo mode, against the demo's own database; the Settings view turns it off and
 * on again.
 *
 * @example
 * const demoFleet = await startDemo(setup, demo, broker);
 * demoFleet.serialPorts;        // the options' ports, plus the simulated ones in demo mode
 * await demoFleet.setDemo(false); // its devices go offline
 */
import { join } from 'node:path';
import { socatAvailable } from '../../sim/pty.js';
import type { SimFleet } from '../../sim/sim-fleet.js';
import { startSimFleet } from '../../sim/sim-fleet.js';
import type { App, AppOptions } from '../app.js';
import type { AppBroker } from './broker.js';
import type { AppSetup } from './setup.js';

export interface AppDemo extends Pick<App, 'setDemo'> {
  /** The simulated fleet running now, if any. */
  current(): SimFleet | undefined;
  /** The serial ports the links open. */
  readonly serialPorts: AppOptions['serialPorts'];
}

/** Starts the simulated fleet in demo mode (throws if it cannot); otherwise only remembers it is off. */
export async function startDemo(
  setup: AppSetup,
  demo: boolean,
  broker: Pick<AppBroker, 'mqtt' | 'accounts'>,
): Promise<AppDemo> {
  const { options, log, stops } = setup;
  const demoSize = typeof options.demo === 'object' ? options.demo : {};
  let sim: SimFleet | undefined;
  let serialPorts = options.serialPorts;
  const serialCount = demoSize.serial ?? (socatAvailable() ? 1 : 0);
  const mqttUrl = broker.mqtt.url;
  const accounts = broker.accounts;
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
    stops.push(async () => {
      await sim?.stop();
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
  };
}

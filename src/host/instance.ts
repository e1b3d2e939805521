/**
 * One Fleetvisor instance on a data folder, as both front doors start it (the headless
 * `fleetvisor serve`, src/host/main.ts, and the desktop shell, electron/main.ts): the data
 * folder's lock taken first (a second start on the same folder fails here with
 * {@link DataFolderLockedError}, naming the running one's pid and UI, before it touches the
 * database or the broker), then the app started with this instance's broker names (MQTT client
 * ids and Sparkplug host id from the instance id kept in the folder, so two instances on one
 * broker never knock each other off or answer for each other). The lock is released if the app
 * does not start; otherwise by the caller, after `app.stop()`.
 *
 * @example
 * const { app, folder } = await startInstance({ ...options, logger });
 * // … later
 * await app.stop();
 * folder.release();
 */
import type { Convention } from '../conventions/convention.js';
import { homieConvention } from '../conventions/homie/homie-bridge.js';
import { modbusConvention } from '../conventions/modbus/modbus-bridge.js';
import { sparkplugConvention } from '../conventions/sparkplug/sparkplug-bridge.js';
import type { App, AppOptions } from './app.js';
import { startApp } from './app.js';
import type { DataFolder } from './data-folder.js';
import { instanceNames, openDataFolder } from './data-folder.js';

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

/** Takes the data folder (throws DataFolderLockedError when another app holds it), then starts the app. */
export async function startInstance(
  options: AppOptions,
): Promise<{ readonly app: App; readonly folder: DataFolder }> {
  const folder = openDataFolder(options.dataDir, { logger: options.logger });
  const names = instanceNames(folder.instanceId);
  try {
    const app = await startApp({
      ...options,
      ...(options.mqtt ? { mqtt: { clientId: names.mqttClientId, ...options.mqtt } } : {}),
      conventions: options.conventions ?? instanceConventions(names),
    });
    return { app, folder };
  } catch (error) {
    folder.release();
    throw error;
  }
}

/**
 * The entry of `fleetvisor firmware …` (scripts/fleetvisor.mjs): the firmware command line
 * (src/firmware/cli.ts), told by the app running on the data folder, when one runs, which devices
 * run each image. The command line reads the images from the data folder's file on its own; on
 * PostgreSQL the fleet's devices are not in that file, so without the app every image would list
 * as running on none.
 *
 * @example
 * // fleetvisor firmware list --data-dir /srv/fleet   → "1.1.0 … running on 1: pump-7"
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runFirmwareCli } from '../firmware/cli.js';
import type { AppImage } from '../firmware/cli-commands.js';
import { connectToRunningApp } from './app-client.js';

/** The running app's images; undefined when no app runs on the folder or it does not answer. */
export async function appImagesOf(dataDir: string): Promise<readonly AppImage[] | undefined> {
  const app = connectToRunningApp(dataDir, { timeoutMs: 5000 });
  if (!app.ok) return undefined;
  const r = await app.value.call('firmwareList', {});
  return r.ok ? r.value.images : undefined;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await runFirmwareCli(process.argv.slice(2), {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    env: process.env,
    cwd: process.cwd(),
    appImages: appImagesOf,
  });
}

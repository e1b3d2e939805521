/**
 * `fleetvisor act SELECTOR ACTION`: one action on many devices from a terminal, through the app
 * running on the data folder (the command lives in src/host/devices-cli.ts).
 */
import { processIo, runActCli } from './devices-cli.js';

process.exitCode = await runActCli(process.argv.slice(2), processIo);

/**
 * `fleetvisor events`: the event log from a terminal, `--follow` to keep printing new events,
 * through the app running on the data folder (the command lives in src/host/devices-cli.ts).
 */
import { processIo, runEventsCli } from './devices-cli.js';

process.exitCode = await runEventsCli(process.argv.slice(2), processIo);

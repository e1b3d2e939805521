#!/usr/bin/env node
// The `fleetvisor` command: `fleetvisor serve [options]` runs the headless server (the same as
// `npm run serve`); `fleetvisor broker …` manages the broker accounts of a data folder and writes
// the Mosquitto password and ACL files (src/host/broker-cli.ts; `fleetvisor broker --help`);
// `fleetvisor [options]` runs the desktop app where Electron is installed.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const start = join(root, 'scripts', 'start.mjs');
const [command, ...rest] = process.argv.slice(2);
const args =
  command === 'broker'
    ? ['--import', 'tsx', join(root, 'src', 'host', 'broker-cli.ts'), ...rest]
    : [start, ...(command === 'serve' ? ['--headless', ...rest] : process.argv.slice(2))];
const child = spawn(process.execPath, args, {
  stdio: 'inherit',
  cwd: command === 'broker' ? process.cwd() : undefined,
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

#!/usr/bin/env node
// The `fleetvisor` command: `fleetvisor serve [options]` runs the headless server (the same as
// `npm run serve`); `fleetvisor [options]` runs the desktop app where Electron is installed.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const start = join(dirname(fileURLToPath(import.meta.url)), 'start.mjs');
const [command, ...rest] = process.argv.slice(2);
const args = command === 'serve' ? ['--headless', ...rest] : process.argv.slice(2);
const child = spawn(process.execPath, [start, ...args], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

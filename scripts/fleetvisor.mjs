#!/usr/bin/env node
// The `fleetvisor` command: `fleetvisor serve [options]` runs the headless server (the same as
// `npm run serve`); `fleetvisor broker …` manages the broker accounts of a data folder and writes
// the Mosquitto password and ACL files (src/host/broker-cli.ts; `fleetvisor broker --help`);
// `fleetvisor firmware …` signs and imports firmware images (src/host/firmware-cli.ts → src/firmware/cli.ts, docs/firmware.md);
// `fleetvisor update …` and `fleetvisor rollout …` update devices through the running app (src/host/update-cli.ts);
// `fleetvisor devices …`, `fleetvisor act …` and `fleetvisor events …` manage the fleet through it (src/host/devices-cli.ts);
// `fleetvisor export …` streams stored events, commands or telemetry from it as CSV or JSON Lines (src/host/export-cli.ts);
// `fleetvisor alarms ls|ack|shelve|rules` lists and acknowledges the running app's alarms (src/host/alarms-cli.ts);
// `fleetvisor [options]` runs the desktop app where Electron is installed.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const start = join(root, 'scripts', 'start.mjs');
const [command, ...rest] = process.argv.slice(2);
// Command-line tools in TypeScript; tsx is resolved from here, so they run from any folder.
const tools = {
  broker: ['host', 'broker-cli.ts'],
  firmware: ['host', 'firmware-cli.ts'],
  update: ['host', 'update-cli.ts'],
  rollout: ['host', 'rollout-cli.ts'],
  devices: ['host', 'devices-cli.ts'],
  act: ['host', 'act-cli.ts'],
  events: ['host', 'events-cli.ts'],
  export: ['host', 'export-cli.ts'],
  alarms: ['host', 'alarms-cli.ts'],
};
const tool = Object.hasOwn(tools, command) ? tools[command] : undefined;
// `fleetvisor --help` (or `help`): the commands first, each with an example, then the app's options.
const COMMANDS = `Usage: fleetvisor [COMMAND] [options]

  (no command)  the desktop app, or the headless server where Electron is not installed
  serve         the headless server               fleetvisor serve --no-demo --port 8080
  devices       list, add, edit, remove, import   fleetvisor devices ls --kind modbus.device
  act           an action on many devices         fleetvisor act tag:hall ping
  events        the event log                     fleetvisor events --device pump-7 --follow
  alarms        list, acknowledge, shelve         fleetvisor alarms ls --state unacked
  export        events, commands or telemetry     fleetvisor export events --format jsonl
  update        update one device                 fleetvisor update start pump-7 ad36f74d --wait
  rollout       update many, in waves             fleetvisor rollout create ad36f74d --waves "1,100%"
  firmware      sign and import images            fleetvisor firmware import image.bin --demo
  broker        broker accounts, Mosquitto files  fleetvisor broker devices

\`fleetvisor COMMAND --help\` gives a command's options and examples. devices, act, events,
alarms, export, update and rollout talk to the app running on the data folder (--data-dir DIR or
FLEETVISOR_DATA_DIR); firmware and broker work on the data folder itself. In a checkout, run it as
\`npx fleetvisor …\` (or \`npm link\` once, to have it on the PATH).

The app's options (fleetvisor, fleetvisor serve, npm start --):

`;
if (command === '--help' || command === '-h' || command === 'help') process.stdout.write(COMMANDS);
const args = tool
  ? [
      '--import',
      import.meta.resolve('tsx'),
      '--import',
      import.meta.resolve('./quiet-epipe.mjs'),
      join(root, 'src', ...tool),
      ...rest,
    ]
  : [
      start,
      ...(command === 'serve'
        ? ['--headless', ...rest]
        : command === 'help'
          ? ['--help']
          : process.argv.slice(2)),
    ];
const child = spawn(process.execPath, args, {
  // The app (not the tools, which would wait on it) gets a channel: it closes when this process
  // ends, even killed with -9, and the app then stops too (scripts/start.mjs, src/host/main.ts).
  stdio: tool ? 'inherit' : ['inherit', 'inherit', 'inherit', 'ipc'],
  cwd: tool ? process.cwd() : undefined,
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

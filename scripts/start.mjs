#!/usr/bin/env node
// `npm start`: the desktop app when Electron's binary is present; otherwise (as on machines that
// cannot download it) the headless app, which says so and logs the fleet's life.
// Arguments after `--` go to the app: `npm start -- --help`.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function electronBinary() {
  try {
    const dir = dirname(require.resolve('electron/package.json'));
    const pathFile = join(dir, 'path.txt');
    if (!existsSync(pathFile)) return undefined;
    const bin = join(dir, 'dist', readFileSync(pathFile, 'utf8').trim());
    return existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

const args = process.argv.slice(2);
const bin = electronBinary();
if (bin) {
  console.log(
    `fleetvisor: Electron found at ${bin}; the desktop shell arrives with the host issue, running headless.`,
  );
} else if (!args.includes('--help') && !args.includes('-h')) {
  console.log(
    "fleetvisor: Electron's binary is not installed here (it downloads on first use, which needs the internet);",
  );
  console.log('fleetvisor: starting headless instead.');
}

const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/host/main.ts'), ...args], {
  stdio: 'inherit',
  cwd: root,
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

#!/usr/bin/env node
// `npm start`: the desktop app when Electron's binary is present; otherwise (as on machines that
// cannot download it) the headless server, which prints the URL to open in a browser.
// `npm run serve` (or `fleetvisor serve`) always runs headless. Arguments after `--` go to the
// app: `npm start -- --help`. The renderer is built first when it is missing or older than its
// sources, so a fresh clone needs nothing else.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
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

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function ensureRenderer() {
  const index = join(root, 'renderer', 'dist', 'index.html');
  const sources = [
    join(root, 'renderer', 'src'),
    join(root, 'src', 'host', 'contract.ts'),
    join(root, 'src', 'host', 'contract'),
  ];
  const built = existsSync(index) ? statSync(index).mtimeMs : 0;
  const newest = Math.max(
    ...sources
      .filter(existsSync)
      .map((p) => (statSync(p).isDirectory() ? newestMtime(p) : statSync(p).mtimeMs)),
  );
  if (built >= newest) return;
  console.log('fleetvisor: building the renderer (once per change of its sources)…');
  const r = spawnSync(
    process.execPath,
    [
      join(root, 'node_modules', 'vite', 'bin', 'vite.js'),
      'build',
      '--config',
      'renderer/vite.config.ts',
      '--logLevel',
      'warn',
    ],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
  if (r.status !== 0)
    console.error('fleetvisor: the renderer did not build; the server will say so on its page.');
}

const args = process.argv.slice(2);
const headlessOnly = args[0] === '--headless';
const appArgs = headlessOnly ? args.slice(1) : args;
const help = appArgs.includes('--help') || appArgs.includes('-h');

if (!help) ensureRenderer();
const bin = headlessOnly || help ? undefined : electronBinary();
let child;
if (bin) {
  const built = spawnSync(process.execPath, [join(root, 'electron', 'build.mjs')], {
    cwd: root,
    stdio: 'inherit',
  });
  if (built.status !== 0) process.exit(built.status ?? 1);
  child = spawn(bin, [root, ...appArgs], { stdio: 'inherit', cwd: root });
} else {
  if (!headlessOnly && !help)
    console.log(
      "fleetvisor: Electron's binary is not installed (it downloads on first use, which needs the internet); starting the headless server instead.",
    );
  // An IPC channel, only so the app sees this launcher go (even killed with -9) and stops too.
  child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/host/main.ts'), ...appArgs], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    cwd: root,
  });
}
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
// Started by `fleetvisor serve` with a channel: its end (the launcher killed) stops the app.
if (process.channel) {
  process.channel.unref();
  process.once('disconnect', () => child.kill('SIGTERM'));
}
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

#!/usr/bin/env node
// `npm start`: runs the desktop app when Electron's binary is present, otherwise the headless
// server. Until the host exists (issue "The host"), it says what it will do and exits cleanly.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

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

const bin = electronBinary();
if (bin) {
  console.log(`fleetvisor: Electron found at ${bin}; the desktop shell arrives with the host issue.`);
} else {
  console.log(
    "fleetvisor: Electron's binary is not installed here (it downloads on first use, which needs the internet);",
  );
  console.log('fleetvisor: the headless server (`fleetvisor serve`) will start instead once the host lands.');
}
console.log(
  'fleetvisor: the runtime is in src/runtime; run `npm test` to see it work, `npm run bench` for figures.',
);

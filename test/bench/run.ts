/**
 * `npm run bench [-- NAME...]`: runs each suite `test/bench/<name>.bench.ts` in its own Node
 * process (with `--expose-gc`, so heap figures are measured after a full GC) and passes its
 * output through. Suites print one line per figure:
 *
 *   BENCH <suite>.<figure> <value> <unit> goal <op> <value>
 *
 * Figures are measured, never asserted: a slow machine prints a worse number, it does not fail.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const suites = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.replace(/\.bench\.ts$/, ''))
  .filter((name) => wanted.length === 0 || wanted.includes(name))
  .sort();

if (suites.length === 0) {
  console.error(`no bench suite matches ${wanted.join(', ')}; suites live in test/bench/*.bench.ts`);
  process.exit(2);
}

let failed = 0;
for (const suite of suites) {
  console.log(`# suite ${suite}`);
  const result = spawnSync(
    process.execPath,
    ['--expose-gc', '--max-old-space-size=8192', '--import', 'tsx', join(here, `${suite}.bench.ts`)],
    { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'production' } },
  );
  if (result.status !== 0) {
    failed++;
    console.error(`# suite ${suite} exited with ${result.status ?? result.signal}`);
  }
}
process.exit(failed === 0 ? 0 : 1);

/**
 * Packages a benchmark compares against but the app does not use (better-sqlite3 as the store's
 * speed reference): installed on first use into node_modules/.cache/fleetvisor-bench, not into
 * the project, so `npm ci` and the tests never build them (better-sqlite3 compiles for ~2 min).
 * Returns undefined, with the reason on stderr, when the install fails (no registry, no compiler):
 * the bench then prints its other figures.
 *
 * @example
 * const Database = benchDependency<typeof import('better-sqlite3')>('better-sqlite3', '12');
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CACHE = join(ROOT, 'node_modules', '.cache', 'fleetvisor-bench');

export function benchDependency<T>(name: string, range: string): T | undefined {
  const installed = join(CACHE, 'node_modules', name, 'package.json');
  if (!existsSync(installed)) {
    mkdirSync(CACHE, { recursive: true });
    console.log(`# installing ${name}@${range} for the benchmark (once; into ${CACHE})`);
    // Node's own headers when the system has them: a native build then needs no download.
    const env = existsSync('/usr/include/node/node.h')
      ? { ...process.env, npm_config_nodedir: '/usr' }
      : process.env;
    const r = spawnSync(
      'npm',
      [
        'install',
        '--no-save',
        '--no-package-lock',
        '--no-audit',
        '--no-fund',
        '--prefix',
        CACHE,
        `${name}@${range}`,
      ],
      { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    if (r.status !== 0 || !existsSync(installed)) {
      console.error(
        `# ${name}@${range} could not be installed: ${(r.stderr || r.stdout || '').trim().slice(-400)}`,
      );
      return undefined;
    }
  }
  try {
    return createRequire(join(CACHE, 'package.json'))(name) as T;
  } catch (error) {
    console.error(`# ${name} did not load: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}

/**
 * `fleetvisor --help` as a newcomer types it: every command the `fleetvisor` script runs is
 * listed with an example of its own, then the app's options; `fleetvisor help` says the same.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const SCRIPT = join(ROOT, 'scripts', 'fleetvisor.mjs');
const run = promisify(execFile);

/** The commands the script dispatches: its `tools` table, and `serve`. */
function dispatched(): string[] {
  const text = readFileSync(SCRIPT, 'utf8');
  const table = /const tools = \{([\s\S]*?)\n\};/.exec(text)?.[1] ?? '';
  return ['serve', ...[...table.matchAll(/^\s*(\w+): \[/gm)].map((m) => m[1]!)];
}

describe('fleetvisor --help', () => {
  it('lists every command with an example, then the app options', async () => {
    const { stdout } = await run(process.execPath, [SCRIPT, '--help'], { timeout: 30_000 });
    const commands = dispatched();
    expect(commands.length).toBeGreaterThanOrEqual(10);
    for (const command of commands) {
      const line = stdout.split('\n').find((l) => l.startsWith(`  ${command} `));
      expect(line, `a line for ${command}`).toBeDefined();
      expect(line).toContain(`fleetvisor ${command} `);
    }
    expect(stdout).toContain('npx fleetvisor');
    // The app's own options follow the commands.
    expect(stdout.indexOf('--mqtt-url')).toBeGreaterThan(stdout.indexOf('  broker '));
  });

  it('`fleetvisor help` prints the same', async () => {
    const [a, b] = await Promise.all([
      run(process.execPath, [SCRIPT, '--help'], { timeout: 30_000 }),
      run(process.execPath, [SCRIPT, 'help'], { timeout: 30_000 }),
    ]);
    expect(b.stdout).toBe(a.stdout);
  });
});

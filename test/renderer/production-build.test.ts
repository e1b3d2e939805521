/**
 * The production build (what the headless server and Electron serve) carries neither source maps
 * nor the simulated fleet behind `?fake=N` (issue 12 §6); `--mode fake` still has it, for the
 * browser tests and the UI bench.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const dirs: string[] = [];

async function build(mode: string[]): Promise<{ files: string[]; code: string }> {
  const outDir = await mkdtemp(join(tmpdir(), 'fleetvisor-prod-build-'));
  dirs.push(outDir);
  await promisify(execFile)(
    process.execPath,
    [
      join(ROOT, 'node_modules/vite/bin/vite.js'),
      'build',
      '--config',
      'renderer/vite.config.ts',
      ...mode,
      '--outDir',
      outDir,
      '--emptyOutDir',
      '--logLevel',
      'warn',
    ],
    { cwd: ROOT },
  );
  const files = (await readdir(outDir, { recursive: true })).map(String).sort();
  const js = files.filter((f) => f.endsWith('.js'));
  const code = (await Promise.all(js.map((f) => readFile(join(outDir, f), 'utf8')))).join('\n');
  return { files, code };
}

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('renderer builds', () => {
  it('production: no source maps, no simulated fleet', async () => {
    const { files, code } = await build([]);
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(files.filter((f) => /fake/i.test(f))).toEqual([]);
    expect(code).not.toContain('sourceMappingURL');
    // The fake client's own kinds; present only when its module is bundled.
    expect(code).not.toContain('acme.pump');
    expect(files.some((f) => f.endsWith('.js'))).toBe(true);
  }, 180_000);

  it('--mode fake: the simulated fleet is there, for tests and benches', async () => {
    const { files, code } = await build(['--mode', 'fake']);
    expect(files.some((f) => /fake-client.*\.js$/.test(f))).toBe(true);
    expect(code).toContain('acme.pump');
  }, 180_000);
});

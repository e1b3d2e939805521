/**
 * The production build (what the headless server and Electron serve) carries neither source maps
 * nor the simulated fleet behind `?fake=N` (issue 12 §6); `--mode fake` still has it, for the
 * browser tests and the UI bench.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildRenderer } from './serve-bundle.js';

const dirs: string[] = [];

async function build(mode: 'production' | 'fake'): Promise<{ files: string[]; code: string }> {
  const outDir = await mkdtemp(join(tmpdir(), 'fleetvisor-prod-build-'));
  dirs.push(outDir);
  await buildRenderer(outDir, mode === 'fake' ? { mode } : {});
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
    const { files, code } = await build('production');
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(files.filter((f) => /fake/i.test(f))).toEqual([]);
    expect(code).not.toContain('sourceMappingURL');
    // The fake client's own kinds; present only when its module is bundled.
    expect(code).not.toContain('acme.pump');
    expect(files.some((f) => f.endsWith('.js'))).toBe(true);
  }, 180_000);

  it('--mode fake: the simulated fleet is there, for tests and benches', async () => {
    const { files, code } = await build('fake');
    expect(files.some((f) => /fake-client.*\.js$/.test(f))).toBe(true);
    expect(code).toContain('acme.pump');
  }, 180_000);
});

/**
 * The Electron shell builds and typechecks without the Electron binary: `tsc -p
 * electron/tsconfig.json` checks main and preload against Electron's own types, and
 * electron/build.mjs bundles them (the preload into one CommonJS file that requires nothing but
 * `electron`, as a sandboxed preload must).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const require = createRequire(import.meta.url);
const out = mkdtempSync(join(tmpdir(), 'fleetvisor-electron-'));

afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('the Electron shell', () => {
  it('typechecks against Electron 45 types', { timeout: 180_000 }, () => {
    const tsc = require.resolve('typescript/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', 'electron/tsconfig.json', '--noEmit'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
  });

  it('bundles main (ESM) and a self-contained CommonJS preload', { timeout: 60_000 }, () => {
    const r = spawnSync(process.execPath, [join(root, 'electron', 'build.mjs'), '--outdir', out], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);

    const preload = readFileSync(join(out, 'preload.cjs'), 'utf8');
    const required = [...preload.matchAll(/require\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]);
    expect(required).toEqual(['electron']);
    expect(preload).not.toMatch(/\bimport\s|from\s*["']/);
    expect(preload).not.toMatch(/zod|node:/);
    expect(preload).toContain('exposeInMainWorld');
    expect(preload).toContain('fleetvisor:call');

    const main = readFileSync(join(out, 'main.mjs'), 'utf8');
    expect(main).toMatch(/from\s*"electron"/);
    expect(main).toMatch(/from\s*"sqlite3"/); // native modules stay external
    expect(main).not.toMatch(/require\(\s*"electron"\s*\)/);
  });
});

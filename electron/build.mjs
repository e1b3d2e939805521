#!/usr/bin/env node
/**
 * Bundles the Electron shell with esbuild into electron/dist/:
 *  - main.mjs: the main process (ESM, Node 22 as in Electron 45); node_modules stay external
 *    (sqlite3 and serialport are native, aedes is ESM-only) and load from node_modules at run time;
 *  - preload.cjs: the preload, as ONE CommonJS file, because a sandboxed preload can `require`
 *    only `electron` and a few built-ins, never a local file. Only `electron` stays external.
 *
 * Not wired into npm scripts here; run `node electron/build.mjs [--outdir DIR] [--minify]` (the
 * tests build into a temporary folder). The renderer is built separately (renderer/dist).
 *
 * @example
 * node electron/build.mjs && npx electron electron/dist/main.mjs
 */
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));

/** Builds both bundles into `outdir` (default electron/dist); resolves to their paths. */
export async function buildElectron({ outdir = join(here, 'dist'), minify = false } = {}) {
  const common = { bundle: true, sourcemap: 'linked', minify, logLevel: 'warning', legalComments: 'none' };
  const main = join(outdir, 'main.mjs');
  const preload = join(outdir, 'preload.cjs');
  await Promise.all([
    build({
      ...common,
      entryPoints: [join(here, 'main.ts')],
      outfile: main,
      platform: 'node',
      format: 'esm',
      target: 'node22',
      packages: 'external',
      external: ['electron'],
    }),
    build({
      ...common,
      entryPoints: [join(here, 'preload.ts')],
      outfile: preload,
      platform: 'node',
      format: 'cjs',
      target: 'chrome140',
      external: ['electron'],
    }),
  ]);
  return { main, preload };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const at = process.argv.indexOf('--outdir');
  const outdir = at > 0 ? process.argv[at + 1] : undefined;
  const out = await buildElectron({
    minify: process.argv.includes('--minify'),
    ...(outdir ? { outdir } : {}),
  });
  console.log(`electron: built ${out.main} and ${out.preload}`);
}

/** A tiny static server for a built renderer bundle, shared by the browser tests and the UI bench. */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve } from 'node:path';
import { promisify } from 'node:util';
import { contentTypeOf } from '../../src/host/content-types.js';

const ROOT = resolve(import.meta.dirname, '../..');

/**
 * Builds the renderer into `outDir` (vite, warnings only): the production build, or with
 * `mode: 'fake'` the one whose `?fake=N` runs a simulated fleet in the page; `sourcemap` adds source
 * maps to the production build (same code, for CPU profiles read by source file).
 */
export async function buildRenderer(
  outDir: string,
  options: { mode?: 'fake'; sourcemap?: boolean } = {},
): Promise<void> {
  await promisify(execFile)(
    process.execPath,
    [
      join(ROOT, 'node_modules/vite/bin/vite.js'),
      'build',
      '--config',
      'renderer/vite.config.ts',
      ...(options.mode ? ['--mode', options.mode] : []),
      ...(options.sourcemap ? ['--sourcemap'] : []),
      '--outDir',
      outDir,
      '--emptyOutDir',
      '--logLevel',
      'warn',
    ],
    { cwd: ROOT },
  );
}

/** Serves a folder; any path without a file extension gets index.html (so `/?fake=5000` works). */
export async function serveBundle(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    void (async () => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const file = normalize(join(dir, extname(path) ? path : '/index.html'));
      if (!file.startsWith(dir)) {
        res.writeHead(403).end();
        return;
      }
      try {
        const body = await readFile(file);
        res.writeHead(200, { 'Content-Type': contentTypeOf(file) }).end(body);
      } catch {
        res.writeHead(404).end('not found');
      }
    })();
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

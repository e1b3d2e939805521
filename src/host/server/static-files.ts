/**
 * The built renderer's files over `GET`/`HEAD`: no listing, no traversal (the real path must stay
 * inside the root), `/assets/` cached for good, HTML never; without a built renderer, `/` is a
 * page saying how to build it.
 *
 * @example
 * await serveStatic({ root: resolve('renderer/dist'), buildHint: 'npm run build:renderer' }, req, res, '/');
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { contentTypeOf } from '../content-types.js';
import { realPathWithin, staticPathFor } from '../security.js';
import { CALL_PATH, STREAM_PATH } from './calls.js';
import { sendText } from './responses.js';

export interface StaticSite {
  /** The built renderer, resolved; undefined: none configured (`/` explains). */
  readonly root: string | undefined;
  /** The build command shown on the "not built" page. */
  readonly buildHint: string;
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

const notBuiltPage = (site: StaticSite): string => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fleetvisor: renderer not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em}code{background:#eee;padding:.1em .3em}</style>
</head><body>
<h1>Fleetvisor is running, but its user interface is not built</h1>
<p>The server found no built renderer${site.root === undefined ? '' : ` in <code>${escapeHtml(site.root)}</code>`}.</p>
<p>Build it with <code>${escapeHtml(site.buildHint)}</code>, then reload this page (the server need not restart).</p>
<p>The API answers meanwhile: <code>POST ${CALL_PATH}</code> and the WebSocket <code>${STREAM_PATH}</code>, with the token from the link Fleetvisor printed.</p>
</body></html>
`;

export async function serveStatic(
  site: StaticSite,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  const staticRoot = site.root;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendText(res, 405, 'Method not allowed\n', { Allow: 'GET, HEAD' });
    return;
  }
  const wanted = path === '/' ? '/index.html' : path;
  const file = staticRoot === undefined ? null : staticPathFor(staticRoot, wanted);
  if (staticRoot !== undefined && file === null) {
    sendText(res, 400, 'Bad path\n');
    return;
  }
  const info = file === null ? null : await stat(file).catch(() => null);
  if (file === null || info === null || !info.isFile() || !(await realPathWithin(staticRoot ?? '/', file))) {
    if (wanted === '/index.html') {
      const page = notBuiltPage(site);
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Length': Buffer.byteLength(page),
        'Cache-Control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : page);
      return;
    }
    sendText(res, 404, 'Not found\n');
    return;
  }
  const ext = extname(file).toLowerCase();
  const cache =
    ext === '.html'
      ? 'no-store'
      : wanted.startsWith('/assets/')
        ? 'public, max-age=31536000, immutable'
        : 'no-cache';
  res.writeHead(200, {
    'Content-Type': contentTypeOf(ext),
    'Content-Length': info.size,
    'Cache-Control': cache,
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  await pipeline(createReadStream(file), res).catch(() => res.destroy());
}

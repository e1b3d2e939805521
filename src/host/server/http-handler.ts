/**
 * The headless server's HTTP requests, in the order they are checked: the exact Host allowlist
 * before anything else (421), the security headers on every response, then the route —
 * `POST /api/call`, `GET /api/export/…`, `/api/stream` (426: it is a WebSocket), other `/api/`
 * (404) and the renderer's static files. Calls and exports are refused cross-site
 * (`Sec-Fetch-Site`), from a foreign Origin, or without the bearer token (wrong ones
 * rate-limited), before their body is read; bodies are capped.
 *
 * @example
 * const onRequest = createRequestHandler({ gate, invoke, maxBodyBytes, exports, site });
 * createServer(onRequest);
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ExportReader } from '../../store/sqlite-export.js';
import { StoreError } from '../../store/store.js';
import { parseExportRequest, streamExport } from '../export.js';
import {
  bearerToken,
  hostAllowed,
  jsonDeeperThan,
  MAX_ARGS_DEPTH,
  originAllowed,
  securityHeaders,
} from '../security.js';
import type { Gate } from './auth.js';
import { checkToken } from './auth.js';
import type { Invoke } from './calls.js';
import { CALL_PATH, CLIENT_HEADER, EXPORT_PREFIX, failure, isObject, STREAM_PATH, tooDeep } from './calls.js';
import { closeAfter, refuseHost, sendJson, sendText } from './responses.js';
import type { StaticSite } from './static-files.js';
import { serveStatic } from './static-files.js';

export interface HttpSettings {
  readonly gate: Gate;
  readonly invoke: Invoke;
  /** Largest `POST /api/call` body, read only after the token is checked. */
  readonly maxBodyBytes: number;
  /** Served at `GET /api/export/…`; undefined: that route is 404. */
  readonly exports: ExportReader | undefined;
  readonly site: StaticSite;
}

/** The `request` listener of every HTTP listener of one server. */
export function createRequestHandler(
  http: HttpSettings,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => onRequest(http, req, res);
}

function onRequest(http: HttpSettings, req: IncomingMessage, res: ServerResponse): void {
  const host = req.headers.host;
  if (!hostAllowed(http.gate.names, host)) {
    refuseHost(res);
    return;
  }
  for (const [key, value] of Object.entries(securityHeaders((host ?? '').toLowerCase())))
    res.setHeader(key, value);
  const raw = req.url ?? '';
  if (!raw.startsWith('/')) {
    sendText(res, 400, 'Bad request target\n', { Connection: 'close' });
    return;
  }
  const query = raw.indexOf('?');
  const path = query < 0 ? raw : raw.slice(0, query);
  let work: Promise<void>;
  if (path === CALL_PATH) work = handleCall(http, req, res);
  else if (path.startsWith(EXPORT_PREFIX))
    work = handleExport(http, req, res, path, query < 0 ? '' : raw.slice(query + 1));
  else if (path === STREAM_PATH) {
    sendText(res, 426, 'Upgrade required: this is a WebSocket\n', { Upgrade: 'websocket' });
    return;
  } else if (path.startsWith('/api/')) {
    sendJson(res, 404, failure('notFound', 'no such endpoint'));
    return;
  } else work = serveStatic(http.site, req, res, path);
  work.catch((error: unknown) => {
    http.gate.logger.error('request failed', { path, error: (error as Error)?.message });
    if (!res.headersSent) sendJson(res, 500, failure('internal', 'internal error'), true);
    else res.destroy();
  });
}

function readBody(req: IncomingMessage, maxBodyBytes: number): Promise<Buffer | 'tooLarge'> {
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > maxBodyBytes) {
        done = true;
        chunks.length = 0;
        resolveBody('tooLarge');
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolveBody(Buffer.concat(chunks));
    });
    req.on('error', (error) => {
      if (done) return;
      done = true;
      reject(error);
    });
    req.on('close', () => {
      if (done) return;
      done = true;
      reject(new Error('request closed before its end'));
    });
  });
}

/**
 * The caller checks of every authenticated HTTP endpoint (`/api/call`, `/api/export/…`): no
 * cross-site fetch, no foreign Origin, the bearer token (wrong ones rate-limited). Answers and
 * returns false when the caller is refused.
 */
function admitted(gate: Gate, req: IncomingMessage, res: ServerResponse): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    sendJson(res, 403, failure('notAllowed', 'cross-site request refused'), true);
    closeAfter(req, res);
    return false;
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !originAllowed(gate.names, origin)) {
    sendJson(res, 403, failure('notAllowed', 'foreign origin refused'), true);
    closeAfter(req, res);
    return false;
  }
  const given = bearerToken(req.headers.authorization);
  if (given === null) {
    sendJson(res, 401, failure('unauthorized', 'missing token (Authorization: Bearer …)'), true);
    closeAfter(req, res);
    return false;
  }
  const verdict = checkToken(gate, given);
  if (verdict === 'limited') {
    sendJson(res, 429, failure('unauthorized', 'too many wrong tokens; try again later'), true);
    closeAfter(req, res);
    return false;
  }
  if (verdict === 'wrong') {
    gate.logger.warn('refused a call with a wrong token', { remote: req.socket.remoteAddress });
    sendJson(res, 401, failure('unauthorized', 'wrong token'), true);
    closeAfter(req, res);
    return false;
  }
  return true;
}

async function handleCall(http: HttpSettings, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const maxBodyBytes = http.maxBodyBytes;
  if (req.method !== 'POST') {
    res.setHeader('Allow', 'POST');
    sendJson(res, 405, failure('badRequest', 'use POST'), true);
    return;
  }
  if (!admitted(http.gate, req, res)) return;
  const type = req.headers['content-type'];
  if (type === undefined || !/^application\/json\s*(;\s*charset="?utf-8"?\s*)?$/i.test(type)) {
    sendJson(res, 415, failure('badRequest', 'Content-Type must be application/json'), true);
    closeAfter(req, res);
    return;
  }
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (Number.isFinite(declared) && declared > maxBodyBytes) {
    sendJson(res, 413, failure('badRequest', `body over ${maxBodyBytes} bytes`), true);
    closeAfter(req, res);
    return;
  }
  const body = await readBody(req, maxBodyBytes);
  if (body === 'tooLarge') {
    sendJson(res, 413, failure('badRequest', `body over ${maxBodyBytes} bytes`), true);
    closeAfter(req, res);
    return;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    sendJson(res, 400, failure('badRequest', 'body is not JSON'));
    return;
  }
  if (!isObject(parsed) || typeof parsed.method !== 'string') {
    sendJson(res, 400, failure('badRequest', 'expected { "method": string, "args": object }'));
    return;
  }
  if (jsonDeeperThan(parsed.args, MAX_ARGS_DEPTH)) {
    sendJson(res, 400, tooDeep());
    return;
  }
  const via = req.headers[CLIENT_HEADER] === 'cli' ? 'cli' : undefined;
  const envelope = await http.invoke(parsed.method, parsed.args, via);
  sendJson(res, 200, envelope);
}

async function handleExport(
  http: HttpSettings,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  query: string,
): Promise<void> {
  if (req.method !== 'GET') {
    res.setHeader('Allow', 'GET');
    sendJson(res, 405, failure('badRequest', 'use GET'), true);
    return;
  }
  if (!admitted(http.gate, req, res)) return;
  if (http.exports === undefined) {
    sendJson(res, 404, failure('notFound', 'this server offers no export'));
    return;
  }
  const request = parseExportRequest(path.slice(EXPORT_PREFIX.length), new URLSearchParams(query));
  if (!request.ok) {
    sendJson(res, 400, failure('badRequest', request.error.message));
    return;
  }
  const logger = http.gate.logger;
  try {
    const result = await streamExport(http.exports, request.value, res);
    if (result.outcome === 'failed')
      logger.error('export failed while streaming', {
        kind: request.value.kind,
        bytes: result.bytes,
        error: (result.error as Error)?.message,
      });
    else
      logger.debug('export streamed', {
        kind: request.value.kind,
        outcome: result.outcome,
        bytes: result.bytes,
      });
  } catch (error) {
    if (error instanceof StoreError && error.code === 'invalidArgument')
      sendJson(res, 400, failure('badRequest', error.message));
    else throw error;
  }
}

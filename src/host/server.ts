/**
 * The headless transport: serves the built renderer and the one {@link HostApi} over HTTP and a
 * WebSocket on the loopback interface, hardened for a browser on the same machine.
 *
 * - `GET /…`: the renderer's static files (no listing, no traversal, CSP and nosniff on every
 *   response); without a built renderer, `/` explains how to build it.
 * - `POST /api/call` with `{ method, args }` and `Authorization: Bearer <token>` → the
 *   {@link Envelope} as JSON (200 for ok and error envelopes; 401 without the token; 413 past
 *   the body limit; 400 for non-JSON; 415 for a non-JSON content type).
 * - `GET /api/export/<events|commands|telemetry>?format=csv|jsonl&from=&to=&device=…` with the
 *   same bearer token and checks as calls → the rows as a streamed CSV or JSON Lines attachment
 *   (src/host/export.ts; 400 for a bad parameter, 404 when the server was given no `exports`).
 * - `GET /api/stream` (WebSocket): first message `{ "type": "auth", "token": "…" }` within 5 s
 *   (else closed 4401); then pushes ({@link PushMessage}) and calls
 *   `{ "type": "call", "id": 1, "method", "args" }` → `{ "type": "reply", "id": 1, "envelope" }`.
 *
 * Security (see reliability.md (c) "Headless localhost HTTP/WebSocket server"): binds
 * 127.0.0.1 and ::1 only (random port by default); a per-launch 256-bit token, passed to the
 * browser in the URL fragment and then only as a header or the socket's first message, compared
 * in constant time and never logged; an exact Host allowlist before anything else (DNS
 * rebinding → 421); an exact Origin allowlist on the upgrade (a missing Origin is refused);
 * cross-site `Sec-Fetch-Site` and foreign `Origin` refused on calls; no CORS headers; a rate
 * limit on wrong tokens; capped body and message sizes; request and auth timeouts; a heartbeat;
 * and a bound on what one client may have buffered: {@link StreamSink.congested} turns true past
 * `maxBufferedBytes`, and a client whose backlog still reaches `hardBufferedBytes` is dropped
 * (it reconnects and gets a fresh snapshot) rather than buffered for without bound.
 *
 * @example
 * const server = await startServer({ api: createHostApi(app), staticDir: 'renderer/dist', logger });
 * console.log(`Open ${server.url}`);   // http://127.0.0.1:41234/#token=… (print it; never log it)
 * // later
 * await server.close();
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RawData } from 'ws';
import { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../runtime/runtime.js';
import { silentLogger } from '../runtime/runtime.js';
import type { ExportReader } from '../store/sqlite-export.js';
import { StoreError } from '../store/store.js';
import { contentTypeOf } from './content-types.js';
import type { ApiError, Envelope, HostApi, PushMessage, StreamSink } from './contract.js';
import { parseExportRequest, streamExport } from './export.js';
import type { AllowedNames } from './security.js';
import {
  allowedNames,
  bearerToken,
  createAuthLimiter,
  generateToken,
  hostAllowed,
  hostForUrl,
  isLoopbackHost,
  isWildcardHost,
  jsonDeeperThan,
  MAX_ARGS_DEPTH,
  originAllowed,
  realPathWithin,
  securityHeaders,
  staticPathFor,
  tokensEqual,
} from './security.js';

export interface ServerOptions {
  readonly api: HostApi;
  /** The store's export readers, served at `GET /api/export/…`; without them that route is 404. */
  readonly exports?: ExportReader;
  /** Where to listen. Default: 127.0.0.1 and ::1 (two listeners). A non-loopback host is warned about. */
  readonly host?: string;
  /** Default 0: a free port. */
  readonly port?: number;
  /** The built renderer (index.html and assets). Missing: `/` says how to build it. */
  readonly staticDir?: string;
  /** The secret; default 32 random bytes (base64url), fresh per start. At least 16 characters. */
  readonly token?: string;
  /** Largest `POST /api/call` body (read only after the token is checked); default 12 MiB, room for a firmware image. */
  readonly maxBodyBytes?: number;
  /**
   * Largest incoming WebSocket message of an authenticated socket; default 12 MiB, room for a
   * firmware import (an 8 MiB image in base64). Larger: closed with 1009. A socket that has not
   * authenticated yet may send at most {@link MAX_UNAUTHENTICATED_MESSAGE_BYTES}.
   */
  readonly maxMessageBytes?: number;
  /** Backlog past which {@link StreamSink.congested} is true; default 4 MiB. */
  readonly maxBufferedBytes?: number;
  /** Backlog at which a client is dropped instead of sent to; default 4 × maxBufferedBytes. */
  readonly hardBufferedBytes?: number;
  /** WebSocket ping interval; a socket that did not answer the previous ping is closed. Default 15 s. */
  readonly heartbeatMs?: number;
  /**
   * Time a client has to send a request's headers, and its whole request; defaults 10 s and 30 s.
   * Past them the connection is answered 408 and closed, within a second of the time (Node checks
   * every 30 s unless told otherwise).
   */
  readonly headersTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  /** Time a new socket has to authenticate; default 5 s. */
  readonly authTimeoutMs?: number;
  /** Most authenticated WebSocket connections at once; default 32. */
  readonly maxConnections?: number;
  /**
   * Most sockets waiting for their auth message at once; default 8 (more: 503). A client that
   * offers the token as the subprotocol `fleetvisor.token.<token>` (the UI does) is authenticated
   * at the upgrade and never waits among them, so sockets that never authenticate cannot starve it.
   */
  readonly maxUnauthenticated?: number;
  /** Most unanswered calls per socket; default 64 (more: `unavailable`). */
  readonly maxCallsInFlight?: number;
  /** The actor passed to {@link HostApi.call}; default 'operator'. */
  readonly actor?: string;
  /** Shown on the "not built" page; default 'npm run build:renderer'. */
  readonly buildHint?: string;
  readonly logger?: Logger;
}

export interface RunningServer {
  /** What to open: `http://127.0.0.1:PORT/#token=…`. Contains the secret: print it, don't log it. */
  readonly url: string;
  /** `http://127.0.0.1:PORT` (or the explicit host). */
  readonly origin: string;
  readonly port: number;
  readonly token: string;
  /** Stops accepting, closes sockets (1001) and streams. Idempotent. */
  close(): Promise<void>;
}

/** The close codes the server uses besides the standard ones. */
export const CLOSE_UNAUTHORIZED = 4401;
/** Dropped because the client did not keep up (it should reconnect for a fresh snapshot). */
export const CLOSE_TOO_SLOW = 4408;
/**
 * Closed for now, not for good: wrong tokens are being rate-limited, or an unauthenticated socket
 * made room for a newer one. A client retries with backoff.
 */
export const CLOSE_RATE_LIMITED = 4429;

const MiB = 1024 * 1024;
/** The most an unauthenticated socket may send in one message (its auth message is tiny). */
export const MAX_UNAUTHENTICATED_MESSAGE_BYTES = 16 * 1024;
const STREAM_PATH = '/api/stream';
/** The WebSocket subprotocol of the stream; the token may ride along as `fleetvisor.token.<token>`. */
export const STREAM_PROTOCOL = 'fleetvisor';
const TOKEN_PROTOCOL_PREFIX = 'fleetvisor.token.';

/** The token offered as a subprotocol (`Sec-WebSocket-Protocol: fleetvisor, fleetvisor.token.<token>`). */
function offeredToken(header: string | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  for (const p of header.split(',')) {
    const v = p.trim();
    if (v.startsWith(TOKEN_PROTOCOL_PREFIX)) return v.slice(TOKEN_PROTOCOL_PREFIX.length);
  }
  return undefined;
}
const CALL_PATH = '/api/call';
const EXPORT_PREFIX = '/api/export/';

interface Connection {
  readonly ws: WebSocket;
  alive: boolean;
  authed: boolean;
  inFlight: number;
  authTimer: NodeJS.Timeout | undefined;
  closeStream: (() => void) | undefined;
}

function failure(code: ApiError['code'], message: string): Envelope<never> {
  return { ok: false, error: { code, message } };
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An Origin header as it may be logged: its parsed origin only (no path, no control characters). */
function originForLog(origin: string | undefined): string {
  if (origin === undefined) return '(none)';
  try {
    const parsed = new URL(origin).origin;
    return parsed === 'null' ? 'null' : parsed.slice(0, 100);
  } catch {
    return '(malformed)';
  }
}

/** A logger that never writes the secret, whatever a field happens to hold (belt and braces). */
function redacting(logger: Logger, secret: string): Logger {
  const clean = (value: unknown): unknown => {
    if (typeof value === 'string')
      return value.includes(secret) ? value.split(secret).join('[redacted]') : value;
    if (value instanceof Error) return clean(value.message);
    if (Array.isArray(value)) return value.map(clean);
    return value;
  };
  const wrap =
    (write: Logger['info']) =>
    (message: string, fields?: Record<string, unknown>): void => {
      const safe = fields && Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, clean(v)]));
      write(clean(message) as string, safe);
    };
  return {
    debug: wrap(logger.debug.bind(logger)),
    info: wrap(logger.info.bind(logger)),
    warn: wrap(logger.warn.bind(logger)),
    error: wrap(logger.error.bind(logger)),
  };
}

/** Starts the server; resolves once it listens. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const api = options.api;
  const token = options.token ?? generateToken();
  if (token.length < 16 || !/^[\x21-\x7e]+$/.test(token))
    throw new Error('the server token must be at least 16 printable ASCII characters, without spaces');
  const logger = redacting(options.logger ?? silentLogger, token);
  const maxBodyBytes = options.maxBodyBytes ?? 12 * MiB;
  const maxMessageBytes = options.maxMessageBytes ?? 12 * MiB;
  const maxBufferedBytes = options.maxBufferedBytes ?? 4 * MiB;
  const hardBufferedBytes = Math.max(options.hardBufferedBytes ?? 4 * maxBufferedBytes, maxBufferedBytes);
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const authTimeoutMs = options.authTimeoutMs ?? 5_000;
  const maxConnections = options.maxConnections ?? 32;
  const maxUnauthenticated = options.maxUnauthenticated ?? 8;
  const maxCallsInFlight = options.maxCallsInFlight ?? 64;
  const actor = options.actor ?? 'operator';
  const buildHint = options.buildHint ?? 'npm run build:renderer';
  const staticRoot = options.staticDir === undefined ? undefined : resolve(options.staticDir);
  const explicitHost = options.host !== undefined && options.host !== 'localhost' ? options.host : undefined;

  const limiter = createAuthLimiter();
  const connections = new Set<Connection>();
  let names: AllowedNames = allowedNames({ port: 0 });
  let closing = false;

  // ------------------------------------------------------------------------------------------
  // HTTP

  const refuseHost = (res: ServerResponse): void => {
    res.writeHead(421, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'close',
    });
    res.end('Misdirected request: unknown Host\n');
  };

  const sendJson = (res: ServerResponse, status: number, body: unknown, close = false): void => {
    if (res.headersSent) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
      'Cache-Control': 'no-store',
      ...(close ? { Connection: 'close' } : {}),
    });
    res.end(text);
  };

  const sendText = (
    res: ServerResponse,
    status: number,
    text: string,
    extra: Record<string, string> = {},
  ) => {
    res.writeHead(status, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
      'Cache-Control': 'no-store',
      ...extra,
    });
    res.end(text);
  };

  const readBody = (req: IncomingMessage): Promise<Buffer | 'tooLarge'> =>
    new Promise((resolveBody, reject) => {
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

  /** Ends a connection whose request body we will not read, after the response has gone out. */
  const closeAfter = (req: IncomingMessage, res: ServerResponse): void => {
    res.on('finish', () => {
      setTimeout(() => req.socket.destroy(), 5_000).unref();
    });
  };

  /**
   * The caller checks of every authenticated HTTP endpoint (`/api/call`, `/api/export/…`): no
   * cross-site fetch, no foreign Origin, the bearer token (wrong ones rate-limited). Answers and
   * returns false when the caller is refused.
   */
  const admitted = (req: IncomingMessage, res: ServerResponse): boolean => {
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      sendJson(res, 403, failure('notAllowed', 'cross-site request refused'), true);
      closeAfter(req, res);
      return false;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !originAllowed(names, origin)) {
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
    // The right token first, the limiter after: wrong tokens cannot lock the operator out.
    if (!tokensEqual(given, token)) {
      if (!limiter.allow()) {
        sendJson(res, 429, failure('unauthorized', 'too many wrong tokens; try again later'), true);
        closeAfter(req, res);
        return false;
      }
      limiter.fail();
      logger.warn('refused a call with a wrong token', { remote: req.socket.remoteAddress });
      sendJson(res, 401, failure('unauthorized', 'wrong token'), true);
      closeAfter(req, res);
      return false;
    }
    return true;
  };

  const handleCall = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      sendJson(res, 405, failure('badRequest', 'use POST'), true);
      return;
    }
    if (!admitted(req, res)) return;
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
    const body = await readBody(req);
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
    const envelope = await invoke(parsed.method, parsed.args);
    sendJson(res, 200, envelope);
  };

  const handleExport = async (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    query: string,
  ): Promise<void> => {
    if (req.method !== 'GET') {
      res.setHeader('Allow', 'GET');
      sendJson(res, 405, failure('badRequest', 'use GET'), true);
      return;
    }
    if (!admitted(req, res)) return;
    if (options.exports === undefined) {
      sendJson(res, 404, failure('notFound', 'this server offers no export'));
      return;
    }
    const request = parseExportRequest(path.slice(EXPORT_PREFIX.length), new URLSearchParams(query));
    if (!request.ok) {
      sendJson(res, 400, failure('badRequest', request.error.message));
      return;
    }
    try {
      const result = await streamExport(options.exports, request.value, res);
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
  };

  const tooDeep = (): Envelope<never> =>
    failure('badRequest', `args nest deeper than ${MAX_ARGS_DEPTH} levels`);

  const invoke = async (method: string, args: unknown): Promise<Envelope<unknown>> => {
    if (jsonDeeperThan(args, MAX_ARGS_DEPTH)) return tooDeep();
    try {
      return await api.call(method, args ?? {}, { actor });
    } catch (error) {
      logger.error('api call threw', { method, error: (error as Error)?.message });
      return failure('internal', 'internal error');
    }
  };

  const notBuiltPage = (): string => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fleetvisor: renderer not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em}code{background:#eee;padding:.1em .3em}</style>
</head><body>
<h1>Fleetvisor is running, but its user interface is not built</h1>
<p>The server found no built renderer${staticRoot === undefined ? '' : ` in <code>${escapeHtml(staticRoot)}</code>`}.</p>
<p>Build it with <code>${escapeHtml(buildHint)}</code>, then reload this page (the server need not restart).</p>
<p>The API answers meanwhile: <code>POST ${CALL_PATH}</code> and the WebSocket <code>${STREAM_PATH}</code>, with the token from the link Fleetvisor printed.</p>
</body></html>
`;

  const handleStatic = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
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
    if (
      file === null ||
      info === null ||
      !info.isFile() ||
      !(await realPathWithin(staticRoot ?? '/', file))
    ) {
      if (wanted === '/index.html') {
        const page = notBuiltPage();
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
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const host = req.headers.host;
    if (!hostAllowed(names, host)) {
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
    if (path === CALL_PATH) work = handleCall(req, res);
    else if (path.startsWith(EXPORT_PREFIX))
      work = handleExport(req, res, path, query < 0 ? '' : raw.slice(query + 1));
    else if (path === STREAM_PATH) {
      sendText(res, 426, 'Upgrade required: this is a WebSocket\n', { Upgrade: 'websocket' });
      return;
    } else if (path.startsWith('/api/')) {
      sendJson(res, 404, failure('notFound', 'no such endpoint'));
      return;
    } else work = handleStatic(req, res, path);
    work.catch((error: unknown) => {
      logger.error('request failed', { path, error: (error as Error)?.message });
      if (!res.headersSent) sendJson(res, 500, failure('internal', 'internal error'), true);
      else res.destroy();
    });
  };

  // ------------------------------------------------------------------------------------------
  // WebSocket

  const wss = new WebSocketServer({
    noServer: true,
    // The UI offers ['fleetvisor', 'fleetvisor.token.<token>']: answer with the plain one, never echo the secret.
    handleProtocols: (protocols: Set<string>) => (protocols.has(STREAM_PROTOCOL) ? STREAM_PROTOCOL : false),
    maxPayload: maxMessageBytes,
    perMessageDeflate: false,
    clientTracking: false,
  });

  const refuseUpgrade = (socket: Duplex, status: number, reason: string): void => {
    const body = `${reason}\n`;
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    setTimeout(() => socket.destroy(), 1_000).unref();
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => {});
    if (!hostAllowed(names, req.headers.host)) {
      refuseUpgrade(socket, 421, 'Misdirected Request');
      return;
    }
    const raw = req.url ?? '';
    const query = raw.indexOf('?');
    const path = query < 0 ? raw : raw.slice(0, query);
    if (path !== STREAM_PATH) {
      refuseUpgrade(socket, 404, 'Not Found');
      return;
    }
    if (!originAllowed(names, req.headers.origin)) {
      logger.warn('refused a WebSocket from a foreign or missing origin', {
        origin: originForLog(req.headers.origin),
      });
      refuseUpgrade(socket, 403, 'Forbidden');
      return;
    }
    const offered = offeredToken(req.headers['sec-websocket-protocol']);
    let preAuthed = false;
    if (offered !== undefined) {
      if (tokensEqual(offered, token)) preAuthed = true;
      else {
        const limited = !limiter.allow();
        if (!limited) limiter.fail();
        logger.warn('refused a WebSocket with a wrong token');
        refuseUpgrade(socket, limited ? 429 : 401, limited ? 'Too Many Requests' : 'Unauthorized');
        return;
      }
    }
    let authed = 0;
    for (const c of connections) if (c.authed) authed++;
    const full = preAuthed ? authed >= maxConnections : connections.size - authed >= maxUnauthenticated;
    if (closing || full) {
      refuseUpgrade(socket, 503, 'Service Unavailable');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = onConnection(ws);
      if (preAuthed) onAuth(conn, { type: 'auth', token });
    });
  };

  /** Sends unless the client's backlog is already past the hard bound; then drops the client. */
  const transmit = (conn: Connection, text: string): void => {
    const ws = conn.ws;
    if (ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > hardBufferedBytes) {
      logger.warn('dropped a WebSocket client that does not keep up', { bufferedBytes: ws.bufferedAmount });
      endStream(conn);
      ws.terminate();
      return;
    }
    ws.send(text);
  };

  const endStream = (conn: Connection): void => {
    const close = conn.closeStream;
    conn.closeStream = undefined;
    if (close === undefined) return;
    try {
      close();
    } catch (error) {
      logger.error('closing a stream threw', { error: (error as Error)?.message });
    }
  };

  const onAuth = (conn: Connection, message: unknown): void => {
    const ws = conn.ws;
    const given = isObject(message) && message.type === 'auth' ? message.token : undefined;
    if (typeof given !== 'string') {
      ws.close(CLOSE_UNAUTHORIZED, 'unauthorized: send { type: "auth", token } first');
      return;
    }
    if (!tokensEqual(given, token)) {
      if (!limiter.allow()) {
        // Not final: a client should retry later (the right token is never limited).
        ws.close(CLOSE_RATE_LIMITED, 'too many wrong tokens; retry later');
        return;
      }
      limiter.fail();
      logger.warn('refused a WebSocket with a wrong token');
      ws.close(CLOSE_UNAUTHORIZED, 'unauthorized');
      return;
    }
    conn.authed = true;
    clearTimeout(conn.authTimer);
    conn.authTimer = undefined;
    const sink: StreamSink = {
      send(push: PushMessage) {
        transmit(conn, JSON.stringify(push));
      },
      congested() {
        return ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > maxBufferedBytes;
      },
    };
    try {
      const close = api.openStream(sink);
      if (ws.readyState === WebSocket.OPEN) conn.closeStream = close;
      else close();
    } catch (error) {
      logger.error('opening a stream threw', { error: (error as Error)?.message });
      ws.close(1011, 'internal error');
    }
  };

  const onCall = (conn: Connection, message: Record<string, unknown>): void => {
    const id = message.id;
    const validId =
      (typeof id === 'number' && Number.isSafeInteger(id)) || (typeof id === 'string' && id.length <= 64);
    if (!validId || typeof message.method !== 'string') {
      conn.ws.close(1008, 'a call needs a numeric id and a method');
      return;
    }
    if (conn.inFlight >= maxCallsInFlight) {
      transmit(
        conn,
        JSON.stringify({ type: 'reply', id, envelope: failure('unavailable', 'too many calls in flight') }),
      );
      return;
    }
    conn.inFlight += 1;
    void invoke(message.method, message.args).then((envelope) => {
      conn.inFlight -= 1;
      transmit(conn, JSON.stringify({ type: 'reply', id, envelope }));
    });
  };

  const onConnection = (ws: WebSocket): Connection => {
    const conn: Connection = {
      ws,
      alive: true,
      authed: false,
      inFlight: 0,
      authTimer: undefined,
      closeStream: undefined,
    };
    connections.add(conn);
    conn.authTimer = setTimeout(() => {
      if (!conn.authed) ws.close(CLOSE_UNAUTHORIZED, 'unauthorized: no auth message in time');
    }, authTimeoutMs);
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('error', (error) => {
      logger.debug('websocket error', { error: error.message });
    });
    ws.on('close', () => {
      clearTimeout(conn.authTimer);
      endStream(conn);
      connections.delete(conn);
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) {
        ws.close(1003, 'text messages only');
        return;
      }
      if (!conn.authed && rawSize(data) > MAX_UNAUTHENTICATED_MESSAGE_BYTES) {
        ws.close(1009, 'authenticate first');
        return;
      }
      let message: unknown;
      try {
        message = JSON.parse(data.toString());
      } catch {
        ws.close(1007, 'messages must be JSON');
        return;
      }
      if (!conn.authed) {
        onAuth(conn, message);
        return;
      }
      // Authenticated at the upgrade already, a client may still send its auth message: harmless.
      if (isObject(message) && message.type === 'auth' && tokensEqual(message.token as string, token)) return;
      if (isObject(message) && message.type === 'call') onCall(conn, message);
      else ws.close(1008, 'unexpected message');
    });
    return conn;
  };

  const heartbeat = setInterval(() => {
    for (const conn of connections) {
      if (!conn.alive) {
        logger.debug('closed a WebSocket that stopped answering pings');
        endStream(conn);
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      try {
        conn.ws.ping();
      } catch {
        conn.ws.terminate();
      }
    }
  }, heartbeatMs);
  heartbeat.unref();

  // ------------------------------------------------------------------------------------------
  // Listening

  const makeServer = (): Server => {
    const server = createServer(
      {
        maxHeaderSize: 16 * 1024,
        headersTimeout: options.headersTimeoutMs ?? 10_000,
        requestTimeout: options.requestTimeoutMs ?? 30_000,
        // How often Node looks for connections past those times; its default (30 s) let a slow
        // client hold a connection up to 30 s past the configured cut-off.
        connectionsCheckingInterval: 500,
      },
      onRequest,
    );
    server.keepAliveTimeout = 5_000;
    server.on('upgrade', onUpgrade);
    server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
      const slow = error.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      if (socket.writable)
        socket.end(
          slow
            ? 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n'
            : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n',
        );
      else socket.destroy();
    });
    return server;
  };

  const listen = (server: Server, port: number, host: string): Promise<number> =>
    new Promise((done, fail) => {
      const onError = (error: Error) => {
        server.off('listening', onListening);
        fail(error);
      };
      const onListening = () => {
        server.off('error', onError);
        done((server.address() as AddressInfo).port);
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen({ port, host, exclusive: true });
    });

  const shut = (server: Server): Promise<void> =>
    new Promise((done) => {
      if (!server.listening) {
        done();
        return;
      }
      server.close(() => done());
      server.closeAllConnections();
    });

  const servers: Server[] = [];
  const requestedPort = options.port ?? 0;
  let port = 0;
  if (explicitHost !== undefined) {
    const server = makeServer();
    port = await listen(server, requestedPort, explicitHost);
    servers.push(server);
    if (!isLoopbackHost(explicitHost))
      logger.warn('the headless server listens beyond this machine; anyone who can reach it can try it', {
        host: explicitHost,
        port,
      });
  } else {
    for (let attempt = 1; ; attempt++) {
      const v4 = makeServer();
      port = await listen(v4, requestedPort, '127.0.0.1');
      const v6 = makeServer();
      try {
        await listen(v6, port, '::1');
        servers.push(v4, v6);
        break;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE' && requestedPort === 0 && attempt < 5) {
          await shut(v4);
          continue;
        }
        if (code === 'EADDRINUSE')
          logger.warn('[::1] is taken on this port by another program; listening on 127.0.0.1 only', {
            port,
          });
        else logger.debug('no IPv6 loopback; listening on 127.0.0.1 only', { code });
        servers.push(v4);
        break;
      }
    }
  }

  names = allowedNames({ port, ...(explicitHost === undefined ? {} : { bindHost: explicitHost }) });
  const urlHost =
    explicitHost === undefined || isWildcardHost(explicitHost) ? '127.0.0.1' : hostForUrl(explicitHost);
  const origin = `http://${urlHost}:${port}`;
  const url = `${origin}/#token=${encodeURIComponent(token)}`;
  logger.info('headless server listening', {
    origin,
    listeners: servers.map((s) => {
      const a = s.address() as AddressInfo;
      return `${hostForUrl(a.address)}:${a.port}`;
    }),
    renderer: staticRoot === undefined ? 'not configured' : join(staticRoot, 'index.html'),
  });

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      clearInterval(heartbeat);
      const stopping = servers.map((s) => shut(s));
      const gone = [...connections].map(
        (conn) =>
          new Promise<void>((done) => {
            endStream(conn);
            if (conn.ws.readyState === WebSocket.CLOSED) {
              done();
              return;
            }
            conn.ws.once('close', () => done());
            conn.ws.close(1001, 'server shutting down');
            setTimeout(() => {
              conn.ws.terminate();
            }, 1_000).unref();
          }),
      );
      await Promise.all([...stopping, ...gone]);
      await new Promise<void>((done) => wss.close(() => done()));
      logger.info('headless server closed', { origin });
    })();
    return closed;
  };

  return { url, origin, port, token, close };
}

function rawSize(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data instanceof ArrayBuffer ? data.byteLength : data.length;
}

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
 * The parts, one concern each, under src/host/server/: `http-handler.ts` (requests, calls,
 * exports; `static-files.ts` for the renderer), `ws-handler.ts` (the stream socket), `auth.ts`
 * (the checks both share), `calls.ts` (how a call reaches the API) and `listeners.ts` (the
 * loopback listeners). This file assembles them and keeps the public surface.
 *
 * @example
 * const server = await startServer({ api: createHostApi(app), staticDir: 'renderer/dist', logger });
 * console.log(`Open ${server.url}`);   // http://127.0.0.1:41234/#token=… (print it; never log it)
 * // later
 * await server.close();
 */

import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { Logger } from '../runtime/runtime.js';
import { silentLogger } from '../runtime/runtime.js';
import type { ExportReader } from '../store/sqlite-export.js';
import type { HostApi, StreamSink } from './contract.js';
import { allowedNames, createAuthLimiter, generateToken, hostForUrl, isWildcardHost } from './security.js';
import type { Gate } from './server/auth.js';
import { redacting } from './server/auth.js';
import { createInvoker } from './server/calls.js';
import { createRequestHandler } from './server/http-handler.js';
import { listenAll, makeServer, shut } from './server/listeners.js';
import {
  CLOSE_RATE_LIMITED,
  CLOSE_TOO_SLOW,
  CLOSE_UNAUTHORIZED,
  createStreamEndpoint,
  MAX_UNAUTHENTICATED_MESSAGE_BYTES,
  STREAM_PROTOCOL,
} from './server/ws-handler.js';

/** The stream's close codes, its subprotocol and its pre-auth message cap (src/host/server/ws-handler.ts). */
export {
  CLOSE_RATE_LIMITED,
  CLOSE_TOO_SLOW,
  CLOSE_UNAUTHORIZED,
  MAX_UNAUTHENTICATED_MESSAGE_BYTES,
  STREAM_PROTOCOL,
};

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
  /**
   * Most authenticated WebSocket connections at once; default 32. One more with the right token is
   * closed at once with 4429 'too many connections (32 of 32 in use)'.
   */
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

const MiB = 1024 * 1024;

/** Starts the server; resolves once it listens. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const token = options.token ?? generateToken();
  if (token.length < 16 || !/^[\x21-\x7e]+$/.test(token))
    throw new Error('the server token must be at least 16 printable ASCII characters, without spaces');
  const logger = redacting(options.logger ?? silentLogger, token);
  const maxBufferedBytes = options.maxBufferedBytes ?? 4 * MiB;
  const staticRoot = options.staticDir === undefined ? undefined : resolve(options.staticDir);
  const explicitHost = options.host !== undefined && options.host !== 'localhost' ? options.host : undefined;

  const gate: Gate = { names: allowedNames({ port: 0 }), token, limiter: createAuthLimiter(), logger };
  const invoke = createInvoker(options.api, options.actor ?? 'operator', logger);
  const onRequest = createRequestHandler({
    gate,
    invoke,
    maxBodyBytes: options.maxBodyBytes ?? 12 * MiB,
    exports: options.exports,
    site: { root: staticRoot, buildHint: options.buildHint ?? 'npm run build:renderer' },
  });
  const stream = createStreamEndpoint({
    gate,
    api: options.api,
    invoke,
    maxMessageBytes: options.maxMessageBytes ?? 12 * MiB,
    maxBufferedBytes,
    hardBufferedBytes: Math.max(options.hardBufferedBytes ?? 4 * maxBufferedBytes, maxBufferedBytes),
    heartbeatMs: options.heartbeatMs ?? 15_000,
    authTimeoutMs: options.authTimeoutMs ?? 5_000,
    maxConnections: options.maxConnections ?? 32,
    maxUnauthenticated: options.maxUnauthenticated ?? 8,
    maxCallsInFlight: options.maxCallsInFlight ?? 64,
  });

  const timeouts = {
    headersTimeoutMs: options.headersTimeoutMs ?? 10_000,
    requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
  };
  const make = () => makeServer({ onRequest, onUpgrade: stream.onUpgrade }, timeouts);
  const { servers, port } = await listenAll(make, options.port ?? 0, explicitHost, logger);

  gate.names = allowedNames({ port, ...(explicitHost === undefined ? {} : { bindHost: explicitHost }) });
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
      stream.stopAccepting();
      const stopping = servers.map((s) => shut(s));
      const gone = stream.closeConnections();
      await Promise.all([...stopping, gone]);
      await stream.close();
      logger.info('headless server closed', { origin });
    })();
    return closed;
  };

  return { url, origin, port, token, close };
}

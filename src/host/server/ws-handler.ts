/**
 * The headless server's WebSocket, `GET /api/stream`. The upgrade is checked in this order: the
 * exact Host allowlist (421), the path (404), the exact Origin allowlist with a missing Origin
 * refused (403), a token offered as the subprotocol `fleetvisor.token.<token>` (wrong: 401, or
 * 429 while wrong tokens are limited), then room (503; but a socket with the right token finds out
 * why: it opens and is closed at once with 4429, {@link CLOSE_RATE_LIMITED}, and the reason, which a
 * browser cannot read from a refused upgrade). A socket not authenticated at the upgrade
 * must send `{ "type": "auth", "token" }` first, small and in time (else closed 4401). An
 * authenticated socket gets the pushes of one {@link HostApi.openStream} and may send calls
 * `{ "type": "call", "id", "method", "args" }` → `{ "type": "reply", "id", "envelope" }`.
 *
 * Congestion: {@link StreamSink.congested} turns true past `maxBufferedBytes`, and a client whose
 * backlog still reaches `hardBufferedBytes` is dropped (it reconnects and gets a fresh snapshot)
 * rather than buffered for without bound. A heartbeat closes sockets that stop answering pings.
 *
 * @example
 * const stream = createStreamEndpoint({ gate, api, invoke, ...limits });
 * server.on('upgrade', stream.onUpgrade);
 * // closing
 * stream.stopAccepting();
 * await stream.closeConnections();
 * await stream.close();
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RawData } from 'ws';
import { WebSocket, WebSocketServer } from 'ws';
import type { HostApi, PushMessage, StreamSink } from '../contract.js';
import { hostAllowed, originAllowed, tokensEqual } from '../security.js';
import type { Gate } from './auth.js';
import { checkToken, offeredToken, originForLog } from './auth.js';
import type { Invoke } from './calls.js';
import { failure, isObject, STREAM_PATH } from './calls.js';

/** The close codes the server uses besides the standard ones. */
export const CLOSE_UNAUTHORIZED = 4401;
/** Dropped because the client did not keep up (it should reconnect for a fresh snapshot). */
export const CLOSE_TOO_SLOW = 4408;
/**
 * Closed for now, not for good: wrong tokens are being rate-limited, or every authenticated slot
 * (`maxConnections`) is taken. The close reason says which. A client retries with backoff.
 */
export const CLOSE_RATE_LIMITED = 4429;

/** The most an unauthenticated socket may send in one message (its auth message is tiny). */
export const MAX_UNAUTHENTICATED_MESSAGE_BYTES = 16 * 1024;
/** The WebSocket subprotocol of the stream; the token may ride along as `fleetvisor.token.<token>`. */
export const STREAM_PROTOCOL = 'fleetvisor';

/** The limits of the stream, already resolved (see ServerOptions for their meaning and defaults). */
export interface StreamSettings {
  readonly gate: Gate;
  readonly api: HostApi;
  readonly invoke: Invoke;
  readonly maxMessageBytes: number;
  readonly maxBufferedBytes: number;
  readonly hardBufferedBytes: number;
  readonly heartbeatMs: number;
  readonly authTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxUnauthenticated: number;
  readonly maxCallsInFlight: number;
}

export interface StreamEndpoint {
  /** The `upgrade` listener of every HTTP listener of one server. */
  readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Refuses new sockets (503) and stops the heartbeat. */
  stopAccepting(): void;
  /** Ends every socket's stream and closes it (1001; terminated after 1 s); resolves once all are closed. */
  closeConnections(): Promise<void>;
  /** Closes the WebSocket server itself, after its sockets. */
  close(): Promise<void>;
}

interface Connection {
  readonly ws: WebSocket;
  alive: boolean;
  authed: boolean;
  inFlight: number;
  authTimer: NodeJS.Timeout | undefined;
  closeStream: (() => void) | undefined;
}

interface Stream {
  readonly settings: StreamSettings;
  readonly wss: WebSocketServer;
  readonly connections: Set<Connection>;
  closing: boolean;
}

export function createStreamEndpoint(settings: StreamSettings): StreamEndpoint {
  const wss = new WebSocketServer({
    noServer: true,
    // The UI offers ['fleetvisor', 'fleetvisor.token.<token>']: answer with the plain one, never echo the secret.
    handleProtocols: (protocols: Set<string>) => (protocols.has(STREAM_PROTOCOL) ? STREAM_PROTOCOL : false),
    maxPayload: settings.maxMessageBytes,
    perMessageDeflate: false,
    clientTracking: false,
  });
  const stream: Stream = { settings, wss, connections: new Set(), closing: false };
  const heartbeat = setInterval(() => beat(stream), settings.heartbeatMs);
  heartbeat.unref();
  return {
    onUpgrade: (req, socket, head) => onUpgrade(stream, req, socket, head),
    stopAccepting() {
      stream.closing = true;
      clearInterval(heartbeat);
    },
    async closeConnections() {
      await Promise.all([...stream.connections].map((conn) => closeConnection(stream, conn)));
    },
    close: () => new Promise<void>((done) => wss.close(() => done())),
  };
}

function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  const body = `${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), 1_000).unref();
}

function onUpgrade(stream: Stream, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const { gate, maxConnections, maxUnauthenticated } = stream.settings;
  socket.on('error', () => {});
  if (!hostAllowed(gate.names, req.headers.host)) {
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
  if (!originAllowed(gate.names, req.headers.origin)) {
    gate.logger.warn('refused a WebSocket from a foreign or missing origin', {
      origin: originForLog(req.headers.origin),
    });
    refuseUpgrade(socket, 403, 'Forbidden');
    return;
  }
  const offered = offeredToken(req.headers['sec-websocket-protocol']);
  let preAuthed = false;
  if (offered !== undefined) {
    const verdict = checkToken(gate, offered);
    if (verdict === 'ok') preAuthed = true;
    else {
      const limited = verdict === 'limited';
      gate.logger.warn('refused a WebSocket with a wrong token');
      refuseUpgrade(socket, limited ? 429 : 401, limited ? 'Too Many Requests' : 'Unauthorized');
      return;
    }
  }
  let authed = 0;
  for (const c of stream.connections) if (c.authed) authed++;
  const full = preAuthed ? authed >= maxConnections : stream.connections.size - authed >= maxUnauthenticated;
  if (!stream.closing && full && preAuthed) {
    closeFull(stream, req, socket, head);
    return;
  }
  if (stream.closing || full) {
    refuseUpgrade(socket, 503, 'Service Unavailable');
    return;
  }
  stream.wss.handleUpgrade(req, socket, head, (ws) => {
    const conn = onConnection(stream, ws);
    if (preAuthed) onAuth(stream, conn, { type: 'auth', token: gate.token });
  });
}

/**
 * The operator's own client (right token) finding every slot taken: a browser sees a refused
 * upgrade only as close 1006, so it could only say "closed". Let in and closed at once with 4429
 * and the reason, it can say why and back off. Strangers still get the cheaper 503.
 */
function closeFull(stream: Stream, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const max = stream.settings.maxConnections;
  stream.settings.gate.logger.warn('refused a WebSocket: every connection is taken', { maxConnections: max });
  stream.wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('error', () => {});
    ws.close(CLOSE_RATE_LIMITED, `too many connections (${max} of ${max} in use)`);
    setTimeout(() => ws.terminate(), 1_000).unref();
  });
}

/** Sends unless the client's backlog is already past the hard bound; then drops the client. */
function transmit(stream: Stream, conn: Connection, text: string): void {
  const ws = conn.ws;
  if (ws.readyState !== WebSocket.OPEN) return;
  if (ws.bufferedAmount > stream.settings.hardBufferedBytes) {
    stream.settings.gate.logger.warn('dropped a WebSocket client that does not keep up', {
      bufferedBytes: ws.bufferedAmount,
    });
    endStream(stream, conn);
    ws.terminate();
    return;
  }
  ws.send(text);
}

function endStream(stream: Stream, conn: Connection): void {
  const close = conn.closeStream;
  conn.closeStream = undefined;
  if (close === undefined) return;
  try {
    close();
  } catch (error) {
    stream.settings.gate.logger.error('closing a stream threw', { error: (error as Error)?.message });
  }
}

function onAuth(stream: Stream, conn: Connection, message: unknown): void {
  const { gate, api, maxBufferedBytes } = stream.settings;
  const ws = conn.ws;
  const given = isObject(message) && message.type === 'auth' ? message.token : undefined;
  if (typeof given !== 'string') {
    ws.close(CLOSE_UNAUTHORIZED, 'unauthorized: send { type: "auth", token } first');
    return;
  }
  const verdict = checkToken(gate, given);
  if (verdict === 'limited') {
    // Not final: a client should retry later (the right token is never limited).
    ws.close(CLOSE_RATE_LIMITED, 'too many wrong tokens; retry later');
    return;
  }
  if (verdict === 'wrong') {
    gate.logger.warn('refused a WebSocket with a wrong token');
    ws.close(CLOSE_UNAUTHORIZED, 'unauthorized');
    return;
  }
  conn.authed = true;
  clearTimeout(conn.authTimer);
  conn.authTimer = undefined;
  const sink: StreamSink = {
    send(push: PushMessage) {
      transmit(stream, conn, JSON.stringify(push));
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
    gate.logger.error('opening a stream threw', { error: (error as Error)?.message });
    ws.close(1011, 'internal error');
  }
}

function onCall(stream: Stream, conn: Connection, message: Record<string, unknown>): void {
  const id = message.id;
  const validId =
    (typeof id === 'number' && Number.isSafeInteger(id)) || (typeof id === 'string' && id.length <= 64);
  if (!validId || typeof message.method !== 'string') {
    conn.ws.close(1008, 'a call needs a numeric id and a method');
    return;
  }
  if (conn.inFlight >= stream.settings.maxCallsInFlight) {
    transmit(
      stream,
      conn,
      JSON.stringify({ type: 'reply', id, envelope: failure('unavailable', 'too many calls in flight') }),
    );
    return;
  }
  conn.inFlight += 1;
  void stream.settings.invoke(message.method, message.args).then((envelope) => {
    conn.inFlight -= 1;
    transmit(stream, conn, JSON.stringify({ type: 'reply', id, envelope }));
  });
}

function onConnection(stream: Stream, ws: WebSocket): Connection {
  const { gate, authTimeoutMs } = stream.settings;
  const conn: Connection = {
    ws,
    alive: true,
    authed: false,
    inFlight: 0,
    authTimer: undefined,
    closeStream: undefined,
  };
  stream.connections.add(conn);
  conn.authTimer = setTimeout(() => {
    if (!conn.authed) ws.close(CLOSE_UNAUTHORIZED, 'unauthorized: no auth message in time');
  }, authTimeoutMs);
  ws.on('pong', () => {
    conn.alive = true;
  });
  ws.on('error', (error) => {
    gate.logger.debug('websocket error', { error: error.message });
  });
  ws.on('close', () => {
    clearTimeout(conn.authTimer);
    endStream(stream, conn);
    stream.connections.delete(conn);
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
      onAuth(stream, conn, message);
      return;
    }
    // Authenticated at the upgrade already, a client may still send its auth message: harmless.
    if (isObject(message) && message.type === 'auth' && tokensEqual(message.token as string, gate.token))
      return;
    if (isObject(message) && message.type === 'call') onCall(stream, conn, message);
    else ws.close(1008, 'unexpected message');
  });
  return conn;
}

/** One heartbeat: a socket that did not answer the previous ping is closed, the others pinged. */
function beat(stream: Stream): void {
  for (const conn of stream.connections) {
    if (!conn.alive) {
      stream.settings.gate.logger.debug('closed a WebSocket that stopped answering pings');
      endStream(stream, conn);
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
}

function closeConnection(stream: Stream, conn: Connection): Promise<void> {
  return new Promise<void>((done) => {
    endStream(stream, conn);
    if (conn.ws.readyState === WebSocket.CLOSED) {
      done();
      return;
    }
    conn.ws.once('close', () => done());
    conn.ws.close(1001, 'server shutting down');
    setTimeout(() => {
      conn.ws.terminate();
    }, 1_000).unref();
  });
}

function rawSize(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data instanceof ArrayBuffer ? data.byteLength : data.length;
}

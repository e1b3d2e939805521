/**
 * The browser's {@link TypedClient} for `fleetvisor serve`: calls and the push stream over one
 * WebSocket (`/api/stream`), with `POST /api/call` while the socket is still connecting.
 *
 * - **Token**: taken once from the address bar (`#token=…`, as printed by the server), kept in
 *   sessionStorage (this tab only) and removed from the address bar with `history.replaceState`.
 *   It travels as `Authorization: Bearer …` and as the socket's first message, never in a URL
 *   or a cookie.
 * - **Calls** never throw: a network failure is an `unavailable` envelope, a missing or refused
 *   token an `unauthorized` one.
 * - **Stream**: `subscribe()` opens (or reuses) the socket and reconnects with backoff while
 *   anyone listens; each connection starts with a snapshot. A listener that subscribes late gets
 *   the latest snapshot and the diffs since (or a fresh connection when those were too many).
 *   `resync` is forwarded as is: the host follows it with a fresh snapshot.
 *
 * Browser APIs only (no Node): WebSocket, fetch, location, history, sessionStorage.
 *
 * @example
 * const client = createHttpClient();
 * const off = client.subscribe((m) => { if (m.type === 'snapshot') setRows(m.devices); });
 * const r = await client.call('devices', { state: 'connected', limit: 50 });
 * if (r.ok) r.value.items; else r.error.code; // 'unauthorized' | 'unavailable' | …
 */
import type {
  ArgsOf,
  Envelope,
  Method,
  PushMessage,
  Results,
  TypedClient,
} from '../../../src/host/contract.js';

export type ConnectionStatus = 'idle' | 'connecting' | 'open' | 'closed' | 'unauthorized';

/** Why the socket closed and when the client tries again (with a `closed` status). */
export interface ConnectionDetail {
  /** For the operator, e.g. 'the host refused for now: too many connections (32 of 32 in use)'. */
  readonly reason: string;
  /** The wait before the next attempt; absent when none is planned (nobody listens, or closed for good). */
  readonly retryInMs?: number;
}

export interface HttpClientOptions {
  /** The server, e.g. `http://127.0.0.1:41234`; default the page's origin. */
  readonly baseUrl?: string;
  /** The secret; default from `#token=…` or this tab's sessionStorage. */
  readonly token?: string;
  /**
   * Opens the socket; default `new WebSocket(url, protocols)` (tests outside a browser pass their
   * own). `protocols` carries the token (`fleetvisor.token.<token>`) so the server authenticates
   * the socket at the upgrade, ahead of strangers' sockets waiting to authenticate.
   */
  readonly createSocket?: (url: string, protocols: string[]) => WebSocket;
  /** Default the global fetch. */
  readonly fetch?: typeof fetch;
  /** A call without a reply after this long is `unavailable`; default 30 s. */
  readonly callTimeoutMs?: number;
  /** Told when the socket's state changes, e.g. for a connection banner; a close says why. */
  readonly onStatus?: (status: ConnectionStatus, detail?: ConnectionDetail) => void;
}

export interface HttpClient extends TypedClient {
  readonly status: ConnectionStatus;
  /** Closes the socket and stops reconnecting. */
  close(): void;
}

/** Where the token is kept for this tab. */
export const TOKEN_STORAGE_KEY = 'fleetvisor.token';
/** The server's close code for a missing or wrong token. */
const CLOSE_UNAUTHORIZED = 4401;
/** The server's close code for "not now": every connection taken, or wrong tokens limited. */
const CLOSE_RATE_LIMITED = 4429;
/** First reconnect wait (before jitter) after an ordinary close, and after a 4429; doubled per failure. */
const RETRY_BASE_MS = 250;
const RATE_LIMITED_RETRY_BASE_MS = 1_000;
/** Longest reconnect wait (before jitter): a freed slot is taken within this. */
const RETRY_MAX_MS = 10_000;
/** Diffs kept after the latest snapshot for listeners that subscribe late. */
const MAX_REPLAY = 100;
const SOCKET_OPEN = 1;

type AnyEnvelope = Envelope<unknown>;

function failure(code: string, message: string): AnyEnvelope {
  return { ok: false, error: { code, message } };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isEnvelope(value: unknown): value is AnyEnvelope {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { ok?: unknown; error?: unknown };
  if (v.ok === true) return 'value' in v;
  return v.ok === false && typeof v.error === 'object' && v.error !== null;
}

function isPush(value: unknown): value is PushMessage {
  if (typeof value !== 'object' || value === null) return false;
  const type = (value as { type?: unknown }).type;
  return type === 'snapshot' || type === 'diff' || type === 'resync';
}

/**
 * Reads the token from `#token=…` (then stores it in sessionStorage and removes it from the
 * address bar) or, failing that, from sessionStorage. Null outside a browser or without one.
 */
export function takeTokenFromLocation(): string | null {
  if (typeof location === 'undefined') return null;
  const hash = location.hash.startsWith('#') ? location.hash.slice(1) : location.hash;
  if (/(^|&)token=/.test(hash)) {
    const params = new URLSearchParams(hash);
    const token = params.get('token');
    params.delete('token');
    const rest = params.toString();
    try {
      history.replaceState(
        history.state,
        '',
        `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`,
      );
    } catch {
      // no history API: the token stays visible, which is no worse than before
    }
    if (token) {
      try {
        sessionStorage.setItem(TOKEN_STORAGE_KEY, token);
      } catch {
        // storage disabled: the token lives only in this page
      }
      return token;
    }
  }
  try {
    return sessionStorage.getItem(TOKEN_STORAGE_KEY);
  } catch {
    return null;
  }
}

export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const baseUrl = (options.baseUrl ?? (typeof location === 'undefined' ? '' : location.origin)).replace(
    /\/+$/,
    '',
  );
  const streamUrl = `${baseUrl.replace(/^http/i, 'ws')}/api/stream`;
  const fetchImpl = options.fetch ?? (typeof fetch === 'undefined' ? undefined : fetch.bind(globalThis));
  const openSocket =
    options.createSocket ?? ((url: string, protocols: string[]) => new WebSocket(url, protocols));
  const callTimeoutMs = options.callTimeoutMs ?? 30_000;

  let token: string | null | undefined = options.token;
  const getToken = (): string | null => {
    if (token === undefined) token = takeTokenFromLocation();
    return token;
  };

  const listeners = new Set<(message: PushMessage) => void>();
  const pending = new Map<
    number,
    { resolve: (e: AnyEnvelope) => void; timer: ReturnType<typeof setTimeout> }
  >();
  let nextId = 1;
  let socket: WebSocket | null = null;
  let ready = false;
  let status: ConnectionStatus = 'idle';
  let attempts = 0;
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  /** The latest snapshot and the diffs since; empty when unknown or too long. */
  let replay: PushMessage[] = [];
  let receivedPush = false;

  const setStatus = (next: ConnectionStatus, detail?: ConnectionDetail) => {
    if (status === next && detail === undefined) return;
    status = next;
    try {
      options.onStatus?.(next, detail);
    } catch (error) {
      globalThis.reportError?.(error);
    }
  };

  const deliver = (listener: (message: PushMessage) => void, message: PushMessage) => {
    try {
      listener(message);
    } catch (error) {
      globalThis.reportError?.(error);
    }
  };

  const failPending = (message: string) => {
    for (const [id, call] of pending) {
      clearTimeout(call.timer);
      pending.delete(id);
      call.resolve(failure('unavailable', message));
    }
  };

  /**
   * Plans the next attempt; returns its wait, or undefined when none is planned. The wait doubles
   * per failed attempt up to {@link RETRY_MAX_MS}, jittered to 50–100 % so many windows do not
   * retry in step; after a 4429 it starts higher, the server having said "not now".
   */
  const scheduleReconnect = (rateLimited = false): number | undefined => {
    if (stopped || reconnectTimer !== undefined || listeners.size === 0) return undefined;
    const base = rateLimited ? RATE_LIMITED_RETRY_BASE_MS : RETRY_BASE_MS;
    const delay = Math.round(Math.min(RETRY_MAX_MS, base * 2 ** attempts) * (0.5 + Math.random() / 2));
    attempts += 1;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      ensureSocket();
    }, delay);
    return delay;
  };

  const onPush = (message: PushMessage) => {
    receivedPush = true;
    if (message.type === 'snapshot') replay = [message];
    else if (message.type === 'resync') replay = [];
    else if (replay.length > 0) replay = replay.length >= MAX_REPLAY ? [] : [...replay, message];
    for (const listener of [...listeners]) deliver(listener, message);
  };

  const onData = (data: unknown) => {
    if (typeof data !== 'string') return;
    let message: unknown;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    attempts = 0;
    if (isPush(message)) {
      onPush(message);
      return;
    }
    const reply = message as { type?: unknown; id?: unknown; envelope?: unknown };
    if (reply.type !== 'reply' || typeof reply.id !== 'number') return;
    const call = pending.get(reply.id);
    if (call === undefined) return;
    pending.delete(reply.id);
    clearTimeout(call.timer);
    call.resolve(isEnvelope(reply.envelope) ? reply.envelope : failure('internal', 'malformed reply'));
  };

  function ensureSocket(): void {
    if (socket !== null || stopped || reconnectTimer !== undefined || status === 'unauthorized') return;
    const secret = getToken();
    if (!secret || !baseUrl) return;
    let s: WebSocket;
    try {
      s = openSocket(streamUrl, ['fleetvisor', `fleetvisor.token.${secret}`]);
    } catch {
      setStatus('closed');
      scheduleReconnect();
      return;
    }
    socket = s;
    ready = false;
    receivedPush = false;
    replay = [];
    setStatus('connecting');
    s.addEventListener('open', () => {
      if (socket !== s) return;
      s.send(JSON.stringify({ type: 'auth', token: secret }));
      ready = true;
      setStatus('open');
    });
    s.addEventListener('message', (event: MessageEvent) => {
      if (socket === s) onData(event.data);
    });
    s.addEventListener('close', (event: CloseEvent) => {
      if (socket !== s) return;
      socket = null;
      ready = false;
      replay = [];
      failPending('the connection closed before the reply');
      // A wrong token is final; a rate-limit close (4429) or a refused upgrade (1006) is retried.
      if (event.code === CLOSE_UNAUTHORIZED) {
        setStatus('unauthorized');
        return;
      }
      const rateLimited = event.code === CLOSE_RATE_LIMITED;
      const retryInMs = scheduleReconnect(rateLimited);
      const reason = rateLimited
        ? `the host refused for now: ${event.reason || 'rate-limited'}`
        : 'the connection to the host closed';
      setStatus('closed', retryInMs === undefined ? { reason } : { reason, retryInMs });
    });
    s.addEventListener('error', () => {
      // a close event follows
    });
  }

  /** Drops the socket now and opens a new one (for a fresh snapshot). */
  const restartSocket = () => {
    const s = socket;
    if (s === null) return;
    socket = null;
    ready = false;
    replay = [];
    failPending('the connection was restarted');
    try {
      s.close(1000, 'restart');
    } catch {
      // already closing
    }
    ensureSocket();
  };

  const callOverSocket = (s: WebSocket, method: string, args: unknown): Promise<AnyEnvelope> =>
    new Promise((resolve) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        resolve(failure('unavailable', `no reply to '${method}' within ${callTimeoutMs} ms`));
      }, callTimeoutMs);
      pending.set(id, { resolve, timer });
      try {
        s.send(JSON.stringify({ type: 'call', id, method, args }));
      } catch (error) {
        clearTimeout(timer);
        pending.delete(id);
        resolve(failure('unavailable', messageOf(error)));
      }
    });

  const callOverFetch = async (method: string, args: unknown, secret: string): Promise<AnyEnvelope> => {
    if (fetchImpl === undefined || !baseUrl) return failure('unavailable', 'no server to call');
    try {
      const response = await fetchImpl(`${baseUrl}/api/call`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${secret}` },
        body: JSON.stringify({ method, args }),
        credentials: 'omit',
        cache: 'no-store',
        redirect: 'error',
      });
      const text = await response.text();
      try {
        const body: unknown = JSON.parse(text);
        if (isEnvelope(body)) return body;
      } catch {
        // not JSON: described below
      }
      return failure(
        response.status === 401 ? 'unauthorized' : 'unavailable',
        `the server answered HTTP ${response.status}`,
      );
    } catch (error) {
      return failure('unavailable', messageOf(error));
    }
  };

  return {
    get status() {
      return status;
    },

    async call<M extends Method>(method: M, args: ArgsOf<M>): Promise<Envelope<Results[M]>> {
      const secret = getToken();
      if (!secret)
        return failure(
          'unauthorized',
          'no access token: open the link that fleetvisor printed when it started',
        ) as Envelope<Results[M]>;
      if (stopped) return failure('unavailable', 'the client is closed') as Envelope<Results[M]>;
      ensureSocket();
      const s = socket;
      const envelope =
        s !== null && ready && s.readyState === SOCKET_OPEN
          ? await callOverSocket(s, method, args)
          : await callOverFetch(method, args, secret);
      return envelope as Envelope<Results[M]>;
    },

    subscribe(listener) {
      listeners.add(listener);
      if (socket !== null && receivedPush) {
        if (replay.length > 0) {
          const backlog = replay;
          queueMicrotask(() => {
            if (!listeners.has(listener)) return;
            for (const message of backlog) deliver(listener, message);
          });
        } else restartSocket();
      } else ensureSocket();
      return () => {
        listeners.delete(listener);
      };
    },

    close() {
      stopped = true;
      if (reconnectTimer !== undefined) clearTimeout(reconnectTimer);
      reconnectTimer = undefined;
      const s = socket;
      socket = null;
      ready = false;
      failPending('the client was closed');
      listeners.clear();
      if (s !== null) {
        try {
          s.close(1000, 'client closed');
        } catch {
          // already closing
        }
      }
      setStatus('closed');
    },
  };
}

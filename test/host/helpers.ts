/**
 * Test kit for the host transports: a small {@link HostApi} over fixed data (validating with
 * METHODS, recording calls and streams so tests can push and watch congestion), a logger that
 * keeps every line, raw HTTP requests (for Host headers and `..` paths that fetch would
 * normalise) and WebSocket helpers.
 *
 * @example
 * const api = createTestApi({ onOpen: (s) => s.sink.send(snapshot(1)) });
 * const server = await startServer({ api });
 * const ws = await openSocket(server, { origin: server.origin });
 */
import http from 'node:http';
import WebSocket from 'ws';
import type {
  DeviceRow,
  Diff,
  Envelope,
  HostApi,
  Method,
  Snapshot,
  StreamSink,
  SystemStats,
  TreeNode,
} from '../../src/host/contract.js';
import { METHODS } from '../../src/host/contract.js';
import type { Logger } from '../../src/runtime/runtime.js';

// ---------------------------------------------------------------------------------------------
// Fixed data

export function deviceRow(id: string, state = 'connected'): DeviceRow {
  return {
    id,
    name: `Device ${id}`,
    kind: 'pump',
    tags: ['test'],
    health: 'running',
    state,
    stateEnteredAt: 1_700_000_000_000,
    link: { up: true, via: 'mqtt', since: 1_700_000_000_000, reason: null },
    firmware: '1.0.0',
    lastSeen: 1_700_000_000_000,
    restarts: 0,
    drift: 0,
    failure: null,
    timers: [],
  };
}

export const TREE: TreeNode = {
  key: 'app',
  pid: 1,
  name: 'fleetvisor',
  childId: 'app',
  type: 'app',
  status: 'running',
  restarts: 0,
  children: [],
};

export const STATS: SystemStats = {
  at: 1_700_000_000_000,
  devices: { total: 2, online: 2, failed: 0 },
  processes: 3,
  ingestRate: 0,
  restarts: 0,
  commandLatencyMs: { p50: null, p95: null, p99: null },
  queues: {},
  broker: { url: null, connected: false, embedded: true, refused: { connect: 0, publish: 0, subscribe: 0 } },
  dataLoss: { total: 0, byCause: {} },
  duplicatesIgnored: 0,
  heapUsedBytes: 0,
};

export const DEVICES: readonly DeviceRow[] = [deviceRow('pump-1'), deviceRow('pump-2')];

export function snapshot(seq: number): Snapshot {
  return { type: 'snapshot', seq, at: 1_700_000_000_000 + seq, tree: TREE, devices: DEVICES, stats: STATS };
}

/** A diff whose serialised size is roughly `padBytes` more than an empty one. */
export function diff(seq: number, padBytes = 0): Diff {
  const events =
    padBytes > 0 ? [{ seq, at: 0, deviceId: null, kind: 'pad', data: { pad: 'x'.repeat(padBytes) } }] : [];
  return {
    type: 'diff',
    seq,
    at: 1_700_000_000_000 + seq,
    devices: [deviceRow('pump-1', `state-${seq}`)],
    removed: [],
    telemetry: [],
    events,
  };
}

// ---------------------------------------------------------------------------------------------
// The API

export interface TestStream {
  readonly sink: StreamSink;
  closed: boolean;
}

export interface TestApi extends HostApi {
  readonly streams: TestStream[];
  readonly calls: { method: string; args: unknown; actor: string | undefined }[];
}

function bad(message: string): Envelope<never> {
  return { ok: false, error: { code: 'badRequest', message } };
}

export function createTestApi(options: { onOpen?: (stream: TestStream) => void } = {}): TestApi {
  const streams: TestStream[] = [];
  const calls: TestApi['calls'] = [];
  return {
    streams,
    calls,
    async call(method, args, context) {
      calls.push({ method, args, actor: context?.actor });
      if (!Object.hasOwn(METHODS, method)) return bad(`unknown method '${method}'`);
      const m = method as Method;
      const parsed = METHODS[m].safeParse(args);
      if (!parsed.success) return bad(parsed.error.issues.map((i) => i.message).join('; '));
      switch (m) {
        case 'tree':
          return { ok: true, value: TREE };
        case 'stats':
          return { ok: true, value: STATS };
        case 'devices':
          return { ok: true, value: { items: DEVICES, total: DEVICES.length, next: null } };
        case 'device': {
          const { id } = parsed.data as { id: string };
          const row = DEVICES.find((d) => d.id === id);
          return row
            ? { ok: true, value: row }
            : { ok: false, error: { code: 'notFound', message: `no device '${id}'` } };
        }
        case 'setDemo':
          return { ok: true, value: { on: (parsed.data as { on: boolean }).on } };
        default:
          return { ok: false, error: { code: 'notAllowed', message: `'${m}' is not in the test api` } };
      }
    },
    openStream(sink) {
      const stream: TestStream = { sink, closed: false };
      streams.push(stream);
      options.onOpen?.(stream);
      return () => {
        stream.closed = true;
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Logger

export interface CapturedLog {
  readonly logger: Logger;
  /** Every entry as one string: level, message and the fields as JSON. */
  readonly lines: string[];
}

export function captureLogger(): CapturedLog {
  const lines: string[] = [];
  const at =
    (level: string) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
    };
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

// ---------------------------------------------------------------------------------------------
// HTTP

export interface RawResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** One request with exactly this path and these headers (Host included), to 127.0.0.1 by default. */
export function rawRequest(options: {
  port: number;
  path: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  address?: string;
}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: options.address ?? '127.0.0.1',
        port: options.port,
        path: options.path,
        method: options.method ?? 'GET',
        headers: options.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** POST /api/call with fetch; returns the status and the parsed body. */
export async function postCall(
  origin: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${origin}/api/call`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // left as text
  }
  return { status: response.status, body: parsed };
}

// ---------------------------------------------------------------------------------------------
// WebSocket

export function streamUrl(port: number): string {
  return `ws://127.0.0.1:${port}/api/stream`;
}

/** Opens a socket; rejects with the HTTP status when the upgrade is refused. */
export function openSocket(port: number, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(streamUrl(port), options);
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode }));
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

/** The HTTP status a refused upgrade got (101 when it was accepted). */
export async function upgradeStatus(port: number, options: WebSocket.ClientOptions = {}): Promise<number> {
  try {
    const ws = await openSocket(port, options);
    ws.terminate();
    return 101;
  } catch (error) {
    return (error as { status?: number }).status ?? -1;
  }
}

/** Collects a socket's JSON messages. */
export function collect(ws: WebSocket): { readonly messages: unknown[] } {
  const messages: unknown[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(data.toString())));
  return { messages };
}

/** Resolves with the close code and reason. */
export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) {
      resolve({ code: -1, reason: 'already closed' });
      return;
    }
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
}

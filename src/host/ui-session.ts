/**
 * The UI server's address across restarts: the port and the access token of the last start are
 * kept in the data folder (`ui-session.json`, readable by the user alone, like the broker's host
 * secret), and the next start listens on that port again when it is free, with that token — so a
 * browser tab left open reconnects by itself after a restart. A port given on the command line
 * wins; a port that is taken now gives a free one (and the file then remembers that one).
 *
 * @example
 * const server = await startUiServer({ api, staticDir, logger }, { dataDir, port: 0 });
 * server.url; // the same http://127.0.0.1:PORT/#token=… as last time, when PORT was free
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { RunningServer, ServerOptions } from './server.js';
import { startServer } from './server.js';

export const UI_SESSION_FILE = 'ui-session.json';

export interface UiSession {
  readonly port: number;
  readonly token: string;
}

/** The last start's port and token, or undefined when the file is missing or not ours. */
export function loadUiSession(dataDir: string): UiSession | undefined {
  try {
    const parsed: unknown = JSON.parse(readFileSync(join(dataDir, UI_SESSION_FILE), 'utf8'));
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { port, token } = parsed as { port?: unknown; token?: unknown };
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) return undefined;
    if (typeof token !== 'string' || token.length < 16 || !/^[\x21-\x7e]+$/.test(token)) return undefined;
    return { port, token };
  } catch {
    return undefined;
  }
}

export function saveUiSession(dataDir: string, session: UiSession): void {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, UI_SESSION_FILE);
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(session)}\n`, { mode: 0o600 });
  chmodSync(temp, 0o600);
  renameSync(temp, file);
}

/** Whether 127.0.0.1:port can be listened on now (asked first: a refused start leaves nothing behind). */
function isPortFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const probe = createServer();
    probe.once('error', () => done(false));
    probe.listen({ port, host: '127.0.0.1', exclusive: true }, () => probe.close(() => done(true)));
  });
}

function isAddressInUse(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'EADDRINUSE';
}

/**
 * Starts the server on the last start's port and token (when `port` is 0 and that port is free),
 * then remembers where it listens. Other options pass through to {@link startServer}.
 */
export async function startUiServer(
  options: Omit<ServerOptions, 'port' | 'token'>,
  where: { readonly dataDir: string; readonly port: number },
): Promise<RunningServer> {
  const last = loadUiSession(where.dataDir);
  const token = last?.token ?? randomBytes(32).toString('base64url');
  let server: RunningServer | undefined;
  if (where.port === 0 && last && (await isPortFree(last.port)))
    try {
      server = await startServer({ ...options, port: last.port, token });
    } catch (error) {
      if (!isAddressInUse(error)) throw error;
    }
  server ??= await startServer({ ...options, port: where.port, token });
  try {
    saveUiSession(where.dataDir, { port: server.port, token: server.token });
  } catch (error) {
    options.logger?.warn('could not remember the UI port for the next start', {
      error: (error as Error).message,
    });
  }
  return server;
}

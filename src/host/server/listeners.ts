/**
 * The headless server's HTTP listeners: one Node server per address, with capped headers, the
 * request timeouts answered 408, and by default 127.0.0.1 and ::1 on one port (retrying a random
 * port taken on ::1; no IPv6 loopback or ::1 taken on a fixed port: 127.0.0.1 alone).
 *
 * @example
 * const make = () => makeServer({ onRequest, onUpgrade }, { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000 });
 * const { servers, port } = await listenAll(make, 0, undefined, logger);
 * await Promise.all(servers.map(shut));
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../runtime/runtime.js';
import { isLoopbackHost } from '../security.js';

export interface ListenerHandlers {
  readonly onRequest: (req: IncomingMessage, res: ServerResponse) => void;
  readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

export interface ListenerTimeouts {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

export function makeServer(handlers: ListenerHandlers, timeouts: ListenerTimeouts): Server {
  const server = createServer(
    {
      maxHeaderSize: 16 * 1024,
      headersTimeout: timeouts.headersTimeoutMs,
      requestTimeout: timeouts.requestTimeoutMs,
      // How often Node looks for connections past those times; its default (30 s) let a slow
      // client hold a connection up to 30 s past the configured cut-off.
      connectionsCheckingInterval: 500,
    },
    handlers.onRequest,
  );
  server.keepAliveTimeout = 5_000;
  server.on('upgrade', handlers.onUpgrade);
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
}

/** Resolves with the port once listening. */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((done, fail) => {
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
}

/** Stops listening and closes its connections; resolves at once if it never listened. */
export function shut(server: Server): Promise<void> {
  return new Promise((done) => {
    if (!server.listening) {
      done();
      return;
    }
    server.close(() => done());
    server.closeAllConnections();
  });
}

/**
 * Listens on `explicitHost` (warned about when not loopback), or else on 127.0.0.1 and ::1 with
 * one port: a random port taken on ::1 is tried again, up to five times.
 */
export async function listenAll(
  make: () => Server,
  requestedPort: number,
  explicitHost: string | undefined,
  logger: Logger,
): Promise<{ readonly servers: Server[]; readonly port: number }> {
  const servers: Server[] = [];
  let port = 0;
  if (explicitHost !== undefined) {
    const server = make();
    port = await listen(server, requestedPort, explicitHost);
    servers.push(server);
    if (!isLoopbackHost(explicitHost))
      logger.warn('the headless server listens beyond this machine; anyone who can reach it can try it', {
        host: explicitHost,
        port,
      });
    return { servers, port };
  }
  for (let attempt = 1; ; attempt++) {
    const v4 = make();
    port = await listen(v4, requestedPort, '127.0.0.1');
    const v6 = make();
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
  return { servers, port };
}

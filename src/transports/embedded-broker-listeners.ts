/**
 * The embedded broker's listeners: the plain TCP server (falling back to a free port when the
 * wanted one is taken) and the optional TLS server, both handing their sockets to aedes through a
 * tracker that can destroy the ones still open on close. Used by embedded-broker.ts.
 *
 * @example
 * const sockets = trackSockets((socket) => broker.handle(socket));
 * const plain = await listenPlain(sockets.accept, '127.0.0.1', 1883, logger);
 * plain.url; // 'mqtt://127.0.0.1:1883', or a free port's with portWasTaken true
 * await closeServer(plain.server);
 * sockets.destroyAll();
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo, Server, Socket } from 'node:net';
import { createServer } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Logger } from '../runtime/runtime.js';

export interface TlsListenerOptions {
  readonly certFile: string;
  readonly keyFile: string;
  readonly host?: string;
  readonly port?: number;
}

export interface SocketTracker {
  /** A listener's connection handler: tracks the socket, then hands it to the broker. */
  accept(socket: Socket): void;
  /** Destroys every socket still open. */
  destroyAll(): void;
}

/**
 * aedes closes its clients on close, but sockets that never sent CONNECT are not clients yet:
 * tracked here so close() cannot hang on a half-open connection.
 */
export function trackSockets(handle: (socket: Socket) => void): SocketTracker {
  const sockets = new Set<Socket>();
  return {
    accept(socket) {
      sockets.add(socket);
      // Small packets (PUBACKs, acks, commands) go at once, not after the peer's delayed ACK.
      socket.setNoDelay(true);
      socket.on('close', () => sockets.delete(socket));
      handle(socket);
    },
    destroyAll() {
      for (const socket of sockets) socket.destroy();
    },
  };
}

export interface PlainListener {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  /** True if the wanted port was in use and a free one is used instead. */
  readonly portWasTaken: boolean;
}

/**
 * Listens on `host:wantedPort`, or on a free port of `host` when that one is in use
 * (`EADDRINUSE`, typically Mosquitto on 1883), and logs which. Throws, naming host and port, for
 * any other listen error; the caller closes the broker.
 */
export async function listenPlain(
  accept: (socket: Socket) => void,
  host: string,
  wantedPort: number,
  logger: Logger,
): Promise<PlainListener> {
  const server = createServer(accept);
  let portWasTaken = false;
  try {
    await listen(server, wantedPort, host);
  } catch (error) {
    if (!isAddressInUse(error) || wantedPort === 0) {
      throw new Error(`startEmbeddedBroker: cannot listen on ${host}:${wantedPort}`, { cause: error });
    }
    portWasTaken = true;
    try {
      await listen(server, 0, host);
    } catch (fallbackError) {
      throw new Error(`startEmbeddedBroker: cannot listen on a free port of ${host}`, {
        cause: fallbackError,
      });
    }
  }
  const port = (server.address() as AddressInfo).port;
  const url = `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (portWasTaken) {
    logger.warn(
      `MQTT port ${host}:${wantedPort} is already taken, probably by another broker (Mosquitto?). ` +
        `To use that broker, connect to mqtt://${host}:${wantedPort} instead of starting the embedded one. ` +
        `The embedded broker now listens on ${url}.`,
      { host, wantedPort, port, url },
    );
  } else {
    logger.info('embedded MQTT broker listening', { url });
  }
  return { server, port, url, portWasTaken };
}

/**
 * Listens for MQTT over TLS (default 0.0.0.0:8883, a free port if that one is taken) with the
 * certificate and key read from their PEM files. Throws an error starting with
 * `startEmbeddedBroker:` naming the file or the host; the caller closes the rest.
 */
export async function listenTls(
  accept: (socket: Socket) => void,
  t: TlsListenerOptions,
  logger: Logger,
): Promise<{ readonly server: Server; readonly url: string }> {
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new Error(`startEmbeddedBroker: cannot read the TLS ${what} ${file}`, { cause: error });
    }
  };
  const tlsHost = t.host ?? '0.0.0.0';
  let secure: Server;
  try {
    secure = createTlsServer({ cert: read(t.certFile, 'certificate'), key: read(t.keyFile, 'key') }, accept);
    secure.on('tlsClientError', (error) =>
      logger.debug('embedded broker: TLS client error', { error: error.message }),
    );
    const wanted = t.port ?? 8883;
    try {
      await listen(secure, wanted, tlsHost);
    } catch (error) {
      if (!isAddressInUse(error) || wanted === 0) throw error;
      await listen(secure, 0, tlsHost);
    }
  } catch (error) {
    throw error instanceof Error && error.message.startsWith('startEmbeddedBroker')
      ? error
      : new Error(`startEmbeddedBroker: cannot listen for TLS on ${tlsHost}`, { cause: error });
  }
  const tlsPort = (secure.address() as AddressInfo).port;
  const url = `mqtts://${tlsHost.includes(':') ? `[${tlsHost}]` : tlsHost}:${tlsPort}`;
  logger.info('embedded MQTT broker listening for TLS', { url });
  return { server: secure, url };
}

/** Stops listening; resolves once the server is closed (its open connections ended). */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => server.close(() => resolve()));
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      server.off('listening', onListening);
      reject(error);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

function isAddressInUse(error: unknown): boolean {
  return (
    typeof error === 'object' && error !== null && (error as NodeJS.ErrnoException).code === 'EADDRINUSE'
  );
}

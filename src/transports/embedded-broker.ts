/**
 * An in-process MQTT 3.1.1 broker (aedes on a plain TCP server) for development, the simulator
 * and the integration tests, with a fallback to a free port when the wanted one is taken.
 *
 * @example
 * const broker = await startEmbeddedBroker({ port: 1883, logger: rt.logger });
 * if (broker.portWasTaken) rt.logger.info('embedded broker on a spare port', { url: broker.url });
 * const link = startMqttLink(rt, { url: broker.url, clientId: 'fleetvisor-host', … });
 * await broker.close();
 */
import type { AddressInfo, Server, Socket } from 'node:net';
import { createServer } from 'node:net';
import { Aedes } from 'aedes';
import type { Logger } from '../runtime/runtime.js';
import { silentLogger } from '../runtime/runtime.js';
import { DEFAULT_MAX_PAYLOAD_BYTES } from './protocol.js';

export interface EmbeddedBrokerOptions {
  /** Interface to listen on; default `127.0.0.1` (never exposed beyond this machine by default). */
  readonly host?: string;
  /** Port wanted; default 1883. `0` picks a free port. If taken, a free port is used instead. */
  readonly port?: number;
  readonly logger?: Logger;
  /**
   * Largest PUBLISH payload the broker forwards, in bytes; default
   * {@link DEFAULT_MAX_PAYLOAD_BYTES}. aedes 1.x has no packet-size option, so this is enforced
   * in `authorizePublish`: the packet has been read already, but it is not forwarded, and the
   * publishing client is disconnected (MQTT 3.1.1 has no way to refuse one publish).
   */
  readonly maxPayloadBytes?: number;
}

export interface EmbeddedBroker {
  /** `mqtt://host:port` of the port actually listened on. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** True if the wanted port was in use and the broker fell back to a free one. */
  readonly portWasTaken: boolean;
  /** The aedes instance, for tests and inspection (its `publish` and `client` events). */
  readonly aedes: Aedes;
  /** Disconnects every client and stops listening. Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 1883;

/**
 * Starts aedes on `host:port`. When the port is in use (`EADDRINUSE`, typically Mosquitto on
 * 1883), it logs that the running broker can be used by URL instead and listens on a free port.
 * Throws for bad options or any other listen error (bad host, no permission), naming the cause.
 *
 * @example
 * const broker = await startEmbeddedBroker({ port: 0 });
 * broker.url; // 'mqtt://127.0.0.1:40123'
 */
export async function startEmbeddedBroker(options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const host = options.host ?? DEFAULT_HOST;
  const wantedPort = options.port ?? DEFAULT_PORT;
  const logger = options.logger ?? silentLogger;
  const maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  if (!(Number.isInteger(wantedPort) && wantedPort >= 0 && wantedPort <= 65535)) {
    throw new RangeError(`startEmbeddedBroker: port must be an integer 0…65535, got ${String(wantedPort)}`);
  }
  if (!(Number.isSafeInteger(maxPayloadBytes) && maxPayloadBytes > 0)) {
    throw new RangeError(
      `startEmbeddedBroker: maxPayloadBytes must be a positive integer, got ${String(maxPayloadBytes)}`,
    );
  }

  const broker = await Aedes.createBroker({
    authorizePublish(client, packet, callback) {
      const size = packet.payload.length;
      if (size > maxPayloadBytes) {
        logger.warn('embedded broker refused an oversized publish', {
          clientId: client?.id,
          topic: packet.topic,
          bytes: size,
          maxPayloadBytes,
        });
        callback(new Error(`payload of ${size} bytes exceeds ${maxPayloadBytes}`));
        return;
      }
      callback(null);
    },
  });
  broker.on('clientError', (client, error) => {
    logger.debug('embedded broker: client error', { clientId: client.id, error: error.message });
  });
  broker.on('connectionError', (_client, error) => {
    logger.debug('embedded broker: connection error', { error: error.message });
  });

  // aedes closes its clients on close, but sockets that never sent CONNECT are not clients yet:
  // track them so close() cannot hang on a half-open connection.
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    broker.handle(socket);
  });

  let portWasTaken = false;
  try {
    await listen(server, wantedPort, host);
  } catch (error) {
    if (!isAddressInUse(error) || wantedPort === 0) {
      await closeBroker(broker);
      throw new Error(`startEmbeddedBroker: cannot listen on ${host}:${wantedPort}`, { cause: error });
    }
    portWasTaken = true;
    try {
      await listen(server, 0, host);
    } catch (fallbackError) {
      await closeBroker(broker);
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

  let closing: Promise<void> | undefined;
  return {
    aedes: broker,
    url,
    host,
    port,
    portWasTaken,
    close() {
      if (!closing) {
        closing = (async () => {
          const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
          await closeBroker(broker);
          for (const socket of sockets) socket.destroy();
          await serverClosed;
          logger.info('embedded MQTT broker closed', { url });
        })();
      }
      return closing;
    },
  };
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

function closeBroker(broker: Aedes): Promise<void> {
  return new Promise((resolve) => broker.close(() => resolve()));
}

function isAddressInUse(error: unknown): boolean {
  return (
    typeof error === 'object' && error !== null && (error as NodeJS.ErrnoException).code === 'EADDRINUSE'
  );
}

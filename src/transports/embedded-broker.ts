/**
 * An in-process MQTT 3.1.1 broker (aedes on a plain TCP server) for development, the simulator
 * and the integration tests, with a fallback to a free port when the wanted one is taken.
 *
 * With `auth` (the app always passes it) nobody gets in without credentials, and what each client
 * may publish and subscribe to follows `mayPublish` / `maySubscribe` (broker-acl.ts): a device speaks
 * only for itself and reads only its own commands; only the host sends commands. Every refusal is
 * counted per client ({@link EmbeddedBroker.refusals}). A client whose account is revoked or
 * rotated while it is connected is disconnected. With `tls`, a second listener speaks MQTT over
 * TLS (for devices on the LAN) while the plain one stays on loopback for the host.
 *
 * @example
 * const broker = await startEmbeddedBroker({ port: 1883, logger: rt.logger });
 * if (broker.portWasTaken) rt.logger.info('embedded broker on a spare port', { url: broker.url });
 * const link = startMqttLink(rt, { url: broker.url, clientId: 'fleetvisor-host', … });
 * await broker.close();
 */
import type { Server } from 'node:net';
import type { Client } from 'aedes';
import { Aedes } from 'aedes';
import type { Logger } from '../runtime/runtime.js';
import { silentLogger } from '../runtime/runtime.js';
import type { BrokerAccounts } from './broker-accounts.js';
import type { BrokerRefusalStats, Principals } from './embedded-broker-auth.js';
import { createAccessHooks, createRefusalCounter, startAccountsRefresh } from './embedded-broker-auth.js';
import type { PlainListener } from './embedded-broker-listeners.js';
import { closeServer, listenPlain, listenTls, trackSockets } from './embedded-broker-listeners.js';
import { exactRetainedPersistence } from './embedded-broker-retained.js';
import { DEFAULT_MAX_PAYLOAD_BYTES } from './protocol.js';

export type { BrokerRefusalStats, ClientRefusals } from './embedded-broker-auth.js';
export { MAX_REFUSAL_CLIENTS } from './embedded-broker-auth.js';

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
  /**
   * Accounts and ACL: without them the broker lets anyone in (tests of other parts only; the app
   * always passes them).
   */
  readonly auth?: BrokerAccounts;
  /** How often a changed accounts file is re-read (revocations take effect); default 2000 ms. */
  readonly accountsRefreshMs?: number;
  /**
   * Called when a re-read finds the accounts changed, before the clients whose account no longer
   * holds are disconnected: the host marks a revoked device down for that reason first, not for
   * the will the disconnect publishes.
   */
  readonly onAccountsChanged?: () => void;
  /**
   * A TLS listener besides the plain one, for devices on the LAN: certificate and key files (PEM);
   * default host 0.0.0.0, port 8883 (a free port if taken).
   */
  readonly tls?: {
    readonly certFile: string;
    readonly keyFile: string;
    readonly host?: string;
    readonly port?: number;
  };
}

export interface EmbeddedBroker {
  /** `mqtt://host:port` of the port actually listened on. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** True if the wanted port was in use and the broker fell back to a free one. */
  readonly portWasTaken: boolean;
  /** `mqtts://host:port` of the TLS listener, when there is one. */
  readonly tlsUrl: string | undefined;
  /** Whether clients must authenticate (accounts and ACL on). */
  readonly authenticated: boolean;
  /** Refusals (connect, publish, subscribe), in total and per client. */
  refusals(): BrokerRefusalStats;
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

  const auth = options.auth;
  const principals: Principals = new WeakMap();
  const clients = new Set<Client>();
  const refusals = createRefusalCounter(logger);

  const broker = await Aedes.createBroker({
    // No cap on the messages in delivery at once (issue 16). With aedes 1.2.0's default of 100,
    // the messages past 100 in flight wait in mqemitter 7.1.0's queue, and that queue is drained
    // recursively: when a message finishes, `released` (mqemitter.js:48) starts the next one in
    // `_do` (mqemitter.js:133), and one without any subscriber completes at once inside
    // fastparallel (parallel.js:26), which calls `released` again — three frames a message.
    // A host link that falls behind lets the queue grow (with 10,000 devices, one slow
    // subscriber holds every slot); when that link drops, its subscriptions go, the queue has
    // nobody to deliver to and drains in one go: about 10,000 waiting messages are enough for
    // "Maximum call stack size exceeded", an uncaught exception in the app's own process.
    // Unlimited is mqemitter's own default: nothing queues there, each message is delivered as
    // it arrives (the waiting then happens per subscriber, on its socket's drain, bounded by
    // aedes' drainTimeout), and one slow subscriber no longer stalls delivery to all the others.
    concurrency: 0,
    // Retained messages of exact-topic subscriptions by lookup, not by a scan of all of them.
    persistence: exactRetainedPersistence(),
    // authenticate and authorizeSubscribe (with auth only), then authorizePublish.
    ...createAccessHooks({ auth, principals, refusals, logger, maxPayloadBytes }),
  });
  broker.on('client', (client) => {
    clients.add(client);
  });
  broker.on('clientDisconnect', (client) => {
    clients.delete(client);
  });
  broker.on('clientError', (client, error) => {
    clients.delete(client);
    logger.debug('embedded broker: client error', { clientId: client.id, error: error.message });
  });
  broker.on('connectionError', (_client, error) => {
    logger.debug('embedded broker: connection error', { error: error.message });
  });

  const refreshTimer = auth
    ? startAccountsRefresh(
        auth,
        clients,
        principals,
        logger,
        options.accountsRefreshMs ?? 2000,
        options.onAccountsChanged,
      )
    : undefined;

  const sockets = trackSockets((socket) => broker.handle(socket));
  let plain: PlainListener;
  try {
    plain = await listenPlain(sockets.accept, host, wantedPort, logger);
  } catch (error) {
    await closeBroker(broker);
    throw error;
  }

  let tls: { readonly server: Server; readonly url: string } | undefined;
  if (options.tls) {
    try {
      tls = await listenTls(sockets.accept, options.tls, logger);
    } catch (error) {
      await closeServer(plain.server);
      await closeBroker(broker);
      clearInterval(refreshTimer);
      throw error;
    }
  }
  if (!auth) logger.warn('the embedded broker runs without accounts: any client may read and send anything');

  const { url, port, portWasTaken } = plain;
  const servers = [plain.server, ...(tls ? [tls.server] : [])];
  let closing: Promise<void> | undefined;
  return {
    aedes: broker,
    url,
    host,
    port,
    portWasTaken,
    tlsUrl: tls?.url,
    authenticated: auth !== undefined,
    refusals: refusals.stats,
    close() {
      if (!closing) {
        closing = (async () => {
          clearInterval(refreshTimer);
          const serverClosed = Promise.all(servers.map((s) => closeServer(s)));
          await closeBroker(broker);
          sockets.destroyAll();
          await serverClosed;
          logger.info('embedded MQTT broker closed', { url });
        })();
      }
      return closing;
    },
  };
}

function closeBroker(broker: Aedes): Promise<void> {
  return new Promise((resolve) => broker.close(() => resolve()));
}

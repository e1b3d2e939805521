/**
 * An in-process MQTT 3.1.1 broker (aedes on a plain TCP server) for development, the simulator
 * and the integration tests, with a fallback to a free port when the wanted one is taken.
 *
 * With `auth` (the app always passes it) nobody gets in without credentials, and what each client
 * may publish and subscribe to follows {@link mayPublish} / {@link maySubscribe}: a device speaks
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
import { readFileSync } from 'node:fs';
import type { AddressInfo, Server, Socket } from 'node:net';
import { createServer } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { AuthenticateError, Client } from 'aedes';
import { Aedes } from 'aedes';
import type { Logger } from '../runtime/runtime.js';
import { silentLogger } from '../runtime/runtime.js';
import type { BrokerAccounts } from './broker-accounts.js';
import type { BrokerPrincipal } from './broker-acl.js';
import { mayPublish, maySubscribe } from './broker-acl.js';
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
  /**
   * Accounts and ACL: without them the broker lets anyone in (tests of other parts only; the app
   * always passes them).
   */
  readonly auth?: BrokerAccounts;
  /** How often a changed accounts file is re-read (revocations take effect); default 2000 ms. */
  readonly accountsRefreshMs?: number;
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

/** What the broker refused one client (by client id), and why, last. */
export interface ClientRefusals {
  readonly clientId: string;
  readonly username: string | null;
  readonly connect: number;
  readonly publish: number;
  readonly subscribe: number;
  readonly lastAt: number;
  readonly lastReason: string;
}

export interface BrokerRefusalStats {
  readonly connect: number;
  readonly publish: number;
  readonly subscribe: number;
  /** Per client, most recent first (at most {@link MAX_REFUSAL_CLIENTS}; older ones are folded into the totals only). */
  readonly clients: readonly ClientRefusals[];
}

/** Clients whose refusals are listed one by one; past it, the oldest entry is dropped (totals still count). */
export const MAX_REFUSAL_CLIENTS = 256;

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
  /** Who each connected client is (set when it authenticated), and when it was verified. */
  const principals = new WeakMap<Client, { principal: BrokerPrincipal; at: number }>();
  const clients = new Set<Client>();
  const totals = { connect: 0, publish: 0, subscribe: 0 };
  const perClient = new Map<string, ClientRefusals>();
  const refuse = (
    what: 'connect' | 'publish' | 'subscribe',
    clientId: string,
    username: string | null,
    reason: string,
  ): void => {
    totals[what]++;
    const key = clientId.slice(0, 128);
    const prev = perClient.get(key);
    const entry: ClientRefusals = {
      clientId: key,
      username: username?.slice(0, 128) ?? prev?.username ?? null,
      connect: (prev?.connect ?? 0) + (what === 'connect' ? 1 : 0),
      publish: (prev?.publish ?? 0) + (what === 'publish' ? 1 : 0),
      subscribe: (prev?.subscribe ?? 0) + (what === 'subscribe' ? 1 : 0),
      lastAt: Date.now(),
      lastReason: reason,
    };
    perClient.delete(key); // re-inserted last: the map's order is recency
    perClient.set(key, entry);
    if (perClient.size > MAX_REFUSAL_CLIENTS) perClient.delete(perClient.keys().next().value as string);
    // The first refusal of a client is a warning; its repeats are counted (and logged at debug).
    (prev === undefined ? logger.warn : logger.debug)(`embedded broker refused a ${what}`, {
      clientId: JSON.stringify(key),
      username: entry.username === null ? null : JSON.stringify(entry.username),
      reason,
    });
  };

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
    ...(auth
      ? {
          authenticate(client, username, password, done) {
            const at = Date.now();
            auth
              .verify(username, password, client.id)
              .then((r) => {
                if (r.ok) {
                  principals.set(client, { principal: r.value, at });
                  done(null, true);
                  return;
                }
                refuse('connect', client.id, username ?? null, r.error);
                const error = new Error(r.error) as AuthenticateError;
                // 3: server unavailable (busy); 4: bad user name or password; 5: not authorized (MQTT 3.1.1 §3.2.2.3).
                (error as { returnCode: number }).returnCode =
                  r.error === 'clientIdMismatch' ? 5 : r.error === 'busy' ? 3 : 4;
                done(error, false);
              })
              .catch((error: unknown) => {
                logger.error('embedded broker: verifying credentials failed', { error });
                const e = new Error('server unavailable') as AuthenticateError;
                (e as { returnCode: number }).returnCode = 3;
                done(e, false);
              });
          },
          authorizeSubscribe(client, sub, done) {
            const who = principals.get(client);
            const decision = who
              ? maySubscribe(who.principal, sub.topic)
              : { ok: false as const, reason: 'not authenticated' };
            if (decision.ok) {
              done(null, sub);
              return;
            }
            refuse('subscribe', client.id, null, `${sub.topic.slice(0, 200)}: ${decision.reason}`);
            done(null, null); // SUBACK 0x80 for this filter; the client stays connected
          },
        }
      : {}),
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
      if (packet.topic.startsWith('$SYS')) {
        callback(new Error('$SYS topics are reserved'));
        return;
      }
      if (auth) {
        // A null client is a will left over from a previous broker run: nobody vouches for it.
        const who = client ? principals.get(client) : undefined;
        const decision = who
          ? (provisioningHelloCheck(who.principal, packet.topic, packet.payload) ??
            mayPublish(who.principal, packet.topic))
          : { ok: false as const, reason: 'not authenticated' };
        if (!decision.ok) {
          refuse(
            'publish',
            client?.id ?? '(none)',
            null,
            `${packet.topic.slice(0, 200)}: ${decision.reason}`,
          );
          // MQTT 3.1.1 cannot refuse one publish: the client is disconnected (it reconnects).
          callback(new Error(decision.reason));
          return;
        }
      }
      callback(null);
    },
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

  // Revocations and rotations made while the app runs (the CLI writes the accounts file) take
  // effect: a client whose account no longer holds is disconnected.
  const refreshTimer = auth
    ? setInterval(() => {
        if (!auth.refresh()) return;
        for (const client of clients) {
          const who = principals.get(client);
          if (who && !auth.stillValid(who.principal, who.at)) {
            logger.info('embedded broker: disconnecting a client whose account was revoked or rotated', {
              clientId: client.id,
            });
            client.close();
          }
        }
      }, options.accountsRefreshMs ?? 2000)
    : undefined;
  refreshTimer?.unref();

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

  let tlsServer: Server | undefined;
  let tlsUrl: string | undefined;
  if (options.tls) {
    const t = options.tls;
    const read = (file: string, what: string): Buffer => {
      try {
        return readFileSync(file);
      } catch (error) {
        throw new Error(`startEmbeddedBroker: cannot read the TLS ${what} ${file}`, { cause: error });
      }
    };
    const tlsHost = t.host ?? '0.0.0.0';
    try {
      const secure = createTlsServer(
        { cert: read(t.certFile, 'certificate'), key: read(t.keyFile, 'key') },
        (socket) => {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          broker.handle(socket);
        },
      );
      secure.on('tlsClientError', (error) =>
        logger.debug('embedded broker: TLS client error', { error: error.message }),
      );
      tlsServer = secure;
      const wanted = t.port ?? 8883;
      try {
        await listen(secure, wanted, tlsHost);
      } catch (error) {
        if (!isAddressInUse(error) || wanted === 0) throw error;
        await listen(secure, 0, tlsHost);
      }
    } catch (error) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeBroker(broker);
      clearInterval(refreshTimer);
      throw error instanceof Error && error.message.startsWith('startEmbeddedBroker')
        ? error
        : new Error(`startEmbeddedBroker: cannot listen for TLS on ${tlsHost}`, { cause: error });
    }
    const tlsPort = (tlsServer.address() as AddressInfo).port;
    tlsUrl = `mqtts://${tlsHost.includes(':') ? `[${tlsHost}]` : tlsHost}:${tlsPort}`;
    logger.info('embedded MQTT broker listening for TLS', { url: tlsUrl });
  }
  if (!auth) logger.warn('the embedded broker runs without accounts: any client may read and send anything');

  let closing: Promise<void> | undefined;
  return {
    aedes: broker,
    url,
    host,
    port,
    portWasTaken,
    tlsUrl,
    authenticated: auth !== undefined,
    refusals: () => ({ ...totals, clients: [...perClient.values()].reverse() }),
    close() {
      if (!closing) {
        closing = (async () => {
          clearInterval(refreshTimer);
          const serverClosed = Promise.all(
            [server, ...(tlsServer ? [tlsServer] : [])].map(
              (s) => new Promise<void>((resolve) => s.close(() => resolve())),
            ),
          );
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

/**
 * A device admitted by its kind's provisioning secret may say hello only as that kind (else one
 * leaked secret would let it claim any kind). Undefined when the rule does not apply.
 */
function provisioningHelloCheck(
  principal: BrokerPrincipal,
  topic: string,
  payload: Buffer | string,
): { ok: false; reason: string } | undefined {
  if (principal.role !== 'device' || principal.via !== 'provisioning' || !topic.endsWith('/hello'))
    return undefined;
  if (payload.length === 0) return undefined; // clearing its own retained hello
  let kind: unknown;
  try {
    kind = (JSON.parse(payload.toString()) as { kind?: unknown }).kind;
  } catch {
    return undefined; // not JSON: the host refuses it as a bad message
  }
  return kind === principal.kind
    ? undefined
    : { ok: false, reason: `provisioned as kind '${principal.kind}', its hello names another kind` };
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

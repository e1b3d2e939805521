/**
 * The embedded broker's gatekeeping: aedes' `authenticate`, `authorizeSubscribe` and
 * `authorizePublish` hooks (accounts from {@link BrokerAccounts}, rights from broker-acl.ts, the
 * payload cap), the refusals they count per client, and the periodic re-read of the accounts
 * that disconnects a client whose account was revoked or rotated. Used by embedded-broker.ts.
 *
 * @example
 * const principals: Principals = new WeakMap();
 * const refusals = createRefusalCounter(logger);
 * const broker = await Aedes.createBroker({
 *   concurrency: 0,
 *   ...createAccessHooks({ auth, principals, refusals, logger, maxPayloadBytes }),
 * });
 * refusals.stats(); // { connect: 0, publish: 0, subscribe: 0, clients: [] }
 */
import type { AedesOptions, AuthenticateError, Client } from 'aedes';
import type { Logger } from '../runtime/runtime.js';
import type { BrokerAccounts } from './broker-accounts.js';
import type { BrokerPrincipal } from './broker-acl.js';
import { mayPublish, maySubscribe } from './broker-acl.js';

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

export type RefusedAction = 'connect' | 'publish' | 'subscribe';

/** Counts refusals, in total and per client (most recent last), and logs them. */
export interface RefusalCounter {
  refuse(what: RefusedAction, clientId: string, username: string | null, reason: string): void;
  stats(): BrokerRefusalStats;
}

/** Who each connected client is (set when it authenticated), and when it was verified. */
export type Principals = WeakMap<Client, { principal: BrokerPrincipal; at: number }>;

export function createRefusalCounter(logger: Logger): RefusalCounter {
  const totals = { connect: 0, publish: 0, subscribe: 0 };
  const perClient = new Map<string, ClientRefusals>();
  return {
    refuse(what, clientId, username, reason) {
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
    },
    stats: () => ({ ...totals, clients: [...perClient.values()].reverse() }),
  };
}

export interface AccessHooksOptions {
  /** Absent: anyone gets in and may read and send anything (the payload cap and `$SYS` still hold). */
  readonly auth: BrokerAccounts | undefined;
  readonly principals: Principals;
  readonly refusals: RefusalCounter;
  readonly logger: Logger;
  readonly maxPayloadBytes: number;
}

/**
 * aedes' three gatekeeping hooks. Without `auth`, `authenticate` and `authorizeSubscribe` are left
 * out (absent, not undefined, so aedes keeps its own defaults).
 */
export function createAccessHooks(
  o: AccessHooksOptions,
): Pick<AedesOptions, 'authenticate' | 'authorizeSubscribe' | 'authorizePublish'> {
  const { auth, principals, refusals, logger, maxPayloadBytes } = o;
  return {
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
                refusals.refuse('connect', client.id, username ?? null, r.error);
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
            refusals.refuse('subscribe', client.id, null, `${sub.topic.slice(0, 200)}: ${decision.reason}`);
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
          refusals.refuse(
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
  };
}

/**
 * Revocations and rotations made while the app runs (the CLI writes the accounts file) take
 * effect: every `everyMs`, a changed accounts file is re-read and a connected client whose account
 * no longer holds is disconnected (after `onChanged`). The timer is unref'd; the caller clears it
 * on close.
 */
export function startAccountsRefresh(
  auth: BrokerAccounts,
  clients: ReadonlySet<Client>,
  principals: Principals,
  logger: Logger,
  everyMs: number,
  onChanged?: () => void,
): NodeJS.Timeout {
  // By the count of changes, not refresh()'s answer: a connect (verify) or an account changed in
  // this process (a device removed through the API) reads the file first, and its revocation
  // would never disconnect anyone.
  let seen = auth.changes();
  const timer = setInterval(() => {
    auth.refresh();
    if (auth.changes() === seen) return;
    seen = auth.changes();
    try {
      onChanged?.();
    } catch (error) {
      logger.error('embedded broker: the accounts-changed hook threw', { error });
    }
    for (const client of clients) {
      const who = principals.get(client);
      if (who && !auth.stillValid(who.principal, who.at)) {
        logger.info('embedded broker: disconnecting a client whose account was revoked or rotated', {
          clientId: client.id,
        });
        client.close();
      }
    }
  }, everyMs);
  timer.unref();
  return timer;
}

/**
 * A device admitted by its kind's provisioning secret may say hello only as that kind (else one
 * leaked secret would let it claim any kind). Undefined when the rule does not apply.
 */
export function provisioningHelloCheck(
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

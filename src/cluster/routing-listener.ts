/**
 * The connection on which an instance hears of routed actions (src/cluster/command-router.ts), or
 * of changes to the fleet (src/cluster/fleet-changes.ts): a dedicated client (not the pool's) that
 * `LISTEN`s on one channel. A connection that fails or ends is dropped; the owner of the listener
 * listens again on its next sweep, and catches meanwhile what it missed.
 *
 * @example
 * const listener = createRoutingListener({ url, channel: actionChannelOf('site-a-1'), logger,
 *   onNotice: (payload) => handle(payload), isStopped: () => stopped });
 * await listener.listen();
 * if (!listener.listening()) await listener.listen().catch(() => {}); // on a sweep; logged by listen()
 * await listener.close();
 */
import pg from 'pg';
import type { Logger } from '../runtime/runtime.js';
import { messageOf } from './routed-reply.js';

export interface RoutingListenerDeps {
  readonly url: string;
  readonly channel: string;
  readonly logger: Logger;
  /**
   * Names the connection (`application_name`, as pg_stat_activity shows it) and its log lines;
   * default `fleetvisor-routing-listen`, `routing`, `routed actions`.
   */
  readonly names?: { readonly application: string; readonly log: string; readonly what: string };
  onNotice(payload: string | undefined): void;
  isStopped(): boolean;
}

export interface RoutingListener {
  /** Connects and listens, unless it is connecting already; rejects (logged) when it cannot. */
  listen(): Promise<void>;
  listening(): boolean;
  /** Waits for a connection being made, then ends it. */
  close(): Promise<void>;
}

export function createRoutingListener(deps: RoutingListenerDeps): RoutingListener {
  const { logger: log } = deps;
  const names = deps.names ?? {
    application: 'fleetvisor-routing-listen',
    log: 'routing',
    what: 'routed actions',
  };
  let listener: pg.Client | undefined;
  let connecting: Promise<void> | undefined;

  function listen(): Promise<void> {
    connecting ??= (async () => {
      const client = new pg.Client({
        connectionString: deps.url,
        application_name: names.application,
      });
      const drop = () => {
        if (listener === client) listener = undefined;
        void client.end().catch(() => {});
      };
      client.on('notification', (m) => deps.onNotice(m.payload));
      client.on('error', (error) => {
        if (!deps.isStopped())
          log.warn(`${names.log}: the listening connection failed; it reconnects`, { error: error.message });
        drop();
      });
      client.on('end', drop);
      try {
        await client.connect();
        await client.query(`LISTEN ${deps.channel}`);
      } catch (error) {
        void client.end().catch(() => {});
        if (!deps.isStopped())
          log.warn(`${names.log}: cannot listen for ${names.what}`, { error: messageOf(error) });
        throw error;
      }
      if (deps.isStopped()) {
        await client.end().catch(() => {});
        return;
      }
      listener = client;
    })().finally(() => {
      connecting = undefined;
    });
    return connecting;
  }

  return {
    listen,
    listening: () => listener !== undefined,
    async close() {
      await connecting?.catch(() => {});
      await listener?.end().catch(() => {});
      listener = undefined;
    },
  };
}

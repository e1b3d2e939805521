/**
 * The connection on which an instance hears of routed actions (src/cluster/command-router.ts):
 * a dedicated client (not the pool's) that `LISTEN`s on the instance's channel. A connection that
 * fails or ends is dropped; the next sweep listens again, and catches meanwhile what it missed.
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
  let listener: pg.Client | undefined;
  let connecting: Promise<void> | undefined;

  function listen(): Promise<void> {
    connecting ??= (async () => {
      const client = new pg.Client({
        connectionString: deps.url,
        application_name: 'fleetvisor-routing-listen',
      });
      const drop = () => {
        if (listener === client) listener = undefined;
        void client.end().catch(() => {});
      };
      client.on('notification', (m) => deps.onNotice(m.payload));
      client.on('error', (error) => {
        if (!deps.isStopped())
          log.warn('routing: the listening connection failed; it reconnects', { error: error.message });
        drop();
      });
      client.on('end', drop);
      try {
        await client.connect();
        await client.query(`LISTEN ${deps.channel}`);
      } catch (error) {
        void client.end().catch(() => {});
        if (!deps.isStopped())
          log.warn('routing: cannot listen for routed actions', { error: messageOf(error) });
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

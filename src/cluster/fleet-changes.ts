/**
 * How the instances of a cluster learn that other instances' devices changed (docs/scale-out.md,
 * "One fleet in every UI"), on the shared PostgreSQL database, never by polling it:
 *
 * - **Signal.** The owner of a device calls {@link FleetChanges.changed} once a write of the
 *   device's rows (its state, its link and health events, its device row) has committed
 *   (src/cluster/signalling-store.ts does it for every such write of the store). The ids gather
 *   for `gatherMs` (20 ms: the writes of one turn), and one `NOTIFY` statement carries them on the
 *   fleet's channel (src/cluster/fleet-change-notices.ts) — at most one every `coalesceMs` (250
 *   ms): a storm of transitions is one notification per 250 ms, not one per transition. Leases
 *   that moved are {@link FleetChanges.changedAll}. A notification that cannot be sent is tried
 *   again with the next ones (logged once until it works again).
 * - **Listen.** A dedicated connection `LISTEN`s on the channel (src/cluster/routing-listener.ts,
 *   named `fleetvisor-changes:<instance>` in pg_stat_activity) and hands every change heard to the
 *   subscribers (each instance hears its own too). A connection that drops is made again every
 *   `reconnectMs` (1 s); once it listens again, the subscribers are told `all` (why
 *   `reconnected`): what was signalled meanwhile was missed, so they read the whole fleet again.
 *
 * A notice only names what to read again: the rows themselves are read from the database
 * (src/cluster/fleet-reads.ts), so a lost, late or repeated notice costs a read, never a wrong row.
 *
 * @example
 * const changes = createFleetChanges({ db: store.pool, url, instanceId: 'beta', logger });
 * await changes.start();
 * const off = changes.subscribe((c) => (c.kind === 'all' ? readAll() : readSome(c.ids)));
 * changes.changed(['pump-1']);            // after the write of pump-1 committed
 * await changes.stop();
 */
import type pg from 'pg';
import type { Logger } from '../runtime/runtime.js';
import type { FleetChange } from './fleet-change-notices.js';
import { decodeNotice, FLEET_CHANGES_CHANNEL } from './fleet-change-notices.js';
import { createChangeSender } from './fleet-change-sender.js';
import { messageOf } from './routed-reply.js';
import type { RoutingListener } from './routing-listener.js';
import { createRoutingListener } from './routing-listener.js';

export type { FleetChange } from './fleet-change-notices.js';

/** How long changed ids gather before a notification, at least. */
export const CHANGES_GATHER_MS = 20;
/** At most one notification (of one or a few statements' worth of ids) this often. */
export const CHANGES_COALESCE_MS = 250;
/** How often a dropped listening connection is made again. */
export const CHANGES_RECONNECT_MS = 1000;

export interface FleetChangesOptions {
  /** Sends the notifications: the store's pool (a `SELECT pg_notify` per flush). */
  readonly db: pg.Pool;
  /** The database, for the dedicated listening connection. */
  readonly url: string;
  readonly instanceId: string;
  readonly logger: Logger;
  /** Default {@link CHANGES_GATHER_MS}. */
  readonly gatherMs?: number;
  /** Default {@link CHANGES_COALESCE_MS}. */
  readonly coalesceMs?: number;
  /** Default {@link CHANGES_RECONNECT_MS}. */
  readonly reconnectMs?: number;
}

export interface FleetChangesStats {
  /** Notifications sent (a flush of many ids may take a few). */
  readonly notices: number;
  /** Device ids named in them (an `all` counts none). */
  readonly ids: number;
  /** Changes heard on the channel, this instance's own included. */
  readonly heard: number;
  /** Device ids named in the changes heard (an `all` counts none). */
  readonly idsHeard: number;
  /** How long ago the last change was heard (ms); null before the first. */
  readonly lastHeardAgoMs: number | null;
  /**
   * Times the listening connection was made again after it dropped (or failed at first): each is
   * an `all` to the subscribers, a read of the whole fleet.
   */
  readonly reconnects: number;
  /** Flushes that could not be sent (their ids went out with a later one). */
  readonly sendFailures: number;
}

export interface FleetChanges {
  /** These devices' rows changed, committed: say so to every instance (gathered, coalesced). */
  changed(ids: Iterable<string>): void;
  /** Rows of many devices may have changed (leases moved): every instance reads the whole fleet again. */
  changedAll(): void;
  /** Every change heard, and `all` after the listening connection came back. */
  subscribe(listener: (change: FleetChange) => void): () => void;
  /** Listens (a failure is logged and retried every `reconnectMs`). */
  start(): Promise<void>;
  /** Sends what is pending, stops listening. */
  stop(): Promise<void>;
  listening(): boolean;
  stats(): FleetChangesStats;
}

/** The listening connection's `application_name` (PostgreSQL keeps 63 bytes of it). */
export function changesListenerName(instanceId: string): string {
  return `fleetvisor-changes:${instanceId}`.slice(0, 63);
}

export function createFleetChanges(options: FleetChangesOptions): FleetChanges {
  const { instanceId: me, logger: log } = options;
  let stopped = false;
  const subscribers = new Set<(change: FleetChange) => void>();
  const counts = { heard: 0, idsHeard: 0, reconnects: 0 };
  let lastHeardAt: number | undefined;
  const sender = createChangeSender({
    db: options.db,
    me,
    logger: log,
    gatherMs: options.gatherMs ?? CHANGES_GATHER_MS,
    coalesceMs: options.coalesceMs ?? CHANGES_COALESCE_MS,
  });

  function emit(change: FleetChange): void {
    for (const s of [...subscribers])
      try {
        s(change);
      } catch (error) {
        log.error('fleet changes: a subscriber failed', { error: messageOf(error) });
      }
  }

  const listener = createRoutingListener({
    url: options.url,
    channel: FLEET_CHANGES_CHANNEL,
    logger: log,
    names: { application: changesListenerName(me), log: 'fleet changes', what: 'changes of the fleet' },
    onNotice: (payload) => {
      const change = decodeNotice(payload);
      if (!change) return;
      counts.heard++;
      if (change.kind === 'devices') counts.idsHeard += change.ids.length;
      lastHeardAt = performance.now();
      emit(change);
    },
    isStopped: () => stopped,
  });
  const keeper = keepListening(
    listener,
    options.reconnectMs ?? CHANGES_RECONNECT_MS,
    () => stopped,
    () => {
      counts.reconnects++;
      log.info('fleet changes: listening again; the fleet is read again', { instance: me });
      emit({ kind: 'all', from: null, why: 'reconnected' });
    },
  );

  return {
    changed: (ids) => sender.add(ids),
    changedAll: () => sender.addAll(),
    subscribe(s) {
      subscribers.add(s);
      return () => subscribers.delete(s);
    },
    start: () => keeper.start(),
    async stop() {
      if (stopped) return;
      stopped = true;
      keeper.stop();
      subscribers.clear();
      await sender.stop();
      await listener.close();
    },
    listening: () => listener.listening(),
    stats: () => ({
      ...sender.stats(),
      ...counts,
      lastHeardAgoMs: lastHeardAt === undefined ? null : Math.round(performance.now() - lastHeardAt),
    }),
  };
}

/**
 * Keeps the listening connection up: listens at `start`, then every `reconnectMs` while it does
 * not. After any attempt but the first, a success calls `onBack`: what was signalled while the
 * connection was down was missed.
 */
function keepListening(
  listener: RoutingListener,
  reconnectMs: number,
  isStopped: () => boolean,
  onBack: () => void,
): { start(): Promise<void>; stop(): void } {
  let sweep: NodeJS.Timeout | undefined;
  let attempted = false;
  let connecting = false;

  async function listen(): Promise<void> {
    if (connecting || isStopped()) return;
    connecting = true;
    const first = !attempted;
    attempted = true;
    try {
      await listener.listen();
    } catch {
      return; // logged by the listener; the sweep tries again
    } finally {
      connecting = false;
    }
    if (first || isStopped() || !listener.listening()) return;
    onBack();
  }

  return {
    async start() {
      await listen();
      sweep ??= setInterval(() => {
        if (!listener.listening()) void listen();
      }, reconnectMs);
      sweep.unref?.();
    },
    stop: () => clearInterval(sweep),
  };
}

/**
 * The host's side of the contract (src/host/contract.ts) over a running {@link App}: every call
 * validated by its schema and answered in an envelope, and the live push stream.
 *
 * Assembled from src/host/api/: `tree` (the supervision tree from the app's root supervisor),
 * `live` (what the API keeps about the live fleet, from every convention), `stats` (the system
 * figures), `stream` (snapshot, then bounded diffs per client, resync when one falls behind),
 * `handlers` (one per contract method) and `views` (rows, events, commands, machines as data); in a
 * cluster, `fleet-wide` (the other instances' devices) and `remote-push` (pushed as they change).
 *
 * @example
 * const api = createHostApi(app);
 * await api.call('devices', { state: 'connected', limit: 20 }); // { ok: true, value: { items, next } }
 * const close = api.openStream({ send: (m) => ws.send(JSON.stringify(m)), congested: () => ws.bufferedAmount > 4e6 });
 */

import { fleetWideOf } from './api/fleet-wide.js';
import { callHandler, createHandlers } from './api/handlers.js';
import { LiveFigures } from './api/live.js';
import { startRemotePush } from './api/remote-push.js';
import { createStats } from './api/stats.js';
import type { StreamViews } from './api/stream.js';
import { PushStream } from './api/stream.js';
import { buildTree, findProcess } from './api/tree.js';
import { row } from './api/views.js';
import type { App } from './app.js';
import type { HostApi } from './contract.js';

export { describeMachine } from './api/views.js';

export interface HostApiOptions {
  /** A congested client is resynced after this long; default 5000 ms. */
  readonly resyncAfterMs?: number;
  /** New events kept per client between pushes; past it the oldest go (the log has them). */
  readonly maxPendingEvents?: number;
  /** Devices acted on at once by a bulk action; default 16. */
  readonly actConcurrency?: number;
}

export interface HostApiHandle extends HostApi {
  close(): void;
}

export function createHostApi(app: App, options: HostApiOptions = {}): HostApiHandle {
  const sources = { fleet: app.fleet, root: app.supervisor };
  const views: StreamViews = {
    tree: () => buildTree(sources),
    row: (d) =>
      row(
        d,
        live.lastSeen(d.id),
        app.fleet.guards.breakerState(d.id),
        app.fleet.kinds.get(d.kind)?.convention,
      ),
    stats: () => stats(),
    brokerConnected: () => app.links.mqtt?.stats().connected,
  };
  const stream = new PushStream(app, views, {
    resyncAfterMs: options.resyncAfterMs ?? 5000,
    maxPendingEvents: options.maxPendingEvents ?? 200,
  });
  const live: LiveFigures = new LiveFigures(app, stream);
  const stats = createStats(app, live);
  // In a cluster: the others' devices for the `devices` query, and pushed as their owners signal.
  const fleetWide = fleetWideOf(app);
  const cluster = app.cluster;
  const remotePush =
    cluster &&
    fleetWide &&
    startRemotePush({
      changes: cluster.changes,
      reads: fleetWide,
      me: cluster.keeper.instanceId,
      isOwn: (id) => app.fleet.has(id),
      push: (rows, removed) => stream.remote(rows, removed),
      report: (what, error) => app.runtime.report(`api: ${what}`, error),
    });
  const handlers = createHandlers({
    app,
    live,
    fleetWide,
    ...(remotePush ? { remotePush: () => remotePush.stats() } : {}),
    actConcurrency: options.actConcurrency ?? 16,
    findProcess: (pid) => findProcess(sources, pid),
    ...views,
  });
  return {
    call: (method, args, context) => callHandler(handlers, app.runtime, method, args, context),
    openStream: (sink) => stream.open(sink),
    close() {
      remotePush?.stop();
      stream.close();
      live.close();
    },
  };
}

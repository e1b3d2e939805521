/**
 * The app as one instance of a cluster (docs/scale-out.md): leases on the store's PostgreSQL
 * database, taken before the fleet starts so that it loads only the devices of its shards; once
 * the links run, the lease keeper, the command router (operations on another instance's devices:
 * actions here; the API adds the rest, src/host/api/routed.ts) and the periodic pick-up of devices
 * added elsewhere. The changes of devices' rows are signalled to the other instances as they
 * commit, and theirs heard (src/cluster/fleet-changes.ts): the store the fleet gets is
 * `leases.store`.
 *
 * @example
 * const leases = await openClusterLeases(setup, postgresStore); // undefined without options.cluster
 * leases?.follow(fleet, links);
 * const router = leases && (await startClusterRouting(setup, leases.keeper, { fleet, links, updates }));
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import pg from 'pg';
import type { CommandRouter } from '../../cluster/command-router.js';
import { createCommandRouter } from '../../cluster/command-router.js';
import { feedFigures } from '../../cluster/feed-figures.js';
import type { FleetChanges } from '../../cluster/fleet-changes.js';
import { createFleetChanges } from '../../cluster/fleet-changes.js';
import type { LeaderKeeper } from '../../cluster/leadership.js';
import { createLeaderKeeper, PRIMARY_ROLE } from '../../cluster/leadership.js';
import type { LeaseKeeper } from '../../cluster/lease-keeper.js';
import { createLeaseKeeper } from '../../cluster/lease-keeper.js';
import { clusterView, initCluster } from '../../cluster/leases.js';
import { devicesDeclaredFor } from '../../cluster/pins.js';
import { DEFAULT_SHARD_COUNT, shardOf } from '../../cluster/shard.js';
import { signallingStore } from '../../cluster/signalling-store.js';
import type { Convention, ConventionContext, OwnershipEvents } from '../../conventions/convention.js';
import { MODBUS_KIND } from '../../conventions/modbus/modbus-kind.js';
import { sparkplugConvention } from '../../conventions/sparkplug/sparkplug-bridge.js';
import type { Fleet } from '../../devices/fleet.js';
import type { FirmwareUpdates } from '../../firmware/firmware-updates.js';
import type { PostgresStore } from '../../store/postgres-store.js';
import type { Store } from '../../store/store.js';
import type { Links } from '../../transports/links.js';
import type { AppCluster } from '../app.js';
import { updateInProgress } from './firmware.js';
import type { AppRoot } from './root.js';
import type { AppSetup } from './setup.js';

export interface ClusterLeases {
  readonly keeper: LeaseKeeper;
  /** The instance's own small pool, so that renewals never wait behind the store's reads and writes. */
  readonly pool: pg.Pool;
  /** The fleet and links that gained and lost shards act on, once they exist. */
  follow(fleet: Fleet, links: Links): void;
  /** Changes of the fleet's rows, told to and heard from the other instances (listening already). */
  readonly changes: FleetChanges;
  /** The store for the fleet: its committed writes of devices' rows are signalled on {@link changes}. */
  readonly store: Store;
  /** Told after each gain of shards, once its devices are restored (the conventions listen). */
  readonly ownership: OwnershipEvents;
}

/**
 * The lease keeper (not started yet) with the store fenced by its tokens; undefined when the app
 * is not a cluster instance. Throws when the cluster's tables cannot be set up.
 */
export async function openClusterLeases(
  setup: AppSetup,
  postgresStore: PostgresStore | undefined,
): Promise<ClusterLeases | undefined> {
  const { options, log, stops } = setup;
  if (!(options.cluster && postgresStore && options.storeUrl)) return undefined;
  let fleetRef: Fleet | undefined;
  let linksRef: Links | undefined;
  const pool = new pg.Pool({
    connectionString: options.storeUrl,
    max: 2,
    application_name: 'fleetvisor-cluster',
  });
  pool.on('error', (error) => log.warn('a cluster connection failed', { error: error.message }));
  stops.push(() => pool.end());
  const shardCount = await initCluster(pool, options.cluster.shardCount ?? DEFAULT_SHARD_COUNT);
  const instanceId =
    options.cluster.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
  // A shard's devices, less those pinned to an instance by their serial port (src/cluster/pins.ts):
  // a pinned device comes and goes with its pin, not with its shard.
  const inShards = (shards: readonly number[]) => {
    const set = new Set(shards);
    const pins = keeper.pins;
    return (deviceId: string) =>
      set.has(shardOf(deviceId, shardCount)) &&
      !(pins && (pins.here.has(deviceId) || pins.elsewhere.has(deviceId)));
  };
  const idsIn = (ids: readonly string[]) => {
    const set = new Set(ids);
    return (deviceId: string) => set.has(deviceId);
  };
  // Started before the keeper: a claim is signalled (the rows' owner changed), stopped after it.
  const changes = createFleetChanges({
    db: postgresStore.pool,
    url: options.storeUrl,
    instanceId,
    logger: log,
  });
  await changes.start();
  stops.push(() => changes.stop());
  const gainedListeners = new Set<(owns: (deviceId: string) => boolean) => void>();
  const ownership: OwnershipEvents = {
    onGained(listener) {
      gainedListeners.add(listener);
      return () => gainedListeners.delete(listener);
    },
  };
  const keeper = createLeaseKeeper({
    pool,
    instance: { id: instanceId, host: hostname(), pid: process.pid, apiUrl: options.cluster.apiUrl },
    shardCount,
    ...(options.cluster.leaseMs !== undefined ? { leaseMs: options.cluster.leaseMs } : {}),
    logger: log,
    feed: () => feedFigures(changes.stats(), changes.listening()),
    gained: async (shards) => {
      const which = inShards(shards);
      const r = await fleetRef?.takeOver(which);
      const online = linksRef?.hub?.resync(which) ?? 0;
      changes.changedAll();
      for (const listener of gainedListeners) {
        try {
          listener(which);
        } catch (error) {
          log.error('cluster: a listener of gained shards threw', { error: String(error) });
        }
      }
      log.info('cluster: devices taken over', {
        shards: shards.length,
        started: r?.started ?? 0,
        online,
      });
    },
    handOver: async (shards) => {
      const which = inShards(shards);
      linksRef?.hub?.release(which);
      const n = (await fleetRef?.handOver(which, { save: true })) ?? 0;
      log.info('cluster: devices handed over', { shards: shards.length, devices: n });
    },
    // Serial devices: run by the instance that has their port (src/cluster/pins.ts).
    pinned: {
      changed: async ({ start, stop }) => {
        if (stop.length > 0) {
          linksRef?.hub?.release(idsIn(stop));
          await fleetRef?.handOver(idsIn(stop), { save: false });
        }
        if (start.length > 0) {
          const which = idsIn(start);
          const r = await fleetRef?.takeOver(which);
          linksRef?.hub?.resync(which);
          changes.changed(start);
          for (const listener of gainedListeners) listener(which);
          log.info('cluster: devices started here by their pins', {
            devices: start.length,
            started: r?.started ?? 0,
          });
        }
      },
      handOver: async (ids) => {
        linksRef?.hub?.release(idsIn(ids));
        await fleetRef?.handOver(idsIn(ids), { save: true });
      },
      // Modbus devices name the instance whose machine has their port: pinned there.
      declared: () => devicesDeclaredFor(pool, instanceId, MODBUS_KIND),
    },
    lost: (shards) => {
      const which = inShards(shards);
      linksRef?.hub?.release(which);
      void fleetRef
        ?.handOver(which, { save: false })
        .catch((error: unknown) =>
          log.error('cluster: stopping lost devices failed', { error: String(error) }),
        );
    },
  });
  postgresStore.setFence({ owner: instanceId, tokenOf: keeper.tokenOf });
  log.info('cluster instance', { instance: instanceId, shards: shardCount, leaseMs: keeper.leaseMs });
  return {
    keeper,
    pool,
    changes,
    store: signallingStore(postgresStore, (ids) => changes.changed(ids)),
    ownership,
    follow: (fleet, links) => {
      fleetRef = fleet;
      linksRef = links;
    },
  };
}

/**
 * Starts the lease keeper, then the command router and the device sync; their stops are pushed so
 * that the router and sync stop first, then the keeper saves and hands over every device.
 */
export async function startClusterRouting(
  setup: AppSetup,
  k: LeaseKeeper,
  parts: { readonly fleet: Fleet; readonly links: Links; readonly updates: FirmwareUpdates },
): Promise<CommandRouter> {
  const { options, log, stops } = setup;
  const { fleet, links, updates } = parts;
  await k.start();
  // Graceful: every device saved and handed over, the leases released, before the rest stops.
  stops.push(() => k.stop());
  // Operations asked here on another instance's devices go to their owner, and the owner's come
  // here (actions by the fleet, the rest by the API's handlers once the API answers them); stopped
  // first, so operations left pending are carried out by the shards' next owners.
  const r = createCommandRouter({
    url: options.storeUrl as string,
    instanceId: k.instanceId,
    shardCount: k.shardCount,
    owns: k.owns,
    // A device is adopted by the owner of its shard: it is not in the fleet yet.
    ready: (id, kind) => k.owns(id) && (kind === 'adopt' || fleet.has(id)),
    run: async ({ deviceId, action, args, actor }) => {
      // As the API does on a single instance: a device being updated takes no other command.
      const updating = updateInProgress(updates, deviceId);
      if (updating) return { ok: false, error: updating };
      return fleet.act(deviceId, action, args, actor ?? '');
    },
    ...(options.cluster?.actTimeoutMs !== undefined ? { timeoutMs: options.cluster.actTimeoutMs } : {}),
    logger: log,
  });
  await r.start();
  stops.push(() => r.stop());
  // Devices added on another instance (or by the config) in shards this one owns: loaded within
  // a sync interval (docs/scale-out.md: additions are not routed).
  const sync = setInterval(() => {
    void fleet
      .takeOver(k.owns)
      .then((r) => {
        if (r.started > 0) links.hub?.resync(k.owns);
      })
      .catch((error: unknown) => log.warn('cluster: device sync failed', { error: String(error) }));
  }, 10_000);
  sync.unref();
  stops.push(async () => clearInterval(sync));
  return r;
}

/** The app's `cluster`: the keeper, the router, the changes, the cluster read from the database, and the store's pool. */
export function appCluster(leases: ClusterLeases, router: CommandRouter, db: pg.Pool): AppCluster {
  return { keeper: leases.keeper, router, changes: leases.changes, view: () => clusterView(leases.pool), db };
}

/** The Sparkplug host id of the cluster's one Primary Host, unless `cluster.sparkplugHostId` names another. */
export const CLUSTER_SPARKPLUG_HOST_ID = 'fleetvisor';

/**
 * In a cluster the Sparkplug convention is not one of the links' bridges: it runs as the root's
 * `sparkplug` child, started by {@link startClusterLeadership}.
 */
export function withoutSparkplug(conventions: readonly Convention[]): {
  readonly links: readonly Convention[];
  readonly sparkplug: Convention | undefined;
} {
  return {
    links: conventions.filter((c) => c.name !== 'sparkplug'),
    sparkplug: conventions.find((c) => c.name === 'sparkplug'),
  };
}

/**
 * The leader lease `primary` (src/cluster/leadership.ts). Its holder runs the Sparkplug bridge as
 * the cluster's Primary Host, under one host id for the whole cluster (`cluster.sparkplugHostId`,
 * default {@link CLUSTER_SPARKPLUG_HOST_ID}): edge nodes follow one STATE topic whichever instance
 * leads. Every other instance runs the bridge under its own host id (`member`, the convention the
 * app was given), as a plain host application: each bridge feeds the Sparkplug devices of its own
 * instance's shards, as before, so their telemetry and commands still reach the owners. Exactly
 * one bridge runs per instance; a change of role stops one and starts the other (the root's
 * `sparkplug` child). Its stop step (pushed last, so run first) stops the primary bridge (its
 * STATE offline) and releases the lease: another instance, told at once, takes it.
 */
export async function startClusterLeadership(
  setup: AppSetup,
  leases: ClusterLeases,
  parts: {
    readonly root: AppRoot;
    /** The Sparkplug convention the app was given; undefined: none runs, the role is held alone. */
    readonly member: Convention | undefined;
    readonly context: ConventionContext;
  },
): Promise<LeaderKeeper> {
  const { options, log, stops } = setup;
  const { root, member, context } = parts;
  const owner = leases.keeper.instanceId;
  const hostId = options.cluster?.sparkplugHostId ?? CLUSTER_SPARKPLUG_HOST_ID;
  const primary = member && sparkplugConvention({ hostId, clientId: `${hostId}-${owner}` });
  const sup = root.supervisor;
  let chain: Promise<void> = Promise.resolve();
  // Role changes one at a time, in the order they happened.
  const run = (conv: Convention | undefined, role: string) => {
    chain = chain
      .then(async () => {
        await sup.terminateChild('sparkplug');
        await sup.deleteChild('sparkplug');
        if (!conv) return;
        await root.startChild({ id: 'sparkplug', start: () => conv.start(context) });
        log.info('cluster: Sparkplug bridge started', { role, hostId: role === 'primary' ? hostId : 'own' });
      })
      .catch((error: unknown) =>
        log.error('cluster: the Sparkplug bridge could not change role', { role, error: String(error) }),
      );
    return chain;
  };
  let stopping = false;
  const leader = createLeaderKeeper({
    pool: leases.pool,
    name: PRIMARY_ROLE,
    owner,
    leaseMs: leases.keeper.leaseMs,
    logger: log,
    ...(options.storeUrl ? { listenUrl: options.storeUrl } : {}),
    elected: () => run(primary, 'primary'),
    deposed: () => run(stopping ? undefined : member, 'member'),
  });
  await leader.start();
  if (!leader.holding()) await run(member, 'member');
  stops.push(async () => {
    stopping = true;
    await leader.stop();
    await run(undefined, 'stopped');
  });
  return leader;
}

/**
 * The app, assembled: store → links (MQTT, serial) → fleet, with the embedded broker when no
 * broker URL is given, and — with no configuration at all — a small simulated demo fleet, so a
 * newcomer sees live devices at once. The headless server and the Electron main process both
 * start it; neither imports anything else of the core to get going.
 *
 * Supervision: one root supervisor, `fleetvisor` (oneForOne), holds everything that runs, so the
 * tree the views show is the truth:
 *
 *     fleetvisor
 *     ├── broker    the embedded MQTT broker (permanent: a kill restarts it on the same port)
 *     ├── devices   the fleet's dynamic supervisor, one supervisor per device
 *     └── links     MQTT link, serial manager, the conventions' bridges
 *
 * `devices` and `links` are built once by their service (the fleet, the links), so the root
 * cannot start them again: they are `temporary` and `significant`, and the root has
 * `autoShutdown: 'anySignificant'` — when either ends on its own (its intensity exceeded), the
 * root stops the rest and the app stops ({@link App.whenStopped}), as an OTP application whose
 * top supervisor died. Stopping them runs the service's own stop (see serviceSupervisor). The
 * fleet's command tracker (`fleet.commands`) sits between devices and links.
 *
 * Assembled from src/host/app/, one part per concern, each pushing its stop step as it starts
 * (`setup`): `store` (SQLite or PostgreSQL, retention), `cluster` (leases, command routing, the
 * leader lease whose holder runs the Sparkplug Primary Host: the root's `sparkplug` child in a
 * cluster), `root` (the root supervisor, the app's stop), `broker` (embedded with its accounts, or
 * external), `demo` (the simulated fleet), `fleet` (links, fleet, conventions, the `devices` and
 * `links` children, declared devices), `firmware` (images, update jobs, rollouts, drift) and
 * `alarms`.
 *
 * @example
 * const app = await startApp({ dataDir: '/srv/fleetvisor', logger });
 * app.brokerUrl;      // 'mqtt://127.0.0.1:1883' (or the free port used when 1883 was taken)
 * await app.stop();
 */
import type pg from 'pg';
import type { AlarmEngine } from '../alarms/alarm-engine.js';
import type { CommandRouter } from '../cluster/command-router.js';
import type { FleetChanges } from '../cluster/fleet-changes.js';
import type { LeaseKeeper } from '../cluster/lease-keeper.js';
import type { ClusterView } from '../cluster/leases.js';
import { startSharedAccounts } from '../cluster/shared-accounts.js';
import type { Convention } from '../conventions/convention.js';
import type { DiscoverySourceList } from '../conventions/discovery-sources.js';
import { createDiscoverySources } from '../conventions/discovery-sources.js';
import type { Fleet } from '../devices/fleet.js';
import type { FirmwareDriftPolicy, FirmwareDriftUpdater } from '../firmware/drift-updater.js';
import type { FirmwareUpdates } from '../firmware/firmware-updates.js';
import type { KeyErrorCode, OpenedFirmware } from '../firmware/index.js';
import type { Failure, Result } from '../lib/result.js';
import type { ExitReason } from '../runtime/exit-reason.js';
import type { Logger, Runtime } from '../runtime/runtime.js';
import { createRuntime } from '../runtime/runtime.js';
import type { Supervisor } from '../runtime/supervisor.js';
import type { SimFleet } from '../sim/sim-fleet.js';
import type { ExportReader } from '../store/sqlite-export.js';
import type { Store } from '../store/store.js';
import type { BrokerAccounts } from '../transports/broker-accounts.js';
import type { EmbeddedBroker } from '../transports/embedded-broker.js';
import type { Links, MqttSettings } from '../transports/links.js';
import { startAlarms } from './app/alarms.js';
import { startAppBroker } from './app/broker.js';
import {
  appCluster,
  openClusterLeases,
  startClusterLeadership,
  startClusterRouting,
  withoutSparkplug,
} from './app/cluster.js';
import { startDemo } from './app/demo.js';
import { createDriftUpdater, importSharedImage, openAppFirmware, restoreUpdates } from './app/firmware.js';
import {
  adoptPolicy,
  createFleetAndLinks,
  logDeviceLifecycle,
  reconcileConfigDevices,
  startDevices,
  startLinks,
} from './app/fleet.js';
import { startRoot, stopWithRoot } from './app/root.js';
import type { AppSetup } from './app/setup.js';
import { createStopSteps } from './app/setup.js';
import { openAppStore, startRetention } from './app/store.js';
import type { DeclaredDevices } from './declared-devices.js';
import type { RetentionDays } from './retention.js';
import type { RolloutRunner } from './rollout-runner.js';
import { startRolloutTakeover } from './rollout-takeover.js';
import type { AppSettings } from './settings.js';

export { ALARM_RULES_FILE_NAME } from './app/alarms.js';
export { updateInProgress } from './app/firmware.js';
export { defaultConventions } from './app/fleet.js';
export { DEMO_DATABASE_FILE_NAME } from './app/store.js';

export interface AppOptions {
  readonly dataDir: string;
  readonly logger: Logger;
  /** An external broker; without it the embedded broker runs. */
  readonly mqtt?: MqttSettings;
  /**
   * Where the embedded broker listens; default 127.0.0.1:1883 (a free port if taken). It always
   * asks for credentials (accounts in the data folder, see src/transports/broker-accounts.ts);
   * `tls` adds a TLS listener for devices on the LAN.
   */
  readonly broker?: {
    readonly host?: string;
    readonly port?: number;
    readonly tls?: {
      readonly certFile: string;
      readonly keyFile: string;
      readonly host?: string;
      readonly port?: number;
    };
  };
  /** Serial ports to open (`auto`: USB serial adapters as they appear). */
  readonly serialPorts?: readonly string[] | 'auto';
  /**
   * The simulated demo fleet: default on when neither a broker URL nor serial ports are given.
   * It runs against its own database (`demo.sqlite`) in the data folder.
   */
  readonly demo?:
    | boolean
    | { readonly mqtt?: number; readonly serial?: number; readonly telemetryIntervalMs?: number };
  /**
   * Unknown devices that say hello: `auto` adds them, `manual` lists them; default auto in the demo
   * on the embedded broker (on an external one the demo adds its own devices: src/host/app/demo.ts).
   */
  readonly adopt?: 'auto' | 'manual';
  /**
   * A device whose spec asks for a firmware version it does not run: `show` reports the drift
   * only (the default), `update` has the reconciler start the update (src/firmware/drift-updater.ts).
   */
  readonly firmwareDrift?: FirmwareDriftPolicy;
  /** Days of telemetry, events and finished commands kept (src/host/retention.ts); default all. */
  readonly retention?: RetentionDays;
  /**
   * `postgres://…`: the fleet's store on that PostgreSQL database (src/store/postgres-store.ts)
   * instead of SQLite in the data folder.
   */
  readonly storeUrl?: string;
  /**
   * With {@link storeUrl}: one instance of a cluster sharing the fleet on that database and broker
   * (docs/scale-out.md). It supervises the devices of the shards it leases.
   */
  readonly cluster?: {
    /** Unique among the running instances; default `<host>-<pid>-<random>`. */
    readonly instanceId?: string;
    /** For a new fleet only (a fleet keeps its count); default 1024. */
    readonly shardCount?: number;
    /** Default 6000 ms: a dead instance's devices run again on another within ~8 s. */
    readonly leaseMs?: number;
    /** Where this instance's API answers, shown in the cluster view. */
    readonly apiUrl?: string;
    /** How long an action asked here waits for the device's owner (src/cluster/command-router.ts); default 15,000 ms. */
    readonly actTimeoutMs?: number;
    /** The Sparkplug host id of the cluster's one Primary Host (run by the `primary` leader); default `fleetvisor`. */
    readonly sparkplugHostId?: string;
  };
  /** The data folder's settings (src/host/settings.ts), for the Settings view; none when started from code. */
  readonly settings?: AppSettings;
  /**
   * Foreign conventions joining the same fleet; default all of them: Homie (devices under
   * `homie/` on the app's broker), Sparkplug B (the host as a Primary Host Application there),
   * Modbus RTU (devices added with a register map).
   */
  readonly conventions?: readonly Convention[];
  /** The fleet declared in the config file: reconciled at start (src/host/declared-devices.ts). */
  readonly devices?: DeclaredDevices;
  /**
   * The fleet-wide command rate limit (docs/commands.md); default 200 a second, burst 400. Each
   * device kind sets its own breaker and per-device limit.
   */
  readonly commandRate?: { readonly perSecond?: number; readonly burst?: number };
}

export interface App {
  readonly runtime: Runtime;
  /** The root of the supervision tree: broker, devices, links. */
  readonly supervisor: Supervisor;
  /** The fleet's store: SQLite in the data folder, or PostgreSQL with {@link AppOptions.storeUrl}. */
  readonly store: Store;
  /** Streaming export of history (src/store/sqlite-export.ts); SQLite only for now, else undefined. */
  readonly exports: ExportReader | undefined;
  readonly fleet: Fleet;
  readonly links: Links;
  /**
   * What the conventions' bridges (Homie, Sparkplug) discovered and wait for the operator; our own
   * protocol's list is the link hub's (`links.hub.discovered()`). The API shows both as one.
   */
  readonly discovery: DiscoverySourceList;
  /** Where devices connect over MQTT. */
  readonly brokerUrl: string | undefined;
  readonly broker: EmbeddedBroker | undefined;
  /**
   * The data folder's broker accounts (issue, rotate, revoke device secrets): the embedded
   * broker's, or, with an external one, those kept live on a Mosquitto with the dynamic security
   * plugin (src/host/app/broker-accounts-sync.ts). Always set; `undefined` stays in the type for its callers.
   */
  readonly brokerAccounts: BrokerAccounts | undefined;
  readonly sim: SimFleet | undefined;
  /**
   * The firmware images of this database (docs/firmware.md), trusting the data folder's keys (and
   * the sample key in the demo); a trust list that does not load is kept as its failure.
   */
  readonly firmware: Result<OpenedFirmware, Failure<KeyErrorCode>>;
  /** Firmware update jobs, one per device at a time (src/firmware/firmware-updates.ts). */
  readonly updates: FirmwareUpdates;
  /** Rollouts in waves, saved and continued across restarts (src/host/rollout-runner.ts). */
  readonly rollouts: RolloutRunner;
  /** Resolves when every save of the device's update job asked for so far is done: whether the last one took. */
  readonly jobSaved: (deviceId: string) => Promise<boolean>;
  /** Firmware drift corrected by the reconciler when the policy is `update`; undefined otherwise. */
  readonly firmwareDrift: FirmwareDriftUpdater | undefined;
  /** The data folder's settings file and this run's values; undefined when started from code. */
  readonly settings: AppSettings | undefined;
  /** Alarm rules and alarms (src/alarms); rules also from `alarm-rules.json` in the data folder. */
  readonly alarms: AlarmEngine;
  /** Whether the simulated demo fleet runs. */
  readonly demo: boolean;
  /** This instance's leases when it runs in a cluster ({@link AppOptions.cluster}); else undefined. */
  readonly cluster: AppCluster | undefined;
  /** Starts or stops the simulated devices (only in demo mode: they live in the demo database). */
  setDemo(on: boolean): Promise<{ ok: true } | { ok: false; message: string }>;
  stop(): Promise<void>;
  /**
   * Resolves once the app has stopped: after {@link App.stop}, or on its own when its root
   * supervisor shut down (a part it cannot run without ended) — then with that reason.
   */
  whenStopped(): Promise<ExitReason | undefined>;
}

export interface AppCluster {
  readonly keeper: LeaseKeeper;
  /** Actions on any device of the fleet, carried out by its owner (src/cluster/command-router.ts). */
  readonly router: CommandRouter;
  /** Changes of devices' rows, signalled by their owners as they commit (src/cluster/fleet-changes.ts). */
  readonly changes: FleetChanges;
  /** Instances, their shards and lease ages, read from the database. */
  view(): Promise<ClusterView>;
  /** The shared database (the store's pool), for reads of the whole fleet (src/host/api/fleet-wide.ts). */
  readonly db: pg.Pool;
}

/**
 * Starts the parts in order (store, cluster leases, root, broker, demo, fleet and links, firmware,
 * retention, devices, declared devices, alarms, links, cluster routing), each pushing its stop
 * step as it starts, so {@link App.stop} undoes them in reverse and a failed start undoes what
 * was up. Throws what the failing part throws.
 */
export async function startApp(options: AppOptions): Promise<App> {
  const log = options.logger;
  const demo =
    options.demo === undefined
      ? options.mqtt === undefined && options.serialPorts === undefined
      : options.demo !== false;
  const runtime = createRuntime({ logger: log });
  const stops = createStopSteps(log);
  const setup: AppSetup = { options, runtime, log, stops };

  try {
    const { file, store: opened, exports, postgresStore } = await openAppStore(setup, demo);
    // A cluster instance leases its shards before the fleet exists; the fleet and links follow them.
    const leases = await openClusterLeases(setup, postgresStore);
    // Its writes of devices' rows are signalled to the other instances (src/cluster/fleet-changes.ts).
    const store = leases?.store ?? opened;
    const owns = leases?.keeper.owns;
    const root = await startRoot(setup);
    const broker = await startAppBroker(setup, root);
    // In a cluster the devices' broker accounts are every instance's (src/cluster/shared-accounts.ts).
    if (leases && postgresStore) {
      const shared = startSharedAccounts({
        db: postgresStore.pool,
        accounts: broker.deviceAccounts,
        instanceId: leases.keeper.instanceId,
        logger: log,
        // A revocation made on another instance keeps the device's messages out here at once.
        onTaken: () => broker.revoked.check(),
      });
      stops.push(() => shared.stop());
    }
    const { mqtt } = broker;
    const demoFleet = await startDemo(setup, demo, broker);
    const { links, conventions, fleet } = createFleetAndLinks(setup, {
      store,
      mqtt,
      serialPorts: demoFleet.serialPorts,
      ...(owns ? { owns } : {}),
    });
    leases?.follow(fleet, links);
    broker.revoked.attach(fleet, links);
    // The cluster's router, once up (a rollout's devices on other instances get their jobs through it).
    const routerRef: { current?: CommandRouter } = {};
    const { firmware, updates, rollouts, jobSaved } = await openAppFirmware(setup, {
      file,
      demo,
      store,
      fleet,
      links,
      jobEnded: () => firmwareDrift?.kick(),
      ...(postgresStore ? { sharedDb: postgresStore.pool } : {}),
      ...(leases
        ? { cluster: { instanceId: leases.keeper.instanceId, router: () => routerRef.current } }
        : {}),
    });
    startRetention(setup, store);
    const sharedDb = leases && postgresStore ? postgresStore.pool : undefined;
    const firmwareDrift = createDriftUpdater(setup, {
      firmware,
      updates,
      rollouts,
      store,
      fleet,
      // In a cluster the reconciler finds a version's image among those other instances shared.
      ...(sharedDb && firmware.ok
        ? { importShared: (version, kind) => importSharedImage(firmware.value, sharedDb, version, kind, log) }
        : {}),
    });

    await startDevices(setup, root, fleet);
    await reconcileConfigDevices(setup, { fleet, store, accounts: broker.deviceAccounts });
    await demoFleet.declare(fleet);
    const alarms = await startAlarms(setup, { file, fleet, store });
    const discovery = createDiscoverySources();
    // In a cluster the Sparkplug bridge's role follows the leader lease (startClusterLeadership).
    const split = leases ? withoutSparkplug(conventions) : undefined;
    await startLinks(setup, root, {
      discovery,
      links,
      conventions: split?.links ?? conventions,
      fleet,
      store,
      mqtt,
      demo,
      // A device revoked while the app runs: its messages are not taken (src/host/app/revoked-devices.ts).
      owns: (id) => broker.revoked.admits(id) && (owns?.(id) ?? true),
      ...(leases?.keeper.pins ? { heardOnPort: leases.keeper.pins.heard } : {}),
      updates,
      attached: async () => {
        await restoreUpdates(setup, { firmware, updates });
        await rollouts.restore();
        firmwareDrift?.start();
      },
      stopping: () => firmwareDrift?.stop(),
    });
    const router = leases && (await startClusterRouting(setup, leases.keeper, { fleet, links, updates }));
    if (router) routerRef.current = router;
    // In a cluster a rollout outlives its instance: another takes it over (src/host/rollout-takeover.ts).
    if (leases && postgresStore && firmware.ok) {
      const takeover = startRolloutTakeover({
        db: postgresStore.pool,
        instanceId: leases.keeper.instanceId,
        goneAfterMs: leases.keeper.leaseMs,
        runner: rollouts,
        firmware: firmware.value,
        logger: log,
      });
      stops.push(async () => takeover.stop());
    }
    if (leases)
      await startClusterLeadership(setup, leases, {
        root,
        member: split?.sparkplug,
        context: {
          runtime,
          fleet,
          store,
          broker: mqtt,
          ...(links.mqttHandlers ? { hostMqtt: links.mqttHandlers } : {}),
          adopt: adoptPolicy(options, demo),
          discovery,
          ownership: leases.ownership,
          // A Sparkplug device runs where its node runs (src/cluster/pins.ts).
          ...(leases.keeper.pins ? { pin: leases.keeper.pins.claim } : {}),
        },
      });

    const off = logDeviceLifecycle(runtime, fleet, log);
    stops.push(async () => off());

    return {
      runtime,
      supervisor: root.supervisor,
      store,
      exports,
      fleet,
      links,
      discovery,
      brokerUrl: mqtt.url,
      get broker() {
        return broker.current();
      },
      brokerAccounts: broker.deviceAccounts,
      get sim() {
        return demoFleet.current();
      },
      firmware,
      updates,
      rollouts,
      jobSaved,
      firmwareDrift,
      settings: options.settings,
      alarms,
      demo,
      cluster: leases && router && postgresStore ? appCluster(leases, router, postgresStore.pool) : undefined,
      setDemo: (on) => demoFleet.setDemo(on),
      ...stopWithRoot(setup, root.supervisor),
    } satisfies App;
  } catch (error) {
    await stops.unwind();
    runtime.dispose();
    throw error;
  }
}

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
 * @example
 * const app = await startApp({ dataDir: '/srv/fleetvisor', logger });
 * app.brokerUrl;      // 'mqtt://127.0.0.1:1883' (or the free port used when 1883 was taken)
 * await app.stop();
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { AlarmEngine } from '../alarms/alarm-engine.js';
import { createAlarmEngine } from '../alarms/alarm-engine.js';
import { openSqliteAlarmStore } from '../alarms/sqlite-alarm-store.js';
import type { CommandRouter } from '../cluster/command-router.js';
import { createCommandRouter } from '../cluster/command-router.js';
import type { LeaseKeeper } from '../cluster/lease-keeper.js';
import { createLeaseKeeper } from '../cluster/lease-keeper.js';
import type { ClusterView } from '../cluster/leases.js';
import { clusterView, initCluster } from '../cluster/leases.js';
import { DEFAULT_SHARD_COUNT, shardOf } from '../cluster/shard.js';
import type { Convention } from '../conventions/convention.js';
import { homieConvention } from '../conventions/homie/homie-bridge.js';
import { modbusConvention } from '../conventions/modbus/modbus-bridge.js';
import { sparkplugConvention } from '../conventions/sparkplug/sparkplug-bridge.js';
import type { Fleet } from '../devices/fleet.js';
import { createFleet } from '../devices/fleet.js';
import { genericDevice } from '../devices/generic-device.js';
import type { FirmwareDriftPolicy, FirmwareDriftUpdater } from '../firmware/drift-updater.js';
import { createFirmwareDriftUpdater } from '../firmware/drift-updater.js';
import type { FirmwareUpdates } from '../firmware/firmware-updates.js';
import { createFirmwareUpdates } from '../firmware/firmware-updates.js';
import type { KeyErrorCode, OpenedFirmware } from '../firmware/index.js';
import { openFirmware } from '../firmware/index.js';
import type { UpdateJobStep } from '../firmware/update-job.js';
import { FINAL_UPDATE_STEPS } from '../firmware/update-job.js';
import type { Failure, Result } from '../lib/result.js';
import type { ExitReason } from '../runtime/exit-reason.js';
import { formatExitReason } from '../runtime/exit-reason.js';
import type { Logger, Runtime } from '../runtime/runtime.js';
import { createRuntime } from '../runtime/runtime.js';
import { serviceSupervisor } from '../runtime/service-supervisor.js';
import type { Supervisor } from '../runtime/supervisor.js';
import { startSupervisor } from '../runtime/supervisor.js';
import { socatAvailable } from '../sim/pty.js';
import type { SimFleet } from '../sim/sim-fleet.js';
import { startSimFleet } from '../sim/sim-fleet.js';
import { DATABASE_FILE_NAME } from '../store/data-dir.js';
import type { PostgresStore } from '../store/postgres-store.js';
import { openPostgresStore } from '../store/postgres-store.js';
import type { ExportReader } from '../store/sqlite-export.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { Store } from '../store/store.js';
import type { BrokerAccounts } from '../transports/broker-accounts.js';
import { openBrokerAccounts } from '../transports/broker-accounts.js';
import type { EmbeddedBroker } from '../transports/embedded-broker.js';
import type { Links, MqttSettings } from '../transports/links.js';
import { createLinks } from '../transports/links.js';
import { brokerChild } from './broker-process.js';
import type { DeclaredDevices } from './declared-devices.js';
import { reconcileDeclaredDevices } from './declared-devices.js';
import type { RetentionDays } from './retention.js';
import { createRetention } from './retention.js';
import type { RolloutRunner } from './rollout-runner.js';
import { createRolloutRunner } from './rollout-runner.js';
import type { AppSettings } from './settings.js';

/** The demo's own database, so demo devices never mix with a real fleet. */
export const DEMO_DATABASE_FILE_NAME = 'demo.sqlite';
/** Alarm rules kept with the configuration (a JSON array of rules, src/alarms/rules.ts). */
export const ALARM_RULES_FILE_NAME = 'alarm-rules.json';

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
  /** Unknown devices that say hello: `auto` adds them, `manual` lists them; default auto in the demo. */
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
  /** Where devices connect over MQTT. */
  readonly brokerUrl: string | undefined;
  readonly broker: EmbeddedBroker | undefined;
  /** The embedded broker's accounts (issue, rotate, revoke device secrets); none with an external broker. */
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
  /** Instances, their shards and lease ages, read from the database. */
  view(): Promise<ClusterView>;
}

/**
 * A device being updated takes no other command (a reboot on trial would roll it back): the
 * refusal, or undefined when no update of it is in progress.
 */
export function updateInProgress(
  updates: Pick<FirmwareUpdates, 'get'>,
  id: string,
): { readonly code: 'updating'; readonly message: string } | undefined {
  const job = updates.get(id);
  if (!job || FINAL_UPDATE_STEPS.includes(job.step)) return undefined;
  return {
    code: 'updating',
    message: `'${id}' is being updated to ${job.version} (${job.step}); commands wait until the update ends`,
  };
}

/** Every convention Fleetvisor knows, with its defaults. */
export function defaultConventions(): Convention[] {
  return [homieConvention(), sparkplugConvention(), modbusConvention()];
}

export async function startApp(options: AppOptions): Promise<App> {
  const log = options.logger;
  const demo =
    options.demo === undefined
      ? options.mqtt === undefined && options.serialPorts === undefined
      : options.demo !== false;
  const demoSize = typeof options.demo === 'object' ? options.demo : {};
  const runtime = createRuntime({ logger: log });
  const stack: (() => Promise<void>)[] = [];
  const unwind = async () => {
    for (const stop of stack.splice(0).reverse())
      await stop().catch((error: unknown) => log.error('shutdown step failed', { error }));
  };

  try {
    // The SQLite file holds the fleet's store unless storeUrl names a PostgreSQL database; the
    // firmware images, jobs and rollouts and the alarms stay in it either way (README).
    const file = join(options.dataDir, demo ? DEMO_DATABASE_FILE_NAME : DATABASE_FILE_NAME);
    let store: Store;
    let exports: ExportReader | undefined;
    let postgresStore: PostgresStore | undefined;
    if (options.cluster && options.storeUrl === undefined)
      throw new Error('a cluster instance needs its store on PostgreSQL (storeUrl)');
    if (options.storeUrl === undefined) {
      const sqlite = await openSqliteStore({ file, logger: log });
      store = sqlite;
      exports = sqlite.exports;
    } else {
      const postgres = await openPostgresStore({
        url: options.storeUrl,
        logger: log,
        // A paused instance must not hold its lease rows locked past half a lease (docs/scale-out.md).
        ...(options.cluster
          ? { idleInTransactionTimeoutMs: Math.floor((options.cluster.leaseMs ?? 6000) / 2) }
          : {}),
      });
      store = postgres;
      postgresStore = postgres;
      log.info('store on PostgreSQL', { database: postgres.database });
      if (demo)
        log.warn('the simulated demo fleet writes into this PostgreSQL database (--no-demo to keep it out)');
    }
    stack.push(() => store.close());
    log.info('data', { file });

    // A cluster instance: leases on the store's database, its own small pool so that renewals
    // never wait behind the store's reads and writes. The fleet and links follow the leases.
    let keeper: LeaseKeeper | undefined;
    let clusterPool: pg.Pool | undefined;
    let fleetRef: Fleet | undefined;
    let linksRef: Links | undefined;
    if (options.cluster && postgresStore && options.storeUrl) {
      const pool = new pg.Pool({
        connectionString: options.storeUrl,
        max: 2,
        application_name: 'fleetvisor-cluster',
      });
      clusterPool = pool;
      pool.on('error', (error) => log.warn('a cluster connection failed', { error: error.message }));
      stack.push(() => pool.end());
      const shardCount = await initCluster(pool, options.cluster.shardCount ?? DEFAULT_SHARD_COUNT);
      const instanceId =
        options.cluster.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
      const inShards = (shards: readonly number[]) => {
        const set = new Set(shards);
        return (deviceId: string) => set.has(shardOf(deviceId, shardCount));
      };
      keeper = createLeaseKeeper({
        pool,
        instance: { id: instanceId, host: hostname(), pid: process.pid, apiUrl: options.cluster.apiUrl },
        shardCount,
        ...(options.cluster.leaseMs !== undefined ? { leaseMs: options.cluster.leaseMs } : {}),
        logger: log,
        gained: async (shards) => {
          const which = inShards(shards);
          const r = await fleetRef?.takeOver(which);
          const online = linksRef?.hub?.resync(which) ?? 0;
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
    }

    const rootStarted = await startSupervisor(runtime, {
      name: 'fleetvisor',
      strategy: 'oneForOne',
      maxRestarts: 3,
      periodMs: 60_000,
      autoShutdown: 'anySignificant',
    });
    if (!rootStarted.ok) throw new Error(`the root supervisor could not start: ${rootStarted.error.message}`);
    const root = rootStarted.value;
    stack.push(async () => {
      await root.stop();
    });
    /** Starts a child of the root; a failure stops the app's start with the child's reason. */
    const startChild = async (spec: Parameters<Supervisor['startChild']>[0]) => {
      const r = await root.startChild(spec);
      if (!r.ok) throw r.error.cause ?? new Error(r.error.message);
    };

    let broker: EmbeddedBroker | undefined;
    let brokerAccounts: BrokerAccounts | undefined;
    let mqtt = options.mqtt;
    if (!mqtt) {
      brokerAccounts = openBrokerAccounts(options.dataDir);
      await startChild(
        brokerChild(
          runtime,
          {
            host: options.broker?.host ?? '127.0.0.1',
            port: options.broker?.port ?? 1883,
            logger: log,
            auth: brokerAccounts,
            ...(options.broker?.tls ? { tls: options.broker.tls } : {}),
          },
          (started) => {
            broker = started;
          },
        ),
      );
      const first = broker as EmbeddedBroker | undefined;
      if (!first) throw new Error('the embedded broker did not start');
      mqtt = { url: first.url, ...brokerAccounts.host };
      log.info('embedded MQTT broker: devices connect to it', { url: first.url });
      if (first.portWasTaken)
        log.info(
          `to use the broker that runs on port ${options.broker?.port ?? 1883}: --mqtt-url mqtt://127.0.0.1:${options.broker?.port ?? 1883}`,
        );
      if ((options.broker?.host ?? '127.0.0.1') === '127.0.0.1')
        log.info(
          'the embedded broker accepts devices on this machine only; --broker-host 0.0.0.0 opens it to the LAN',
        );
    }

    let sim: SimFleet | undefined;
    let serialPorts = options.serialPorts;
    const serialCount = demoSize.serial ?? (socatAvailable() ? 1 : 0);
    const mqttUrl = mqtt.url;
    const accounts = brokerAccounts;
    const startSim = () =>
      startSimFleet({
        mqttUrl,
        // Like real devices: each its own account (a fresh secret per start of the simulation).
        ...(accounts
          ? { credentials: (id: string) => ({ username: id, password: accounts.issueDevice(id) }) }
          : {}),
        mqtt: demoSize.mqtt ?? 6,
        serial: serialCount,
        ptyDir: join(options.dataDir, 'demo-ports'),
        idPrefix: 'demo',
        telemetryIntervalMs: demoSize.telemetryIntervalMs ?? 2000,
      });
    if (demo) {
      sim = await startSim();
      stack.push(async () => {
        await sim?.stop();
      });
      serialPorts = [...(Array.isArray(serialPorts) ? serialPorts : []), ...sim.hostPorts];
      log.info('demo fleet started (--no-demo turns it off)', {
        mqtt: sim.mqtt.length,
        serial: sim.serial.length,
        ...(serialCount === 0 && !socatAvailable() ? { note: 'no serial demo: socat is not installed' } : {}),
      });
    }

    const links = createLinks({
      runtime,
      store,
      mqtt,
      ...(serialPorts !== undefined && (serialPorts === 'auto' || serialPorts.length > 0)
        ? { serial: { ports: serialPorts } }
        : {}),
    });
    const conventions = options.conventions ?? defaultConventions();
    const fleet = createFleet({
      runtime,
      store,
      kinds: [genericDevice, ...conventions.flatMap((c) => c.kinds)],
      carrier: links.carrier,
      ...(options.commandRate ? { fleetRate: options.commandRate } : {}),
      ...(keeper ? { owns: keeper.owns } : {}),
    });
    fleetRef = fleet;
    linksRef = links;
    const firmware = await openFirmware({
      dataDir: options.dataDir,
      databaseFile: file,
      demo,
      kinds: fleet.kinds,
      logger: log,
    });
    if (firmware.ok) stack.push(() => firmware.value.close());
    else log.error(`firmware images unavailable: ${firmware.error.message}`, { code: firmware.error.code });
    // Every step of every update is in the event log, so the device's history shows it.
    const lastStep = new Map<string, string>();
    const updates = createFirmwareUpdates({
      runtime,
      hub: () => links.hub,
      onChange: (job) => {
        const key = `${job.deviceId} ${job.transferId}`;
        if (lastStep.get(key) === job.step) return; // progress within a step: live only
        lastStep.set(key, job.step);
        if (FINAL_UPDATE_STEPS.includes(job.step)) firmwareDrift?.kick();
        // Saved at every step, so a restarted app continues the job where it was.
        if (firmware.ok)
          void firmware.value.store
            .saveJob(
              {
                deviceId: job.deviceId,
                sha256: job.sha256,
                transferId: job.transferId,
                version: job.version,
                step: job.step,
                offset: job.offset,
                boot: job.boot ?? null,
                deadline: job.deadline ?? null,
                error: job.error ? { ...job.error } : null,
                actor: job.actor,
                startedAt: job.startedAt,
                updatedAt: runtime.clock.wallNow(),
              },
              FINAL_UPDATE_STEPS.includes(job.step),
            )
            .catch((e: unknown) =>
              log.warn('firmware job not saved', { deviceId: job.deviceId, error: String(e) }),
            );
        void store
          .appendEvents([
            {
              at: runtime.clock.wallNow(),
              deviceId: job.deviceId,
              kind: 'firmware.update',
              data: {
                step: job.step,
                version: job.version,
                transferId: job.transferId,
                offset: job.offset,
                size: job.size,
                actor: job.actor,
                startedAt: job.startedAt,
                from: job.from,
                ...(job.error ? { error: { ...job.error } } : {}),
              },
            },
          ])
          .catch((e: unknown) => log.warn('firmware update event not written', { error: String(e) }));
      },
    });
    const rollouts = createRolloutRunner({
      runtime,
      store,
      firmware: firmware.ok ? firmware.value : undefined,
      updates,
      fleet,
    });
    const retention = createRetention({ runtime, store, days: options.retention ?? {} });
    retention.start();
    stack.push(async () => retention.stop());
    const firmwareDrift =
      options.firmwareDrift === 'update' && firmware.ok
        ? createFirmwareDriftUpdater({
            runtime,
            firmware: firmware.value,
            updates,
            fleet,
            held: (id) =>
              [...rollouts.all.values()].some((r) => {
                const s = r.snapshot();
                return (s.state === 'running' || s.state === 'paused') && s.devices[id] !== undefined;
              }),
            audit: (deviceId, data) =>
              store
                .appendEvents(
                  [{ at: runtime.clock.wallNow(), deviceId, kind: 'firmware.updateRequested', data }],
                  { durability: 'full' },
                )
                .then(() => undefined),
          })
        : undefined;
    if (options.firmwareDrift === 'update' && !firmware.ok)
      log.warn('--firmware-drift update has no effect: firmware images are unavailable');

    await startChild({
      id: 'devices',
      type: 'supervisor',
      restart: 'temporary',
      significant: true,
      shutdown: 'infinity',
      start: async () => {
        const started = await fleet.start();
        log.info('fleet loaded', { devices: started.started, failed: started.failed.length });
        for (const f of started.failed) log.warn('device could not start', f);
        return serviceSupervisor(runtime, fleet.supervisor, () => fleet.stop());
      },
    });
    stack.push(async () => {
      await root.terminateChild('devices');
    });
    if (options.devices) {
      const declared = await reconcileDeclaredDevices(
        fleet,
        options.devices,
        async (deviceId, action, data) => {
          if (action === 'remove') brokerAccounts?.revokeDevice(deviceId);
          await store.appendEvents(
            [
              {
                at: runtime.clock.wallNow(),
                deviceId,
                kind: 'device.audit',
                data: { action, actor: 'config', ...data },
              },
            ],
            { durability: 'full' },
          );
        },
      );
      log.info('declared devices reconciled', {
        added: declared.added.length,
        updated: declared.updated.length,
        removed: declared.removed.length,
        unchanged: declared.unchanged.length,
        failed: declared.failed.length,
      });
      for (const f of declared.failed)
        log.warn(`declared device ${f.id} not applied: ${f.code}: ${f.message}`);
    }
    const alarmStore = await openSqliteAlarmStore({ file });
    stack.push(() => alarmStore.close());
    const alarms = createAlarmEngine({
      runtime,
      fleet,
      store: alarmStore,
      configFile: join(options.dataDir, ALARM_RULES_FILE_NAME),
      audit: (kind, deviceId, data) =>
        void store
          .appendEvents([{ at: runtime.clock.wallNow(), deviceId, kind, data }])
          .catch((e: unknown) => log.warn('alarm event not written', { kind, deviceId, error: String(e) })),
    });
    await alarms.start();
    stack.push(() => alarms.stop());
    const brokerSettings = mqtt;
    await startChild({
      id: 'links',
      type: 'supervisor',
      restart: 'temporary',
      significant: true,
      shutdown: 'infinity',
      start: async () => {
        await links.attach(
          fleet,
          {
            adopt: options.adopt ?? (demo ? 'auto' : 'manual'),
            ...(keeper ? { owns: keeper.owns } : {}),
            onFirmwareAck: (id, ack) => updates.ack(id, ack),
            onDeviceHello: (id, hello) => updates.hello(id, hello),
          },
          conventions.map((c) => ({
            id: c.name,
            start: () => c.start({ runtime, fleet, store, broker: brokerSettings }),
          })),
        );
        if (!links.supervisor) throw new Error('links: attach() left no supervisor');
        await restoreUpdates();
        await rollouts.restore();
        firmwareDrift?.start();
        return serviceSupervisor(runtime, links.supervisor, () => links.stop());
      },
    });
    stack.push(async () => {
      firmwareDrift?.stop();
      await root.terminateChild('links');
    });

    /** Jobs an earlier run left unfinished continue at their step (docs/firmware.md §7). */
    async function restoreUpdates(): Promise<void> {
      if (!firmware.ok) return;
      for (const row of await firmware.value.store.listJobs()) {
        if (!row.ok) {
          log.warn('firmware job row unreadable', { deviceId: row.id, message: row.error.message });
          continue;
        }
        const j = row.value;
        if (FINAL_UPDATE_STEPS.includes(j.step as UpdateJobStep) || updates.get(j.deviceId)) continue;
        const image = await firmware.value.images.readImage(j.sha256);
        if (!image.ok) {
          log.warn('firmware job cannot continue: its image is gone', {
            deviceId: j.deviceId,
            sha256: j.sha256,
          });
          continue;
        }
        updates.restore(j.deviceId, {
          image: image.value,
          version: j.version,
          actor: j.actor,
          resume: {
            step: j.step as UpdateJobStep,
            boot: j.boot ?? undefined,
            deadline: j.deadline ?? undefined,
            startedAt: j.startedAt,
          },
        });
      }
    }

    let router: CommandRouter | undefined;
    if (keeper) {
      const k = keeper;
      await k.start();
      // Graceful: every device saved and handed over, the leases released, before the rest stops.
      stack.push(() => k.stop());
      // Actions asked here on another instance's devices go to their owner, and the owner's come
      // here; stopped first, so actions left pending are carried out by the shards' next owners.
      const r = createCommandRouter({
        url: options.storeUrl as string,
        instanceId: k.instanceId,
        shardCount: k.shardCount,
        owns: k.owns,
        ready: (id) => k.owns(id) && fleet.has(id),
        run: async (id, action, args, actor) => {
          // As the API does on a single instance: a device being updated takes no other command.
          const updating = updateInProgress(updates, id);
          if (updating) return { ok: false, error: updating };
          return fleet.act(id, action, args, actor);
        },
        ...(options.cluster?.actTimeoutMs !== undefined ? { timeoutMs: options.cluster.actTimeoutMs } : {}),
        logger: log,
      });
      await r.start();
      router = r;
      stack.push(() => r.stop());
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
      stack.push(async () => clearInterval(sync));
    }

    // Each device's lifecycle at debug; at INFO the fleet's summary counts it (src/devices/lifecycle-summary.ts).
    const off = runtime.events.subscribe((e) => {
      if (e.type !== 'state.transition' || !fleet.device(e.name)) return;
      const top = (s: string) => s.split('.')[0];
      if (top(e.from) !== top(e.to))
        log.debug('device state', { deviceId: e.name, from: e.from, to: e.to, on: e.event });
    });
    stack.push(async () => off());

    let stopping: Promise<void> | undefined;
    let stoppedOnItsOwn: ExitReason | undefined;
    const stop = () => {
      stopping ??= unwind().finally(() => runtime.dispose());
      return stopping;
    };
    root.onExit((reason) => {
      if (stopping) return;
      stoppedOnItsOwn = reason;
      log.error(
        `the app stops: its root supervisor shut down (${formatExitReason(reason)}) because a part it cannot run without ended; see the log above for which`,
      );
      void stop();
    });
    return {
      runtime,
      supervisor: root,
      store,
      exports,
      fleet,
      links,
      brokerUrl: mqtt.url,
      get broker() {
        return broker;
      },
      brokerAccounts,
      get sim() {
        return sim;
      },
      firmware,
      updates,
      rollouts,
      firmwareDrift,
      settings: options.settings,
      alarms,
      demo,
      cluster:
        keeper && clusterPool && router
          ? { keeper, router, view: () => clusterView(clusterPool as pg.Pool) }
          : undefined,
      async setDemo(on) {
        if (!demo)
          return {
            ok: false,
            message:
              'the simulated fleet runs only in demo mode (start without --no-demo; it keeps its own database)',
          };
        if (on && !sim) {
          sim = await startSim();
          log.info('demo fleet started again');
        } else if (!on && sim) {
          const s = sim;
          sim = undefined;
          await s.stop();
          log.info('demo fleet stopped: its devices go offline');
        }
        return { ok: true };
      },
      stop,
      async whenStopped() {
        await root.whenExited();
        await stop();
        return stoppedOnItsOwn;
      },
    } satisfies App;
  } catch (error) {
    await unwind();
    runtime.dispose();
    throw error;
  }
}

/**
 * The Modbus bridge process (what it does: modbus-bridge.ts, which makes it): one bus per port
 * for the fleet's `modbus.device` devices, supervised; what the buses report goes to the fleet
 * and the store (modbus-bridge-reports.ts). Its pure part is modbus-bridge-model.ts; a test read
 * is modbus-test-read.ts.
 *
 * @example
 * const bridge = new ModbusBridge(runtime, fleet, store, { scanMs: 1000 });
 * bridge.begin(); // registers the `modbus.device` carrier, scans now and every scanMs
 * bridge.stats(); // { buses: [{ path: '/dev/ttyUSB0', port: 'open', slaves: [...] }], devices: 1, openWrites: 0 }
 */
import type { CommandCarrier } from '../../devices/command-tracker.js';
import type { DeviceView, Fleet } from '../../devices/fleet.js';
import type { ExitReason } from '../../runtime/exit-reason.js';
import { formatExitReason, isCleanExit } from '../../runtime/exit-reason.js';
import { ProcessBase } from '../../runtime/process.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { ChildCounts, ChildInfo, SupervisorLike } from '../../runtime/supervisor.js';
import type { TimerRef } from '../../runtime/timers.js';
import type { Store } from '../../store/store.js';
import {
  countPortChildren,
  PORT_MAX_RESTARTS,
  PORT_PERIOD_MS,
  portChildInfo,
  RestartWindow,
} from '../../transports/port-supervision.js';
import type { ReconnectOptions } from '../../transports/reconnect.js';
import { backoffDelayMs, resolveReconnect } from '../../transports/reconnect.js';
import type { DeviceEntry } from './modbus-bridge-model.js';
import { busHealth, lineOf, sameLine, slaveOf, trackDevice } from './modbus-bridge-model.js';
import { type BridgeReports, createBridgeReports } from './modbus-bridge-reports.js';
import type { BusStats, LineSettings, SlaveConfig, WriteOutcome } from './modbus-bus.js';
import { type ModbusBus, startModbusBus } from './modbus-bus.js';
import { createModbusCarrier } from './modbus-carrier.js';
import type { WriteRequest } from './modbus-codec.js';
import type { ModbusAttributes } from './modbus-kind.js';
import { MODBUS_KIND, modbusDevice } from './modbus-kind.js';
import type { ModbusConventionOptions } from './modbus-options.js';
import type { TestReadContext, TestReadOutcome } from './modbus-test-read.js';
import { testRead } from './modbus-test-read.js';

interface BusEntry {
  readonly bus: ModbusBus;
  readonly line: LineSettings;
  signature: string;
}

export interface ModbusBridgeStats {
  readonly buses: readonly BusStats[];
  readonly devices: number;
  readonly openWrites: number;
}

/**
 * The bridge process, a supervisor whose children are its buses (one per port, by path):
 * `whichChildren()` lists them, and a bus killed (from the tree) or crashed is started again
 * after its port's backoff, on the next scan (see port-supervision.ts for how that differs from
 * OTP's one_for_one). Made by {@link startModbusBridge}.
 */
export class ModbusBridge extends ProcessBase implements SupervisorLike {
  readonly strategy = 'oneForOne' as const;
  readonly maxRestarts = PORT_MAX_RESTARTS;
  readonly periodMs = PORT_PERIOD_MS;
  private readonly restarts: RestartWindow;
  /** Per port: restarts of its bus and how the last one ended (kept while a device uses the port). */
  private readonly busChildren = new Map<
    string,
    { restartCount: number; lastExit: ExitReason | undefined; hadBus: boolean }
  >();
  private readonly fleet: Fleet;
  private readonly options: ModbusConventionOptions;
  private readonly reconnect: ReconnectOptions;
  private readonly scanMs: number;
  private readonly writeTtlMs: number;
  private readonly maxOpenWrites: number;
  private readonly random: () => number;
  private readonly testReadContext: TestReadContext;
  private readonly reports: BridgeReports;

  private readonly devices = new Map<string, DeviceEntry>();
  private readonly buses = new Map<string, BusEntry>();
  /** Ports whose bus crashed: not restarted before `at`. */
  private readonly busRestarts = new Map<string, { at: number; attempts: number }>();
  private readonly parsed = new WeakMap<object, ModbusAttributes | string>();
  private scanTimer: TimerRef | undefined;

  /** The `modbus.device` command carrier (set on the fleet by {@link begin}). */
  readonly carrier: CommandCarrier;

  constructor(runtime: Runtime, fleet: Fleet, store: Store, options: ModbusConventionOptions) {
    super(runtime, 'supervisor', 'modbus-bridge');
    this.fleet = fleet;
    this.options = options;
    this.reconnect = resolveReconnect(options.reconnect);
    this.scanMs = options.scanMs ?? 1000;
    this.writeTtlMs = options.writeTtlMs ?? 30_000;
    this.maxOpenWrites = options.maxOpenWritesPerDevice ?? 100;
    this.carrier = createModbusCarrier({
      fleet,
      target: {
        writeNow: (deviceId, request) => this.writeNow(deviceId, request),
        report: (message, error) => this.runtime.report(message, error, this.pid),
      },
      writeTtlMs: this.writeTtlMs,
      maxOpenPerDevice: this.maxOpenWrites,
    });
    this.random = options.random ?? Math.random;
    this.restarts = new RestartWindow(() => runtime.clock.now(), PORT_PERIOD_MS);
    this.testReadContext = {
      runtime,
      owner: this.pid,
      reconnect: this.reconnect,
      random: this.random,
      running: () => this.status === 'running',
      busOn: (path) => this.buses.get(path),
    };
    this.reports = createBridgeReports({
      runtime,
      owner: this.pid,
      fleet,
      store,
      devices: this.devices,
      slaveStats: (d) =>
        this.buses
          .get(d.path)
          ?.bus.stats()
          .slaves.find((x) => x.deviceId === d.id),
      eventIntervalMs: options.eventIntervalMs ?? 10_000,
      statusIntervalMs: options.statusIntervalMs ?? 10_000,
    });
  }

  /** One child per port in use: its bus, or `restarting` while a crashed bus waits for its backoff. */
  whichChildren(): ChildInfo[] {
    const paths = new Set([...this.busChildren.keys(), ...this.buses.keys(), ...this.busRestarts.keys()]);
    return [...paths].reverse().map((path) => {
      const bus = this.buses.get(path)?.bus;
      const child = this.busChildren.get(path);
      return portChildInfo({
        id: path,
        process: bus,
        status: bus ? 'running' : this.busRestarts.has(path) ? 'restarting' : 'stopped',
        restartCount: child?.restartCount ?? 0,
        lastExit: child?.lastExit,
      });
    });
  }

  countChildren(): ChildCounts {
    return countPortChildren(this.whichChildren());
  }

  restartsInWindow(): number {
    return this.restarts.count();
  }

  /**
   * One health line per bus: ok when its port is open and every polled slave answers.
   *
   * @example
   * bridge.health(); // [{ name: 'modbus /dev/ttyUSB0', ok: false, detail: 'open, 1 of 2 slaves answering: …' }]
   */
  health(): { readonly name: string; readonly ok: boolean; readonly detail: string }[] {
    const items: { name: string; ok: boolean; detail: string }[] = [];
    for (const c of this.whichChildren().reverse()) {
      const stats = this.buses.get(c.id)?.bus.stats();
      if (!stats) {
        const why = c.lastExit ? `: ${formatExitReason(c.lastExit)}` : '';
        items.push({ name: `modbus ${c.id}`, ok: false, detail: `bus ${c.status}${why}` });
        continue;
      }
      items.push({ name: `modbus ${c.id}`, ...busHealth(stats) });
    }
    return items;
  }

  /** Internal: registers the command carrier, scans now and every `scanMs`. */
  begin(): void {
    this.started();
    this.fleet.setCarrier(MODBUS_KIND, this.carrier);
    this.tick();
  }

  /**
   * Buses, devices and open writes, for health checks, the UI and tests.
   *
   * @example
   * bridge.stats().buses[0].slaves.map((s) => [s.deviceId, s.online, s.counters.timeouts]);
   */
  stats(): ModbusBridgeStats {
    return {
      buses: [...this.buses.values()].map((b) => b.bus.stats()),
      devices: this.devices.size,
      openWrites: this.fleet.commands.open().filter((c) => c.carrier === 'modbus').length,
    };
  }

  /** One device's slave on its bus: online, counters, last error; undefined if not polled. */
  deviceStats(deviceId: string): BusStats['slaves'][number] | undefined {
    const d = this.devices.get(deviceId);
    const bus = d ? this.buses.get(d.path) : undefined;
    return bus?.bus.stats().slaves.find((s) => s.deviceId === deviceId);
  }

  /**
   * Reads a device's registers once, as it would be polled, before it is added: through the bus
   * already running on its port, else through a bus opened for this read alone (modbus-test-read.ts).
   *
   * @example
   * await bridge.testRead({ port: '/dev/ttyUSB0', slaveId: 3, registers: [...] });
   * // { ok: true, values: { temperature: 21.5 } }
   */
  testRead(attributes: unknown): Promise<TestReadOutcome> {
    return testRead(this.testReadContext, attributes);
  }

  /** Reads the fleet now (it does so every `scanMs` anyway). */
  scanNow(): void {
    if (this.status === 'running') this.scan();
  }

  protected async terminate(_reason: ExitReason): Promise<void> {
    if (this.scanTimer) this.runtime.timers.cancel(this.scanTimer);
    this.scanTimer = undefined;
    const buses = [...this.buses.values()].map((b) => b.bus);
    this.buses.clear();
    await Promise.all(buses.map((b) => b.stop()));
    this.allDown('the Modbus bridge stopped'); // open writes wait in the tracker for the slaves
  }

  protected override release(): void {
    if (this.scanTimer) this.runtime.timers.cancel(this.scanTimer);
    this.scanTimer = undefined;
    for (const b of this.buses.values()) b.bus.kill();
    this.buses.clear();
    this.allDown('the Modbus bridge was killed');
  }

  private allDown(reason: string): void {
    for (const d of this.devices.values()) {
      if (!d.online) continue;
      d.online = false;
      this.fleet.linkDown(d.id, reason);
    }
  }

  // ---- the fleet ----

  private tick(): void {
    this.scanTimer = undefined;
    if (this.status !== 'running') return;
    try {
      this.scan();
      this.reports.reportStatuses(false);
    } catch (error) {
      this.runtime.report('modbus bridge: scan failed', error, this.pid);
    }
    this.scanTimer = this.runtime.timers.schedule(this.scanMs, () => this.tick(), {
      owner: this.pid,
      label: 'modbus.scan',
    });
  }

  private attributesOf(view: DeviceView): ModbusAttributes | string {
    const key = view.attributes as object;
    let a = this.parsed.get(key);
    if (a === undefined) {
      const r = modbusDevice.parseAttributes(view.attributes);
      a = r.ok ? r.value : r.message;
      this.parsed.set(key, a);
      // The fleet validates attributes on add and load, so this is a stored row gone bad: once.
      if (!r.ok)
        this.runtime.logger.warn('modbus device with bad attributes', { id: view.id, error: r.message });
    }
    return a;
  }

  /** Reads the fleet: devices added, removed or changed; one bus per port. */
  private scan(): void {
    const groups = new Map<string, { line: LineSettings; slaves: SlaveConfig[] }>();
    const present = new Set<string>();
    const views = this.fleet
      .list()
      .filter((v) => v.kind === MODBUS_KIND && v.health === 'running')
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const v of views) {
      const a = this.attributesOf(v);
      if (typeof a === 'string') continue;
      present.add(v.id);
      const d = trackDevice(this.devices, v.id, a);
      const line = lineOf(a);
      let g = groups.get(a.port);
      if (!g) {
        g = { line, slaves: [] };
        groups.set(a.port, g);
      } else if (!sameLine(g.line, line)) {
        d.polled = false;
        this.reports.lineConflict(d, line, g.line);
        continue;
      }
      d.polled = true;
      d.reportedConflict = false;
      g.slaves.push(slaveOf(v.id, a));
    }

    // Devices gone from the fleet (removed, or failed): forget them (the fleet cancels the writes
    // of a removed device).
    for (const [id, d] of this.devices) {
      if (present.has(id)) continue;
      this.devices.delete(id);
      if (d.online) this.fleet.linkDown(id, 'no longer polled by the Modbus bridge');
    }
    // Devices not polled any more (a line conflict) but shown up.
    for (const d of this.devices.values())
      if (!d.polled && d.online) {
        d.online = false;
        this.fleet.linkDown(d.id, 'not polled: its line settings disagree with its port’s');
      }

    const now = this.runtime.clock.now();
    for (const [path, g] of groups) {
      const signature = JSON.stringify(g.slaves);
      const b = this.buses.get(path);
      if (b && sameLine(b.line, g.line)) {
        if (b.signature !== signature) {
          b.signature = signature;
          b.bus.setSlaves(g.slaves);
        }
        continue;
      }
      if (b) this.stopBus(path, b, 'its line settings changed');
      const restart = this.busRestarts.get(path);
      if (restart && restart.at > now) continue;
      this.startBus(path, g.line, g.slaves, signature);
    }
    for (const [path, b] of this.buses)
      if (!groups.has(path)) this.stopBus(path, b, 'no device uses it any more');
    // A port no device uses any more is no longer a child (its restart history goes with it).
    for (const path of [...this.busChildren.keys(), ...this.busRestarts.keys()])
      if (!groups.has(path)) {
        this.busChildren.delete(path);
        this.busRestarts.delete(path);
      }
  }

  private startBus(path: string, line: LineSettings, slaves: SlaveConfig[], signature: string): void {
    let bus: ModbusBus;
    try {
      bus = startModbusBus(this.runtime, {
        path,
        line,
        slaves,
        reconnect: this.reconnect,
        random: this.random,
        ...(this.options.probeMaxMs === undefined ? {} : { probeMaxMs: this.options.probeMaxMs }),
        ...(this.options.presencePollMs === undefined ? {} : { presencePollMs: this.options.presencePollMs }),
        ...(this.options.reopenSilentMs === undefined ? {} : { reopenSilentMs: this.options.reopenSilentMs }),
        hooks: {
          onSlaveUp: (id, via) => this.ifCurrent(path, bus, () => this.slaveUp(id, via)),
          onSlaveDown: (id, reason) => this.ifCurrent(path, bus, () => this.slaveDown(id, reason)),
          onValues: (id, values) => this.ifCurrent(path, bus, () => this.reports.values(id, values)),
          onFault: (id, fault) => this.ifCurrent(path, bus, () => this.reports.fault(id, fault)),
        },
      });
    } catch (error) {
      this.runtime.report(`modbus bridge: cannot start a bus on ${path}`, error, this.pid);
      return;
    }
    const entry: BusEntry = { bus, line, signature };
    this.buses.set(path, entry);
    const child = this.busChildren.get(path) ?? { restartCount: 0, lastExit: undefined, hadBus: false };
    if (child.hadBus) {
      child.restartCount++;
      this.restarts.add();
    }
    child.hadBus = true;
    this.busChildren.set(path, child);
    bus.onExit((reason) => this.busExited(path, entry, reason));
  }

  private stopBus(path: string, b: BusEntry, why: string): void {
    this.buses.delete(path);
    this.runtime.logger.info('modbus bus stopping', { path, why });
    void b.bus.stop().then(() => {
      for (const d of this.devices.values())
        if (d.path === path && d.online && !this.buses.has(path)) {
          d.online = false;
          this.fleet.linkDown(d.id, `bus ${path} stopped: ${why}`);
        }
    });
  }

  private ifCurrent(path: string, bus: ModbusBus, fn: () => void): void {
    if (this.status === 'running' && this.buses.get(path)?.bus === bus) fn();
  }

  private busExited(path: string, entry: BusEntry, reason: ExitReason): void {
    if (this.buses.get(path) !== entry) return;
    this.buses.delete(path);
    const child = this.busChildren.get(path);
    if (child) child.lastExit = reason;
    if (this.status !== 'running') return;
    const text = formatExitReason(reason);
    for (const d of this.devices.values())
      if (d.path === path && d.online) {
        d.online = false;
        this.fleet.linkDown(d.id, `the Modbus bus on ${path} exited: ${text}`);
      }
    if (isCleanExit(reason)) return;
    const previous = this.busRestarts.get(path);
    const attempts = (previous?.attempts ?? 0) + 1;
    const delayMs = backoffDelayMs(attempts - 1, this.reconnect, this.random);
    this.busRestarts.set(path, { at: this.runtime.clock.now() + delayMs, attempts });
    this.runtime.logger.warn('modbus bus crashed; restarting', { path, reason: text, retryInMs: delayMs });
  }

  // ---- what the buses report (modbus-bridge-reports.ts) ----

  private slaveUp(id: string, via: string): void {
    const d = this.devices.get(id);
    if (!d) return;
    this.busRestarts.delete(d.path); // the port works: a later crash backs off from the first delay
    this.reports.slaveUp(d, via);
  }

  private slaveDown(id: string, reason: string): void {
    const d = this.devices.get(id);
    if (d) this.reports.slaveDown(d, reason);
  }

  // ---- writes (the carrier's wire) ----

  /** Queues a write on the slave's bus; undefined when the slave does not answer now. */
  private writeNow(deviceId: string, request: WriteRequest): Promise<WriteOutcome> | undefined {
    if (this.status !== 'running') return undefined;
    const d = this.devices.get(deviceId);
    const bus = d?.polled ? this.buses.get(d.path)?.bus : undefined;
    if (!bus?.isOnline(deviceId)) return undefined;
    return bus.write(deviceId, request);
  }
}

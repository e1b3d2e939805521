/**
 * The Modbus RTU convention: `modbus.device` devices (modbus-kind.ts) polled over serial buses.
 *
 * {@link modbusConvention} gives the app the kind and a bridge process (kind `supervisor`, name
 * `modbus-bridge`, under the `links` supervisor) that:
 *
 * - watches the fleet: reads `fleet.list()` every `scanMs` (the fleet has no change hook; the
 *   runtime's event stream would cost every emitter once observed) and on a write to a device it
 *   does not know yet; a device's parsed attributes are cached by identity;
 * - groups the `modbus.device` devices by `port` and keeps ONE bus process per port
 *   (modbus-bus.ts: several slaves share it, polled round-robin one request per turn, a silent
 *   slave only probed with backoff, the port reopened with jittered backoff when it vanishes).
 *   Devices on one port must agree on the line settings (baud rate, parity, data and stop bits):
 *   the first device (by id) sets them, a device that disagrees gets a `device.modbusError`
 *   event (`lineConflict`) and is not polled. A bus that crashes is restarted after a backoff;
 * - tells the fleet what happens: `linkUp` on a slave's first good reply (via
 *   `modbus:<port>#<slaveId>`), `linkDown` with the reason (timeouts named, port vanished),
 *   each poll cycle's values as telemetry (`ingestTelemetry`, one metric per register), and a
 *   `status.modbus` summary with the counters (`reportStatus`, on up/down and at most every
 *   `statusIntervalMs` while they change);
 * - reports faults as events on the device (`store.appendEvents`): exception replies and
 *   timeouts as `device.modbusError`, CRC errors and malformed replies as `device.badMessage`,
 *   each with a message naming the slave, registers, function code and address; at most one
 *   every `eventIntervalMs` per device and fault code (exceptions: per function code and
 *   address, so each bad register is heard); the next one carries `suppressed`, how many were
 *   left out;
 * - carries `write` through the fleet's command tracker with the Modbus carrier
 *   (src/conventions/modbus/modbus-carrier.ts): checked against the device's register map
 *   (`badArgs`, naming the register), audited, queued on the bus between two polls and
 *   `succeeded` when the slave acknowledges (FC05/06/16). While the slave does not answer it
 *   waits (`pending`, also across an app restart) up to its ttl (`writeTtlMs` by default), then
 *   ends `expired`; an exception reply ends it `failed`, no acknowledgement `timedOut`.
 *
 * @example
 * const app = await startApp({ …, conventions: [modbusConvention({ scanMs: 1000 })] });
 * await app.fleet.addDevice({ id: 'meter-1', kind: 'modbus.device', attributes: {
 *   port: '/dev/ttyUSB0', slaveId: 1, registers: [{ name: 'voltage', table: 'input', address: 0, scale: 0.1, unit: 'V' }],
 * } });
 * // a second later: connected, telemetry `voltage` every second
 * await app.fleet.act('meter-1', 'write', { register: 'voltage', value: 1 }); // badArgs: register 'voltage': is not writable …
 */
import { z } from 'zod';
import type { CommandCarrier } from '../../devices/command-tracker.js';
import type { DeviceView, Fleet } from '../../devices/fleet.js';
import { callback, checkOptions, nonNegativeInt, positiveInt } from '../../lib/options.js';
import type { ExitReason } from '../../runtime/exit-reason.js';
import { formatExitReason, isCleanExit } from '../../runtime/exit-reason.js';
import { ProcessBase } from '../../runtime/process.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { ChildCounts, ChildInfo, SupervisorLike } from '../../runtime/supervisor.js';
import type { TimerRef } from '../../runtime/timers.js';
import type { JsonObject, Store } from '../../store/store.js';
import {
  countPortChildren,
  PORT_MAX_RESTARTS,
  PORT_PERIOD_MS,
  portChildInfo,
  RestartWindow,
} from '../../transports/port-supervision.js';
import type { ReconnectOptions } from '../../transports/reconnect.js';
import { backoffDelayMs, reconnectSchema, resolveReconnect } from '../../transports/reconnect.js';
import type { Convention, ConventionContext } from '../convention.js';
import type {
  BusStats,
  LineSettings,
  ModbusFault,
  ReadOnceOutcome,
  SlaveConfig,
  WriteOutcome,
} from './modbus-bus.js';
import { type ModbusBus, startModbusBus } from './modbus-bus.js';
import { createModbusCarrier } from './modbus-carrier.js';
import type { WriteRequest } from './modbus-codec.js';
import { planBatches } from './modbus-codec.js';
import type { ModbusAttributes, RegisterDef } from './modbus-kind.js';
import { MODBUS_KIND, modbusDevice } from './modbus-kind.js';

export interface ModbusConventionOptions {
  /** How often the fleet is read for `modbus.device` devices; default 1000 ms. */
  readonly scanMs?: number;
  /** Port reopen backoff (and a crashed bus's restart); defaults as the MQTT link's. */
  readonly reconnect?: Partial<ReconnectOptions>;
  /** The longest wait between two probes of a slave that does not answer; default 10 000 ms. */
  readonly probeMaxMs?: number;
  /** How often an absent port is looked for; default 500 ms. */
  readonly presencePollMs?: number;
  /** No slave answers and nothing received for this long: the port is reopened; default 60 000 ms. */
  readonly reopenSilentMs?: number;
  /** At most one fault event per device and fault code this often; default 10 000 ms. */
  readonly eventIntervalMs?: number;
  /** At most one `status.modbus` report per device this often while counters change; default 10 000 ms. */
  readonly statusIntervalMs?: number;
  /** How long a write waits for a slave that does not answer, unless the submit says; default 30 000 ms. */
  readonly writeTtlMs?: number;
  /** Most open writes per device; default 100. */
  readonly maxOpenWritesPerDevice?: number;
  /** [0, 1) for the jitter; default Math.random. */
  readonly random?: () => number;
}

/** The Modbus RTU convention: the `modbus.device` kind and its bridge. */
export function modbusConvention(options: ModbusConventionOptions = {}): Convention {
  validateOptions(options);
  return {
    name: 'modbus',
    kinds: [modbusDevice],
    start: (context) => startModbusBridge(context, options),
  };
}

/** Starts the bridge process directly (the app goes through {@link modbusConvention}). */
export function startModbusBridge(
  context: ConventionContext,
  options: ModbusConventionOptions = {},
): ModbusBridge {
  validateOptions(options);
  const bridge = new ModbusBridge(context.runtime, context.fleet, context.store, options);
  bridge.begin();
  return bridge;
}

/** What the bridge knows of one `modbus.device` (from its attributes and its bus). */
interface DeviceEntry {
  readonly id: string;
  attrs: ModbusAttributes;
  registers: Map<string, RegisterDef>;
  path: string;
  online: boolean;
  /** Polled (false: its line settings disagree with its port's). */
  polled: boolean;
  lastStatusAt: number;
  lastStatusJson: string;
  faults: Map<string, { lastAt: number; suppressed: number }>;
  reportedConflict: boolean;
}

/** What {@link ModbusBridge.testRead} answers. */
export type TestReadOutcome =
  | ReadOnceOutcome
  | { readonly ok: false; readonly code: 'badAttributes' | 'lineConflict'; readonly message: string };

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

const sameLine = (a: LineSettings, b: LineSettings) =>
  a.baudRate === b.baudRate &&
  a.parity === b.parity &&
  a.dataBits === b.dataBits &&
  a.stopBits === b.stopBits;

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
  private readonly store: Store;
  private readonly options: ModbusConventionOptions;
  private readonly reconnect: ReconnectOptions;
  private readonly scanMs: number;
  private readonly eventIntervalMs: number;
  private readonly statusIntervalMs: number;
  private readonly writeTtlMs: number;
  private readonly maxOpenWrites: number;
  private readonly random: () => number;

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
    this.store = store;
    this.options = options;
    this.reconnect = resolveReconnect(options.reconnect);
    this.scanMs = options.scanMs ?? 1000;
    this.eventIntervalMs = options.eventIntervalMs ?? 10_000;
    this.statusIntervalMs = options.statusIntervalMs ?? 10_000;
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
      const answering = stats.slaves.filter((s) => s.online).length;
      const down = stats.slaves.find((s) => !s.online && s.lastError !== null)?.lastError;
      const problem = stats.port !== 'open' ? stats.lastPortError : down;
      items.push({
        name: `modbus ${c.id}`,
        ok: stats.port === 'open' && answering === stats.slaves.length,
        detail: `${stats.port}, ${answering} of ${stats.slaves.length} slaves answering${problem ? `: ${problem}` : ''}`,
      });
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
   * already running on its port (between two of its requests), else through a bus opened for
   * this read alone and closed after it. Answers the values by register name, or why not:
   * `badAttributes`, `lineConflict` (the port's bus runs other line settings), `timeout`,
   * `exception`, `crc`, `badFrame`, `portDown` (the port did not open in time, with its error).
   *
   * @example
   * await bridge.testRead({ port: '/dev/ttyUSB0', slaveId: 3, registers: [...] });
   * // { ok: true, values: { temperature: 21.5 } }
   */
  async testRead(attributes: unknown): Promise<TestReadOutcome> {
    const parsed = modbusDevice.parseAttributes(attributes);
    if (!parsed.ok) return { ok: false, code: 'badAttributes', message: parsed.message };
    const a = parsed.value;
    if (this.status !== 'running')
      return { ok: false, code: 'stopped', message: 'the Modbus bridge is not running' };
    const line: LineSettings = {
      baudRate: a.baudRate,
      parity: a.parity,
      dataBits: a.dataBits,
      stopBits: a.stopBits,
    };
    const request = { unitId: a.slaveId, registers: a.registers, timeoutMs: a.timeoutMs };
    const boundMs = 3000 + (planBatches(a.registers).length + 1) * a.timeoutMs;
    const running = this.buses.get(a.port);
    if (running) {
      if (!sameLine(running.line, line))
        return {
          ok: false,
          code: 'lineConflict',
          message: `the bus on ${a.port} runs ${describeLine(running.line)}, not ${describeLine(line)}`,
        };
      return this.bounded(running.bus, running.bus.readOnce(request), boundMs);
    }
    let bus: ModbusBus;
    try {
      bus = startModbusBus(this.runtime, {
        path: a.port,
        line,
        slaves: [],
        reconnect: this.reconnect,
        random: this.random,
        hooks: { onSlaveUp() {}, onSlaveDown() {}, onValues() {}, onFault() {} },
      });
    } catch (error) {
      return { ok: false, code: 'portDown', message: `cannot open ${a.port}: ${(error as Error).message}` };
    }
    try {
      return await this.bounded(bus, bus.readOnce(request), boundMs);
    } finally {
      await bus.stop();
    }
  }

  private bounded(bus: ModbusBus, read: Promise<ReadOnceOutcome>, boundMs: number): Promise<TestReadOutcome> {
    return new Promise((resolve) => {
      const timer = this.runtime.timers.schedule(
        boundMs,
        () => {
          const s = bus.stats();
          resolve({
            ok: false,
            code: s.port === 'open' ? 'timeout' : 'portDown',
            message:
              s.port === 'open'
                ? `no answer within ${boundMs} ms`
                : `port ${bus.path} did not open within ${boundMs} ms${s.lastPortError ? `: ${s.lastPortError}` : ''}`,
          });
        },
        { owner: this.pid, label: 'modbus.testRead' },
      );
      void read.then((r) => {
        this.runtime.timers.cancel(timer);
        resolve(r);
      });
    });
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
      this.reportStatuses(false);
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
      let d = this.devices.get(v.id);
      if (!d) {
        d = {
          id: v.id,
          attrs: a,
          registers: new Map(a.registers.map((r) => [r.name, r])),
          path: a.port,
          online: false,
          polled: true,
          lastStatusAt: Number.NEGATIVE_INFINITY,
          lastStatusJson: '',
          faults: new Map(),
          reportedConflict: false,
        };
        this.devices.set(v.id, d);
      } else if (d.attrs !== a) {
        d.attrs = a;
        d.registers = new Map(a.registers.map((r) => [r.name, r]));
        d.path = a.port;
      }
      const line: LineSettings = {
        baudRate: a.baudRate,
        parity: a.parity,
        dataBits: a.dataBits,
        stopBits: a.stopBits,
      };
      let g = groups.get(a.port);
      if (!g) {
        g = { line, slaves: [] };
        groups.set(a.port, g);
      } else if (!sameLine(g.line, line)) {
        d.polled = false;
        if (!d.reportedConflict) {
          d.reportedConflict = true;
          const message = `device ${v.id} wants ${describeLine(line)} on ${a.port}, where the bus runs ${describeLine(g.line)} (set by the first device on it); it is not polled until they agree`;
          this.runtime.logger.warn('modbus line settings conflict', { id: v.id, port: a.port });
          this.appendEvent(v.id, 'device.modbusError', { code: 'lineConflict', message });
        }
        continue;
      }
      d.polled = true;
      d.reportedConflict = false;
      g.slaves.push({
        deviceId: v.id,
        unitId: a.slaveId,
        registers: a.registers,
        pollMs: a.pollMs,
        timeoutMs: a.timeoutMs,
        retries: a.retries,
      });
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
          onValues: (id, values) => this.ifCurrent(path, bus, () => this.values(id, values)),
          onFault: (id, fault) => this.ifCurrent(path, bus, () => this.fault(id, fault)),
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

  // ---- what the buses report ----

  private slaveUp(id: string, via: string): void {
    const d = this.devices.get(id);
    if (!d) return;
    d.online = true;
    this.busRestarts.delete(d.path);
    this.fleet.linkUp(id, { via, firmware: null });
    this.reportStatus(d, true);
  }

  private slaveDown(id: string, reason: string): void {
    const d = this.devices.get(id);
    if (!d) return;
    d.online = false;
    this.fleet.linkDown(id, reason);
    this.reportStatus(d, true);
  }

  private values(id: string, values: Record<string, number>): void {
    this.fleet.ingestTelemetry(id, values, null).then(
      (r) => {
        if (!r.ok && r.error.code !== 'notFound')
          this.runtime.logger.warn('modbus telemetry not stored', { id, error: r.error.message });
      },
      (error: unknown) =>
        this.runtime.report(`modbus bridge: storing telemetry of ${id} failed`, error, this.pid),
    );
  }

  private fault(id: string, fault: ModbusFault): void {
    const d = this.devices.get(id);
    if (!d) return;
    // Exceptions are about one place in the map (each bad register its own stream); timeouts
    // and corrupt replies are about the slave or the line.
    const key =
      fault.code === 'exception'
        ? `exception:${fault.exceptionCode}:${fault.functionCode}:${fault.address}`
        : fault.code;
    const now = this.runtime.clock.now();
    const rate = d.faults.get(key);
    if (rate && now - rate.lastAt < this.eventIntervalMs) {
      rate.suppressed++;
      return;
    }
    const suppressed = rate?.suppressed ?? 0;
    d.faults.set(key, { lastAt: now, suppressed: 0 });
    const kind =
      fault.code === 'crc' || fault.code === 'badFrame' ? 'device.badMessage' : 'device.modbusError';
    this.appendEvent(id, kind, {
      code: fault.code,
      message: fault.message,
      operation: fault.operation,
      functionCode: fault.functionCode,
      address: fault.address,
      count: fault.count,
      registers: [...fault.registers],
      ...(fault.exceptionCode === undefined ? {} : { exceptionCode: fault.exceptionCode }),
      ...(suppressed > 0 ? { suppressed } : {}),
    });
  }

  private appendEvent(deviceId: string, kind: string, data: JsonObject): void {
    this.store
      .appendEvents([{ at: this.runtime.clock.wallNow(), kind, deviceId, data }])
      .catch((error: unknown) =>
        this.runtime.report(`modbus bridge: writing an event of ${deviceId} failed`, error),
      );
  }

  /** `status.modbus` of one device: at once (`force`) or when changed and `statusIntervalMs` passed. */
  private reportStatus(d: DeviceEntry, force: boolean): void {
    const s = this.buses
      .get(d.path)
      ?.bus.stats()
      .slaves.find((x) => x.deviceId === d.id);
    if (!s) return;
    const status: JsonObject = {
      port: d.path,
      slaveId: s.unitId,
      online: s.online,
      ...s.counters,
      lastError: s.lastError,
      lastReplyAt: s.lastReplyAt,
    };
    const json = JSON.stringify(status);
    const now = this.runtime.clock.now();
    if (json === d.lastStatusJson || (!force && now - d.lastStatusAt < this.statusIntervalMs)) return;
    d.lastStatusJson = json;
    d.lastStatusAt = now;
    this.fleet
      .reportStatus(d.id, { modbus: status })
      .catch((error: unknown) =>
        this.runtime.report(`modbus bridge: reporting the status of ${d.id} failed`, error, this.pid),
      );
  }

  private reportStatuses(force: boolean): void {
    for (const d of this.devices.values()) if (d.polled) this.reportStatus(d, force);
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

function describeLine(l: LineSettings): string {
  return `${l.baudRate} ${l.dataBits}${l.parity[0]!.toUpperCase()}${l.stopBits}`;
}

/** What {@link modbusConvention} accepts. */
export const modbusConventionOptionsSchema = z.object({
  scanMs: positiveInt.optional(),
  reconnect: reconnectSchema.optional(),
  probeMaxMs: positiveInt.optional(),
  presencePollMs: positiveInt.optional(),
  reopenSilentMs: positiveInt.optional(),
  eventIntervalMs: positiveInt.optional(),
  statusIntervalMs: positiveInt.optional(),
  writeTtlMs: nonNegativeInt.optional(),
  maxOpenWritesPerDevice: positiveInt.optional(),
  random: callback.optional(),
});

function validateOptions(o: ModbusConventionOptions): void {
  checkOptions('modbusConvention', modbusConventionOptionsSchema, o);
}

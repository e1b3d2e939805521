/**
 * What the Modbus bridge's buses report, carried to the fleet and the store: a slave answering
 * or going silent (the device's link), its values (telemetry), its faults (device events on the
 * bad-message budget, src/devices/bad-message-budget.ts: one per fault stream per
 * `eventIntervalMs`, the rest counted and summed up in one `device.eventsSuppressed` when the
 * window closes) and its `status.modbus`; and a device left unpolled by a line conflict (an event,
 * once). The bridge (modbus-bridge-process.ts) calls these from its buses' hooks, for the bus
 * currently on the port only; the pure rules are in modbus-bridge-model.ts.
 *
 * @example
 * const reports = createBridgeReports({ runtime, owner: bridge.pid, fleet, store, devices,
 *   slaveStats: (d) => busOn(d.path)?.stats().slaves.find((s) => s.deviceId === d.id),
 *   eventIntervalMs: 10_000, statusIntervalMs: 10_000 });
 * reports.slaveUp(device, 'modbus:/dev/ttyUSB0#3'); // the device's link up, its status at once
 */
import type { Fleet } from '../../devices/fleet.js';
import type { Pid } from '../../runtime/process.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { JsonObject, Store } from '../../store/store.js';
import type { DeviceEntry } from './modbus-bridge-model.js';
import {
  admitFault,
  faultEvent,
  faultKey,
  faultSummary,
  lineConflictMessage,
  slaveStatus,
} from './modbus-bridge-model.js';
import type { LineSettings, ModbusFault, SlaveStats } from './modbus-bus-types.js';

export interface BridgeReportsContext {
  readonly runtime: Runtime;
  /** The bridge's pid, for the errors it reports. */
  readonly owner: Pid;
  readonly fleet: Fleet;
  readonly store: Store;
  /** The bridge's devices (it adds and removes them; these reports only read and mark them). */
  readonly devices: ReadonlyMap<string, DeviceEntry>;
  /** The device's slave on the bus running on its port now; undefined when none runs. */
  readonly slaveStats: (d: DeviceEntry) => SlaveStats | undefined;
  /**
   * At most one fault event per device and fault stream per interval; the rest are counted and
   * summed up in one `device.eventsSuppressed` when the interval's window closes.
   */
  readonly eventIntervalMs: number;
  /** `status.modbus` at most this often while it changes (a link change reports at once). */
  readonly statusIntervalMs: number;
}

export interface BridgeReports {
  /** The device's slave answers: its link is up, its status reported at once. */
  slaveUp(d: DeviceEntry, via: string): void;
  /** The device's slave stopped answering: its link is down, its status reported at once. */
  slaveDown(d: DeviceEntry, reason: string): void;
  /** Stores a poll's values as the device's telemetry. */
  values(id: string, values: Record<string, number>): void;
  /**
   * A device event for the fault, unless one of its stream went out within `eventIntervalMs`:
   * then it is counted, and the window's summary (`device.eventsSuppressed`) says how many.
   */
  fault(id: string, fault: ModbusFault): void;
  /**
   * The device is not polled: its line settings (`line`) disagree with its port's (`portLine`).
   * Logged and a `device.modbusError` event (`lineConflict`), once until it is polled again.
   */
  lineConflict(d: DeviceEntry, line: LineSettings, portLine: LineSettings): void;
  /** `status.modbus` of every polled device that changed, at most every `statusIntervalMs` unless `force`. */
  reportStatuses(force: boolean): void;
}

export function createBridgeReports(ctx: BridgeReportsContext): BridgeReports {
  const { runtime, owner, fleet, store, devices } = ctx;

  /** Appends one device event to the store; a failed write is reported, not thrown. */
  const appendEvent = (deviceId: string, kind: string, data: JsonObject): void => {
    store
      .appendEvents([{ at: runtime.clock.wallNow(), kind, deviceId, data }])
      .catch((error: unknown) =>
        runtime.report(`modbus bridge: writing an event of ${deviceId} failed`, error),
      );
  };

  /** `status.modbus` of one device: at once (`force`) or when changed and `statusIntervalMs` passed. */
  const reportStatus = (d: DeviceEntry, force: boolean): void => {
    const s = ctx.slaveStats(d);
    if (!s) return;
    const status = slaveStatus(d.path, s);
    const json = JSON.stringify(status);
    const now = runtime.clock.now();
    if (json === d.lastStatusJson || (!force && now - d.lastStatusAt < ctx.statusIntervalMs)) return;
    d.lastStatusJson = json;
    d.lastStatusAt = now;
    fleet
      .reportStatus(d.id, { modbus: status })
      .catch((error: unknown) =>
        runtime.report(`modbus bridge: reporting the status of ${d.id} failed`, error, owner),
      );
  };

  return {
    slaveUp(d, via) {
      d.online = true;
      fleet.linkUp(d.id, { via, firmware: null });
      reportStatus(d, true);
    },
    slaveDown(d, reason) {
      d.online = false;
      fleet.linkDown(d.id, reason);
      reportStatus(d, true);
    },
    values(id, values) {
      fleet.ingestTelemetry(id, values, null).then(
        (r) => {
          if (!r.ok && r.error.code !== 'notFound')
            runtime.logger.warn('modbus telemetry not stored', { id, error: r.error.message });
        },
        (error: unknown) => runtime.report(`modbus bridge: storing telemetry of ${id} failed`, error, owner),
      );
    },
    fault(id, fault) {
      const d = devices.get(id);
      if (!d) return;
      const key = faultKey(fault);
      const now = runtime.clock.now();
      const admitted = admitFault(d, key, now, ctx.eventIntervalMs);
      if (admitted.verdict === 'write') {
        const event = faultEvent(fault, admitted.suppressed);
        appendEvent(id, event.kind, event.data);
      } else if (admitted.verdict === 'firstSuppressed') {
        // Summed up when the window closes, unless the stream's next event carried them first.
        runtime.timers.schedule(
          Math.max(0, admitted.windowEndsAt - now),
          () => {
            const summary = faultSummary(d, key, fault, ctx.eventIntervalMs);
            if (summary) appendEvent(id, summary.kind, summary.data);
          },
          { owner, label: 'modbus-bridge.fault-window' },
        );
      }
    },
    lineConflict(d, line, portLine) {
      if (d.reportedConflict) return;
      d.reportedConflict = true;
      const message = lineConflictMessage(d.id, d.path, line, portLine);
      runtime.logger.warn('modbus line settings conflict', { id: d.id, port: d.path });
      appendEvent(d.id, 'device.modbusError', { code: 'lineConflict', message });
    },
    reportStatuses(force) {
      for (const d of devices.values()) if (d.polled) reportStatus(d, force);
    },
  };
}

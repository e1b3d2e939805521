/**
 * What the Modbus bridge (modbus-bridge-process.ts) knows of its devices, as data: each
 * `modbus.device`'s entry, the line settings and slave a device's attributes give its port's
 * bus, which fault events get through the rate limit, and the `status.modbus` and health lines
 * made from a bus's stats. Pure: no fleet, no store, no timers.
 *
 * @example
 * const d = trackDevice(devices, 'meter-1', attributes); // created, or updated when they changed
 * sameLine(lineOf(attributes), busLine); // false: the device is not polled (lineConflict)
 * const suppressed = admitFault(d, faultKey(fault), now, 10_000); // undefined: rate-limited
 * if (suppressed !== undefined) store.appendEvents([{ …, ...faultEvent(fault, suppressed) }]);
 */
import type { JsonObject } from '../../store/store.js';
import type { BusStats, LineSettings, ModbusFault, SlaveConfig, SlaveStats } from './modbus-bus-types.js';
import type { ModbusAttributes, RegisterDef } from './modbus-kind.js';

/** What the bridge knows of one `modbus.device` (from its attributes and its bus). */
export interface DeviceEntry {
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

/** The device's entry, created or brought up to date with its (parsed) attributes. */
export function trackDevice(devices: Map<string, DeviceEntry>, id: string, a: ModbusAttributes): DeviceEntry {
  let d = devices.get(id);
  if (!d) {
    d = {
      id,
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
    devices.set(id, d);
  } else if (d.attrs !== a) {
    d.attrs = a;
    d.registers = new Map(a.registers.map((r) => [r.name, r]));
    d.path = a.port;
  }
  return d;
}

/** The line settings a device wants on its port. */
export function lineOf(a: ModbusAttributes): LineSettings {
  return { baudRate: a.baudRate, parity: a.parity, dataBits: a.dataBits, stopBits: a.stopBits };
}

/** The device as a slave of its port's bus. */
export function slaveOf(id: string, a: ModbusAttributes): SlaveConfig {
  return {
    deviceId: id,
    unitId: a.slaveId,
    registers: a.registers,
    pollMs: a.pollMs,
    timeoutMs: a.timeoutMs,
    retries: a.retries,
  };
}

export const sameLine = (a: LineSettings, b: LineSettings) =>
  a.baudRate === b.baudRate &&
  a.parity === b.parity &&
  a.dataBits === b.dataBits &&
  a.stopBits === b.stopBits;

/** `9600 8N1`. */
export function describeLine(l: LineSettings): string {
  return `${l.baudRate} ${l.dataBits}${l.parity[0]!.toUpperCase()}${l.stopBits}`;
}

/** The `lineConflict` event's message: the device is not polled until it agrees with its port's bus. */
export function lineConflictMessage(
  id: string,
  port: string,
  line: LineSettings,
  busLine: LineSettings,
): string {
  return `device ${id} wants ${describeLine(line)} on ${port}, where the bus runs ${describeLine(busLine)} (set by the first device on it); it is not polled until they agree`;
}

/**
 * The rate limit's stream a fault belongs to: exceptions are about one place in the map (each
 * bad register its own stream); timeouts and corrupt replies are about the slave or the line.
 */
export function faultKey(fault: ModbusFault): string {
  return fault.code === 'exception'
    ? `exception:${fault.exceptionCode}:${fault.functionCode}:${fault.address}`
    : fault.code;
}

/**
 * At most one event per stream every `intervalMs`: undefined when this one is left out (and
 * counted), else how many were left out before it.
 */
export function admitFault(d: DeviceEntry, key: string, now: number, intervalMs: number): number | undefined {
  const rate = d.faults.get(key);
  if (rate && now - rate.lastAt < intervalMs) {
    rate.suppressed++;
    return undefined;
  }
  d.faults.set(key, { lastAt: now, suppressed: 0 });
  return rate?.suppressed ?? 0;
}

/** The device event a fault becomes: corrupt replies are bad messages, the rest Modbus errors. */
export function faultEvent(
  fault: ModbusFault,
  suppressed: number,
): { readonly kind: string; readonly data: JsonObject } {
  const kind = fault.code === 'crc' || fault.code === 'badFrame' ? 'device.badMessage' : 'device.modbusError';
  return {
    kind,
    data: {
      code: fault.code,
      message: fault.message,
      operation: fault.operation,
      functionCode: fault.functionCode,
      address: fault.address,
      count: fault.count,
      registers: [...fault.registers],
      ...(fault.exceptionCode === undefined ? {} : { exceptionCode: fault.exceptionCode }),
      ...(suppressed > 0 ? { suppressed } : {}),
    },
  };
}

/** A device's `status.modbus`: its slave's state and counters on the bus. */
export function slaveStatus(path: string, s: SlaveStats): JsonObject {
  return {
    port: path,
    slaveId: s.unitId,
    online: s.online,
    ...s.counters,
    lastError: s.lastError,
    lastReplyAt: s.lastReplyAt,
  };
}

/** A running bus's health line: ok when its port is open and every polled slave answers. */
export function busHealth(stats: BusStats): { readonly ok: boolean; readonly detail: string } {
  const answering = stats.slaves.filter((s) => s.online).length;
  const down = stats.slaves.find((s) => !s.online && s.lastError !== null)?.lastError;
  const problem = stats.port !== 'open' ? stats.lastPortError : down;
  return {
    ok: stats.port === 'open' && answering === stats.slaves.length,
    detail: `${stats.port}, ${answering} of ${stats.slaves.length} slaves answering${problem ? `: ${problem}` : ''}`,
  };
}

/**
 * What the Modbus bridge (modbus-bridge-process.ts) knows of its devices, as data: each
 * `modbus.device`'s entry, the line settings and slave a device's attributes give its port's
 * bus, which fault events get through the bad-message budget (src/devices/bad-message-budget.ts,
 * the rule of the link hub, Homie and the device event log), and the `status.modbus` and health
 * lines made from a bus's stats. Pure: no fleet, no store, no timers.
 *
 * @example
 * const d = trackDevice(devices, 'meter-1', attributes); // created, or updated when they changed
 * sameLine(lineOf(attributes), busLine); // false: the device is not polled (lineConflict)
 * const key = faultKey(fault);
 * const a = admitFault(d, key, now, 10_000);
 * if (a.verdict === 'write') store.appendEvents([{ …, ...faultEvent(fault, a.suppressed) }]);
 * if (a.verdict === 'firstSuppressed') clock.setTimeout(summarize, a.windowEndsAt - now); // faultSummary(d, key, …)
 */
import type { BadMessageWindow } from '../../devices/bad-message-budget.js';
import { admitBadMessage, newBadMessageWindow } from '../../devices/bad-message-budget.js';
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
  /** Each fault stream's window of the bad-message budget, by {@link faultKey}. */
  faults: Map<string, BadMessageWindow>;
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
 * What becomes of a fault: `write`, an event, with `suppressed` those of its stream left out since
 * they were last summed up (nonzero only when this event comes before its window's summary);
 * `firstSuppressed`, the first left out in this window (the caller sums them up at `windowEndsAt`,
 * {@link faultSummary}); `suppressed`, counted only.
 */
export type FaultAdmission =
  | { readonly verdict: 'write'; readonly suppressed: number }
  | { readonly verdict: 'firstSuppressed'; readonly windowEndsAt: number }
  | { readonly verdict: 'suppressed' };

/**
 * The bad-message budget per fault stream, one event per `intervalMs`: the first fault of a
 * window is written, the rest are counted (`errorSuppressed`) until they are summed up, by the
 * window's summary when it closes or by the next event if it comes first — each left-out fault is
 * counted in exactly one of them.
 */
export function admitFault(d: DeviceEntry, key: string, now: number, intervalMs: number): FaultAdmission {
  let w = d.faults.get(key);
  if (!w) {
    w = newBadMessageWindow();
    w.errorWindowStart = Number.NEGATIVE_INFINITY; // the first fault opens the first window, whatever the clock
    d.faults.set(key, w);
  }
  const verdict = admitBadMessage(w, now, { max: 1, windowMs: intervalMs });
  if (verdict === 'firstSuppressed') return { verdict, windowEndsAt: w.errorWindowStart + intervalMs };
  if (verdict !== 'write') return { verdict: 'suppressed' };
  const suppressed = w.errorSuppressed;
  w.errorSuppressed = 0;
  return { verdict, suppressed };
}

/**
 * Sums up a fault stream's window when it closes: the `device.eventsSuppressed` event (as the
 * device event log writes it) saying how many of which kind were left out, or undefined when none
 * is left to sum up (the next event carried them). Resets the count.
 */
export function faultSummary(
  d: DeviceEntry,
  key: string,
  fault: ModbusFault,
  windowMs: number,
): { readonly kind: string; readonly data: JsonObject } | undefined {
  const w = d.faults.get(key);
  if (!w || w.errorSuppressed === 0) return undefined;
  const suppressed = w.errorSuppressed;
  w.errorSuppressed = 0;
  return {
    kind: 'device.eventsSuppressed',
    data: {
      kind: faultKind(fault),
      code: fault.code,
      stream: key,
      suppressed,
      written: w.errorEvents,
      windowMs,
    },
  };
}

const faultKind = (fault: ModbusFault) =>
  fault.code === 'crc' || fault.code === 'badFrame' ? 'device.badMessage' : 'device.modbusError';

/** The device event a fault becomes: corrupt replies are bad messages, the rest Modbus errors. */
export function faultEvent(
  fault: ModbusFault,
  suppressed: number,
): { readonly kind: string; readonly data: JsonObject } {
  return {
    kind: faultKind(fault),
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

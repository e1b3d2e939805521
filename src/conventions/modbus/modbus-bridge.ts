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
 *   address, so each bad register is heard), on the one bad-message budget
 *   (src/devices/bad-message-budget.ts): what is left out is counted, and summed up in one
 *   `device.eventsSuppressed` event when the window closes (or carried as `suppressed` by the
 *   stream's next event, if it comes first);
 * - carries `write` through the fleet's command tracker with the Modbus carrier
 *   (src/conventions/modbus/modbus-carrier.ts): checked against the device's register map
 *   (`badArgs`, naming the register), audited, queued on the bus between two polls and
 *   `succeeded` when the slave acknowledges (FC05/06/16). While the slave does not answer it
 *   waits (`pending`, also across an app restart) up to its ttl (`writeTtlMs` by default), then
 *   ends `expired`; an exception reply ends it `failed`, no acknowledgement `timedOut`.
 *
 * This file is the convention's entry: its options (modbus-options.ts) and the bridge process
 * (modbus-bridge-process.ts) are re-exported from here.
 *
 * @example
 * const app = await startApp({ …, conventions: [modbusConvention({ scanMs: 1000 })] });
 * await app.fleet.addDevice({ id: 'meter-1', kind: 'modbus.device', attributes: {
 *   port: '/dev/ttyUSB0', slaveId: 1, registers: [{ name: 'voltage', table: 'input', address: 0, scale: 0.1, unit: 'V' }],
 * } });
 * // a second later: connected, telemetry `voltage` every second
 * await app.fleet.act('meter-1', 'write', { register: 'voltage', value: 1 }); // badArgs: register 'voltage': is not writable …
 */
import type { Convention, ConventionContext } from '../convention.js';
import { ModbusBridge } from './modbus-bridge-process.js';
import { modbusDevice } from './modbus-kind.js';
import type { ModbusConventionOptions } from './modbus-options.js';
import { validateModbusOptions } from './modbus-options.js';

export type { ModbusBridgeStats } from './modbus-bridge-process.js';
export { ModbusBridge } from './modbus-bridge-process.js';
export type { ModbusConventionOptions } from './modbus-options.js';
export { modbusConventionOptionsSchema } from './modbus-options.js';
export type { TestReadOutcome } from './modbus-test-read.js';

/** The Modbus RTU convention: the `modbus.device` kind and its bridge. */
export function modbusConvention(options: ModbusConventionOptions = {}): Convention {
  validateModbusOptions(options);
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
  validateModbusOptions(options);
  const bridge = new ModbusBridge(context.runtime, context.fleet, context.store, options);
  bridge.begin();
  return bridge;
}

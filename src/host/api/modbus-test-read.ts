/**
 * One read of a Modbus device from its attributes, before it is added (`modbusTestRead`, and
 * `deviceAdd` with `test`), through the running Modbus bridge.
 *
 * @example
 * await testRead(app, { port: '/dev/ttyUSB0', slaveId: 1, registers }); // { values: { voltage: 230.1 } }
 */
import { ModbusBridge } from '../../conventions/modbus/modbus-bridge.js';
import type { App } from '../app.js';
import { fail } from './device-changes.js';

/** The running Modbus bridge (a child `modbus` of the links supervisor), if any. */
function modbusBridge(app: App): ModbusBridge | undefined {
  const child = app.links.supervisor?.whichChildren().find((c) => c.process instanceof ModbusBridge);
  return child?.process as ModbusBridge | undefined;
}

/** The values read, or an API failure (`unavailable` without a bridge, `badRequest`, the read's code). */
export async function testRead(app: App, attributes: unknown): Promise<{ values: Record<string, number> }> {
  const bridge =
    modbusBridge(app) ??
    fail('unavailable', 'the Modbus bridge is not running (is the modbus convention on?)');
  const r = await bridge.testRead(attributes);
  if (!r.ok) fail(r.code === 'badAttributes' ? 'badRequest' : r.code, r.message);
  return { values: (r as { values: Record<string, number> }).values };
}

/**
 * The Modbus convention's options: what can be tuned, and their validation at the boundary (a
 * `RangeError` naming the field, from the schema). The bridge (modbus-bridge.ts) re-exports them.
 *
 * @example
 * validateModbusOptions({ scanMs: 500, writeTtlMs: 60_000 }); // ok
 * validateModbusOptions({ scanMs: 0 }); // RangeError naming scanMs
 */
import { z } from 'zod';
import { callback, checkOptions, nonNegativeInt, positiveInt } from '../../lib/options.js';
import type { ReconnectOptions } from '../../transports/reconnect.js';
import { reconnectSchema } from '../../transports/reconnect.js';

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

/** What `modbusConvention` (modbus-bridge.ts) accepts. */
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

/** Throws `RangeError` naming the first bad field. */
export function validateModbusOptions(o: ModbusConventionOptions): void {
  checkOptions('modbusConvention', modbusConventionOptionsSchema, o);
}

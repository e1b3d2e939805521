/**
 * The Modbus carrier: how `write { register, value }` reaches a Modbus RTU slave, inside the
 * fleet's one command lifecycle (src/devices/create-command-tracker.ts: audited before the wire,
 * kept while the slave does not answer, reloaded after an app restart, one final status).
 *
 * - `prepare` checks the write against the device's register map (its stored attributes, so it
 *   works before the bridge has scanned the device): a register it does not have, one not
 *   writable, or a value its type or scale cannot hold is refused `badArgs`, naming the register.
 * - Queued: a write waits for its slave (`queuesWhileOffline`), by default `writeTtlMs` (30 s).
 * - Confirmed by the slave's own acknowledgement (the echo of a write function). An exception
 *   reply or a corrupt one ends it `failed` with that code; a timeout while the slave answers
 *   otherwise is `timedOut`; the slave or port going away puts it back to wait (a write sets a
 *   value: repeating it is harmless, `resendsAfterDrop`).
 *
 * @example
 * const carrier = createModbusCarrier({ fleet, target: bridge });
 * fleet.setCarrier(MODBUS_KIND, carrier);
 */
import type { CommandCarrier, DispatchOutcome } from '../../devices/command-tracker.js';
import type { Fleet } from '../../devices/fleet.js';
import { err, ok } from '../../lib/result.js';
import type { WriteOutcome } from './modbus-bus.js';
import type { WriteRequest } from './modbus-codec.js';
import { encodeWrite } from './modbus-codec.js';
import type { RegisterDef } from './modbus-kind.js';
import { modbusAttributes, writeArgs } from './modbus-kind.js';

/** What the carrier needs of the bridge. */
export interface ModbusWriteTarget {
  /** Sends the write on the slave's bus; undefined when its slave cannot be reached now. */
  writeNow(deviceId: string, request: WriteRequest): Promise<WriteOutcome> | undefined;
  /** Reports an unexpected failure of a write (a bug, not a device fault). */
  report(message: string, error: unknown): void;
}

export interface ModbusCarrierOptions {
  readonly fleet: Fleet;
  readonly target: ModbusWriteTarget;
  /** How long a write may wait for its slave; default 30 000 ms. */
  readonly writeTtlMs?: number | null;
  /** How long a write on the wire waits for the slave (its retries included); default 10 000 ms. */
  readonly replyTimeoutMs?: number;
  /** Most open writes per device; default 100. */
  readonly maxOpenPerDevice?: number;
}

function registersOf(fleet: Fleet, deviceId: string): Map<string, RegisterDef> | string {
  const v = fleet.device(deviceId);
  if (!v) return `${deviceId} is not in the fleet`;
  const a = modbusAttributes.safeParse(v.attributes);
  if (!a.success) return `${deviceId} has no valid register map`;
  return new Map(a.data.registers.map((r) => [r.name, r]));
}

/** The request of a write, checked against the register map, or why it cannot be made. */
function requestOf(
  fleet: Fleet,
  deviceId: string,
  args: unknown,
):
  | { ok: true; request: WriteRequest; register: string; value: number | boolean }
  | { ok: false; message: string } {
  const parsed = writeArgs.safeParse(args);
  if (!parsed.success)
    return {
      ok: false,
      message: `write: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`).join('; ')}`,
    };
  const registers = registersOf(fleet, deviceId);
  if (typeof registers === 'string') return { ok: false, message: `write: ${registers}` };
  const r = registers.get(parsed.data.register);
  if (!r) {
    const writable = [...registers.values()].filter((x) => x.writable).map((x) => x.name);
    return {
      ok: false,
      message: `write: ${deviceId} has no register '${parsed.data.register}' (writable: ${writable.join(', ') || 'none'})`,
    };
  }
  const encoded = encodeWrite(r, parsed.data.value);
  if (!encoded.ok) return { ok: false, message: `write: ${encoded.message}` };
  return { ok: true, request: encoded.value, register: r.name, value: parsed.data.value };
}

export function createModbusCarrier(options: ModbusCarrierOptions): CommandCarrier {
  const { fleet, target } = options;
  const maxOpen = options.maxOpenPerDevice ?? 100;

  function outcome(
    commandId: string,
    deviceId: string,
    w: WriteOutcome,
    args: { register: string; value: number | boolean },
    attemptsBefore: number,
  ): void {
    const c = fleet.commands.get(commandId);
    if (c?.status !== 'sent' || c.attempts !== attemptsBefore) return; // ended or sent again meanwhile
    if (w.ok) {
      fleet.commands.settle(commandId, { ok: true, result: { ...args, attempts: w.attempts } }, deviceId);
      return;
    }
    switch (w.code) {
      case 'exception':
      case 'crc':
      case 'badFrame':
        fleet.commands.settle(
          commandId,
          { ok: false, error: { code: w.code, message: w.message } },
          deviceId,
        );
        return;
      case 'removed':
        fleet.commands.settle(
          commandId,
          { ok: false, error: { code: 'cancelled', message: w.message } },
          deviceId,
        );
        return;
      case 'timeout':
        // The slave still answers the poll: this write got no acknowledgement.
        if (fleet.device(deviceId)?.link.up)
          fleet.commands.settle(
            commandId,
            { ok: false, error: { code: 'timedOut', message: w.message } },
            deviceId,
          );
        return;
      default:
        // offline, portDown, stopped: the slave or its bus went away; the fleet's linkDown puts the
        // write back to wait, and it goes again when the slave answers.
        return;
    }
  }

  return {
    name: 'modbus',
    queuesWhileOffline: true,
    resendsAfterDrop: true,
    replyTimeoutMs: options.replyTimeoutMs ?? 10_000,
    defaultTtlMs: options.writeTtlMs === undefined ? 30_000 : options.writeTtlMs,

    prepare({ deviceId, action, args }) {
      if (action !== 'write')
        return err(
          'badArgs',
          `a Modbus device takes the command 'write', not '${String(action).slice(0, 40)}'`,
        );
      const r = requestOf(fleet, deviceId, args);
      if (!r.ok) return err('badArgs', r.message);
      const open = fleet.commands.open(deviceId).length;
      if (open >= maxOpen)
        return err('outboxFull', `${deviceId} already has ${open} writes waiting (at most ${maxOpen})`);
      return ok({ register: r.register, value: r.value });
    },

    dispatch(c): DispatchOutcome {
      const r = requestOf(fleet, c.deviceId, c.args);
      if (!r.ok) return { ok: false, error: { code: 'badArgs', message: r.message } };
      const pending = target.writeNow(c.deviceId, r.request);
      if (!pending) return 'notReachable';
      const attempts = c.attempts + 1; // what the tracker counts once this returns 'sent'
      const args = { register: r.register, value: r.value };
      pending.then(
        (w) => outcome(c.commandId, c.deviceId, w, args, attempts),
        (error: unknown) => {
          target.report('modbus carrier: a write failed unexpectedly', error);
          fleet.commands.settle(
            c.commandId,
            { ok: false, error: { code: 'internal', message: String(error) } },
            c.deviceId,
          );
        },
      );
      return 'sent';
    },
  };
}

/**
 * The `modbus.device` kind: one Modbus RTU slave on a serial bus, described by its attributes —
 * the port and line settings, the slave id, and a register map — and polled by the Modbus bridge
 * (modbus-bridge.ts). Each register becomes a telemetry metric of the same name, converted from
 * its table and type (16/32-bit, signed, float, word order) and multiplied by its `scale`.
 *
 * Lifecycle: `disconnected` → `connected` on the first good reply (the bridge's `fleet.linkUp`
 * sends CONNECT); → `disconnected` with the reason in `lastError` after `retries + 1`
 * consecutive timeouts (the bridge's `fleet.linkDown` sends LINK_DOWN, the reason names the
 * timeouts) or when the port vanishes; back to `connected` as soon as replies return. A liveness
 * deadline (no telemetry for a long while, e.g. the bridge itself is gone) also ends `connected`.
 *
 * Action `write` (a device command, sent by the bridge): `{ register, value }`. Its arguments are
 * checked here for shape, and by the bridge against the device's register map (the register
 * exists and is writable, the value fits the register's type after dividing by its scale); a bad
 * one is refused as `badArgs` naming the register.
 *
 * @example
 * await fleet.addDevice({
 *   id: 'boiler-1',
 *   kind: 'modbus.device',
 *   attributes: {
 *     port: '/dev/ttyUSB0',
 *     slaveId: 3,
 *     registers: [
 *       { name: 'temperature', table: 'input', address: 0, type: 'int16', scale: 0.1, unit: '°C' },
 *       { name: 'setpoint', table: 'holding', address: 10, scale: 0.1, writable: true },
 *       { name: 'energy', table: 'holding', address: 20, type: 'uint32', wordOrder: 'low-first' },
 *       { name: 'pump', table: 'coil', address: 0, writable: true },
 *     ],
 *   },
 * });
 * await fleet.act('boiler-1', 'write', { register: 'setpoint', value: 21.5 }); // raw 215 by FC06
 */
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { defineDevice } from '../../devices/define-device.js';

export const MODBUS_KIND = 'modbus.device';

export const REGISTER_TABLES = ['coil', 'discrete', 'holding', 'input'] as const;
export const REGISTER_TYPES = ['bool', 'uint16', 'int16', 'uint32', 'int32', 'float32'] as const;
export type RegisterTable = (typeof REGISTER_TABLES)[number];
export type RegisterType = (typeof REGISTER_TYPES)[number];

const registerName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a name of letters, digits, _ . - (1–64)');

export const registerSchema = z
  .object({
    /** The telemetry metric (and the `write` action's `register`). */
    name: registerName,
    table: z.enum(REGISTER_TABLES),
    /** The protocol address (0-based, as on the wire), not the 1-based "40001" notation. */
    address: z.number().int().min(0).max(65_535),
    /** Default `bool` for coils and discrete inputs, `uint16` for holding and input registers. */
    type: z.enum(REGISTER_TYPES).optional(),
    /** For 32-bit types: which of the two registers holds the high word. */
    wordOrder: z.enum(['high-first', 'low-first']).default('high-first'),
    /** Telemetry = raw × scale; a write sends value ÷ scale. Not applied to `bool`. */
    scale: z
      .number()
      .refine((s) => Number.isFinite(s) && s !== 0, 'a finite, non-zero number')
      .default(1),
    unit: z.string().max(32).optional(),
    /** Only coils and holding registers can be written. */
    writable: z.boolean().default(false),
  })
  .superRefine((r, ctx) => {
    const bits = r.table === 'coil' || r.table === 'discrete';
    if (bits && r.type !== undefined && r.type !== 'bool')
      ctx.addIssue({ code: 'custom', path: ['type'], message: `a ${r.table} is a single bit: type bool` });
    if (r.writable && (r.table === 'discrete' || r.table === 'input'))
      ctx.addIssue({
        code: 'custom',
        path: ['writable'],
        message: `${r.table === 'input' ? 'input registers' : 'discrete inputs'} are read-only`,
      });
    const words = r.type === 'uint32' || r.type === 'int32' || r.type === 'float32' ? 2 : 1;
    if (r.address + words - 1 > 65_535)
      ctx.addIssue({ code: 'custom', path: ['address'], message: 'a 32-bit value needs address ≤ 65534' });
  });
export type RegisterDef = z.infer<typeof registerSchema>;

export const modbusAttributes = z.object({
  /** The serial port: a device node or a symlink (`/dev/serial/by-id/…`); devices sharing it share one bus. */
  port: z.string().min(1).max(4096),
  baudRate: z.number().int().min(50).max(4_000_000).default(9600),
  parity: z.enum(['none', 'even', 'odd']).default('none'),
  /** RTU frames are binary: 8 data bits (7 only for odd gateways). */
  dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
  stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
  slaveId: z.number().int().min(1).max(247),
  registers: z
    .array(registerSchema)
    .min(1)
    .max(1000)
    .superRefine((regs, ctx) => {
      const seen = new Set<string>();
      regs.forEach((r, i) => {
        if (seen.has(r.name))
          ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate register name '${r.name}'` });
        seen.add(r.name);
      });
    }),
  /** How often the registers are read (a full cycle, one batch after another). */
  pollMs: z.number().int().min(10).max(3_600_000).default(1000),
  /** How long one request waits for its reply. */
  timeoutMs: z.number().int().min(10).max(60_000).default(500),
  /** Timeouts retried before the device is declared disconnected (after `retries + 1` in a row). */
  retries: z.number().int().min(0).max(10).default(1),
  /**
   * In a cluster (docs/scale-out.md): the instance whose machine has the port (its `--instance`
   * name). The device is pinned there, whatever its shard, and polled by it alone; without it the
   * owner of its shard polls it. Ignored by a single app.
   */
  instance: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,200}$/, 'an instance name: letters, digits, _ . : - (1–200)')
    .optional(),
});
export type ModbusAttributes = z.infer<typeof modbusAttributes>;

/** The arguments of the `write` action (checked against the register map by the bridge). */
export const writeArgs = z.object({
  register: registerName,
  value: z.union([z.number().refine(Number.isFinite, 'a finite number'), z.boolean()]),
});
export type WriteArgs = z.infer<typeof writeArgs>;

/** The effective type of a register (its default depends on the table). */
export function registerType(r: Pick<RegisterDef, 'table' | 'type'>): RegisterType {
  return r.type ?? (r.table === 'coil' || r.table === 'discrete' ? 'bool' : 'uint16');
}

/** No telemetry for this long while connected: the device is shown disconnected (a safety net). */
export function modbusLivenessMs(a: Pick<ModbusAttributes, 'pollMs' | 'timeoutMs' | 'retries'>): number {
  return Math.max(30_000, 10 * a.pollMs + 2 * (a.retries + 1) * a.timeoutMs);
}

export interface ModbusMachineContext {
  readonly lastError: string | null;
}

export type ModbusMachineEvent =
  | { type: 'CONNECT' }
  | { type: 'HELLO'; firmware: string }
  | { type: 'LINK_DOWN'; reason: string }
  | { type: 'LIVENESS_TIMEOUT' };

export const modbusMachine = setup({
  types: {} as { context: ModbusMachineContext; events: ModbusMachineEvent },
}).createMachine({
  id: 'modbus',
  initial: 'disconnected',
  context: { lastError: null },
  states: {
    disconnected: {
      on: { CONNECT: { target: 'connected', actions: assign({ lastError: null }) } },
    },
    connected: {
      on: {
        HELLO: {},
        LINK_DOWN: { target: 'disconnected', actions: assign({ lastError: ({ event }) => event.reason }) },
        LIVENESS_TIMEOUT: {
          target: 'disconnected',
          actions: assign({ lastError: 'no telemetry for too long (is the Modbus bridge running?)' }),
        },
      },
    },
  },
});

export const modbusDevice = defineDevice({
  kind: MODBUS_KIND,
  title: 'Modbus RTU device',
  convention: 'modbus',
  attributes: modbusAttributes,
  machine: modbusMachine,
  actions: {
    write: {
      args: writeArgs,
      command: 'write',
      description: 'Write a value to a writable register or coil (value in engineering units: ÷ scale)',
    },
  },
  liveness: {
    states: ['connected'],
    timeoutMs: (a: ModbusAttributes) => modbusLivenessMs(a),
    event: { type: 'LIVENESS_TIMEOUT' },
  },
});

/**
 * Modbus register maps as data: which reads cover a device's registers (batches), how the words
 * or bits that come back become telemetry values, and how a `write` becomes a request. Pure
 * functions, no I/O.
 *
 * - {@link planBatches}: contiguous (or overlapping) registers of one table are read with one
 *   request, up to the protocol's limits (125 registers, 2000 bits); a gap starts a new request,
 *   since reading unmapped addresses may draw an "illegal data address" exception.
 * - {@link decodeBatch}: bits → 0/1; words → uint16, int16, uint32, int32, float32 (two words,
 *   high word first unless `wordOrder: 'low-first'`), then × scale.
 * - {@link encodeWrite}: the register must be writable; the value ÷ scale must be a whole number
 *   in range for integer types (a float32 must fit a float); coils go by FC05, 16-bit registers
 *   by FC06, 32-bit ones by FC16. Errors name the register.
 *
 * @example
 * const batches = planBatches(attributes.registers); // [{ table: 'holding', address: 0, count: 6, registers: [...] }, …]
 * decodeBatch(batches[0], { words: [215, 0, 1, 4465, 65531, 0] }); // { temperature: 21.5, energy: 70001, … }
 * encodeWrite(setpoint, 21.5); // { ok: true, value: { fc: 6, address: 10, value: 215 } }
 */
import type { RegisterDef, RegisterTable, RegisterType } from './modbus-kind.js';
import { registerType } from './modbus-kind.js';

/** The most registers (FC03/04) and bits (FC01/02) one request may read. */
export const MAX_READ_REGISTERS = 125;
export const MAX_READ_BITS = 2000;

/** One read request covering one or more registers of a table. */
export interface Batch {
  readonly table: RegisterTable;
  readonly address: number;
  /** Registers (words) or bits read. */
  readonly count: number;
  readonly registers: readonly RegisterDef[];
}

/** The function code that reads a table. */
export function readFunctionCode(table: RegisterTable): 1 | 2 | 3 | 4 {
  return table === 'coil' ? 1 : table === 'discrete' ? 2 : table === 'holding' ? 3 : 4;
}

/** How many registers (or bits) a value of this type spans. */
export function typeWidth(type: RegisterType): 1 | 2 {
  return type === 'uint32' || type === 'int32' || type === 'float32' ? 2 : 1;
}

const span = (r: RegisterDef) => typeWidth(registerType(r));

/**
 * The read requests for a register map: per table (coil, discrete, holding, input), sorted by
 * address, contiguous or overlapping registers merged up to the request limit.
 */
export function planBatches(
  registers: readonly RegisterDef[],
  limits: { readonly maxRegisters?: number; readonly maxBits?: number } = {},
): Batch[] {
  const batches: Batch[] = [];
  for (const table of ['coil', 'discrete', 'holding', 'input'] as const) {
    const max =
      table === 'coil' || table === 'discrete'
        ? (limits.maxBits ?? MAX_READ_BITS)
        : (limits.maxRegisters ?? MAX_READ_REGISTERS);
    const regs = registers
      .filter((r) => r.table === table)
      .sort((a, b) => a.address - b.address || span(b) - span(a));
    let current: { address: number; end: number; registers: RegisterDef[] } | undefined;
    for (const r of regs) {
      const end = r.address + span(r); // exclusive
      if (current && r.address <= current.end && Math.max(current.end, end) - current.address <= max) {
        current.end = Math.max(current.end, end);
        current.registers.push(r);
        continue;
      }
      if (current) batches.push(toBatch(table, current));
      current = { address: r.address, end, registers: [r] };
    }
    if (current) batches.push(toBatch(table, current));
  }
  return batches;
}

function toBatch(table: RegisterTable, c: { address: number; end: number; registers: RegisterDef[] }): Batch {
  return { table, address: c.address, count: c.end - c.address, registers: c.registers };
}

/** One register per batch: what a batch becomes when the slave refuses it as a whole. */
export function splitBatch(batch: Batch): Batch[] {
  return batch.registers.map((r) => ({
    table: batch.table,
    address: r.address,
    count: span(r),
    registers: [r],
  }));
}

/** A name for a batch in messages: `holding 0–5 (counter, setpoint, …)`. */
export function describeBatch(batch: Batch): string {
  const names = batch.registers.map((r) => r.name);
  const shown = names.length > 4 ? `${names.slice(0, 4).join(', ')}, …` : names.join(', ');
  const range = batch.count > 1 ? `${batch.address}–${batch.address + batch.count - 1}` : `${batch.address}`;
  return `${batch.table} ${range} (${shown})`;
}

const scaled = (raw: number, scale: number): number =>
  scale === 1 ? raw : Number.parseFloat((raw * scale).toPrecision(12));

/**
 * The telemetry values in a batch's reply: `words` for holding/input registers, `bits` for coils
 * and discrete inputs. A float that is NaN or infinite is left out (listed in `skipped`).
 */
export function decodeBatch(
  batch: Batch,
  reply: { readonly words?: readonly number[]; readonly bits?: readonly boolean[] },
): { values: Record<string, number>; skipped: string[] } {
  const values: Record<string, number> = {};
  const skipped: string[] = [];
  for (const r of batch.registers) {
    const at = r.address - batch.address;
    const type = registerType(r);
    if (batch.table === 'coil' || batch.table === 'discrete') {
      const bit = reply.bits?.[at];
      if (bit === undefined) skipped.push(r.name);
      else values[r.name] = bit ? 1 : 0;
      continue;
    }
    const words = reply.words ?? [];
    const w0 = words[at];
    const w1 = words[at + 1];
    if (w0 === undefined || (typeWidth(type) === 2 && w1 === undefined)) {
      skipped.push(r.name);
      continue;
    }
    const raw = decodeWords(type, r.wordOrder, w0, w1 ?? 0);
    if (!Number.isFinite(raw)) {
      skipped.push(r.name);
      continue;
    }
    values[r.name] = type === 'bool' ? raw : scaled(raw, r.scale);
  }
  return { values, skipped };
}

/** A raw value from one or two registers (`w0` at the lower address). */
export function decodeWords(
  type: RegisterType,
  wordOrder: 'high-first' | 'low-first',
  w0: number,
  w1: number,
): number {
  switch (type) {
    case 'bool':
      return w0 !== 0 ? 1 : 0;
    case 'uint16':
      return w0;
    case 'int16':
      return w0 >= 0x8000 ? w0 - 0x10000 : w0;
    default: {
      const [hi, lo] = wordOrder === 'high-first' ? [w0, w1] : [w1, w0];
      const buf = Buffer.alloc(4);
      buf.writeUInt16BE(hi & 0xffff, 0);
      buf.writeUInt16BE(lo & 0xffff, 2);
      if (type === 'uint32') return buf.readUInt32BE(0);
      if (type === 'int32') return buf.readInt32BE(0);
      return buf.readFloatBE(0);
    }
  }
}

/** The words of a raw value, lower address first. */
export function encodeWords(
  type: RegisterType,
  wordOrder: 'high-first' | 'low-first',
  raw: number,
): number[] {
  if (typeWidth(type) === 1) return [raw & 0xffff];
  const buf = Buffer.alloc(4);
  if (type === 'uint32') buf.writeUInt32BE(raw, 0);
  else if (type === 'int32') buf.writeInt32BE(raw, 0);
  else buf.writeFloatBE(raw, 0);
  const hi = buf.readUInt16BE(0);
  const lo = buf.readUInt16BE(2);
  return wordOrder === 'high-first' ? [hi, lo] : [lo, hi];
}

/** A write request: FC05 (one coil), FC06 (one register) or FC16 (two registers). */
export type WriteRequest =
  | { readonly fc: 5; readonly address: number; readonly state: boolean }
  | { readonly fc: 6; readonly address: number; readonly value: number }
  | { readonly fc: 16; readonly address: number; readonly values: readonly number[] };

const RANGES: Record<Exclude<RegisterType, 'bool' | 'float32'>, readonly [number, number]> = {
  uint16: [0, 0xffff],
  int16: [-0x8000, 0x7fff],
  uint32: [0, 0xffff_ffff],
  int32: [-0x8000_0000, 0x7fff_ffff],
};
const FLOAT32_MAX = 3.4028234663852886e38;

/** The request that writes `value` (engineering units) to register `r`, or why it cannot. */
export function encodeWrite(
  r: RegisterDef,
  value: number | boolean,
): { ok: true; value: WriteRequest } | { ok: false; message: string } {
  const bad = (message: string) => ({ ok: false as const, message: `register '${r.name}': ${message}` });
  if (!r.writable) return bad(`is not writable (${r.table} ${r.address}; set writable: true in its map)`);
  if (r.table !== 'coil' && r.table !== 'holding') return bad(`a ${r.table} cannot be written`);
  const type = registerType(r);
  if (type === 'bool') {
    let state: boolean;
    if (typeof value === 'boolean') state = value;
    else if (value === 0 || value === 1) state = value === 1;
    else return bad(`takes true/false (or 0/1), got ${value}`);
    return {
      ok: true,
      value:
        r.table === 'coil'
          ? { fc: 5, address: r.address, state }
          : { fc: 6, address: r.address, value: +state },
    };
  }
  if (typeof value !== 'number' || !Number.isFinite(value))
    return bad(`takes a number (${type}), got ${value}`);
  const scaleNote = r.scale === 1 ? '' : ` after scale ${r.scale}`;
  let raw = value / r.scale;
  if (type === 'float32') {
    if (!(Math.abs(raw) <= FLOAT32_MAX)) return bad(`${value} does not fit a float32${scaleNote}`);
  } else {
    const whole = Math.round(raw);
    if (Math.abs(raw - whole) > 1e-9 * Math.max(1, Math.abs(raw)))
      return bad(`${value} is not a multiple of its scale ${r.scale} (raw ${raw} is not a whole number)`);
    raw = whole;
    const [min, max] = RANGES[type];
    if (raw < min || raw > max) {
      const [lo, hi] = [scaled(min, r.scale), scaled(max, r.scale)].sort((a, b) => a - b);
      const range = r.scale === 1 ? '' : ` raw, ${lo}…${hi} after scale ${r.scale}`;
      return bad(`${type} takes ${min}…${max}${range}; ${value} is raw ${raw}`);
    }
  }
  const words = encodeWords(type, r.wordOrder, raw);
  if (words.length === 1) return { ok: true, value: { fc: 6, address: r.address, value: words[0]! } };
  return { ok: true, value: { fc: 16, address: r.address, values: words } };
}

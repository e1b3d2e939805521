/**
 * The Modbus convention's pure parts: the `modbus.device` attributes (register map validation),
 * its lifecycle machine, read batching, value conversion (types, word order, scale), the write
 * encoding with its range checks, and the RTU port's framing (a reply cut at the length its
 * request implies; noise outside a transaction dropped and counted).
 *
 * @example
 * npx vitest run test/conventions/modbus-codec.test.ts
 */
import { EventEmitter } from 'node:events';
import type { SerialPort } from 'serialport';
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { modbusConvention } from '../../src/conventions/modbus/modbus-bridge.js';
import {
  decodeBatch,
  decodeWords,
  describeBatch,
  encodeWords,
  encodeWrite,
  planBatches,
  splitBatch,
} from '../../src/conventions/modbus/modbus-codec.js';
import type { RegisterDef } from '../../src/conventions/modbus/modbus-kind.js';
import {
  modbusAttributes,
  modbusDevice,
  modbusMachine,
  registerSchema,
} from '../../src/conventions/modbus/modbus-kind.js';
import { expectedReplyLength, RtuPort } from '../../src/conventions/modbus/modbus-rtu-port.js';
import { describeKind } from '../../src/devices/define-device.js';

const reg = (r: Record<string, unknown>): RegisterDef => registerSchema.parse(r);

describe('modbus.device attributes', () => {
  it('defaults the line settings, poll, timeout and retries; a register map is required', () => {
    const a = modbusAttributes.parse({
      port: '/dev/ttyUSB0',
      slaveId: 3,
      registers: [{ name: 'v', table: 'input', address: 0 }],
    });
    expect(a).toMatchObject({
      baudRate: 9600,
      parity: 'none',
      dataBits: 8,
      stopBits: 1,
      pollMs: 1000,
      timeoutMs: 500,
      retries: 1,
    });
    expect(a.registers[0]).toMatchObject({ scale: 1, writable: false, wordOrder: 'high-first' });
    const missing = modbusDevice.parseAttributes({ port: '/dev/ttyUSB0', slaveId: 1 });
    expect(missing.ok).toBe(false);
  });

  it('refuses bad maps with a message naming the field', () => {
    const bad = (registers: unknown[], extra: Record<string, unknown> = {}) => {
      const r = modbusDevice.parseAttributes({ port: '/dev/x', slaveId: 1, registers, ...extra });
      return r.ok ? '' : r.message;
    };
    expect(bad([{ name: 'a b', table: 'holding', address: 0 }])).toMatch(/registers\.0\.name/);
    expect(bad([{ name: 'a', table: 'holding', address: 70000 }])).toMatch(/registers\.0\.address/);
    expect(bad([{ name: 'a', table: 'input', address: 0, writable: true }])).toMatch(
      /registers\.0\.writable: input registers are read-only/,
    );
    expect(bad([{ name: 'a', table: 'coil', address: 0, type: 'uint16' }])).toMatch(/registers\.0\.type/);
    expect(bad([{ name: 'a', table: 'holding', address: 65535, type: 'float32' }])).toMatch(/address/);
    expect(bad([{ name: 'a', table: 'holding', address: 0, scale: 0 }])).toMatch(/scale/);
    expect(
      bad([
        { name: 'a', table: 'holding', address: 0 },
        { name: 'a', table: 'holding', address: 1 },
      ]),
    ).toMatch(/registers\.1\.name: duplicate register name 'a'/);
    expect(bad([{ name: 'a', table: 'holding', address: 0 }], { slaveId: 248 })).toMatch(/slaveId/);
    expect(bad([{ name: 'a', table: 'holding', address: 0 }], { slaveId: 0 })).toMatch(/slaveId/);
  });

  it('write arguments are checked for shape by the kind (the register map by the bridge)', () => {
    expect(modbusDevice.buildAction('write', { register: 'setpoint', value: 21.5 })).toMatchObject({
      ok: true,
      value: { type: 'command', command: 'write', args: { register: 'setpoint', value: 21.5 } },
    });
    expect(modbusDevice.buildAction('write', { register: 'set point', value: 1 })).toMatchObject({
      ok: false,
      code: 'badArgs',
    });
    expect(modbusDevice.buildAction('write', { register: 'x', value: 'high' })).toMatchObject({
      ok: false,
      code: 'badArgs',
    });
  });

  it('the convention brings the kind; the UI can describe it (JSON Schema of attributes and write)', () => {
    const convention = modbusConvention();
    expect(convention.name).toBe('modbus');
    expect(convention.kinds.map((k) => k.kind)).toEqual(['modbus.device']);
    const d = describeKind(modbusDevice);
    expect(d.actions).toEqual([expect.objectContaining({ name: 'write', target: 'command' })]);
    expect(JSON.stringify(d.attributesSchema)).toContain('registers');
    expect(() => modbusConvention({ scanMs: 0 })).toThrow(/scanMs/);
  });

  it('lifecycle: disconnected → connected on CONNECT → disconnected on LINK_DOWN with the reason', () => {
    const actor = createActor(modbusMachine).start();
    expect(actor.getSnapshot().value).toBe('disconnected');
    actor.send({ type: 'LINK_DOWN', reason: 'ignored while disconnected' });
    actor.send({ type: 'CONNECT' });
    expect(actor.getSnapshot().value).toBe('connected');
    actor.send({ type: 'LINK_DOWN', reason: 'no reply from slave 2: 2 timeouts in a row' });
    expect(actor.getSnapshot().value).toBe('disconnected');
    expect(actor.getSnapshot().context.lastError).toMatch(/2 timeouts in a row/);
    actor.send({ type: 'CONNECT' });
    expect(actor.getSnapshot().context.lastError).toBeNull();
    actor.send({ type: 'LIVENESS_TIMEOUT' });
    expect(actor.getSnapshot().value).toBe('disconnected');
    actor.stop();
  });
});

describe('batches', () => {
  it('merges contiguous and overlapping registers of a table, splits on gaps, tables and limits', () => {
    const regs = [
      reg({ name: 'h0', table: 'holding', address: 0 }),
      reg({ name: 'h1', table: 'holding', address: 1, type: 'float32' }), // 1–2
      reg({ name: 'h3', table: 'holding', address: 3 }),
      reg({ name: 'h2lo', table: 'holding', address: 2 }), // overlaps h1
      reg({ name: 'h10', table: 'holding', address: 10 }), // gap
      reg({ name: 'i0', table: 'input', address: 0 }),
      reg({ name: 'c0', table: 'coil', address: 0 }),
      reg({ name: 'c1', table: 'coil', address: 1 }),
      reg({ name: 'd5', table: 'discrete', address: 5 }),
    ];
    const batches = planBatches(regs);
    expect(batches.map((b) => [b.table, b.address, b.count, b.registers.map((r) => r.name)])).toEqual([
      ['coil', 0, 2, ['c0', 'c1']],
      ['discrete', 5, 1, ['d5']],
      ['holding', 0, 4, ['h0', 'h1', 'h2lo', 'h3']],
      ['holding', 10, 1, ['h10']],
      ['input', 0, 1, ['i0']],
    ]);
    expect(describeBatch(batches[2]!)).toBe('holding 0–3 (h0, h1, h2lo, h3)');
    const many = Array.from({ length: 130 }, (_, i) => reg({ name: `r${i}`, table: 'input', address: i }));
    expect(planBatches(many).map((b) => b.count)).toEqual([125, 5]);
    expect(splitBatch(batches[2]!).map((b) => [b.address, b.count])).toEqual([
      [0, 1],
      [1, 2],
      [2, 1],
      [3, 1],
    ]);
  });
});

describe('conversion', () => {
  it('decodes every type, both word orders, and scales', () => {
    expect(decodeWords('int16', 'high-first', 0xfffb, 0)).toBe(-5);
    expect(decodeWords('uint32', 'high-first', 1, 4465)).toBe(70001);
    expect(decodeWords('uint32', 'low-first', 4465, 1)).toBe(70001);
    expect(decodeWords('int32', 'high-first', 0xffff, 0xfffe)).toBe(-2);
    expect(decodeWords('float32', 'high-first', 16820, 0)).toBe(22.5);
    expect(decodeWords('bool', 'high-first', 7, 0)).toBe(1);
    const regs = [
      reg({ name: 'sp', table: 'holding', address: 0, scale: 0.1 }),
      reg({ name: 'f', table: 'holding', address: 1, type: 'float32', wordOrder: 'low-first' }),
      reg({ name: 'neg', table: 'holding', address: 3, type: 'int16', scale: 0.5 }),
    ];
    const [batch] = planBatches(regs);
    const [lo, hi] = encodeWords('float32', 'low-first', 21.5);
    expect(decodeBatch(batch!, { words: [215, lo!, hi!, 0xfffb] })).toEqual({
      values: { sp: 21.5, f: 21.5, neg: -2.5 },
      skipped: [],
    });
    const nan = encodeWords('float32', 'high-first', Number.NaN);
    const [fb] = planBatches([reg({ name: 'f', table: 'holding', address: 0, type: 'float32' })]);
    expect(decodeBatch(fb!, { words: nan })).toEqual({ values: {}, skipped: ['f'] });
    const [bits] = planBatches([
      reg({ name: 'a', table: 'coil', address: 3 }),
      reg({ name: 'b', table: 'coil', address: 4 }),
    ]);
    expect(
      decodeBatch(bits!, { bits: [true, false, false, false, false, false, false, false] }).values,
    ).toEqual({
      a: 1,
      b: 0,
    });
  });

  it('encodes writes, refusing what does not fit, naming the register', () => {
    const sp = reg({ name: 'setpoint', table: 'holding', address: 1, scale: 0.1, writable: true });
    expect(encodeWrite(sp, 21.5)).toEqual({ ok: true, value: { fc: 6, address: 1, value: 215 } });
    expect(encodeWrite(sp, 21.55)).toMatchObject({
      ok: false,
      message: /register 'setpoint'.*multiple of its scale/,
    });
    expect(encodeWrite(sp, 7000)).toMatchObject({
      ok: false,
      message: "register 'setpoint': uint16 takes 0…65535 raw, 0…6553.5 after scale 0.1; 7000 is raw 70000",
    });
    expect(encodeWrite(sp, -1)).toMatchObject({ ok: false });
    expect(encodeWrite(sp, true)).toMatchObject({ ok: false, message: /takes a number/ });
    const ro = reg({ name: 'voltage', table: 'holding', address: 0 });
    expect(encodeWrite(ro, 1)).toMatchObject({ ok: false, message: /register 'voltage': is not writable/ });
    const i16 = reg({ name: 't', table: 'holding', address: 2, type: 'int16', writable: true });
    expect(encodeWrite(i16, -5)).toEqual({ ok: true, value: { fc: 6, address: 2, value: 0xfffb } });
    expect(encodeWrite(i16, 40000)).toMatchObject({ ok: false, message: /int16 takes -32768…32767/ });
    const u32 = reg({
      name: 'e',
      table: 'holding',
      address: 4,
      type: 'uint32',
      writable: true,
      wordOrder: 'low-first',
    });
    expect(encodeWrite(u32, 70001)).toEqual({ ok: true, value: { fc: 16, address: 4, values: [4465, 1] } });
    const f32 = reg({ name: 'f', table: 'holding', address: 6, type: 'float32', writable: true });
    expect(encodeWrite(f32, 22.5)).toEqual({ ok: true, value: { fc: 16, address: 6, values: [16820, 0] } });
    expect(encodeWrite(f32, 1e39)).toMatchObject({ ok: false, message: /float32/ });
    const coil = reg({ name: 'valve', table: 'coil', address: 1, writable: true });
    expect(encodeWrite(coil, true)).toEqual({ ok: true, value: { fc: 5, address: 1, state: true } });
    expect(encodeWrite(coil, 0)).toEqual({ ok: true, value: { fc: 5, address: 1, state: false } });
    expect(encodeWrite(coil, 2)).toMatchObject({ ok: false, message: /true\/false/ });
    const hb = reg({ name: 'flag', table: 'holding', address: 9, type: 'bool', writable: true });
    expect(encodeWrite(hb, true)).toEqual({ ok: true, value: { fc: 6, address: 9, value: 1 } });
  });
});

describe('RTU port framing', () => {
  /** A stand-in for an open SerialPort: records writes, emits what the test feeds it. */
  function fakeSerial() {
    const emitter = new EventEmitter() as EventEmitter & { isOpen: boolean; written: Buffer[] };
    emitter.isOpen = true;
    emitter.written = [];
    (emitter as unknown as { write: (b: Buffer, cb: () => void) => void }).write = (b, cb) => {
      emitter.written.push(b);
      cb();
    };
    return emitter;
  }
  const request = (unit: number, fc: number, address: number, qty: number) => {
    const b = Buffer.alloc(8);
    b.writeUInt8(unit, 0);
    b.writeUInt8(fc, 1);
    b.writeUInt16BE(address, 2);
    b.writeUInt16BE(qty, 4);
    return b;
  };

  it('knows the reply length of each function code', () => {
    expect(expectedReplyLength(request(1, 3, 0, 7))).toBe(19);
    expect(expectedReplyLength(request(1, 4, 0, 1))).toBe(7);
    expect(expectedReplyLength(request(1, 1, 0, 9))).toBe(7);
    expect(expectedReplyLength(request(1, 6, 0, 1))).toBe(8);
    expect(expectedReplyLength(request(0, 6, 0, 1))).toBe(0); // broadcast: no reply
  });

  it('cuts the reply at its length, takes a 5-byte exception, drops and counts noise', () => {
    const serial = fakeSerial();
    const port = new RtuPort(serial as unknown as SerialPort, () => 0);
    const frames: Buffer[] = [];
    port.on('data', (f: Buffer) => frames.push(f));
    serial.emit('data', Buffer.from([9, 9, 9])); // no request open: noise
    expect(port.noiseBytes).toBe(3);
    port.write(request(1, 4, 0, 1));
    serial.emit('data', Buffer.from([1, 4, 2]));
    serial.emit('data', Buffer.from([0, 5, 0xaa, 0xbb, 0xcc])); // one byte too many
    expect(frames.map((f) => [...f])).toEqual([[1, 4, 2, 0, 5, 0xaa, 0xbb]]);
    expect(port.noiseBytes).toBe(4);
    port.write(request(1, 3, 30, 1));
    serial.emit('data', Buffer.from([1, 0x83, 2, 0x11, 0x22]));
    expect(frames[1]!.length).toBe(5);
    // Garbage ahead of the reply: the frame is cut from the first byte (its CRC will fail).
    port.write(request(1, 4, 0, 1));
    serial.emit('data', Buffer.from([0x55, 0x66, 1, 4, 2, 0, 5, 0xaa, 0xbb]));
    expect([...frames[2]!]).toEqual([0x55, 0x66, 1, 4, 2, 0, 5]);
    port.detach();
  });
});

/**
 * The Modbus bridge's pure part (src/conventions/modbus/modbus-bridge-model.ts): device entries
 * kept by identity of their attributes, line settings, the fault events on the bad-message budget
 * (one stream per fault code, and per register for exceptions; a flood counted and summed up), and
 * the health line of a bus.
 *
 * @example
 * npx vitest run test/conventions/modbus-bridge-model.test.ts
 */
import { describe, expect, it } from 'vitest';
import type { DeviceEntry } from '../../src/conventions/modbus/modbus-bridge-model.js';
import {
  admitFault,
  busHealth,
  describeLine,
  faultEvent,
  faultKey,
  faultSummary,
  lineOf,
  sameLine,
  trackDevice,
} from '../../src/conventions/modbus/modbus-bridge-model.js';
import type { BusStats, ModbusFault, SlaveStats } from '../../src/conventions/modbus/modbus-bus.js';
import type { ModbusAttributes } from '../../src/conventions/modbus/modbus-kind.js';
import { modbusAttributes } from '../../src/conventions/modbus/modbus-kind.js';

const attrs = (over: Record<string, unknown> = {}): ModbusAttributes =>
  modbusAttributes.parse({
    port: '/dev/ttyUSB0',
    slaveId: 3,
    registers: [{ name: 'voltage', table: 'input', address: 0 }],
    ...over,
  });

const fault = (over: Partial<ModbusFault> = {}): ModbusFault => ({
  code: 'timeout',
  message: 'no reply',
  operation: 'read',
  functionCode: 4,
  address: 0,
  count: 1,
  registers: ['voltage'],
  ...over,
});

describe('Modbus bridge model', () => {
  it('a device entry is made once and brought up to date only when its attributes change', () => {
    const devices = new Map<string, DeviceEntry>();
    const a = attrs();
    const d = trackDevice(devices, 'm', a);
    d.online = true;
    expect(trackDevice(devices, 'm', a)).toBe(d);
    const moved = attrs({ port: '/dev/ttyUSB1' });
    expect(trackDevice(devices, 'm', moved)).toBe(d);
    expect(d).toMatchObject({ path: '/dev/ttyUSB1', online: true, attrs: moved });
    expect([...d.registers.keys()]).toEqual(['voltage']);
  });

  it('line settings: compared field by field, written 9600 8N1', () => {
    const line = lineOf(attrs());
    expect(describeLine(line)).toBe('9600 8N1');
    expect(sameLine(line, lineOf(attrs({ parity: 'even' })))).toBe(false);
    expect(describeLine(lineOf(attrs({ parity: 'even', baudRate: 19_200 })))).toBe('19200 8E1');
  });

  it('fault events: at most one per stream per interval, the next one says how many were left out', () => {
    const d = trackDevice(new Map(), 'm', attrs());
    const timeout = fault();
    const badAddress = fault({ code: 'exception', exceptionCode: 2, functionCode: 3, address: 10 });
    const otherAddress = { ...badAddress, address: 11 };
    expect(faultKey(badAddress)).toBe('exception:2:3:10');
    expect(admitFault(d, faultKey(timeout), 0, 1000)).toEqual({ verdict: 'write', suppressed: 0 });
    expect(admitFault(d, faultKey(timeout), 500, 1000)).toEqual({
      verdict: 'firstSuppressed',
      windowEndsAt: 1000,
    });
    expect(admitFault(d, faultKey(timeout), 900, 1000)).toEqual({ verdict: 'suppressed' });
    // each bad register is its own stream
    expect(admitFault(d, faultKey(badAddress), 900, 1000)).toEqual({ verdict: 'write', suppressed: 0 });
    expect(admitFault(d, faultKey(otherAddress), 900, 1000)).toEqual({ verdict: 'write', suppressed: 0 });
    // The window's summary has not run: the next event carries the two left out.
    expect(admitFault(d, faultKey(timeout), 1000, 1000)).toEqual({ verdict: 'write', suppressed: 2 });
    expect(faultSummary(d, faultKey(timeout), timeout, 1000)).toBeUndefined(); // nothing counted twice
    // Every field of the fault (no exceptionCode: none was given), and how many were left out.
    expect(faultEvent(timeout, 2)).toEqual({
      kind: 'device.modbusError',
      data: { ...timeout, suppressed: 2 },
    });
    expect(faultEvent(fault({ code: 'crc' }), 0).kind).toBe('device.badMessage');
    expect(faultEvent(badAddress, 0).data).toMatchObject({ exceptionCode: 2 });
    expect(faultEvent(badAddress, 0).data).not.toHaveProperty('suppressed');
  });

  it('a fault flood is counted, not dropped: one event, and the window’s summary names every fault left out', () => {
    const d = trackDevice(new Map(), 'm', attrs());
    const crc = fault({ code: 'crc', message: 'CRC error in the reply' });
    const key = faultKey(crc);
    const verdicts = Array.from({ length: 500 }, (_, i) => admitFault(d, key, 10_000 + i, 1000).verdict);
    expect(verdicts.filter((v) => v === 'write')).toHaveLength(1);
    expect(verdicts.filter((v) => v === 'firstSuppressed')).toHaveLength(1);
    expect(verdicts.filter((v) => v === 'suppressed')).toHaveLength(498);
    // The window closes: one summary, as the device event log writes it, with all 499 left out.
    expect(faultSummary(d, key, crc, 1000)).toEqual({
      kind: 'device.eventsSuppressed',
      data: {
        kind: 'device.badMessage',
        code: 'crc',
        stream: 'crc',
        suppressed: 499,
        written: 1,
        windowMs: 1000,
      },
    });
    expect(faultSummary(d, key, crc, 1000)).toBeUndefined(); // summed up once
    // The next window writes again, owing nothing.
    expect(admitFault(d, key, 11_000, 1000)).toEqual({ verdict: 'write', suppressed: 0 });
  });

  it('health: ok when the port is open and every slave answers; else the first reason', () => {
    const slave = (deviceId: string, online: boolean, lastError: string | null): SlaveStats => ({
      deviceId,
      unitId: 1,
      online,
      consecutiveTimeouts: 0,
      batches: 1,
      counters: {
        requests: 0,
        replies: 0,
        timeouts: 0,
        exceptions: 0,
        crcErrors: 0,
        badFrames: 0,
        writes: 0,
        writeFailures: 0,
        cycles: 0,
      },
      lastError,
      lastReplyAt: null,
    });
    const stats = (port: BusStats['port'], slaves: SlaveStats[]): BusStats => ({
      path: '/dev/ttyUSB0',
      port,
      portAttempts: 0,
      opens: 1,
      lastPortError: 'serial port /dev/ttyUSB0 vanished',
      noiseBytes: 0,
      queuedWrites: 0,
      slaves,
    });
    expect(busHealth(stats('open', [slave('a', true, null)]))).toEqual({
      ok: true,
      detail: 'open, 1 of 1 slaves answering',
    });
    expect(busHealth(stats('open', [slave('a', true, null), slave('b', false, '3 timeouts')]))).toEqual({
      ok: false,
      detail: 'open, 1 of 2 slaves answering: 3 timeouts',
    });
    expect(busHealth(stats('absent', [slave('a', false, 'gone')]))).toEqual({
      ok: false,
      detail: 'absent, 0 of 1 slaves answering: serial port /dev/ttyUSB0 vanished',
    });
  });
});

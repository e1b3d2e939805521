/**
 * Unit tests of a serial link's options: the defaults filled in by resolveSerialLinkOptions and
 * the RangeError naming a bad field. No port is opened.
 */
import { describe, expect, it } from 'vitest';
import type { SerialLinkOptions } from '../../src/transports/serial-link-options.js';
import {
  DEFAULT_SERIAL_BAUD_RATE,
  DEFAULT_SERIAL_HEARTBEAT_MS,
  DEFAULT_SERIAL_WRITE_TIMEOUT_MS,
  resolveSerialLinkOptions,
} from '../../src/transports/serial-link-options.js';

const base: SerialLinkOptions = { path: '/dev/ttyUSB0', onMessage: () => {}, onError: () => {} };

describe('resolveSerialLinkOptions', () => {
  it('fills every default; silence is three heartbeats', () => {
    const s = resolveSerialLinkOptions(base);
    expect(s.baudRate).toBe(DEFAULT_SERIAL_BAUD_RATE);
    expect(s.heartbeatMs).toBe(DEFAULT_SERIAL_HEARTBEAT_MS);
    expect(s.silenceMs).toBe(3 * DEFAULT_SERIAL_HEARTBEAT_MS);
    expect(s.writeTimeoutMs).toBe(DEFAULT_SERIAL_WRITE_TIMEOUT_MS);
    expect(s.maxFrameBytes).toBeGreaterThan(s.maxPayloadBytes);
  });

  it('keeps what is given; silence follows a given heartbeat unless given too', () => {
    expect(resolveSerialLinkOptions({ ...base, heartbeatMs: 500 }).silenceMs).toBe(1500);
    expect(resolveSerialLinkOptions({ ...base, heartbeatMs: 500, silenceMs: 700 }).silenceMs).toBe(700);
    expect(resolveSerialLinkOptions({ ...base, baudRate: 9600 }).baudRate).toBe(9600);
  });

  it('throws a RangeError naming the bad field', () => {
    expect(() => resolveSerialLinkOptions({ ...base, maxFrameBytes: 4 })).toThrow(RangeError);
    expect(() => resolveSerialLinkOptions({ ...base, maxFrameBytes: 4 })).toThrow(/maxFrameBytes/);
    expect(() => resolveSerialLinkOptions({ ...base, path: '' })).toThrow(/path/);
  });
});

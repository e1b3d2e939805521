/**
 * Reading and writing a port on the main thread (readSerialPortNow, writeSerialPortNow) on real
 * socat pty pairs: every byte arrives once and in order, a write takes what the driver has room
 * for and the rest goes through serialport's write, and an unplugged pair is still reported as a
 * vanished port with no `data` listener attached.
 */
import type { SerialPort } from 'serialport';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SerialLoss } from '../../src/transports/serial-port.js';
import {
  closeSerialPort,
  openSerialPort,
  readSerialPortNow,
  serialPortFd,
  watchSerialPort,
  writeSerialPort,
  writeSerialPortNow,
} from '../../src/transports/serial-port.js';
import type { Kit } from './serial-device.js';
import { createKit, HAVE_SOCAT, PTY_NOTE, ptyPair, waitFor } from './serial-device.js';

let kit: Kit;
beforeEach(() => {
  kit = createKit();
});
afterEach(async () => {
  await kit.cleanup();
});

async function open(path: string, owner: number): Promise<SerialPort> {
  const r = await openSerialPort(kit.rt, { path, baudRate: 115_200, timeoutMs: 2000 });
  if (!r.ok) throw new Error(r.error.message);
  kit.defer(() => closeSerialPort(kit.rt, r.value, 500, owner));
  return r.value;
}

describe.skipIf(!HAVE_SOCAT)(`serial port read and write on the main thread ${PTY_NOTE}`, () => {
  it('moves 1 MiB intact and in order: what the driver takes at once, the rest through the port', async () => {
    const pair = await ptyPair(kit, 'd');
    const device = await open(pair.devicePath, 4);
    const host = await open(pair.hostPath, 4);
    const got: Buffer[] = [];
    let gotBytes = 0;
    expect(
      readSerialPortNow(device, (b) => {
        got.push(Buffer.from(b));
        gotBytes += b.length;
      }),
    ).toBe(true);
    const data = Buffer.alloc(1 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 12)) & 0xff;
    const now = writeSerialPortNow(host, data);
    // A pty holds far less than 1 MiB: some went at once, the rest must wait for room.
    expect(now).toBeGreaterThan(0);
    expect(now).toBeLessThan(data.length);
    const rest = await writeSerialPort(kit.rt, host, data.subarray(now), {
      path: pair.hostPath,
      timeoutMs: 10_000,
      owner: 4,
    });
    expect(rest).toEqual({ ok: true, value: undefined });
    await waitFor(() => gotBytes >= data.length, 10_000, 'the whole MiB at the far end');
    expect(Buffer.concat(got).equals(data)).toBe(true);
  });

  it('reports an unplugged pair as vanished while reading with no data listener', async () => {
    const pair = await ptyPair(kit, 'e');
    const host = await open(pair.hostPath, 5);
    const read: Buffer[] = [];
    expect(readSerialPortNow(host, (b) => read.push(Buffer.from(b)))).toBe(true);
    const losses: SerialLoss[] = [];
    watchSerialPort(host, pair.hostPath, (loss) => losses.push(loss));
    await pair.unplug();
    await waitFor(() => losses.length > 0, 10_000, 'the loss');
    expect(losses[0]!.code).toBe('vanished');
    expect(host.isOpen).toBe(false);
    expect(host.listenerCount('data')).toBe(0);
  });

  it('writes nothing and reads nothing on a closed port', async () => {
    const pair = await ptyPair(kit, 'f');
    const host = await open(pair.hostPath, 6);
    expect(serialPortFd(host)).toBeTypeOf('number');
    await closeSerialPort(kit.rt, host, 500, 6);
    expect(serialPortFd(host)).toBeUndefined();
    expect(writeSerialPortNow(host, Buffer.from('x'))).toBe(0);
    expect(readSerialPortNow(host, () => {})).toBe(false);
  });
});

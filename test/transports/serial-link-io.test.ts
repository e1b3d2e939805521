/**
 * The serial link's write queue on a real socat pty pair: frames that wait behind a write go out
 * together in the next one, no bigger than what the line carries in `writeTimeoutMs` at its baud
 * rate; every frame arrives intact and in order; and a big write on a slow line gets the time its
 * bytes need before it counts as dangling.
 */
import type { SerialPort } from 'serialport';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Pid } from '../../src/runtime/process.js';
import { createDeframer } from '../../src/transports/framing.js';
import { SerialFrameIo } from '../../src/transports/serial-link-io.js';
import type { SerialWriteError } from '../../src/transports/serial-port.js';
import { closeSerialPort, openSerialPort, writeSerialPort } from '../../src/transports/serial-port.js';
import type { Kit } from './serial-device.js';
import { createKit, HAVE_SOCAT, PTY_NOTE, ptyPair, waitFor } from './serial-device.js';

let kit: Kit;
beforeEach(() => {
  kit = createKit();
});
afterEach(async () => {
  await kit.cleanup();
});

async function open(path: string): Promise<SerialPort> {
  const r = await openSerialPort(kit.rt, { path, baudRate: 115_200, timeoutMs: 2000 });
  if (!r.ok) throw new Error(r.error.message);
  kit.defer(() => closeSerialPort(kit.rt, r.value, 500, 1));
  return r.value;
}

/** A host end whose io reports each write (the port is real), and a device end that deframes. */
async function rig(baudRate: number) {
  const pair = await ptyPair(kit, 'q');
  const device = await open(pair.devicePath);
  const received: Uint8Array[] = [];
  const deframer = createDeframer({ onFrame: (p) => received.push(p), onError: () => {} });
  device.on('data', (b: Buffer) => deframer.push(b));
  const port = await open(pair.hostPath);
  const writes: number[] = [];
  const writeErrors: SerialWriteError[] = [];
  const io = new SerialFrameIo({
    runtime: kit.rt,
    port,
    path: pair.hostPath,
    name: 'io-test',
    owner: 1 as Pid,
    maxFrameBytes: 65_536,
    writeTimeoutMs: 2000,
    baudRate,
    isRunning: () => true,
    onFrame: () => {},
    onFrameError: () => {},
    onLoss: () => {},
    onWriteError: (e) => writeErrors.push(e),
    onWrite: (bytes) => writes.push(bytes),
  });
  io.attach();
  kit.defer(() => io.close());
  return { io, writes, received, writeErrors };
}

/** Eight 4 KiB payloads, each different, as a firmware window. */
const window = Array.from({ length: 8 }, (_, k) =>
  new Uint8Array(4096).map((_, i) => (i * (k + 3) + k) & 0xff),
);

describe.skipIf(!HAVE_SOCAT)(`serial link write queue ${PTY_NOTE}`, () => {
  it('frames sent in one turn or queued behind a write go out together, at most what the line carries in writeTimeoutMs', async () => {
    const { io, writes, received, writeErrors } = await rig(115_200); // 23,040 bytes in 2 s
    for (const p of window) io.send(p);
    await waitFor(() => received.length === 8, 5000, 'all eight frames');
    expect(received).toEqual(window);
    expect(writeErrors).toEqual([]);
    // Sent in one turn: the first write takes as many as fit in 23,040 bytes (5 frames), the rest follow.
    expect(writes[0]).toBeGreaterThan(5 * 4096);
    expect(writes.length).toBeLessThan(8);
    expect(Math.max(...writes)).toBeLessThanOrEqual(23_040);
    expect(writes.reduce((a, b) => a + b, 0)).toBe(io.counters().bytesOut);
    await waitFor(() => io.counters().framesOut === 8, 5000, 'the counters');
    expect(io.queued).toBe(0);
  });

  it('on a slow line every frame goes alone (one frame is more than the line carries in the timeout)', async () => {
    const { io, writes, received } = await rig(9600); // 1,920 bytes in 2 s: less than one frame
    for (const p of window) io.send(p);
    await waitFor(() => received.length === 8, 5000, 'all eight frames');
    expect(received).toEqual(window);
    expect(writes).toHaveLength(8);
  });

  it('a write is dangling only after writeTimeoutMs plus the time the line needs for its bytes', async () => {
    const pair = await ptyPair(kit, 'w');
    const port = await open(pair.hostPath); // nobody reads the device end: the write never completes
    const start = performance.now();
    const r = await writeSerialPort(kit.rt, port, Buffer.alloc(1 << 20, 0x55), {
      path: pair.hostPath,
      timeoutMs: 200,
      lineMs: 300,
      owner: 2,
    });
    expect(performance.now() - start).toBeGreaterThanOrEqual(490);
    expect(r).toMatchObject({
      ok: false,
      error: {
        code: 'writeTimeout',
        message: expect.stringMatching(
          /did not complete within 200 ms \(plus 300 ms the line needs for them\)/,
        ),
      },
    });
  });
});

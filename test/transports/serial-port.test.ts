/**
 * The shared serial-port module on real socat pty pairs: open (and its failure named), a write
 * that settles, a write that never completes (timeout, abort), close, and vanish detection when
 * the pair goes away.
 */
import { writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SerialLoss } from '../../src/transports/serial-port.js';
import {
  closeSerialPort,
  describeLoss,
  isPortGone,
  openSerialPort,
  watchSerialPort,
  writeSerialPort,
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

describe.skipIf(!HAVE_SOCAT)(`serial-port ${PTY_NOTE}`, () => {
  it('opens a pty, writes to it (the far end reads it), closes it', async () => {
    const pair = await ptyPair(kit, 'a');
    const host = await openSerialPort(kit.rt, { path: pair.hostPath, baudRate: 115_200, timeoutMs: 2000 });
    const dev = await openSerialPort(kit.rt, { path: pair.devicePath, baudRate: 115_200, timeoutMs: 2000 });
    if (!host.ok || !dev.ok) throw new Error('open failed');
    const got: Buffer[] = [];
    dev.value.on('data', (b: Buffer) => got.push(b));
    const w = await writeSerialPort(kit.rt, host.value, Buffer.from('hello'), {
      path: pair.hostPath,
      timeoutMs: 1000,
      owner: 1,
    });
    expect(w).toEqual({ ok: true, value: undefined });
    await waitFor(() => Buffer.concat(got).toString() === 'hello', 3000, 'the bytes at the far end');
    await closeSerialPort(kit.rt, host.value, 1000, 1);
    await closeSerialPort(kit.rt, dev.value, 1000, 1);
    expect(host.value.isOpen).toBe(false);
    expect(kit.rt.timers.ownedBy(1)).toEqual([]);
  });

  it('names the path and the cause when a port cannot be opened', async () => {
    const missing = await openSerialPort(kit.rt, {
      path: `${kit.dir}/nothing`,
      baudRate: 9600,
      timeoutMs: 2000,
    });
    expect(missing).toMatchObject({ ok: false, error: { code: 'openFailed' } });
    if (!missing.ok) expect(missing.error.message).toContain(`cannot open serial port ${kit.dir}/nothing`);
    const file = `${kit.dir}/regular`;
    writeFileSync(file, 'not a tty');
    const notTty = await openSerialPort(kit.rt, { path: file, baudRate: 9600, timeoutMs: 2000 });
    expect(notTty).toMatchObject({ ok: false, error: { code: 'openFailed' } });
  });

  it('a write nobody reads times out (writeTimeout) or is abandoned on abort, leaving no timer', async () => {
    const pair = await ptyPair(kit, 'b');
    const host = await openSerialPort(kit.rt, { path: pair.hostPath, baudRate: 115_200, timeoutMs: 2000 });
    if (!host.ok) throw new Error(host.error.message);
    // Nobody reads the device end: the pty buffer fills and a big write never completes.
    const big = Buffer.alloc(1 << 20, 0x55);
    const timedOut = await writeSerialPort(kit.rt, host.value, big, {
      path: pair.hostPath,
      timeoutMs: 300,
      owner: 2,
    });
    expect(timedOut).toMatchObject({ ok: false, error: { code: 'writeTimeout' } });
    const abort = new AbortController();
    const pending = writeSerialPort(kit.rt, host.value, big, {
      path: pair.hostPath,
      timeoutMs: 60_000,
      owner: 2,
      signal: abort.signal,
    });
    abort.abort();
    expect(await pending).toMatchObject({ ok: false, error: { code: 'writeFailed' } });
    expect(kit.rt.timers.ownedBy(2)).toEqual([]);
    await closeSerialPort(kit.rt, host.value, 500, 2);
  });

  it('reports a port whose pair is unplugged as vanished', async () => {
    const pair = await ptyPair(kit, 'c');
    const dev = await openSerialPort(kit.rt, { path: pair.devicePath, baudRate: 115_200, timeoutMs: 2000 });
    const host = await openSerialPort(kit.rt, { path: pair.hostPath, baudRate: 115_200, timeoutMs: 2000 });
    if (!host.ok || !dev.ok) throw new Error('open failed');
    dev.value.on('data', () => {});
    kit.defer(() => closeSerialPort(kit.rt, dev.value, 500, 3));
    host.value.on('data', () => {}); // serialport reports a disconnect only while reading
    const losses: SerialLoss[] = [];
    watchSerialPort(host.value, pair.hostPath, (loss) => losses.push(loss));
    expect(isPortGone(pair.hostPath)).toBe(false);
    await pair.unplug();
    // As an owner does (the link's heartbeat): keep probing; a write to a dangling port fails or
    // hangs, and the failure is named the same way. Whichever comes first, the loss is 'vanished'.
    const deadline = Date.now() + 10_000;
    while (losses.length === 0 && Date.now() < deadline) {
      const w = await writeSerialPort(kit.rt, host.value, Buffer.from([0]), {
        path: pair.hostPath,
        timeoutMs: 300,
        owner: 3,
      });
      if (!w.ok && losses.length === 0)
        losses.push(describeLoss(pair.hostPath, 'error', new Error(w.error.message)));
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(losses.length).toBeGreaterThan(0);
    expect(losses[0]!.code).toBe('vanished');
    expect(losses[0]!.message).toContain(`serial port ${pair.hostPath} vanished`);
    expect(isPortGone(pair.hostPath)).toBe(true);
    await closeSerialPort(kit.rt, host.value, 500, 3);
  });
});

describe('describeLoss', () => {
  it('names a hang-up or a missing node vanished, else closed or ioError', () => {
    const here = process.execPath; // a path that exists
    const eio = Object.assign(new Error('read EIO'), { code: 'EIO' });
    expect(describeLoss(here, 'error', eio).code).toBe('vanished');
    expect(describeLoss(here, 'close', Object.assign(new Error('x'), { disconnected: true })).code).toBe(
      'vanished',
    );
    expect(describeLoss('/no/such/tty', 'close', null).code).toBe('vanished');
    expect(describeLoss(here, 'close', null)).toEqual({
      code: 'closed',
      message: `serial port ${here} closed unexpectedly`,
    });
    expect(describeLoss(here, 'error', new Error('EBUSY'), 'while writing')).toEqual({
      code: 'ioError',
      message: `I/O error on ${here}: EBUSY; while writing`,
    });
  });
});

/**
 * Integration tests of the serial link on real pty pairs (socat): a hand-written device on the far
 * end writes protocol v1 frames and decodes what the host sends. Skipped only without socat.
 */
import { writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeFrame } from '../../src/transports/framing.js';
import type { CommandMessage, Message } from '../../src/transports/protocol.js';
import { encodeMessage } from '../../src/transports/protocol.js';
import type { SerialLink, SerialLinkError, SerialLinkOptions } from '../../src/transports/serial-link.js';
import { SerialLinkExitError, startSerialLink } from '../../src/transports/serial-link.js';
import type { Kit } from './serial-device.js';
import {
  createKit,
  FakeDevice,
  HAVE_SOCAT,
  PTY_NOTE,
  ptyPair,
  telemetry,
  waitFor,
  within,
} from './serial-device.js';

let kit: Kit;
beforeEach(() => {
  kit = createKit();
});
afterEach(async () => {
  await kit.cleanup();
});

interface Seen {
  readonly messages: Message[];
  readonly errors: SerialLinkError[];
}

/**
 * What the device sent after the `before`-th message, but hellos: a device answers the link's
 * `hello` command with a second hello, which a loaded machine delivers after the first one
 * identified the device (seen once under the whole suite).
 */
const dataSince = (link: Seen, before: number) =>
  link.messages.slice(before).filter((m) => m.type !== 'hello');

async function openLink(
  path: string,
  extra: Partial<Omit<SerialLinkOptions, 'path'>> = {},
): Promise<SerialLink & Seen> {
  const seen: Seen = { messages: [], errors: [] };
  const r = await startSerialLink(kit.rt, {
    path,
    onMessage: (message) => seen.messages.push(message),
    onError: (error) => seen.errors.push(error),
    ...extra,
  });
  if (!r.ok) throw new Error(r.error.message);
  kit.defer(() => r.value.stop());
  return Object.assign(r.value, seen);
}

function cmd(cmdId: string, args?: Record<string, string>): CommandMessage {
  return args === undefined
    ? { v: 1, type: 'cmd', cmdId, action: 'setSpeed' }
    : { v: 1, type: 'cmd', cmdId, action: 'setSpeed', args };
}

function exitError(link: SerialLink): SerialLinkExitError {
  const reason = link.exitReason;
  if (reason?.type !== 'error') throw new Error(`expected an error exit, got ${JSON.stringify(reason)}`);
  expect(reason.error).toBeInstanceOf(SerialLinkExitError);
  return reason.error as SerialLinkExitError;
}

describe.skipIf(!HAVE_SOCAT)(`SerialLink ${PTY_NOTE}`, () => {
  it('sends a hello command on open; the device answers and the link learns its device id', async () => {
    const pair = await ptyPair(kit, 'a');
    const device = await FakeDevice.open(kit, pair.devicePath, { helloOnOpen: false });
    const link = await openLink(pair.hostPath);
    expect(link.deviceId).toBeUndefined();

    await waitFor(() => link.deviceId !== undefined, 5000, 'the device to identify itself');
    const hello = device.commands('hello')[0];
    expect(hello).toMatchObject({ v: 1, type: 'cmd', action: 'hello' });
    expect(hello?.cmdId).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(link.deviceId).toBe('pump-7');
    await waitFor(() => link.stats().framesIn === 2, 5000, 'the hello and the reply');
    // The reply answers the link's own probe: it stops at the link (nobody else sent that command).
    expect(link.messages).toEqual([device.hello()]);
    expect(link.stats()).toMatchObject({ path: pair.hostPath, deviceId: 'pump-7', framesIn: 2, errors: {} });
    expect(link.stats().lastRxAt).toBeGreaterThan(0);
  });

  it('delivers telemetry decoded and sends commands the device decodes; refuses what it cannot send', async () => {
    const pair = await ptyPair(kit, 'a');
    const device = await FakeDevice.open(kit, pair.devicePath);
    const link = await openLink(pair.hostPath);
    await waitFor(() => link.deviceId === 'pump-7', 5000, 'the hello');

    await device.send(telemetry(1, { temp: 21.5, rpm: 1200 }));
    await waitFor(() => link.messages.some((m) => m.type === 'telemetry'), 5000, 'the telemetry');
    expect(link.messages.find((m) => m.type === 'telemetry')).toEqual(
      telemetry(1, { temp: 21.5, rpm: 1200 }),
    );

    expect(link.send(cmd('c1', { note: 'ünïcödé' }))).toEqual({ ok: true, value: undefined });
    expect(link.send(cmd('c2'))).toEqual({ ok: true, value: undefined });
    await waitFor(() => device.commands('setSpeed').length === 2, 5000, 'the commands');
    expect(device.commands('setSpeed')).toEqual([cmd('c1', { note: 'ünïcödé' }), cmd('c2')]);
    expect(device.frameErrors).toEqual([]);

    expect(link.send(telemetry(2))).toMatchObject({ ok: false, error: { code: 'wrongDirection' } });
    expect(link.send(cmd('bad id!'))).toMatchObject({ ok: false, error: { code: 'badMessage' } });
    expect(link.send({ ...cmd('c3'), type: 'nonsense' } as unknown as Message)).toMatchObject({
      ok: false,
      error: { code: 'badMessage' },
    });
    const big = cmd('c4', { blob: 'x'.repeat(20_000) });
    expect(link.send(big)).toMatchObject({ ok: false, error: { code: 'badMessage' } });
    await waitFor(() => link.stats().framesOut >= 3, 5000, 'the writes to complete');
    expect(link.stats().bytesOut).toBeGreaterThan(0);
  });

  it('counts garbage between frames as one bad frame and still delivers the next frame', async () => {
    const pair = await ptyPair(kit, 'a');
    const device = await FakeDevice.open(kit, pair.devicePath);
    const link = await openLink(pair.hostPath);
    await waitFor(() => link.deviceId !== undefined, 5000, 'the hello');
    const before = link.messages.length;

    const banner = new TextEncoder().encode('U-Boot 2024.01 (reset) booting...\r\n');
    await device.write(Buffer.concat([encodeFrame(encodeMessage(telemetry(1))), banner]));
    await device.send(telemetry(2));
    await waitFor(() => dataSince(link, before).length === 2, 5000, 'both frames');
    expect(dataSince(link, before)).toEqual([telemetry(1), telemetry(2)]);
    expect(link.errors).toHaveLength(1);
    expect(link.errors[0]?.message).toContain(pair.hostPath);
    expect(Object.values(link.stats().errors)).toEqual([1]);
    expect(link.alive).toBe(true);
  });

  it("drops a frame with a bad CRC as 'crcMismatch' and loses nothing else", async () => {
    const pair = await ptyPair(kit, 'a');
    const device = await FakeDevice.open(kit, pair.devicePath);
    const link = await openLink(pair.hostPath);
    await waitFor(() => link.deviceId !== undefined, 5000, 'the hello');
    const before = link.messages.length;

    const bad = Uint8Array.from(encodeFrame(encodeMessage(telemetry(2))));
    bad[12] = bad[12]! ^ 0x01; // a JSON character inside the first COBS block: still no 0x00
    await device.send(telemetry(1));
    await device.write(bad);
    await device.send(telemetry(3));
    await waitFor(() => dataSince(link, before).length === 2, 5000, 'the two good frames');
    expect(dataSince(link, before)).toEqual([telemetry(1), telemetry(3)]);
    expect(link.errors.map((e) => e.code)).toEqual(['crcMismatch']);
    expect(link.stats().errors).toEqual({ crcMismatch: 1 });
  });

  it('reports bad messages, messages in the wrong direction, and survives a throwing onMessage', async () => {
    const pair = await ptyPair(kit, 'a');
    const device = await FakeDevice.open(kit, pair.devicePath);
    let throwOnce = true;
    const got: Message[] = [];
    const link = await openLink(pair.hostPath, {
      onMessage: (message) => {
        got.push(message);
        if (message.type === 'telemetry' && throwOnce) {
          throwOnce = false;
          throw new Error('consumer bug');
        }
      },
    });
    await waitFor(() => link.deviceId !== undefined, 5000, 'the hello');

    await device.write(encodeFrame(new TextEncoder().encode('{"v":1,"type":"telemetry",')));
    await device.write(encodeFrame(encodeMessage({ v: 1, type: 'cmd', cmdId: 'echo', action: 'x' })));
    await device.send(telemetry(1));
    await device.send(telemetry(2));
    await waitFor(() => got.filter((m) => m.type === 'telemetry').length === 2, 5000, 'both telemetry');
    expect(link.errors.map((e) => e.code)).toEqual(['notJson', 'wrongDirection']);
    expect(link.alive).toBe(true);
    expect(kit.log.some((e) => e.level === 'error' && e.message.includes('onMessage threw'))).toBe(true);
  });

  it('keeps memory flat through 10 MB without a delimiter: one tooLong, then the next frame', async () => {
    const pair = await ptyPair(kit, 'a');
    const device = await FakeDevice.open(kit, pair.devicePath);
    const link = await openLink(pair.hostPath);
    await waitFor(() => link.deviceId !== undefined, 5000, 'the hello');
    const before = link.messages.length;
    const heapBefore = process.memoryUsage().heapUsed;

    const noise = Buffer.alloc(64 * 1024, 0x55);
    const total = 10 * 1024 * 1024;
    for (let sent = 0; sent < total; sent += noise.length) await device.write(noise);
    await device.send(telemetry(1));
    await waitFor(() => dataSince(link, before).length === 1, 15_000, 'the frame after the noise');

    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    expect(dataSince(link, before)).toEqual([telemetry(1)]);
    expect(link.errors.map((e) => e.code)).toEqual(['tooLong']);
    expect(link.errors[0]?.discardedBytes).toBe(total);
    expect(link.stats().bytesIn).toBeGreaterThan(total);
    expect(heapGrowth).toBeLessThan(20 * 1024 * 1024);
  });

  it('reassembles a frame split at every byte offset', async () => {
    const pair = await ptyPair(kit, 'a');
    const device = await FakeDevice.open(kit, pair.devicePath);
    const link = await openLink(pair.hostPath);
    await waitFor(() => link.deviceId !== undefined, 5000, 'the hello');
    const start = link.messages.length;

    const length = encodeFrame(encodeMessage(telemetry(1))).length;
    for (let k = 1; k < length; k++) {
      const frame = encodeFrame(encodeMessage(telemetry(k)));
      const base = link.stats().bytesIn;
      await device.write(frame.subarray(0, k));
      // The host has read the first part on its own before the rest is written.
      await waitFor(() => link.stats().bytesIn === base + k, 5000, `the first ${k} bytes`, 1);
      await device.write(frame.subarray(k));
      await waitFor(() => link.messages.length === start + k, 5000, `the frame split at ${k}`, 1);
    }
    expect(link.messages.slice(start)).toEqual(
      Array.from({ length: length - 1 }, (_, i) => telemetry(i + 1)),
    );
    expect(link.errors).toEqual([]);
  });

  it('exits with an error saying the port vanished when it is unplugged', async () => {
    const pair = await ptyPair(kit, 'a');
    await FakeDevice.open(kit, pair.devicePath);
    const link = await openLink(pair.hostPath);
    await waitFor(() => link.deviceId !== undefined, 5000, 'the hello');

    await pair.unplug();
    const reason = await within(link.whenExited(), 5000, 'the link exit');
    expect(reason.type).toBe('error');
    const error = exitError(link);
    expect(error.code).toBe('vanished');
    expect(error.message).toMatch(/vanished/);
    expect(error.message).toContain(pair.hostPath);
    expect(link.send(cmd('late'))).toMatchObject({ ok: false, error: { code: 'closed' } });
  });

  it('never hangs on a write to a port that vanished under it', async () => {
    const pair = await ptyPair(kit, 'a');
    await FakeDevice.open(kit, pair.devicePath);
    const link = await openLink(pair.hostPath, { writeTimeoutMs: 500 });
    await waitFor(() => link.deviceId !== undefined, 5000, 'the hello');

    const unplugged = pair.unplug();
    const results = [link.send(cmd('w1'))];
    await unplugged;
    results.push(link.send(cmd('w2')));
    await within(link.whenExited(), 5000, 'the link exit');
    for (const r of results) expect(r.ok || r.error.code === 'closed').toBe(true);
    expect(['vanished', 'writeFailed', 'writeTimeout']).toContain(exitError(link).code);
  });

  it('exits with writeTimeout when a write never completes (nobody reads the far end)', async () => {
    const pair = await ptyPair(kit, 'a'); // no device: the pty buffers fill up and writes stall
    const link = await openLink(pair.hostPath, { writeTimeoutMs: 300, heartbeatMs: 60_000 });
    for (let i = 0; i < 20; i++) {
      const r = link.send(cmd(`big${i}`, { blob: 'x'.repeat(15_000) }));
      expect(r.ok).toBe(true);
    }
    await within(link.whenExited(), 5000, 'the link exit');
    const error = exitError(link);
    expect(error.code).toBe('writeTimeout');
    expect(error.message).toMatch(/within 300 ms/);
    expect(link.send(cmd('after'))).toMatchObject({ ok: false, error: { code: 'closed' } });
  });

  it("pings a quiet device and exits 'silent' when it stays quiet", async () => {
    const pair = await ptyPair(kit, 'a');
    const device = await FakeDevice.open(kit, pair.devicePath, { answers: ['hello'] });
    const link = await openLink(pair.hostPath, { heartbeatMs: 200 });
    await waitFor(() => link.deviceId !== undefined, 5000, 'the hello');

    await within(link.whenExited(), 5000, 'the silence exit');
    const quietFor = Date.now() - link.stats().lastRxAt!;
    const error = exitError(link);
    expect(error.code).toBe('silent');
    expect(error.message).toMatch(/^silent: /);
    expect(device.commands('ping').length).toBeGreaterThanOrEqual(1);
    expect(quietFor).toBeGreaterThanOrEqual(590); // silenceMs defaults to 3 × 200, counted from the last frame
  });

  it('stays up while the device answers pings', async () => {
    const pair = await ptyPair(kit, 'a');
    const device = await FakeDevice.open(kit, pair.devicePath);
    const link = await openLink(pair.hostPath, { heartbeatMs: 150 });
    await waitFor(() => device.commands('ping').length >= 4, 5000, 'four pings'); // > silenceMs of quiet otherwise
    expect(link.alive).toBe(true);
    expect(link.stats().errors).toEqual({});
  });

  it('re-sends hello while the device has not identified itself', async () => {
    const pair = await ptyPair(kit, 'a');
    const link = await openLink(pair.hostPath, { heartbeatMs: 150, silenceMs: 5000 });
    // The device comes up late and missed the first hello command.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const device = await FakeDevice.open(kit, pair.devicePath, { helloOnOpen: false });
    await waitFor(() => link.deviceId === 'pump-7', 5000, 'the identification');
    expect(device.commands('hello').length).toBeGreaterThanOrEqual(1);
  });

  it('exits on a hello from a different device (deviceMismatch)', async () => {
    const pair = await ptyPair(kit, 'a');
    const device = await FakeDevice.open(kit, pair.devicePath);
    const link = await openLink(pair.hostPath);
    await waitFor(() => link.deviceId === 'pump-7', 5000, 'the hello');
    await device.send(device.hello('pump-8'));
    await within(link.whenExited(), 5000, 'the link exit');
    expect(exitError(link).code).toBe('deviceMismatch');
    expect(link.errors.map((e) => e.code)).toEqual(['deviceMismatch']);
    // The mismatching hello is not delivered (the device's own hellos for pump-7 are).
    expect(link.messages.some((m) => m.type === 'hello' && m.deviceId === 'pump-8')).toBe(false);
  });

  it('stop() closes the port cleanly, so the path can be opened again', async () => {
    const pair = await ptyPair(kit, 'a');
    await FakeDevice.open(kit, pair.devicePath);
    const first = await openLink(pair.hostPath);
    await waitFor(() => first.deviceId !== undefined, 5000, 'the hello');
    expect(await first.stop()).toEqual({ type: 'shutdown' });
    expect(kit.rt.timers.ownedBy(first.pid)).toEqual([]);
    const second = await openLink(pair.hostPath);
    await waitFor(() => second.deviceId === 'pump-7', 5000, 'the hello on the second link');
  });

  it("fails with 'openFailed' for a missing path and for a file that is not a tty", async () => {
    const missing = await startSerialLink(kit.rt, { path: `${kit.dir}/nope`, onMessage() {}, onError() {} });
    expect(missing).toMatchObject({ ok: false, error: { code: 'openFailed' } });
    const file = `${kit.dir}/file`;
    writeFileSync(file, 'not a tty');
    const notTty = await startSerialLink(kit.rt, { path: file, onMessage() {}, onError() {} });
    expect(notTty).toMatchObject({ ok: false, error: { code: 'openFailed' } });
    if (!notTty.ok) expect(notTty.error.message).toContain(file);
    await expect(
      startSerialLink(kit.rt, { path: file, heartbeatMs: 0, onMessage() {}, onError() {} }),
    ).rejects.toThrow(RangeError);
  });
});

/**
 * The serial link picks the fw.chunk encoding from the device's hello (docs/protocol.md §7.1), on
 * a real socat pty pair: binary frames for a device that lists `fw.binary`, JSON for one that
 * does not, and each new hello decides afresh. The device end here reads raw frame payloads, so
 * the test sees exactly what went on the line.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDeframer } from '../../src/transports/framing.js';
import type { FwChunkMessage, Message } from '../../src/transports/protocol.js';
import { decodeMessage } from '../../src/transports/protocol.js';
import { decodeFwChunkPayload, encodeFwChunkFrame } from '../../src/transports/serial-fw-frame.js';
import type { SerialLink, SerialLinkError } from '../../src/transports/serial-link.js';
import { startSerialLink } from '../../src/transports/serial-link.js';
import type { Kit } from './serial-device.js';
import { createKit, FakeDevice, HAVE_SOCAT, PTY_NOTE, ptyPair, waitFor } from './serial-device.js';

let kit: Kit;
beforeEach(() => {
  kit = createKit();
});
afterEach(async () => {
  await kit.cleanup();
});

const chunk = (offset: number, data: Uint8Array): FwChunkMessage => ({
  v: 1,
  type: 'fw.chunk',
  transferId: 'fw-1',
  offset,
  data,
});

/** A device end that also keeps every raw payload the host wrote. */
async function device(path: string) {
  const d = await FakeDevice.open(kit, path);
  const payloads: Uint8Array[] = [];
  const deframer = createDeframer({ onFrame: (p) => payloads.push(p), onError: () => {} });
  d.port.on('data', (b: Buffer) => deframer.push(b));
  const isChunk = (p: Uint8Array): boolean => {
    if (p[0] === 0x01) return true;
    const r = decodeMessage(p);
    return r.ok && r.value.type === 'fw.chunk';
  };
  return { d, payloads, chunks: () => payloads.filter(isChunk) };
}

async function link(
  path: string,
): Promise<{ link: SerialLink; messages: Message[]; errors: SerialLinkError[] }> {
  const messages: Message[] = [];
  const errors: SerialLinkError[] = [];
  const r = await startSerialLink(kit.rt, {
    path,
    onMessage: (m) => messages.push(m),
    onError: (e) => errors.push(e),
  });
  if (!r.ok) throw new Error(r.error.message);
  kit.defer(() => r.value.stop());
  return { link: r.value, messages, errors };
}

describe.skipIf(!HAVE_SOCAT)(`SerialLink fw.chunk encoding ${PTY_NOTE}`, () => {
  it('binary frames while the hello lists fw.binary, JSON before it and after a hello without it', async () => {
    const pair = await ptyPair(kit, 'b');
    const dev = await device(pair.devicePath);
    const { link: l } = await link(pair.hostPath);
    await waitFor(() => l.deviceId === 'pump-7', 5000, 'identified');
    const data = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7) & 0xff);

    // The FakeDevice's hello lists no fw.binary: the JSON chunk of today.
    expect(l.stats().binaryChunks).toBe(false);
    expect(l.send(chunk(0, data))).toEqual({ ok: true, value: undefined });
    await waitFor(() => dev.d.received.some((m) => m.type === 'fw.chunk'), 5000, 'the JSON chunk');
    expect(dev.d.received.find((m) => m.type === 'fw.chunk')).toEqual(chunk(0, data));

    // A hello with fw.binary: the next chunk goes as the binary frame, byte for byte.
    await dev.d.send({ ...dev.d.hello(), capabilities: ['hello', 'ping', 'fw', 'fw.binary'] });
    await waitFor(() => l.stats().binaryChunks, 5000, 'the hello with fw.binary');
    const before = dev.payloads.length;
    expect(l.send(chunk(4096, data))).toEqual({ ok: true, value: undefined });
    await waitFor(() => dev.payloads.length > before, 5000, 'the binary chunk');
    const binary = dev.payloads[before]!;
    expect(binary[0]).toBe(0x01);
    expect(decodeFwChunkPayload(binary)).toEqual({ ok: true, value: chunk(4096, data) });
    // Other messages stay JSON.
    expect(l.send({ v: 1, type: 'fw.verify', transferId: 'fw-1' }).ok).toBe(true);
    await waitFor(() => dev.d.received.some((m) => m.type === 'fw.verify'), 5000, 'fw.verify as JSON');

    // The device comes back on firmware without it (a rollback): JSON again.
    await dev.d.send(dev.d.hello());
    await waitFor(() => !l.stats().binaryChunks, 5000, 'the hello without fw.binary');
    const jsonBefore = dev.d.received.filter((m) => m.type === 'fw.chunk').length;
    l.send(chunk(8192, data));
    await waitFor(
      () => dev.d.received.filter((m) => m.type === 'fw.chunk').length > jsonBefore,
      5000,
      'the JSON chunk again',
    );
    expect(dev.d.received.filter((m) => m.type === 'fw.chunk').at(-1)).toEqual(chunk(8192, data));
    expect(dev.chunks()).toHaveLength(3);
  });

  it('a bad chunk is refused at send, before anything is written', async () => {
    const pair = await ptyPair(kit, 'c');
    const dev = await device(pair.devicePath);
    const { link: l } = await link(pair.hostPath);
    await waitFor(() => l.deviceId === 'pump-7', 5000, 'identified');
    await dev.d.send({ ...dev.d.hello(), capabilities: ['fw', 'fw.binary'] });
    await waitFor(() => l.stats().binaryChunks, 5000, 'the hello with fw.binary');
    const written = l.stats().framesOut;
    expect(l.send(chunk(0, new Uint8Array(9000)))).toMatchObject({
      ok: false,
      error: { code: 'badMessage' },
    });
    expect(l.send({ ...chunk(0, Uint8Array.of(1)), transferId: 'no/slash' })).toMatchObject({
      ok: false,
      error: { code: 'badMessage', message: expect.stringMatching(/transferId/) },
    });
    expect(l.stats().writeQueue).toBe(0);
    expect(l.stats().framesOut).toBe(written);
  });

  it('a binary fw.chunk coming back from the device is named: wrongDirection, not line noise', async () => {
    const pair = await ptyPair(kit, 'd');
    const dev = await device(pair.devicePath);
    const { link: l, errors, messages } = await link(pair.hostPath);
    await waitFor(() => l.deviceId === 'pump-7', 5000, 'identified');
    await dev.d.write(encodeFwChunkFrame(chunk(0, Uint8Array.of(1, 2, 3))));
    await waitFor(() => errors.length > 0, 5000, 'the refusal');
    expect(errors).toEqual([
      expect.objectContaining({
        code: 'wrongDirection',
        message: expect.stringMatching(/'fw.chunk' is a host → device/),
      }),
    ]);
    expect(messages.some((m) => m.type === 'fw.chunk')).toBe(false);
  });
});

/**
 * The simulated serial device and the binary fw.chunk frame (docs/protocol.md §7.1), over a real
 * socat pty pair with a raw host end: by default it lists `fw.binary` and takes binary chunks;
 * with `binaryChunks: false` it is a device from before them, which takes JSON chunks only and
 * treats a binary frame as a bad message (counted, not answered).
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { socatAvailable } from '../../src/sim/pty.js';
import type { SerialSimDeviceOptions } from '../../src/sim/serial-device.js';
import type { FwChunkMessage } from '../../src/transports/protocol.js';
import { encodeFwChunkFrame } from '../../src/transports/serial-fw-frame.js';
import {
  acks,
  fwStep,
  hellos,
  registerCleanups,
  type SerialHost,
  serialSimOnPty,
  uniqueId,
  waitFor,
} from './helpers.js';

const cleanup = registerCleanups();
const hasSocat = socatAvailable();

const setup = (options: Partial<SerialSimDeviceOptions> = {}) =>
  serialSimOnPty(cleanup, { id: uniqueId('bin'), telemetryIntervalMs: 60_000, ...options });

function writeRaw(host: SerialHost, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) =>
    host.port.write(Buffer.from(bytes), (e) => (e ? reject(e) : resolve())),
  );
}

async function begin(host: SerialHost, transferId: string, image: Uint8Array): Promise<void> {
  const sha256 = createHash('sha256').update(image).digest('hex');
  const ack = await fwStep(
    host,
    { v: 1, type: 'fw.begin', transferId, version: '2.0.0', size: image.length, sha256, chunkBytes: 4096 },
    'begin',
  );
  expect(ack).toMatchObject({ offset: 0 });
  expect(ack.error).toBeUndefined();
}

const chunkOf = (transferId: string, image: Uint8Array, offset: number): FwChunkMessage => ({
  v: 1,
  type: 'fw.chunk',
  transferId,
  offset,
  data: image.subarray(offset, Math.min(image.length, offset + 4096)),
});

describe.skipIf(!hasSocat)(
  hasSocat
    ? 'serial sim device: binary chunk frames'
    : 'serial sim device: binary chunk frames (skipped: no socat)',
  () => {
    it('lists fw.binary and takes an image in binary frames, answering with JSON acks', async () => {
      // One ack per chunk here (the default answers chunks read together with one: writes test).
      const { host, d } = await setup({ coalesceChunkAcks: false });
      expect(hellos(host)[0]!.capabilities).toContain('fw.binary');
      const image = randomBytes(3 * 4096 + 100);
      await begin(host, 't-bin', image);
      for (let off = 0; off < image.length; off += 4096)
        await writeRaw(host, encodeFwChunkFrame(chunkOf('t-bin', image, off)));
      await waitFor(
        () => acks(host, 't-bin', 'chunk').some((a) => a.offset === image.length),
        10_000,
        'all chunks held',
      );
      expect(acks(host, 't-bin', 'chunk').map((a) => a.offset)).toEqual([4096, 8192, 12288, image.length]);
      expect(await fwStep(host, { v: 1, type: 'fw.verify', transferId: 't-bin' }, 'verify')).toMatchObject({
        offset: image.length,
      });
      expect(d.stats).toMatchObject({ binaryChunks: 4, badMessages: 0 });
      expect(d.device.firmware.slots.B).toBe('2.0.0');
    });

    it('binaryChunks: false — no fw.binary; a binary frame is a bad message, a JSON chunk is taken', async () => {
      const { host, d } = await setup({ binaryChunks: false });
      expect(hellos(host)[0]!.capabilities).not.toContain('fw.binary');
      const image = randomBytes(4096);
      await begin(host, 't-json', image);
      await writeRaw(host, encodeFwChunkFrame(chunkOf('t-json', image, 0)));
      await waitFor(() => d.stats.badMessages === 1, 10_000, 'the binary frame refused');
      expect(acks(host, 't-json', 'chunk')).toEqual([]);
      const ack = await fwStep(host, chunkOf('t-json', image, 0), 'chunk');
      expect(ack).toMatchObject({ offset: 4096 });
      expect(d.stats.binaryChunks).toBe(0);
    });
  },
);

/**
 * The simulated serial device writes like a UART driver's transmit buffer: the frames it makes in
 * one turn (the acks of several chunks read in one go) share one write to the port, instead of
 * one write each. Over a real socat pty pair with a raw host end.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { socatAvailable } from '../../src/sim/pty.js';
import { encodeFrame } from '../../src/transports/framing.js';
import { encodeMessage } from '../../src/transports/protocol.js';
import { encodeFwChunkFrame } from '../../src/transports/serial-fw-frame.js';
import {
  acks,
  fwStep,
  registerCleanups,
  type SerialHost,
  serialSimOnPty,
  uniqueId,
  waitFor,
} from './helpers.js';

const cleanup = registerCleanups();
const hasSocat = socatAvailable();

const CHUNK = 256;

/** fw.begin of an 8-chunk image of {@link CHUNK} bytes a chunk; resolves with the image once acked. */
async function begin(host: SerialHost, transferId: string): Promise<Buffer> {
  const image = randomBytes(8 * CHUNK);
  const sha256 = createHash('sha256').update(image).digest('hex');
  const msg = { v: 1, type: 'fw.begin', transferId, version: '2.0.0', size: image.length, sha256 } as const;
  await fwStep(host, { ...msg, chunkBytes: CHUNK }, 'begin');
  return image;
}

/** The image's 8 chunks as binary frames, in one write of the host's end. */
function eightChunksInOneWrite(host: SerialHost, transferId: string, image: Buffer): Promise<void> {
  const frames = Array.from({ length: 8 }, (_, i) =>
    encodeFwChunkFrame({
      v: 1,
      type: 'fw.chunk',
      transferId,
      offset: i * CHUNK,
      data: image.subarray(i * CHUNK, (i + 1) * CHUNK),
    }),
  );
  return new Promise<void>((resolve, reject) =>
    host.port.write(Buffer.concat(frames), (e) => (e ? reject(e) : resolve())),
  );
}

describe.skipIf(!hasSocat)(
  hasSocat ? 'serial sim device: writes' : 'serial sim device: writes (skipped: no socat)',
  () => {
    it('answers 8 chunks that arrive together with fewer than 8 writes, every ack intact', async () => {
      const { host, d } = await serialSimOnPty(cleanup, {
        id: uniqueId('wr'),
        telemetryIntervalMs: 60_000,
        coalesceChunkAcks: false,
      });

      const transferId = 't-writes';
      const image = await begin(host, transferId);
      const before = { ...d.stats };
      // All 8 chunks in one write of the host: the device reads them in one go (or very few).
      await eightChunksInOneWrite(host, transferId, image);
      await waitFor(() => acks(host, transferId, 'chunk').length === 8, 10_000, '8 chunk acks');
      expect(acks(host, transferId, 'chunk').map((a) => a.offset)).toEqual(
        Array.from({ length: 8 }, (_, i) => (i + 1) * CHUNK),
      );
      expect(d.stats.framesSent - before.framesSent).toBe(8);
      expect(d.stats.writes - before.writes).toBeLessThan(8);
      expect(d.stats.writes - before.writes).toBeGreaterThanOrEqual(1);

      // A frame on its own still goes at once, in a write of its own.
      const w = d.stats.writes;
      const reply = encodeFrame(encodeMessage({ v: 1, type: 'cmd', cmdId: 'c-ping', action: 'ping' }));
      await new Promise<void>((resolve, reject) =>
        host.port.write(Buffer.from(reply), (e) => (e ? reject(e) : resolve())),
      );
      await waitFor(
        () => host.messages.some((m) => m.type === 'reply' && m.cmdId === 'c-ping'),
        5000,
        'pong',
      );
      expect(d.stats.writes).toBe(w + 1);
    }, 20_000);

    it('by default answers chunks read together with fewer acks, the last holding them all (protocol §5.1)', async () => {
      const { host } = await serialSimOnPty(cleanup, { id: uniqueId('co'), telemetryIntervalMs: 60_000 });
      const transferId = 't-coalesce';
      const image = await begin(host, transferId);
      await eightChunksInOneWrite(host, transferId, image);
      await waitFor(
        () => acks(host, transferId, 'chunk').some((a) => a.offset === image.length),
        10_000,
        'the ack of the whole image',
      );
      const offsets = acks(host, transferId, 'chunk').map((a) => a.offset);
      expect(offsets.length).toBeLessThan(8);
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
      // A chunk that is refused is still answered at once, on its own, after the held ack.
      const past = encodeFwChunkFrame({
        v: 1,
        type: 'fw.chunk',
        transferId,
        offset: image.length,
        data: image.subarray(0, 1),
      });
      await new Promise<void>((resolve, reject) =>
        host.port.write(Buffer.from(past), (e) => (e ? reject(e) : resolve())),
      );
      await waitFor(
        () => acks(host, transferId, 'chunk').some((a) => a.error !== undefined),
        5000,
        'the refusal',
      );
      expect(acks(host, transferId, 'chunk').at(-1)).toMatchObject({
        offset: image.length,
        error: { code: 'badOffset' },
      });
    }, 20_000);
  },
);

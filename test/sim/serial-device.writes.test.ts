/**
 * The simulated serial device writes like a UART driver's transmit buffer: the frames it makes in
 * one turn (the acks of several chunks read in one go) share one write to the port, instead of
 * one write each. Over a real socat pty pair with a raw host end.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openPtyPair, socatAvailable } from '../../src/sim/pty.js';
import { startSerialSimDevice } from '../../src/sim/serial-device.js';
import { encodeFrame } from '../../src/transports/framing.js';
import { encodeMessage } from '../../src/transports/protocol.js';
import { encodeFwChunkFrame } from '../../src/transports/serial-fw-frame.js';
import { acks, fwStep, hellos, registerCleanups, SerialHost, uniqueId, waitFor } from './helpers.js';

const cleanup = registerCleanups();
const hasSocat = socatAvailable();

describe.skipIf(!hasSocat)(
  hasSocat ? 'serial sim device: writes' : 'serial sim device: writes (skipped: no socat)',
  () => {
    it('answers 8 chunks that arrive together with fewer than 8 writes, every ack intact', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'fv-sim-writes-'));
      cleanup(() => rmSync(dir, { recursive: true, force: true }));
      const p = await openPtyPair(join(dir, 'host'), join(dir, 'device'));
      cleanup(() => p.close());
      const host = await SerialHost.open(p.hostPath, cleanup);
      const d = await startSerialSimDevice(p.devicePath, {
        id: uniqueId('wr'),
        telemetryIntervalMs: 60_000,
        coalesceChunkAcks: false,
      });
      cleanup(() => d.stop());
      await waitFor(() => hellos(host).length >= 1, 10_000, 'the hello');

      const chunk = 256;
      const image = randomBytes(8 * chunk);
      const sha256 = createHash('sha256').update(image).digest('hex');
      const transferId = 't-writes';
      await fwStep(
        host,
        {
          v: 1,
          type: 'fw.begin',
          transferId,
          version: '2.0.0',
          size: image.length,
          sha256,
          chunkBytes: chunk,
        },
        'begin',
      );
      const before = { ...d.stats };
      // All 8 chunks in one write of the host: the device reads them in one go (or very few).
      const frames = Array.from({ length: 8 }, (_, i) =>
        encodeFwChunkFrame({
          v: 1,
          type: 'fw.chunk',
          transferId,
          offset: i * chunk,
          data: image.subarray(i * chunk, (i + 1) * chunk),
        }),
      );
      await new Promise<void>((resolve, reject) =>
        host.port.write(Buffer.concat(frames), (e) => (e ? reject(e) : resolve())),
      );
      await waitFor(() => acks(host, transferId, 'chunk').length === 8, 10_000, '8 chunk acks');
      expect(acks(host, transferId, 'chunk').map((a) => a.offset)).toEqual(
        Array.from({ length: 8 }, (_, i) => (i + 1) * chunk),
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
      const dir = mkdtempSync(join(tmpdir(), 'fv-sim-coalesce-'));
      cleanup(() => rmSync(dir, { recursive: true, force: true }));
      const p = await openPtyPair(join(dir, 'host'), join(dir, 'device'));
      cleanup(() => p.close());
      const host = await SerialHost.open(p.hostPath, cleanup);
      const d = await startSerialSimDevice(p.devicePath, { id: uniqueId('co'), telemetryIntervalMs: 60_000 });
      cleanup(() => d.stop());
      await waitFor(() => hellos(host).length >= 1, 10_000, 'the hello');
      const chunk = 256;
      const image = randomBytes(8 * chunk);
      const sha256 = createHash('sha256').update(image).digest('hex');
      const transferId = 't-coalesce';
      const begin = {
        v: 1,
        type: 'fw.begin',
        transferId,
        version: '2.0.0',
        size: image.length,
        sha256,
      } as const;
      await fwStep(host, { ...begin, chunkBytes: chunk }, 'begin');
      const frames = Array.from({ length: 8 }, (_, i) =>
        encodeFwChunkFrame({
          v: 1,
          type: 'fw.chunk',
          transferId,
          offset: i * chunk,
          data: image.subarray(i * chunk, (i + 1) * chunk),
        }),
      );
      await new Promise<void>((resolve, reject) =>
        host.port.write(Buffer.concat(frames), (e) => (e ? reject(e) : resolve())),
      );
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

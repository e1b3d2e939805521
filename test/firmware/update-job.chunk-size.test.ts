/**
 * The chunk size a device asks for (`fw.chunk.N` in its hello, docs/protocol.md §5.5), over a
 * real socat pty pair: the host's serial link, the fleet on a real SQLite file and a simulated
 * device. A device that lists `fw.chunk.8192` gets `fw.begin` with `chunkBytes: 8192` and 8 KiB
 * chunks, binary or JSON; a device that lists none (every device before it), or a malformed one,
 * gets the 4096 of before. Each ends with the new image confirmed.
 */

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import { createFirmwareUpdates } from '../../src/firmware/firmware-updates.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openPtyPair, socatAvailable } from '../../src/sim/pty.js';
import { startSerialSimDevice } from '../../src/sim/serial-device.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { fwChunkCapability } from '../../src/transports/fw-chunk-size.js';
import { createLinks } from '../../src/transports/links.js';
import { waitFor } from '../transports/helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Updates one simulated serial device listing `capabilities`; what the job sent, and how it ended. */
async function update(
  id: string,
  options: { readonly capabilities: readonly string[]; readonly binaryChunks: boolean },
) {
  const dir = mkdtempSync(join(tmpdir(), 'fv-fw-chunk-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const pty = await openPtyPair(join(dir, `${id}-host`), join(dir, `${id}-device`));
  cleanups.push(() => pty.close());
  const sim = await startSerialSimDevice(pty.devicePath, {
    id,
    telemetryIntervalMs: 1000,
    reopenPollMs: 50,
    binaryChunks: options.binaryChunks,
    extraCapabilities: options.capabilities,
  });
  cleanups.push(() => sim.stop());
  const store = await openSqliteStore({ file: join(dir, 'fleet.sqlite'), telemetryFlushMs: 20 });
  const runtime = createRuntime({});
  const links = createLinks({
    runtime,
    store,
    serial: { ports: [pty.hostPath], pollMs: 100, link: { heartbeatMs: 500 } },
  });
  const fleet = createFleet({
    runtime,
    store,
    kinds: [genericDevice],
    carrier: links.carrier,
    reconcileIntervalMs: 0,
  });
  await fleet.start();
  const begun: number[] = [];
  const chunkSizes = new Set<number>();
  const updates = createFirmwareUpdates({
    runtime,
    hub: () => {
      const hub = links.hub;
      if (!hub) return undefined;
      return {
        device: (deviceId) => hub.device(deviceId),
        send: (deviceId, m) => {
          if (m.type === 'fw.begin') begun.push(m.chunkBytes);
          if (m.type === 'fw.chunk') chunkSizes.add(m.data.length);
          return hub.send(deviceId, m);
        },
      };
    },
    defaults: { ackTimeoutMs: 1000, soakMs: 300, rebootTimeoutMs: 10_000 },
  });
  await links.attach(fleet, {
    adopt: 'auto',
    onFirmwareAck: (deviceId, ack) => updates.ack(deviceId, ack),
    onDeviceHello: (deviceId, hello) => updates.hello(deviceId, hello),
  });
  cleanups.push(async () => {
    await links.stop();
    await fleet.stop();
    await store.close();
    runtime.dispose();
  });
  await waitFor(() => links.hub?.device(id)?.online === true, 8000, `${id} online`);
  const image = randomBytes(100 * 1024 + 123); // a short last chunk
  const started = updates.start(id, { image, version: '1.7.0' });
  if (!started.ok) throw new Error(started.error.message);
  const final = await started.value.done;
  return { final, image, sim, begun, chunkSizes };
}

const NOTE = socatAvailable() ? '' : ' (skipped: socat is not installed; apt-get install -y socat)';

describe.skipIf(!socatAvailable())(`the chunk size a serial device asks for${NOTE}`, () => {
  it('fw.chunk.8192 with fw.binary: 8 KiB binary chunks, confirmed', async () => {
    const r = await update('fw-c1', { capabilities: [fwChunkCapability(8192)], binaryChunks: true });
    expect(r.final).toMatchObject({ step: 'succeeded', offset: r.image.length, error: undefined });
    expect(r.sim.device.firmware).toMatchObject({ version: '1.7.0', confirmed: true });
    expect(new Set(r.begun)).toEqual(new Set([8192]));
    expect(Math.max(...r.chunkSizes)).toBe(8192);
    expect(r.sim.stats.binaryChunks).toBe(Math.ceil(r.image.length / 8192));
    expect(r.sim.stats.badMessages).toBe(0);
  }, 30_000);

  it('fw.chunk.8192 without fw.binary: 8 KiB JSON chunks, confirmed', async () => {
    const r = await update('fw-c2', { capabilities: [fwChunkCapability(8192)], binaryChunks: false });
    expect(r.final).toMatchObject({ step: 'succeeded', offset: r.image.length, error: undefined });
    expect(r.sim.device.firmware).toMatchObject({ version: '1.7.0', confirmed: true });
    expect(new Set(r.begun)).toEqual(new Set([8192]));
    expect(Math.max(...r.chunkSizes)).toBe(8192);
    expect(r.sim.stats.binaryChunks).toBe(0);
    expect(r.sim.stats.badMessages).toBe(0);
  }, 30_000);

  it('a device that asks for nothing (as every device before it) gets 4 KiB chunks, confirmed', async () => {
    const r = await update('fw-c3', { capabilities: [], binaryChunks: true });
    expect(r.final).toMatchObject({ step: 'succeeded', offset: r.image.length, error: undefined });
    expect(r.sim.device.firmware).toMatchObject({ version: '1.7.0', confirmed: true });
    expect(new Set(r.begun)).toEqual(new Set([4096]));
    expect(Math.max(...r.chunkSizes)).toBe(4096);
  }, 30_000);

  it('a malformed fw.chunk capability is ignored: 4 KiB chunks, confirmed', async () => {
    const r = await update('fw-c4', { capabilities: ['fw.chunk.65536', 'fw.chunk.0'], binaryChunks: true });
    expect(r.final).toMatchObject({ step: 'succeeded', offset: r.image.length, error: undefined });
    expect(new Set(r.begun)).toEqual(new Set([4096]));
    expect(Math.max(...r.chunkSizes)).toBe(4096);
  }, 30_000);
});

/**
 * A firmware update over serial with the binary chunk frame and without it (docs/protocol.md
 * §7.1): a simulated device on the device end of a real socat pty pair, the host's serial link on
 * the other, the fleet on a real SQLite file. The job sends the same `fw.chunk` messages either
 * way; the link frames them binary for a device whose hello lists `fw.binary`, as JSON for one
 * that does not. Both end with the new image confirmed.
 */

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import type { FirmwareUpdates } from '../../src/firmware/firmware-updates.js';
import { createFirmwareUpdates } from '../../src/firmware/firmware-updates.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openPtyPair, socatAvailable } from '../../src/sim/pty.js';
import type { SerialSimDevice } from '../../src/sim/serial-device.js';
import { startSerialSimDevice } from '../../src/sim/serial-device.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { Links } from '../../src/transports/links.js';
import { createLinks } from '../../src/transports/links.js';
import { waitFor } from '../transports/helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Rig {
  readonly links: Links;
  readonly updates: FirmwareUpdates;
  readonly sim: SerialSimDevice;
  /** fw.chunk messages the job handed to the link. */
  readonly chunksSent: { count: number };
}

async function rig(id: string, binaryChunks: boolean): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'fv-fw-binary-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const pty = await openPtyPair(join(dir, `${id}-host`), join(dir, `${id}-device`));
  cleanups.push(() => pty.close());
  const sim = await startSerialSimDevice(pty.devicePath, {
    id,
    telemetryIntervalMs: 1000,
    reopenPollMs: 50,
    binaryChunks,
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
  const chunksSent = { count: 0 };
  const updates = createFirmwareUpdates({
    runtime,
    hub: () => {
      const hub = links.hub;
      if (!hub) return undefined;
      return {
        device: (deviceId) => hub.device(deviceId),
        send: (deviceId, m) => {
          if (m.type === 'fw.chunk') chunksSent.count++;
          return hub.send(deviceId, m);
        },
      };
    },
    defaults: { ackTimeoutMs: 1000, soakMs: 500, rebootTimeoutMs: 10_000, window: 8 },
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
  return { links, updates, sim, chunksSent };
}

const NOTE = socatAvailable() ? '' : ' (skipped: socat is not installed; apt-get install -y socat)';

describe.skipIf(!socatAvailable())(
  `firmware update over serial, binary chunk frame on and off${NOTE}`,
  () => {
    it('fw.binary announced: every chunk crosses as a binary frame, and the image is confirmed', async () => {
      const r = await rig('fw-b1', true);
      expect(r.links.hub?.device('fw-b1')?.hello?.capabilities).toContain('fw.binary');
      expect(r.links.serial?.linkFor('fw-b1')?.stats().binaryChunks).toBe(true);
      const image = randomBytes(100 * 1024 + 123); // a short last chunk
      const started = r.updates.start('fw-b1', { image, version: '1.6.0' });
      if (!started.ok) throw new Error(started.error.message);
      const final = await started.value.done;
      expect(final).toMatchObject({ step: 'succeeded', offset: image.length, error: undefined });
      expect(r.sim.device.firmware).toMatchObject({ version: '1.6.0', slot: 'B', confirmed: true });
      expect(r.sim.stats.binaryChunks).toBe(r.chunksSent.count);
      expect(r.sim.stats.binaryChunks).toBeGreaterThanOrEqual(Math.ceil(image.length / 4096));
      expect(r.sim.stats.badMessages).toBe(0);
      expect(r.sim.stats.frameErrors).toBe(0);
    }, 30_000);

    it('a device without fw.binary gets the JSON chunks of before, and the image is confirmed', async () => {
      const r = await rig('fw-b2', false);
      expect(r.links.hub?.device('fw-b2')?.hello?.capabilities).not.toContain('fw.binary');
      expect(r.links.serial?.linkFor('fw-b2')?.stats().binaryChunks).toBe(false);
      const image = randomBytes(100 * 1024 + 123);
      const started = r.updates.start('fw-b2', { image, version: '1.6.0' });
      if (!started.ok) throw new Error(started.error.message);
      const final = await started.value.done;
      expect(final).toMatchObject({ step: 'succeeded', offset: image.length, error: undefined });
      expect(r.sim.device.firmware).toMatchObject({ version: '1.6.0', slot: 'B', confirmed: true });
      expect(r.chunksSent.count).toBeGreaterThanOrEqual(Math.ceil(image.length / 4096));
      // A binary frame would have been a bad message to this device: none came.
      expect(r.sim.stats.binaryChunks).toBe(0);
      expect(r.sim.stats.badMessages).toBe(0);
    }, 30_000);
  },
);

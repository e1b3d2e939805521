/**
 * The same firmware update job over serial: a simulated device on the device end of a real socat
 * pty pair, the host's serial link on the other (fw.* as frames), the fleet on a real SQLite
 * file. What an operator checks: the device runs the new version, confirmed; pulling the adapter
 * mid-transfer and plugging it back resumes from the device's offset, never from zero.
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
import type { PtyPair } from '../../src/sim/pty.js';
import { openPtyPair, socatAvailable } from '../../src/sim/pty.js';
import type { SerialSimDevice } from '../../src/sim/serial-device.js';
import { startSerialSimDevice } from '../../src/sim/serial-device.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { Links } from '../../src/transports/links.js';
import { createLinks } from '../../src/transports/links.js';
import type { Message } from '../../src/transports/protocol.js';
import { waitFor } from '../transports/helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function host(
  ports: string[],
  dir: string,
  watch: (m: Message) => void,
): Promise<{ links: Links; updates: FirmwareUpdates }> {
  const store = await openSqliteStore({ file: join(dir, 'fleet.sqlite'), telemetryFlushMs: 20 });
  const runtime = createRuntime({});
  const links = createLinks({
    runtime,
    store,
    serial: {
      ports,
      pollMs: 100,
      reconnect: { initialMs: 50, maxMs: 400, jitter: 0.5, stableMs: 2000 },
      link: { heartbeatMs: 500 },
    },
  });
  const fleet = createFleet({
    runtime,
    store,
    kinds: [genericDevice],
    carrier: links.carrier,
    reconcileIntervalMs: 0,
  });
  await fleet.start();
  const updates = createFirmwareUpdates({
    runtime,
    hub: () => {
      const hub = links.hub;
      if (!hub) return undefined;
      return {
        device: (id) => hub.device(id),
        send: (id, m) => {
          watch(m);
          return hub.send(id, m);
        },
      };
    },
    defaults: { ackTimeoutMs: 1000, soakMs: 1000, rebootTimeoutMs: 10_000, window: 8 },
  });
  await links.attach(fleet, {
    adopt: 'auto',
    onFirmwareAck: (id, ack) => updates.ack(id, ack),
    onDeviceHello: (id, hello) => updates.hello(id, hello),
  });
  cleanups.push(async () => {
    await links.stop();
    await fleet.stop();
    await store.close();
    runtime.dispose();
  });
  return { links, updates };
}

async function serialDevice(id: string, dir: string): Promise<{ pty: PtyPair; sim: SerialSimDevice }> {
  const pty = await openPtyPair(join(dir, `${id}-host`), join(dir, `${id}-device`));
  cleanups.push(() => pty.close());
  const sim = await startSerialSimDevice(pty.devicePath, { id, telemetryIntervalMs: 1000, reopenPollMs: 50 });
  cleanups.push(() => sim.stop());
  return { pty, sim };
}

function tempFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fv-fw-serial-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const NOTE = socatAvailable() ? '' : ' (skipped: socat is not installed; apt-get install -y socat)';

describe.skipIf(!socatAvailable())(`one device firmware update over serial${NOTE}`, () => {
  it('transfers as frames, reboots into the new slot, runs on trial and is confirmed', async () => {
    const dir = tempFolder();
    const { pty, sim } = await serialDevice('fw-s1', dir);
    const h = await host([pty.hostPath], dir, () => {});
    await waitFor(() => h.links.hub?.device('fw-s1')?.online === true, 8000, 'online');
    const image = randomBytes(40 * 1024);
    const started = h.updates.start('fw-s1', { image, version: '1.4.0' });
    if (!started.ok) throw new Error(started.error.message);
    const final = await started.value.done;
    expect(final).toMatchObject({ step: 'succeeded', offset: image.length, error: undefined });
    expect(sim.device.firmware).toMatchObject({ version: '1.4.0', slot: 'B', confirmed: true });
  });

  it('the adapter pulled mid-transfer and plugged back: the job resumes from the device offset', async () => {
    const dir = tempFolder();
    let cutAt: number | undefined;
    let lowestAfterCut = Number.POSITIVE_INFINITY;
    const { pty, sim } = await serialDevice('fw-s2', dir);
    const h = await host([pty.hostPath], dir, (m) => {
      if (m.type === 'fw.chunk' && cutAt !== undefined) lowestAfterCut = Math.min(lowestAfterCut, m.offset);
    });
    await waitFor(() => h.links.hub?.device('fw-s2')?.online === true, 8000, 'online');
    const image = randomBytes(160 * 1024);
    const started = h.updates.start('fw-s2', { image, version: '1.5.0' });
    if (!started.ok) throw new Error(started.error.message);
    await waitFor(() => (h.updates.get('fw-s2')?.offset ?? 0) >= 32 * 1024, 20_000, '32 KiB across');
    cutAt = h.updates.get('fw-s2')!.offset;
    await pty.unplug();
    await new Promise((r) => setTimeout(r, 500));
    await pty.replug();
    const final = await started.value.done;
    expect(final.step).toBe('succeeded');
    expect(sim.device.firmware).toMatchObject({ version: '1.5.0', confirmed: true });
    expect(lowestAfterCut).toBeGreaterThanOrEqual(cutAt);
    expect(lowestAfterCut).toBeLessThan(image.length); // chunks did go out after the cut
  }, 60_000);
});

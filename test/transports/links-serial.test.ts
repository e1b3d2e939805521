/**
 * The links layer end to end over serial: a simulated device (src/sim) on the device end of a real
 * socat pty pair, the host's serial manager on the other end, the fleet on a real SQLite file.
 * Unplugging is killing socat (both ends vanish, as when a USB adapter is pulled); replugging makes
 * a new pair on the same paths (new /dev/pts/N, as a re-enumerated adapter).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Fleet } from '../../src/devices/fleet.js';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { PtyPair } from '../../src/sim/pty.js';
import { openPtyPair, socatAvailable } from '../../src/sim/pty.js';
import type { SerialSimDevice } from '../../src/sim/serial-device.js';
import { startSerialSimDevice } from '../../src/sim/serial-device.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { Links } from '../../src/transports/links.js';
import { createLinks } from '../../src/transports/links.js';
import { waitFor } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Rig {
  dir: string;
  store: SqliteStore;
  fleet: Fleet;
  links: Links;
}

async function rig(ports: string[], dir: string): Promise<Rig> {
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
  await links.attach(fleet, { adopt: 'auto' });
  cleanups.push(async () => {
    await links.stop();
    await fleet.stop();
    await store.close();
    runtime.dispose();
  });
  return { dir, store, fleet, links };
}

async function serialDevice(id: string, dir: string): Promise<{ pty: PtyPair; sim: SerialSimDevice }> {
  const pty = await openPtyPair(join(dir, `${id}-host`), join(dir, `${id}-device`));
  cleanups.push(() => pty.close());
  const sim = await startSerialSimDevice(pty.devicePath, { id, telemetryIntervalMs: 100, reopenPollMs: 50 });
  cleanups.push(() => sim.stop());
  return { pty, sim };
}

function tempFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fv-links-serial-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const state = (r: Rig, id: string) => r.fleet.device(id)?.state;
const NOTE = socatAvailable() ? '' : ' (skipped: socat is not installed; apt-get install -y socat)';

describe.skipIf(!socatAvailable())(`links over serial${NOTE}`, () => {
  it('a device on a serial port is identified by its hello, connects, reports, takes commands', async () => {
    const dir = tempFolder();
    const { pty, sim } = await serialDevice('pump-7', dir);
    const r = await rig([pty.hostPath], dir);
    await waitFor(() => state(r, 'pump-7') === 'connected', 5000, 'connected');
    expect(r.fleet.device('pump-7')!.link).toMatchObject({ up: true, via: `serial:${pty.hostPath}` });
    const c = await r.fleet.act('pump-7', 'identify', { seconds: 1 }, 'ana');
    const commandId = c.ok ? c.value.commandId : '';
    await waitFor(() => sim.device.executed.get(commandId) === 1, 5000, 'command executed');
    await waitFor(() => r.fleet.commands.get(commandId) === undefined, 5000, 'reply');
    await waitFor(() => (r.links.hub!.stats('pump-7')?.received ?? 0) > 5, 5000, 'telemetry flowing');
  });

  it('unplug → disconnected; replug → connected again, with no operator action', async () => {
    const dir = tempFolder();
    const { pty } = await serialDevice('pump-8', dir);
    const r = await rig([pty.hostPath], dir);
    await waitFor(() => state(r, 'pump-8') === 'connected', 5000, 'connected');
    await pty.unplug();
    await waitFor(() => state(r, 'pump-8') === 'disconnected', 5000, 'disconnected after unplug');
    expect(r.fleet.device('pump-8')!.link.reason).toMatch(/vanished/);
    await pty.replug();
    await waitFor(() => state(r, 'pump-8') === 'connected', 8000, 'connected after replug');
  });

  it('garbage on the line is counted and named; the frames around it still arrive', async () => {
    const dir = tempFolder();
    const { pty, sim } = await serialDevice('pump-9', dir);
    const r = await rig([pty.hostPath], dir);
    await waitFor(() => state(r, 'pump-9') === 'connected', 5000, 'connected');
    sim.device.setFaults({ garbage: true });
    const before = r.links.hub!.stats('pump-9')!.received;
    await waitFor(() => r.links.hub!.stats('pump-9')!.received > before + 5, 5000, 'frames still delivered');
    const errors = r.links.hub!.stats('pump-9')!.errors;
    expect(Object.values(errors).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    for (const code of Object.keys(errors))
      expect(['crcMismatch', 'badCobs', 'empty', 'tooLong']).toContain(code);
    expect(state(r, 'pump-9')).toBe('connected');
  });
});

/**
 * Integration tests of the serial manager on real pty pairs (socat): ports appearing late,
 * unplug and replug, failing opens with backoff, and devices moving between ports. Skipped only
 * without socat.
 */
import { unlinkSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceId, Message } from '../../src/transports/protocol.js';
import type { SerialLink, SerialLinkError } from '../../src/transports/serial-link.js';
import type { PortInfo, SerialManager, SerialManagerOptions } from '../../src/transports/serial-manager.js';
import { isUsbPort, startSerialManager } from '../../src/transports/serial-manager.js';
import type { Kit } from './serial-device.js';
import { createKit, FakeDevice, HAVE_SOCAT, PTY_NOTE, ptyPair, telemetry, waitFor } from './serial-device.js';

let kit: Kit;
beforeEach(() => {
  kit = createKit();
});
afterEach(async () => {
  await kit.cleanup();
});

interface Seen {
  readonly messages: { message: Message; link: SerialLink }[];
  readonly errors: SerialLinkError[];
  readonly ups: SerialLink[];
  readonly downs: { path: string; deviceId: DeviceId | undefined; reason: string }[];
}

const FAST = { initialMs: 50, maxMs: 400, jitter: 0.5, stableMs: 5000 };

function manage(
  ports: SerialManagerOptions['ports'],
  extra: Partial<SerialManagerOptions> = {},
): SerialManager & Seen {
  const seen: Seen = { messages: [], errors: [], ups: [], downs: [] };
  const manager = startSerialManager(kit.rt, {
    ports,
    pollMs: 50,
    reconnect: FAST,
    link: { heartbeatMs: 300, writeTimeoutMs: 1000 },
    onMessage: (message, link) => seen.messages.push({ message, link }),
    onError: (error) => seen.errors.push(error),
    onPortUp: (link) => seen.ups.push(link),
    onPortDown: (path, deviceId, reason) => seen.downs.push({ path, deviceId, reason }),
    ...extra,
  });
  kit.defer(() => manager.stop());
  return Object.assign(manager, seen);
}

describe.skipIf(!HAVE_SOCAT)(`SerialManager ${PTY_NOTE}`, () => {
  it('opens a configured port that is absent at start as soon as it appears', async () => {
    const host = `${kit.dir}/a-host`;
    const manager = manage([host]);
    expect(manager.ports()).toEqual([{ path: host, state: 'absent', attempts: 0 }]);
    await new Promise((resolve) => setTimeout(resolve, 150)); // a few polls with nothing there
    expect(manager.ports()[0]?.state).toBe('absent');
    expect(manager.linkFor('pump-7')).toBeUndefined();

    const pair = await ptyPair(kit, 'a');
    const device = await FakeDevice.open(kit, pair.devicePath);
    await waitFor(() => manager.linkFor('pump-7') !== undefined, 5000, 'the device to be identified');
    expect(manager.ports()).toEqual([{ path: host, state: 'open', deviceId: 'pump-7', attempts: 0 }]);
    expect(manager.ups).toHaveLength(1);
    expect(manager.linkAt(host)).toBe(manager.linkFor('pump-7'));

    await device.send(telemetry(1));
    await waitFor(() => manager.messages.some((m) => m.message.type === 'telemetry'), 5000, 'the telemetry');
    expect(manager.messages.find((m) => m.message.type === 'telemetry')?.link.deviceId).toBe('pump-7');
  });

  it('reports an unplug with onPortDown and reopens the port on replug with no operator action', async () => {
    const pair = await ptyPair(kit, 'a');
    await FakeDevice.open(kit, pair.devicePath);
    const manager = manage([pair.hostPath]);
    await waitFor(() => manager.linkFor('pump-7') !== undefined, 5000, 'the first identification');
    const first = manager.linkFor('pump-7')!;

    await pair.unplug();
    await waitFor(() => manager.downs.length === 1, 5000, 'onPortDown');
    expect(manager.downs[0]).toMatchObject({ path: pair.hostPath, deviceId: 'pump-7' });
    expect(manager.downs[0]?.reason).toMatch(/vanished/);
    expect(first.alive).toBe(false);
    await waitFor(() => manager.ports()[0]?.state === 'absent', 5000, 'the port to be absent');
    expect(manager.linkFor('pump-7')).toBeUndefined();
    expect(manager.ports()[0]).toMatchObject({ deviceId: 'pump-7', attempts: 0 }); // the device last seen there

    await pair.replug();
    await FakeDevice.open(kit, pair.devicePath); // the device end is a new pty too
    await waitFor(() => manager.linkFor('pump-7') !== undefined, 5000, 'the identification after replug');
    const second = manager.linkFor('pump-7')!;
    expect(second).not.toBe(first);
    expect(second.path).toBe(pair.hostPath);
    expect(manager.ports()[0]).toMatchObject({ state: 'open', deviceId: 'pump-7' });
    expect(manager.ups).toHaveLength(2);
  });

  it('retries a port that fails to open with growing, capped delays; a vanished path goes absent', async () => {
    const path = `${kit.dir}/not-a-tty`;
    writeFileSync(path, 'a regular file');
    const manager = manage([path], { random: () => 0 });
    const delays = () =>
      kit.log
        .filter((e) => e.message === 'serial port failed; retrying' && e.fields?.path === path)
        .map((e) => e.fields?.retryInMs);
    await waitFor(() => delays().length >= 6, 5000, 'six retries');
    expect(delays().slice(0, 6)).toEqual([50, 100, 200, 400, 400, 400]);
    const state = manager.ports()[0]!;
    expect(['backoff', 'opening']).toContain(state.state);
    expect(state.attempts).toBeGreaterThanOrEqual(6);
    expect(state.lastError).toContain('cannot open serial port');
    const retry = kit.rt.timers.ownedBy(manager.pid).find((t) => t.label === `serial.retry:${path}`);
    if (retry) expect(retry.delayMs).toBeLessThanOrEqual(FAST.maxMs);

    unlinkSync(path);
    await waitFor(() => manager.ports()[0]?.state === 'absent', 5000, 'the port to be absent');
    expect(manager.ports()[0]?.attempts).toBe(0);
    expect(manager.ups).toEqual([]);
  });

  it('linkFor follows a device that moves to another port; stop() stops every link', async () => {
    const path1 = `${kit.dir}/one-host`;
    const path2 = `${kit.dir}/two-host`;
    const manager = manage([path1, path2]);
    const one = await ptyPair(kit, 'one');
    await FakeDevice.open(kit, one.devicePath, { deviceId: 'meter-a' });
    await waitFor(() => manager.linkFor('meter-a')?.path === path1, 5000, 'meter-a on port one');

    await one.unplug();
    await waitFor(() => manager.linkFor('meter-a') === undefined, 5000, 'meter-a to be gone');
    const two = await ptyPair(kit, 'two');
    await FakeDevice.open(kit, two.devicePath, { deviceId: 'meter-a' });
    await waitFor(() => manager.linkFor('meter-a')?.path === path2, 5000, 'meter-a on port two');
    expect(manager.ports()).toEqual([
      {
        path: path1,
        state: 'absent',
        deviceId: 'meter-a',
        attempts: 0,
        lastError: expect.stringMatching(/vanished/),
      },
      { path: path2, state: 'open', deviceId: 'meter-a', attempts: 0 },
    ]);

    // A second device on port one again: each id finds its own port.
    await one.replug();
    await FakeDevice.open(kit, one.devicePath, { deviceId: 'meter-b' });
    await waitFor(() => manager.linkFor('meter-b')?.path === path1, 5000, 'meter-b on port one');
    expect(manager.linkFor('meter-a')?.path).toBe(path2);

    const links = [manager.linkFor('meter-a')!, manager.linkFor('meter-b')!];
    expect(await manager.stop()).toEqual({ type: 'shutdown' });
    for (const link of links) expect(link.exitReason).toEqual({ type: 'shutdown' });
    expect(manager.downs).toHaveLength(1); // the unplug; a stop is not a port going down
    expect(manager.ports().map((p) => p.state)).toEqual(['absent', 'absent']);
    expect(kit.rt.timers.ownedBy(manager.pid)).toEqual([]);
  });

  it("in 'auto' mode opens only the listed ports the filter accepts and survives a failing list", async () => {
    const pair = await ptyPair(kit, 'usb');
    await FakeDevice.open(kit, pair.devicePath);
    const info = (path: string, vendorId?: string): PortInfo => ({
      path,
      manufacturer: undefined,
      serialNumber: undefined,
      pnpId: undefined,
      locationId: undefined,
      productId: undefined,
      vendorId,
    });
    let failList = true;
    const manager = manage('auto', {
      listPorts: async () => {
        if (failList) {
          failList = false;
          throw new Error('udevadm not found');
        }
        return [info(pair.hostPath, '1a86'), info('/dev/ttyS0')];
      },
    });
    await waitFor(() => manager.linkFor('pump-7') !== undefined, 5000, 'the listed USB port');
    expect(manager.ports()).toEqual([
      { path: pair.hostPath, state: 'open', deviceId: 'pump-7', attempts: 0 },
    ]);
    expect(kit.log.some((e) => e.message.includes('listing ports failed'))).toBe(true);
    expect(isUsbPort(info('/dev/ttyACM0'))).toBe(true);
    expect(isUsbPort(info('/dev/ttyS0'))).toBe(false);
  });

  it('is a supervisor of its links: each port a child, a killed link is restarted and reconnects', async () => {
    const pair = await ptyPair(kit, 'k');
    const device = await FakeDevice.open(kit, pair.devicePath);
    const absent = `${kit.dir}/absent-host`;
    const manager = manage([pair.hostPath, absent]);
    await waitFor(() => manager.linkFor('pump-7') !== undefined, 5000, 'the first identification');
    const first = manager.linkFor('pump-7')!;
    expect(manager.whichChildren()).toEqual([
      expect.objectContaining({ id: absent, status: 'stopped', pid: undefined, restartCount: 0 }),
      expect.objectContaining({
        id: pair.hostPath,
        status: 'running',
        pid: first.pid,
        process: first,
        type: 'worker',
        restart: 'permanent',
        restartCount: 0,
      }),
    ]);
    expect(manager.countChildren()).toEqual({ specs: 2, active: 1, supervisors: 0, workers: 2 });
    expect(manager.health()).toEqual([
      { name: `serial ${pair.hostPath}`, ok: true, detail: 'open, pump-7' },
      { name: `serial ${absent}`, ok: false, detail: expect.stringMatching(/^absent/) },
    ]);

    first.kill(); // what the tree's kill does
    expect(first.exitReason).toEqual({ type: 'killed' });
    const child = () => manager.whichChildren().find((c) => c.id === pair.hostPath)!;
    expect(['restarting', 'running']).toContain(child().status);
    await waitFor(() => manager.linkFor('pump-7') !== undefined, 5000, 'the link to be restarted');
    const second = manager.linkFor('pump-7')!;
    expect(second).not.toBe(first);
    expect(child()).toMatchObject({ status: 'running', pid: second.pid, restartCount: 1 });
    expect(child().lastExit).toEqual({ type: 'killed' });
    expect(manager.restartsInWindow()).toBe(1);
    await device.send(telemetry(2));
    await waitFor(
      () => manager.messages.some((m) => m.message.type === 'telemetry' && m.link === second),
      5000,
      'telemetry on the restarted link',
    );
  });

  it('refuses bad options with a RangeError naming the field', () => {
    expect(() => manage([''])).toThrow(/ports\[0\] must be a non-empty string/);
    expect(() => manage(['/dev/x'], { pollMs: 0 })).toThrow(/pollMs/);
    expect(() => manage(['/dev/x'], { link: { heartbeatMs: -1 } })).toThrow(/link\.heartbeatMs/);
  });
});

/**
 * The simulated serial device over real socat pty pairs. The host side is a raw SerialPort on
 * the pair's host end with createDeframer. A serial port flushes its input when opened, so the
 * host always opens its end before the device writes what the test wants to see.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { socatAvailable } from '../../src/sim/pty.js';
import type { SerialSimDeviceOptions } from '../../src/sim/serial-device.js';
import { startSerialSimDevice } from '../../src/sim/serial-device.js';
import type { TelemetryMessage } from '../../src/transports/protocol.js';
import {
  cmd,
  command,
  fwStep,
  hellos,
  registerCleanups,
  repliesTo,
  SerialHost,
  sendChunks,
  serialSimOnPty,
  uniqueId,
  waitFor,
} from './helpers.js';

const cleanup = registerCleanups();
const hasSocat = socatAvailable();

const setup = (options: Partial<SerialSimDeviceOptions> = {}) => serialSimOnPty(cleanup, options);

function telemetry(host: SerialHost): TelemetryMessage[] {
  return host.messages.filter((m): m is TelemetryMessage => m.type === 'telemetry');
}

describe.skipIf(!hasSocat)(
  hasSocat ? 'serial sim device on a socat pty pair' : 'serial sim device (skipped: socat is not installed)',
  () => {
    it('sends hello when it opens the port, then telemetry', async () => {
      const { host, d } = await setup({ telemetryIntervalMs: 100 });
      expect(hellos(host)[0]).toMatchObject({
        type: 'hello',
        deviceId: d.id,
        boot: d.device.boot,
        firmware: { slot: 'A', confirmed: true },
      });
      expect(host.messages[0]?.type).toBe('hello');
      await waitFor(() => telemetry(host).length >= 2, 10_000, 'telemetry');
      expect(telemetry(host)[0]!.seq).toBe(0);
      expect(host.frameErrors).toEqual([]);
    });

    it('round-trips commands: ping, hello, a repeated cmdId executed once', async () => {
      const { host, d } = await setup();
      const ping = cmd('ping');
      expect(await command(host, ping)).toEqual({ v: 1, type: 'reply', cmdId: ping.cmdId, ok: true });
      await command(host, cmd('hello'));
      expect(hellos(host).length).toBe(2);

      const c = cmd('setConfig', { a: 1 });
      for (let i = 0; i < 3; i++) await host.send(c);
      await waitFor(() => repliesTo(host, c.cmdId).length === 3, 10_000, 'three replies');
      expect(new Set(repliesTo(host, c.cmdId).map((r) => JSON.stringify(r))).size).toBe(1);
      expect(d.device.executed.get(c.cmdId)).toBe(1);
    });

    it('garbage: the host deframer reports errors and still decodes every frame', async () => {
      const { host, d } = await setup({ telemetryIntervalMs: 100 });
      d.device.setFaults({ garbage: true });
      const before = telemetry(host).length;
      const reply = await command(host, cmd('ping'));
      expect(reply.ok).toBe(true);
      await waitFor(
        () => host.frameErrors.length >= 3 && telemetry(host).length - before >= 3,
        10_000,
        'frame errors and telemetry',
      );
      expect(d.stats.garbageBytes).toBeGreaterThan(0);
      expect(host.decodeErrors).toEqual([]);
      // No frame was lost to the junk: telemetry seq has no gaps.
      const seqs = telemetry(host).map((t) => t.seq);
      expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
    });

    it('survives an unplug: reopens the new pty when it is replugged and sends hello again', async () => {
      const { p, host, d } = await setup({ reopenSettleMs: 1000 });
      const boot = d.device.boot;
      await p.unplug();
      await waitFor(() => !d.connected, 10_000, 'the device to notice the unplug');
      await waitFor(() => host.closed, 10_000, 'the host port to close');
      await p.replug();
      // The host opens its end first (the device waits reopenSettleMs before opening its end).
      const host2 = await SerialHost.open(p.hostPath, cleanup);
      await waitFor(() => hellos(host2).length >= 1, 10_000, 'the hello after the replug');
      expect(hellos(host2)[0]!.boot).toBe(boot);
      expect(d.stats.opens).toBe(2);
      const reply = await command(host2, cmd('ping'));
      expect(reply.ok).toBe(true);
    });

    it('dropLink closes and reopens the port; the host sees a new hello', async () => {
      const { host, d } = await setup();
      d.dropLink(200);
      await waitFor(() => hellos(host).length >= 2, 10_000, 'the hello after the drop');
      expect(d.stats.opens).toBe(2);
      expect((await command(host, cmd('ping'))).ok).toBe(true);
    });

    it('reboot: new boot, seq restarts, a new hello on the same port', async () => {
      const { host, d } = await setup({ telemetryIntervalMs: 100 });
      await waitFor(() => telemetry(host).length >= 3, 10_000, 'telemetry');
      const oldBoot = d.device.boot;
      await command(host, cmd('reboot'));
      await waitFor(() => hellos(host).some((h) => h.boot !== oldBoot), 10_000, 'the new hello');
      const newBoot = (oldBoot + 1) >>> 0;
      await waitFor(() => telemetry(host).some((t) => t.boot === newBoot), 10_000, 'new telemetry');
      expect(telemetry(host).find((t) => t.boot === newBoot)!.seq).toBe(0);
    });

    it('takes a firmware image over the serial line', async () => {
      const { host, d } = await setup();
      const image = randomBytes(6000);
      const sha256 = createHash('sha256').update(image).digest('hex');
      const transferId = uniqueId('fw');
      await fwStep(
        host,
        { v: 1, type: 'fw.begin', transferId, version: '1.1.0', size: 6000, sha256, chunkBytes: 512 },
        'begin',
      );
      const sent = await sendChunks(host, transferId, image, { chunkBytes: 512, window: 4, from: 0 });
      expect(sent.held).toBe(6000);
      expect((await fwStep(host, { v: 1, type: 'fw.verify', transferId }, 'verify')).error).toBeUndefined();
      const boot = d.device.boot;
      await fwStep(host, { v: 1, type: 'fw.apply', transferId }, 'apply');
      await waitFor(() => hellos(host).some((h) => h.boot !== boot), 10_000, 'the trial hello');
      expect(hellos(host).at(-1)!.firmware).toMatchObject({ version: '1.1.0', slot: 'B', confirmed: false });
      expect((await fwStep(host, { v: 1, type: 'fw.confirm', transferId }, 'confirm')).error).toBeUndefined();
      expect(d.device.firmware.confirmed).toBe(true);
    });

    it('start rejects with a clear error when the port does not exist', async () => {
      await expect(
        startSerialSimDevice('/nonexistent/fleetvisor-sim-port', { id: uniqueId('ser'), openTimeoutMs: 300 }),
      ).rejects.toThrow(/cannot open \/nonexistent\/fleetvisor-sim-port within 300 ms/);
    });
  },
);

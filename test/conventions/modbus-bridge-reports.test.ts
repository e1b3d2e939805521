/**
 * What the Modbus bridge reports besides values (src/conventions/modbus/modbus-bridge-reports.ts),
 * with real parts: a socat pty pair with nothing on its device end, the bridge, the fleet on a
 * real SQLite file (the shared rig's host, test/rig/links-rig.ts). Two devices on one port with different line settings: the second is not
 * polled and gets one `lineConflict` event however many scans pass, and one more only after it
 * was polled again; the silent slave's `status.modbus` says it does not answer. And a fault flood
 * (on a simulated clock, into the real store): one event per stream and window, every fault left
 * out counted in the window's `device.eventsSuppressed` summary.
 *
 * @example
 * npx vitest run test/conventions/modbus-bridge-reports.test.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ModbusBridge } from '../../src/conventions/modbus/modbus-bridge.js';
import { modbusConvention } from '../../src/conventions/modbus/modbus-bridge.js';
import type { DeviceEntry } from '../../src/conventions/modbus/modbus-bridge-model.js';
import { trackDevice } from '../../src/conventions/modbus/modbus-bridge-model.js';
import { createBridgeReports } from '../../src/conventions/modbus/modbus-bridge-reports.js';
import type { ModbusFault } from '../../src/conventions/modbus/modbus-bus-types.js';
import { modbusAttributes } from '../../src/conventions/modbus/modbus-kind.js';
import { createSimulatedClock } from '../../src/runtime/clock.js';
import { openPtyPair, socatAvailable } from '../../src/sim/pty.js';
import type { EventRecord } from '../../src/store/store.js';
import { onCleanup, runCleanups, startConventionHost } from '../rig/links-rig.js';
import { waitFor } from '../transports/helpers.js';

afterEach(runCleanups);

const SCAN_MS = 50;
const REGISTERS = [{ name: 'counter', table: 'holding', address: 0 }];
const TIMING = { pollMs: 200, timeoutMs: 100, retries: 0 };

describe.skipIf(!socatAvailable())('Modbus bridge reports', () => {
  it('a device whose line settings disagree with its port is not polled, with one lineConflict event until it is polled again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fv-modbus-reports-'));
    onCleanup(() => rmSync(dir, { recursive: true, force: true }));
    const pty = await openPtyPair(join(dir, 'bus-host'), join(dir, 'bus-device'));
    onCleanup(() => pty.close());
    const convention = modbusConvention({ scanMs: SCAN_MS, statusIntervalMs: 100 });
    const { store, fleet, bridge } = await startConventionHost<ModbusBridge>(undefined, convention);
    const attributes = (slaveId: number, baudRate: number) => ({
      port: pty.hostPath,
      slaveId,
      baudRate,
      registers: REGISTERS,
      ...TIMING,
    });
    const dataOf = (e: EventRecord) =>
      (e.data ?? {}) as { readonly code?: unknown; readonly message?: unknown };
    const conflicts = async (id: string): Promise<EventRecord[]> => {
      const page = await store.queryEvents({ deviceId: id, kind: 'device.modbusError', limit: 100 });
      return page.items.flatMap((i) => (i.ok && dataOf(i.value).code === 'lineConflict' ? [i.value] : []));
    };
    const polled = () => bridge.stats().buses.flatMap((b) => b.slaves.map((s) => s.deviceId));

    for (const [id, slaveId, baudRate] of [
      ['meter-a', 1, 9600],
      ['meter-b', 2, 19200],
    ] as const) {
      const added = await fleet.addDevice({
        id,
        kind: 'modbus.device',
        attributes: attributes(slaveId, baudRate),
      });
      expect(added.ok, added.ok ? '' : added.error.message).toBe(true);
    }
    await waitFor(() => polled().includes('meter-a'), 10_000, 'meter-a polled');
    /** Waits (10 s at most) until meter-b has `n` lineConflict events, and returns them. */
    const conflictCount = async (n: number): Promise<EventRecord[]> => {
      const deadline = Date.now() + 10_000;
      let found = await conflicts('meter-b');
      while (found.length < n && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        found = await conflicts('meter-b');
      }
      expect(found).toHaveLength(n);
      return found;
    };
    const found = await conflictCount(1);
    expect(String(dataOf(found[0]!).message)).toMatch(/9600 8N1/);
    expect(String(dataOf(found[0]!).message)).toMatch(/19200 8N1/);

    // Ten scans later: still not polled, still one event.
    await new Promise((r) => setTimeout(r, 10 * SCAN_MS));
    expect(polled()).toEqual(['meter-a']);
    expect(bridge.deviceStats('meter-b')).toBeUndefined();
    expect(await conflicts('meter-b')).toHaveLength(1);

    // With its port's settings it is polled; back to 19200, it is reported again, once.
    expect((await fleet.updateDevice('meter-b', { attributes: attributes(2, 9600) })).ok).toBe(true);
    await waitFor(() => polled().includes('meter-b'), 10_000, 'meter-b polled with 9600 8N1');
    expect((await fleet.updateDevice('meter-b', { attributes: attributes(2, 19200) })).ok).toBe(true);
    await conflictCount(2);
    await waitFor(() => !polled().includes('meter-b'), 10_000, 'meter-b not polled at 19200');
    await new Promise((r) => setTimeout(r, 10 * SCAN_MS));
    expect(await conflicts('meter-b')).toHaveLength(2);

    // Nothing answers on the line: meter-a's status says so, with the port and its timeouts.
    await waitFor(
      () => {
        const s = fleet.device('meter-a')?.status.modbus as Record<string, unknown> | undefined;
        return typeof s?.timeouts === 'number' && s.timeouts > 0;
      },
      10_000,
      'meter-a status.modbus with timeouts',
    );
    expect(fleet.device('meter-a')?.status.modbus).toMatchObject({
      port: pty.hostPath,
      slaveId: 1,
      online: false,
    });
  }, 60_000);
});

describe('Modbus bridge reports: a fault flood', () => {
  it('is counted, not silently dropped: one event per stream and window, the rest summed up when the window closes', async () => {
    const clock = createSimulatedClock();
    const { runtime, store, fleet } = await startConventionHost(undefined, modbusConvention(), { clock });
    const devices = new Map<string, DeviceEntry>();
    trackDevice(
      devices,
      'meter-1',
      modbusAttributes.parse({ port: '/dev/ttyUSB9', slaveId: 1, registers: REGISTERS }),
    );
    const reports = createBridgeReports({
      runtime,
      owner: runtime.nextPid(),
      fleet,
      store,
      devices,
      slaveStats: () => undefined,
      eventIntervalMs: 1000,
      statusIntervalMs: 1000,
    });
    const fault = (code: 'crc' | 'timeout'): ModbusFault => ({
      code,
      message: code === 'crc' ? 'CRC error in the reply' : 'no reply',
      operation: 'read',
      functionCode: 3,
      address: 0,
      count: 1,
      registers: ['counter'],
    });
    const events = async (kind: string) => {
      const page = await store.queryEvents({ deviceId: 'meter-1', kind, limit: 1000 });
      return page.items.flatMap((i) => (i.ok ? [i.value.data as Record<string, unknown>] : []));
    };

    // 300 corrupt replies and 40 timeouts within one window (1 ms apart).
    for (let i = 0; i < 300; i++) {
      reports.fault('meter-1', fault('crc'));
      if (i < 40) reports.fault('meter-1', fault('timeout'));
      await clock.advanceAsync(1);
    }
    // The store commits in order: once both events are in, nothing else was written.
    await expect.poll(async () => (await events('device.badMessage')).length).toBe(1);
    await expect.poll(async () => (await events('device.modbusError')).length).toBe(1);
    expect(await events('device.eventsSuppressed')).toEqual([]); // the window is still open

    // The window closes: one summary per stream names every fault left out.
    await clock.advanceAsync(1000);
    await expect.poll(async () => (await events('device.eventsSuppressed')).length).toBe(2);
    const summaries = await events('device.eventsSuppressed');
    expect(summaries.map((x) => [x.kind, x.code, x.suppressed, x.written, x.windowMs]).sort()).toEqual([
      ['device.badMessage', 'crc', 299, 1, 1000],
      ['device.modbusError', 'timeout', 39, 1, 1000],
    ]);

    // The next window: written again, owing nothing (the summary counted them already).
    reports.fault('meter-1', fault('crc'));
    await expect.poll(async () => (await events('device.badMessage')).length).toBe(2);
    expect((await events('device.badMessage')).map((x) => x.suppressed)).toEqual([undefined, undefined]);
  });
});

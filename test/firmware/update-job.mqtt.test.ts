/**
 * One device's firmware update end to end over MQTT: the host's update job (src/firmware) through
 * the real links and a real broker (embedded aedes; Mosquitto too at FLEETVISOR_TEST_MQTT_URL) to
 * the simulator's A/B slots, on the real clock and a real SQLite file. What an operator checks:
 * the device runs the new version, confirmed; a power cut mid-transfer resumes from the device's
 * offset, not from zero; a corrupted transfer fails at verify with nothing applied; a new image
 * that crash-loops ends rolled back to the old one; a Homie-like device without `fw` is refused.
 */
import { randomBytes } from 'node:crypto';
import { connectAsync } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { UpdateJobSnapshot } from '../../src/firmware/update-job.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { externalBrokerUrl, uniqueId, waitFor } from '../transports/helpers.js';
import { ready, runCleanups, sim, startHost } from './mqtt-rig.js';

afterEach(runCleanups);

const brokers: { name: string; url: () => string }[] = [];
let embedded: EmbeddedBroker | undefined;
brokers.push({ name: 'embedded aedes', url: () => embedded!.url });
if (externalBrokerUrl) {
  const external = externalBrokerUrl;
  brokers.push({ name: 'Mosquitto', url: () => external });
}

beforeAll(async () => {
  embedded = await startEmbeddedBroker({ port: 0 });
});
afterAll(async () => {
  await embedded?.close();
});

describe.each(brokers)('one device firmware update over MQTT ($name)', ({ url: brokerUrl }) => {
  it('transfers, reboots into the new slot, runs on trial and is confirmed', async () => {
    const url = brokerUrl();
    const id = uniqueId('fw-ok');
    const host = await startHost(url, [id]);
    const d = await sim(url, id);
    await ready(host, id);
    const image = randomBytes(48 * 1024);
    const started = host.updates.start(id, { image, version: '1.1.0' });
    expect(started.ok).toBe(true);
    if (!started.ok) return;
    const final = await started.value.done;
    expect(final).toMatchObject({
      step: 'succeeded',
      offset: image.length,
      resumedFrom: 0,
      error: undefined,
    });
    expect(final.bytesPerSecond).toBeGreaterThan(0);
    expect(host.steps.get(id)).toEqual([
      'transferring',
      'verifying',
      'applying',
      'rebooting',
      'onTrial',
      'confirming',
      'succeeded',
    ]);
    expect(d.device.firmware).toMatchObject({
      version: '1.1.0',
      slot: 'B',
      confirmed: true,
      slots: { A: '1.0.0' },
    });
    // The device lists fw.binary: its 12 chunks came as binary payloads, none refused.
    expect(d.stats.binaryChunks).toBeGreaterThanOrEqual(12);
    expect(d.stats.badMessages).toBe(0);
    // One job per device at a time; one that has not applied yet can be cancelled.
    expect(host.updates.start(id, { image: randomBytes(64 * 1024), version: '1.2.0' }).ok).toBe(true);
    expect(host.updates.start(id, { image, version: '1.3.0' })).toMatchObject({
      ok: false,
      error: { code: 'busy' },
    });
    expect(host.updates.cancel(id)).toMatchObject({ ok: true, value: { step: 'cancelled' } });
    expect(d.device.firmware.version).toBe('1.1.0');
  });

  it('a device without fw.binary gets JSON chunks; a binary payload it cannot read is counted, not taken', async () => {
    const url = brokerUrl();
    const id = uniqueId('fw-json');
    const host = await startHost(url, [id]);
    const d = await sim(url, id, { binaryChunks: false });
    await ready(host, id);
    expect(host.links.hub?.device(id)?.hello?.capabilities).not.toContain('fw.binary');
    const image = randomBytes(20 * 1024);
    const started = host.updates.start(id, { image, version: '1.1.0' });
    if (!started.ok) throw new Error(started.error.message);
    expect(await started.value.done).toMatchObject({ step: 'succeeded', offset: image.length });
    expect(d.device.firmware).toMatchObject({ version: '1.1.0', confirmed: true });
    expect(d.stats).toMatchObject({ binaryChunks: 0, badMessages: 0 });
    // A binary chunk (and binary garbage) sent to it anyway: bad messages, nothing written.
    const raw = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
    await raw.publishAsync(`fleetvisor/v1/${id}/fw`, Buffer.from([1, 2, 0x61, 0x62, 0, 0, 0, 0, 1, 0, 7]), {
      qos: 1,
    });
    await raw.publishAsync(`fleetvisor/v1/${id}/fw`, Buffer.from([1, 0xff, 0xfe]), { qos: 1 });
    await raw.endAsync();
    await waitFor(() => d.stats.badMessages === 2, 3000, 'two bad messages');
    expect(d.device.firmware.version).toBe('1.1.0');
  });

  it('a power cut mid-transfer resumes from the offset the device holds, never from zero', async () => {
    const url = brokerUrl();
    const id = uniqueId('fw-cut');
    let cutAt: number | undefined;
    let sentBytes = 0;
    let lowestAfterCut = Number.POSITIVE_INFINITY;
    const host = await startHost(url, [id], (m) => {
      if (m.type === 'fw.chunk') {
        sentBytes += m.data.length;
        if (cutAt !== undefined) lowestAfterCut = Math.min(lowestAfterCut, m.offset);
      }
      return m;
    });
    const d = await sim(url, id);
    await ready(host, id);
    const image = randomBytes(256 * 1024);
    const started = host.updates.start(id, { image, version: '1.2.0' });
    if (!started.ok) throw new Error(started.error.message);
    await waitFor(() => (host.updates.get(id)?.offset ?? 0) >= 64 * 1024, 15_000, '64 KiB across');
    cutAt = host.updates.get(id)!.offset; // what the device acknowledged holding
    d.device.reboot('requested'); // the power goes: the transfer so far is in flash
    const final = await started.value.done;
    expect(final.step).toBe('succeeded');
    expect(d.device.firmware).toMatchObject({ version: '1.2.0', confirmed: true });
    expect(d.device.reboots).toBe(2); // the cut and the apply
    // After the cut no chunk went out below what the device held: it went on from its offset.
    expect(lowestAfterCut).toBeGreaterThanOrEqual(cutAt);
    expect(lowestAfterCut).toBeLessThan(image.length);
    expect(sentBytes).toBeLessThan(image.length * 1.25);
  });

  it('a chunk corrupted on the way fails at verify; nothing is applied, the device keeps its version', async () => {
    const url = brokerUrl();
    const id = uniqueId('fw-bad');
    let flipped = false;
    const host = await startHost(url, [id], (m) => {
      if (m.type !== 'fw.chunk' || flipped || m.offset < 8192) return m;
      flipped = true;
      const data = Uint8Array.from(m.data);
      data[0] = (data[0]! + 1) & 0xff;
      return { ...m, data };
    });
    const d = await sim(url, id);
    await ready(host, id);
    const started = host.updates.start(id, { image: randomBytes(32 * 1024), version: '1.1.0' });
    if (!started.ok) throw new Error(started.error.message);
    const final = await started.value.done;
    expect(final).toMatchObject({ step: 'failed', error: { step: 'verifying', code: 'hashMismatch' } });
    expect(d.device.firmware).toMatchObject({ version: '1.0.0', slot: 'A', confirmed: true });
    expect(d.device.reboots).toBe(0);
  });

  it('a new image that crash-loops goes back to the old slot by itself; the host shows rolled back', async () => {
    const url = brokerUrl();
    const id = uniqueId('fw-loop');
    const host = await startHost(url, [id]);
    const d = await sim(url, id);
    await ready(host, id);
    const started = host.updates.start(id, { image: randomBytes(16 * 1024), version: '2.0.0' });
    if (!started.ok) throw new Error(started.error.message);
    await waitFor(() => host.updates.get(id)?.step === 'rebooting', 15_000, 'rebooting');
    d.device.setFaults({ crashLoopOnBoot: true });
    const final: UpdateJobSnapshot = await started.value.done;
    d.device.setFaults({ crashLoopOnBoot: false });
    expect(final.step).toBe('rolledBack');
    expect(final.error?.code).toMatch(/bootloaderRevert|rebootedOnTrial|notBooted/);
    await waitFor(() => d.device.firmware.version === '1.0.0', 5000, 'back on 1.0.0');
    expect(d.device.firmware).toMatchObject({ version: '1.0.0', slot: 'A' });
  });

  it('a chunk lost on the way is sent again as soon as the device says it has a gap, not after the ack timeout', async () => {
    const url = brokerUrl();
    const id = uniqueId('fw-gap');
    let dropped = 0;
    // The chunk at 8192 goes out once under another transfer id: the device never holds it.
    const host = await startHost(
      url,
      [id],
      (m) => {
        if (m.type !== 'fw.chunk' || m.offset !== 8192 || dropped > 0) return m;
        dropped++;
        return { ...m, transferId: 'fw-lost-on-the-way' };
      },
      // Were the window to wait for the ack timeout, the job would outlive the test.
      { ackTimeoutMs: 600_000, stallTimeoutMs: 600_000 },
    );
    const d = await sim(url, id);
    await ready(host, id);
    const image = randomBytes(32 * 1024);
    const started = host.updates.start(id, { image, version: '1.1.0' });
    if (!started.ok) throw new Error(started.error.message);
    const final = await started.value.done;
    expect(dropped).toBe(1);
    expect(final.step).toBe('succeeded');
    expect(final.resent).toBeGreaterThan(0);
    expect(d.device.firmware).toMatchObject({ version: '1.1.0', confirmed: true });
  }, 30_000);

  it('a job lost after the apply (the image on trial) is taken up by a new one: the trial runs and is confirmed, no second transfer or apply', async () => {
    const url = brokerUrl();
    const id = uniqueId('fw-lost');
    const image = randomBytes(16 * 1024);
    // The first host applies the image, then goes away while the device is on trial.
    const first = await startHost(url, [id], undefined, { soakMs: 600_000 });
    const d = await sim(url, id);
    const applies: string[] = [];
    d.device.on('reboot', (reason) => applies.push(reason));
    await ready(first, id);
    const started = first.updates.start(id, { image, version: '1.1.0' });
    if (!started.ok) throw new Error(started.error.message);
    await waitFor(() => first.updates.get(id)?.step === 'onTrial', 15_000, 'on trial');
    await first.links.stop();
    expect(d.device.firmware).toMatchObject({ version: '1.1.0', confirmed: false });
    // A second host (its job store empty) is asked for the same image.
    const chunks: number[] = [];
    const second = await startHost(url, [id], (m) => {
      if (m.type === 'fw.chunk') chunks.push(m.offset);
      return m;
    });
    await ready(second, id);
    const again = second.updates.start(id, { image, version: '1.1.0' });
    if (!again.ok) throw new Error(again.error.message);
    const final = await again.value.done;
    expect(final.step).toBe('succeeded');
    expect(d.device.firmware).toMatchObject({ version: '1.1.0', confirmed: true });
    expect(chunks).toEqual([]);
    expect(applies).toEqual(['fwApply']);
  }, 40_000);

  it('an update to the version the device runs, confirmed, is refused: alreadyRunning, no job', async () => {
    const url = brokerUrl();
    const id = uniqueId('fw-same');
    const host = await startHost(url, [id]);
    const d = await sim(url, id);
    await ready(host, id);
    expect(d.device.firmware).toMatchObject({ version: '1.0.0', confirmed: true });
    const r = host.updates.start(id, { image: randomBytes(4096), version: '1.0.0' });
    expect(r).toMatchObject({
      ok: false,
      error: { code: 'alreadyRunning', message: expect.stringContaining('1.0.0') },
    });
    expect(host.updates.get(id)).toBeUndefined();
    expect(d.device.reboots).toBe(0);
  });

  it('a device without the fw capability is refused: firmware update not supported, no job', async () => {
    const url = brokerUrl();
    const id = uniqueId('fw-none');
    const host = await startHost(url, [id]);
    await sim(url, id);
    await ready(host, id);
    const hub = host.links.hub!;
    const hello = hub.device(id)!.hello!;
    // A device announcing no fw (as Homie, Sparkplug and Modbus devices never do).
    hub.deliver(
      id as never,
      { ...hello, capabilities: ['reboot'] },
      { via: 'mqtt', presence: 'status', send: () => true },
    );
    const r = host.updates.start(id, { image: randomBytes(1024), version: '1.1.0' });
    expect(r).toMatchObject({
      ok: false,
      error: { code: 'notSupported', message: expect.stringContaining('not supported') },
    });
    expect(host.updates.get(id)).toBeUndefined();
    expect(host.updates.start('nobody', { image: randomBytes(1024), version: '1.1.0' })).toMatchObject({
      ok: false,
      error: { code: 'unknownDevice' },
    });
  });
});

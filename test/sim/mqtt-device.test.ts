/**
 * The simulated MQTT device over a real broker: the embedded aedes broker always, and the broker
 * at FLEETVISOR_TEST_MQTT_URL (Mosquitto) when set. The host side is a raw mqtt.js client
 * subscribed to the device's topics; nothing of the host's own link code is involved.
 */
import { createHash, randomBytes } from 'node:crypto';
import { connectAsync } from 'mqtt';
import { describe, expect, it } from 'vitest';
import type { MqttSimDevice, MqttSimDeviceOptions } from '../../src/sim/mqtt-device.js';
import { startMqttSimDevice } from '../../src/sim/mqtt-device.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import type { DeviceId, Message, StatusMessage, TelemetryMessage } from '../../src/transports/protocol.js';
import { encodeMessage, topicFor } from '../../src/transports/protocol.js';
import type { Cleanup } from './helpers.js';
import {
  acks,
  BROKERS,
  cmd,
  command,
  fwStep,
  hellos,
  MqttObserver,
  registerCleanups,
  repliesTo,
  sendChunks,
  uniqueId,
  waitFor,
} from './helpers.js';

const cleanup = registerCleanups();

async function sim(
  url: string,
  options: Partial<MqttSimDeviceOptions> & { id: string },
): Promise<MqttSimDevice> {
  const d = await startMqttSimDevice(url, { reconnectMinMs: 100, reconnectMaxMs: 1000, ...options });
  cleanup(() => d.stop());
  return d;
}

/** An observer subscribed before the device starts, and the connected device. */
async function setup(
  url: string,
  options: Partial<MqttSimDeviceOptions> = {},
): Promise<{ host: MqttObserver; d: MqttSimDevice; id: string }> {
  const id = options.id ?? uniqueId('sim');
  const host = await MqttObserver.open(url, id, cleanup);
  const d = await sim(url, { ...options, id });
  await waitFor(() => hellos(host).length >= 1, 10_000, 'the hello');
  return { host, d, id };
}

function statuses(host: MqttObserver): StatusMessage[] {
  return host.messages.filter((m): m is StatusMessage => m.type === 'status');
}

function telemetry(host: MqttObserver): TelemetryMessage[] {
  return host.messages.filter((m): m is TelemetryMessage => m.type === 'telemetry');
}

for (const broker of BROKERS) {
  describe.skipIf(broker.skip)(`MQTT sim device with ${broker.name}`, () => {
    const url = (c: Cleanup) => broker.url(c);

    it('publishes hello, then online, both retained, with boot and conn', async () => {
      const u = await url(cleanup);
      const { host, d, id } = await setup(u);
      await waitFor(() => statuses(host).length >= 1, 10_000, 'the online status');
      const live = host.received.filter((o) => o.channel === 'hello' || o.channel === 'status');
      expect(live[0]?.message?.type).toBe('hello'); // hello first
      expect(live[1]?.message).toEqual({
        v: 1,
        type: 'status',
        state: 'online',
        boot: d.device.boot,
        conn: 1,
      });
      expect(hellos(host)[0]).toEqual({
        v: 1,
        type: 'hello',
        deviceId: id,
        kind: 'fleetvisor.generic',
        boot: d.device.boot,
        firmware: { version: '1.0.0', slot: 'A', confirmed: true, slots: { A: '1.0.0', B: null } },
        capabilities: ['ping', 'hello', 'reboot', 'identify', 'setInterval', 'setConfig', 'fw', 'fw.binary'],
      });
      await waitFor(() => d.connected, 10_000, 'the subscription');

      // A late subscriber gets both as retained messages.
      const late = await MqttObserver.open(u, id, cleanup);
      await waitFor(() => late.received.length >= 2, 10_000, 'the retained messages');
      const retained = late.received.filter((o) => o.retain);
      expect(retained.map((o) => o.message?.type).sort()).toEqual(['hello', 'status']);
      expect(retained.find((o) => o.channel === 'status')?.message).toMatchObject({
        state: 'online',
        conn: 1,
      });
    });

    it('sends telemetry with seq counting up from 0 and ms timestamps', async () => {
      const { host, d } = await setup(await url(cleanup), { telemetryIntervalMs: 100 });
      await waitFor(() => telemetry(host).length >= 3, 10_000, 'three telemetry messages');
      const t = telemetry(host);
      expect(t.slice(0, 3).map((m) => m.seq)).toEqual([0, 1, 2]);
      expect(t[0]!.boot).toBe(d.device.boot);
      expect(t[0]!.ts).toBeGreaterThan(1.6e12);
      expect(Object.keys(t[0]!.values).sort()).toEqual(['rssi', 'temp', 'uptime']);
      expect(t[0]!.values.temp).toBeGreaterThanOrEqual(20);
      expect(t[0]!.values.temp).toBeLessThanOrEqual(25);
    });

    it('dropLink: the broker publishes the will (offline, same boot and conn), then it reconnects', async () => {
      const { host, d } = await setup(await url(cleanup));
      await waitFor(() => d.connected, 10_000, 'the subscription');
      const boot = d.device.boot;
      d.dropLink(300);
      await waitFor(() => statuses(host).some((s) => s.state === 'offline'), 10_000, 'the last will');
      expect(statuses(host).find((s) => s.state === 'offline')).toEqual({
        v: 1,
        type: 'status',
        state: 'offline',
        boot,
        conn: 1,
      });
      await waitFor(() => hellos(host).length >= 2 && d.connected, 10_000, 'the reconnect');
      await waitFor(
        () => statuses(host).some((s) => s.state === 'online' && s.conn === 2),
        10_000,
        'online #2',
      );
      expect(hellos(host)[1]!.boot).toBe(boot);
      expect(d.stats.drops).toBe(1);
      const reply = await command(host, cmd('ping'));
      expect(reply.ok).toBe(true);
    });

    it('answers ping, and the hello command with a fresh hello before the reply', async () => {
      const { host, d } = await setup(await url(cleanup));
      await waitFor(() => d.connected, 10_000, 'the subscription');
      const ping = cmd('ping');
      expect(await command(host, ping)).toEqual({ v: 1, type: 'reply', cmdId: ping.cmdId, ok: true });

      const hello = cmd('hello');
      await command(host, hello);
      const order = host.messages.filter(
        (m) => m.type === 'hello' || (m.type === 'reply' && m.cmdId === hello.cmdId),
      );
      expect(order.map((m) => m.type)).toEqual(['hello', 'hello', 'reply']);
      expect(d.device.executed.get(ping.cmdId)).toBe(1);
    });

    it('executes a cmdId once and answers every repeat with the same reply', async () => {
      const { host, d } = await setup(await url(cleanup));
      await waitFor(() => d.connected, 10_000, 'the subscription');
      const c = cmd('setConfig', { mode: 'eco', level: 3 });
      for (let i = 0; i < 3; i++) await host.send(c);
      await waitFor(() => repliesTo(host, c.cmdId).length === 3, 10_000, 'three replies');
      const replies = repliesTo(host, c.cmdId);
      expect(replies[1]).toEqual(replies[0]);
      expect(replies[2]).toEqual(replies[0]);
      expect(replies[0]).toMatchObject({ ok: true, result: { mode: 'eco', level: 3 } });
      expect(d.device.executed.get(c.cmdId)).toBe(1);
      expect(d.device.config).toEqual({ mode: 'eco', level: 3 });
    });

    it('refuses an expired command without executing it', async () => {
      const { host, d } = await setup(await url(cleanup));
      await waitFor(() => d.connected, 10_000, 'the subscription');
      const c = cmd('setConfig', { x: 1 }, { expiresAt: Date.now() - 1000 });
      const reply = await command(host, c);
      expect(reply).toMatchObject({ ok: false, error: { code: 'expired' } });
      expect(d.device.executed.has(c.cmdId)).toBe(false);
      expect(d.device.config).toEqual({});
    });

    it('setInterval changes the telemetry rate; out-of-range ms is badArgs naming ms', async () => {
      const { host, d } = await setup(await url(cleanup), { telemetryIntervalMs: 1000 });
      await waitFor(() => d.connected, 10_000, 'the subscription');
      const bad = await command(host, cmd('setInterval', { ms: 50 }));
      expect(bad).toMatchObject({ ok: false, error: { code: 'badArgs' } });
      expect(bad.ok === false && bad.error.message).toContain('ms');

      const before = telemetry(host).length;
      const started = Date.now();
      const ok = await command(host, cmd('setInterval', { ms: 100 }));
      expect(ok).toMatchObject({ ok: true, result: { ms: 100 } });
      expect(d.device.intervalMs).toBe(100);
      // 12 messages at 1 s would take 12 s; at 100 ms they take ~1.2 s.
      await waitFor(() => telemetry(host).length - before >= 12, 8000, 'telemetry at the faster rate');
      expect(Date.now() - started).toBeLessThan(8000);
    });

    it('answers an unknown action with unknownAction and bad arguments with badArgs', async () => {
      const { host, d } = await setup(await url(cleanup));
      await waitFor(() => d.connected, 10_000, 'the subscription');
      const unknown = await command(host, cmd('selfDestruct'));
      expect(unknown).toMatchObject({ ok: false, error: { code: 'unknownAction' } });

      const identify = await command(host, cmd('identify', { seconds: 'long' }));
      expect(identify).toMatchObject({ ok: false, error: { code: 'badArgs' } });
      expect(identify.ok === false && identify.error.message).toContain('seconds');

      const config = await command(host, cmd('setConfig'));
      expect(config).toMatchObject({ ok: false, error: { code: 'badArgs' } });
      expect(config.ok === false && config.error.message).toContain('args');
    });

    it('identify: replies ok, is identifying, and publishes an identify event', async () => {
      const { host, d } = await setup(await url(cleanup));
      await waitFor(() => d.connected, 10_000, 'the subscription');
      const reply = await command(host, cmd('identify', { seconds: 30 }));
      expect(reply).toMatchObject({ ok: true, result: { seconds: 30 } });
      expect(d.device.identifying).toBe(true);
      await waitFor(() => host.messages.some((m) => m.type === 'event'), 10_000, 'the identify event');
      const event = host.messages.find((m) => m.type === 'event');
      expect(event).toMatchObject({ name: 'identify', boot: d.device.boot, data: { seconds: 30 } });
    });

    it('reboot: replies ok, comes back with a new boot, seq from 0 and a new hello', async () => {
      const { host, d } = await setup(await url(cleanup), { telemetryIntervalMs: 200 });
      await waitFor(() => d.connected && telemetry(host).length >= 2, 10_000, 'telemetry');
      const oldBoot = d.device.boot;
      const reply = await command(host, cmd('reboot'));
      expect(reply.ok).toBe(true);
      await waitFor(() => hellos(host).some((h) => h.boot !== oldBoot), 10_000, 'the new hello');
      const newBoot = hellos(host).find((h) => h.boot !== oldBoot)!.boot;
      expect(newBoot).toBe((oldBoot + 1) >>> 0);
      await waitFor(
        () => telemetry(host).some((t) => t.boot === newBoot),
        10_000,
        'telemetry of the new boot',
      );
      expect(telemetry(host).find((t) => t.boot === newBoot)!.seq).toBe(0);
      await waitFor(
        () => statuses(host).some((s) => s.state === 'online' && s.boot === newBoot),
        10_000,
        'online of the new boot',
      );
      expect(statuses(host).find((s) => s.boot === newBoot && s.state === 'online')!.conn).toBe(1);
      // The old connection ended like a reset: its will says offline for the old boot.
      await waitFor(
        () => statuses(host).some((s) => s.state === 'offline' && s.boot === oldBoot),
        10_000,
        'the old boot’s will',
      );
      expect(d.device.reboots).toBe(1);
    });

    it('transfers a 20 KB image with window 8, verifies, applies, boots slot B on trial, confirms', async () => {
      const { host, d } = await setup(await url(cleanup));
      await waitFor(() => d.connected, 10_000, 'the subscription');
      const image = randomBytes(20_000);
      const sha256 = createHash('sha256').update(image).digest('hex');
      const transferId = uniqueId('fw');
      const begin = await fwStep(
        host,
        {
          v: 1,
          type: 'fw.begin',
          transferId,
          version: '2.0.0',
          size: image.length,
          sha256,
          chunkBytes: 1024,
        },
        'begin',
      );
      expect(begin).toEqual({ v: 1, type: 'fw.ack', transferId, step: 'begin', offset: 0 });
      const sent = await sendChunks(host, transferId, image, { chunkBytes: 1024, window: 8, from: 0 });
      expect(sent.held).toBe(20_000);
      expect(sent.maxInFlight).toBeGreaterThan(1);
      expect(acks(host, transferId, 'chunk').every((a) => a.error === undefined)).toBe(true);

      // Resumable: begin again with the same transfer says how much is held.
      const resume = await fwStep(
        host,
        {
          v: 1,
          type: 'fw.begin',
          transferId,
          version: '2.0.0',
          size: image.length,
          sha256,
          chunkBytes: 1024,
        },
        'begin',
      );
      expect(resume.offset).toBe(20_000);

      const verify = await fwStep(host, { v: 1, type: 'fw.verify', transferId }, 'verify');
      expect(verify).toEqual({ v: 1, type: 'fw.ack', transferId, step: 'verify', offset: 20_000 });
      const oldBoot = d.device.boot;
      const apply = await fwStep(host, { v: 1, type: 'fw.apply', transferId }, 'apply');
      expect(apply.error).toBeUndefined();

      await waitFor(() => hellos(host).some((h) => h.boot !== oldBoot), 10_000, 'the hello after apply');
      expect(hellos(host).find((h) => h.boot !== oldBoot)!.firmware).toEqual({
        version: '2.0.0',
        slot: 'B',
        confirmed: false,
        slots: { A: '1.0.0', B: '2.0.0' },
      });
      await waitFor(() => d.connected, 10_000, 'the subscription after the reboot');
      const confirm = await fwStep(host, { v: 1, type: 'fw.confirm', transferId }, 'confirm');
      expect(confirm.error).toBeUndefined();
      expect(d.device.firmware).toMatchObject({ version: '2.0.0', slot: 'B', confirmed: true });

      // Confirmed means it stays on B across a reboot.
      const boot2 = d.device.boot;
      await command(host, cmd('reboot'));
      await waitFor(() => hellos(host).some((h) => h.boot !== oldBoot && h.boot !== boot2), 10_000, 'hello');
      expect(hellos(host).at(-1)!.firmware).toMatchObject({ slot: 'B', confirmed: true });
    });

    it('ignores chunks already held, acks a gap with the held offset, and refuses a bad sha256', async () => {
      const { host, d } = await setup(await url(cleanup));
      await waitFor(() => d.connected, 10_000, 'the subscription');
      const image = randomBytes(3000);
      const transferId = uniqueId('fw');
      await fwStep(
        host,
        {
          v: 1,
          type: 'fw.begin',
          transferId,
          version: '2.0.0',
          size: 3000,
          sha256: 'ab'.repeat(32),
          chunkBytes: 1000,
        },
        'begin',
      );
      const chunk = (offset: number) =>
        ({
          v: 1,
          type: 'fw.chunk',
          transferId,
          offset,
          data: image.subarray(offset, offset + 1000),
        }) as const;
      expect((await fwStep(host, chunk(0), 'chunk')).offset).toBe(1000);
      expect((await fwStep(host, chunk(2000), 'chunk')).offset).toBe(1000); // a gap: not written
      expect((await fwStep(host, chunk(0), 'chunk')).offset).toBe(1000); // a repeat: harmless
      expect((await fwStep(host, chunk(1000), 'chunk')).offset).toBe(2000);
      expect((await fwStep(host, chunk(2000), 'chunk')).offset).toBe(3000);
      const verify = await fwStep(host, { v: 1, type: 'fw.verify', transferId }, 'verify');
      expect(verify.error?.code).toBe('hashMismatch');
      const apply = await fwStep(host, { v: 1, type: 'fw.apply', transferId }, 'apply');
      expect(apply.error?.code).toBe('notVerified');
      expect(d.device.firmware.slot).toBe('A');
      expect(d.device.reboots).toBe(0);
    });

    it('rollback after apply reboots into the old slot; an unconfirmed reboot falls back by itself', async () => {
      const { host, d } = await setup(await url(cleanup));
      await waitFor(() => d.connected, 10_000, 'the subscription');
      const image = randomBytes(4096);
      const sha256 = createHash('sha256').update(image).digest('hex');

      const install = async (transferId: string) => {
        await fwStep(
          host,
          { v: 1, type: 'fw.begin', transferId, version: '3.0.0', size: 4096, sha256, chunkBytes: 2048 },
          'begin',
        );
        await sendChunks(host, transferId, image, { chunkBytes: 2048, window: 2, from: 0 });
        expect((await fwStep(host, { v: 1, type: 'fw.verify', transferId }, 'verify')).error).toBeUndefined();
        const bootBefore = d.device.boot;
        await fwStep(host, { v: 1, type: 'fw.apply', transferId }, 'apply');
        await waitFor(
          () => hellos(host).some((h) => h.boot === (bootBefore + 1) >>> 0),
          10_000,
          'trial hello',
        );
        expect(hellos(host).at(-1)!.firmware).toMatchObject({
          version: '3.0.0',
          slot: 'B',
          confirmed: false,
        });
        await waitFor(() => d.connected, 10_000, 'the subscription after apply');
      };

      // 1. Explicit rollback.
      const t1 = uniqueId('fw');
      await install(t1);
      let boot = d.device.boot;
      const rollback = await fwStep(host, { v: 1, type: 'fw.rollback', transferId: t1 }, 'rollback');
      expect(rollback.error).toBeUndefined();
      await waitFor(
        () => hellos(host).some((h) => h.boot === (boot + 1) >>> 0),
        10_000,
        'hello after rollback',
      );
      expect(hellos(host).at(-1)!.firmware).toMatchObject({ version: '1.0.0', slot: 'A', confirmed: true });
      await waitFor(() => d.connected, 10_000, 'the subscription after rollback');
      const late = await fwStep(host, { v: 1, type: 'fw.confirm', transferId: t1 }, 'confirm');
      expect(late.error?.code).toBe('rolledBack');

      // 2. A reboot without confirm: the bootloader goes back to slot A.
      const t2 = uniqueId('fw');
      await install(t2);
      boot = d.device.boot;
      await command(host, cmd('reboot'));
      await waitFor(
        () => hellos(host).some((h) => h.boot === (boot + 1) >>> 0),
        10_000,
        'hello after reboot',
      );
      expect(hellos(host).at(-1)!.firmware).toMatchObject({ version: '1.0.0', slot: 'A', confirmed: true });
    });

    it('mute: no replies and nothing sent until cleared', async () => {
      const { host, d } = await setup(await url(cleanup), { telemetryIntervalMs: 200 });
      await waitFor(() => d.connected, 10_000, 'the subscription');
      d.device.setFaults({ mute: true });
      const sentAtMute = d.device.sent;
      const ignoredBefore = d.device.ignored;
      const muted = cmd('ping');
      await host.send(muted);
      await waitFor(() => d.device.ignored > ignoredBefore, 10_000, 'the muted device to drop the command');
      expect(d.device.sent).toBe(sentAtMute);
      d.device.setFaults({ mute: false });
      const after = await command(host, cmd('ping'));
      expect(after.ok).toBe(true);
      expect(repliesTo(host, muted.cmdId)).toEqual([]);
      expect(d.device.executed.has(muted.cmdId)).toBe(false);
    });

    it('slowReplyMs delays replies', async () => {
      const { host, d } = await setup(await url(cleanup));
      await waitFor(() => d.connected, 10_000, 'the subscription');
      d.device.setFaults({ slowReplyMs: 700 });
      const started = Date.now();
      await command(host, cmd('ping'));
      expect(Date.now() - started).toBeGreaterThanOrEqual(650);
    });

    it('crashLoopOnBoot: reboots again after every hello until cleared', async () => {
      const { host, d } = await setup(await url(cleanup));
      await waitFor(() => d.connected, 10_000, 'the subscription');
      d.device.setFaults({ crashLoopOnBoot: true });
      await command(host, cmd('reboot'));
      await waitFor(() => new Set(hellos(host).map((h) => h.boot)).size >= 4, 20_000, 'several boots');
      d.device.setFaults({ crashLoopOnBoot: false });
      const boots = hellos(host).map((h) => h.boot);
      expect(new Set(boots).size).toBeGreaterThanOrEqual(4);
      await waitFor(() => d.connected && !d.device.rebooting, 10_000, 'the device to settle');
      const reply = await command(host, cmd('ping'));
      expect(reply.ok).toBe(true);
    }, 40_000);

    it('garbage: publishes invalid payloads on /telemetry between valid telemetry', async () => {
      const { host, d } = await setup(await url(cleanup), { telemetryIntervalMs: 100 });
      d.device.setFaults({ garbage: true });
      await waitFor(
        () =>
          host.received.filter((o) => o.channel === 'telemetry' && o.error !== undefined).length >= 2 &&
          telemetry(host).length >= 4,
        10_000,
        'garbage and telemetry',
      );
      const bad = host.received.filter((o) => o.channel === 'telemetry' && o.error !== undefined);
      expect(bad.every((o) => o.error === 'notJson' || o.error === 'notUtf8')).toBe(true);
      expect(d.stats.garbage).toBeGreaterThanOrEqual(2);
    });

    it('ignores a retained command waiting on /cmd', async () => {
      const u = await url(cleanup);
      const id = uniqueId('sim');
      const c = cmd('setConfig', { stale: true });
      const raw = await connectAsync(u, {
        clientId: uniqueId('raw'),
        protocolVersion: 4,
        reconnectPeriod: 0,
      });
      raw.on('error', () => {});
      const cmdTopic = topicFor(id as DeviceId, 'cmd');
      cleanup(async () => {
        await raw.publishAsync(cmdTopic, '', { qos: 1, retain: true });
        await raw.endAsync(true);
      });
      await raw.publishAsync(cmdTopic, Buffer.from(encodeMessage(c)), { qos: 1, retain: true });
      const { host, d } = await setup(u, { id });
      await waitFor(() => d.connected && d.stats.ignoredRetained >= 1, 10_000, 'the retained command');
      expect(d.device.executed.size).toBe(0);
      expect(d.device.config).toEqual({});
      expect(repliesTo(host, c.cmdId)).toEqual([]);
    });

    it('stop publishes offline for the current boot and conn', async () => {
      const { host, d } = await setup(await url(cleanup));
      await waitFor(() => d.connected, 10_000, 'the subscription');
      await d.stop();
      await waitFor(() => statuses(host).some((s) => s.state === 'offline'), 10_000, 'offline');
      expect(statuses(host).at(-1)).toEqual({
        v: 1,
        type: 'status',
        state: 'offline',
        boot: d.device.boot,
        conn: 1,
      } satisfies Message);
    });
  });
}

describe('MQTT sim device when the broker goes away', () => {
  it('reconnects with backoff to a broker restarted on the same port, with a new conn', async () => {
    let broker = await startEmbeddedBroker({ port: 0 });
    const port = broker.port;
    cleanup(() => broker.close());
    const id = uniqueId('sim');
    const d = await sim(broker.url, { id });
    const boot = d.device.boot;
    await broker.close();
    await waitFor(() => !d.connected, 10_000, 'the device to notice');
    broker = await startEmbeddedBroker({ port });
    expect(broker.port).toBe(port);
    const host = await MqttObserver.open(broker.url, id, cleanup);
    await waitFor(() => d.connected && hellos(host).length >= 1, 15_000, 'the reconnect');
    expect(hellos(host)[0]!.boot).toBe(boot);
    expect(d.conn).toBeGreaterThanOrEqual(2);
    await waitFor(
      () => host.messages.some((m) => m.type === 'status' && m.state === 'online'),
      10_000,
      'online',
    );
    expect(host.messages.find((m) => m.type === 'status')).toMatchObject({
      state: 'online',
      boot,
      conn: d.conn,
    });
    expect((await command(host, cmd('ping'))).ok).toBe(true);
  });

  it('stop does not hang while the broker is down', async () => {
    const broker = await startEmbeddedBroker({ port: 0 });
    cleanup(() => broker.close());
    const d = await sim(broker.url, { id: uniqueId('sim') });
    await broker.close();
    await waitFor(() => !d.connected, 10_000, 'the device to notice');
    await d.stop();
    expect(d.device.isStopped).toBe(true);
  });
});

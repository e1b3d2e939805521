/**
 * A host starting under a fleet that waits for adoption, on a Mosquitto with its default limits
 * (issue 13, seen at 2,000 real simulated devices: the Discovered view listed 1,020). The devices'
 * retained hello and status reach the new host's subscription as one burst, past Mosquitto's
 * default queue (max_queued_messages 1000), which drops the rest; a device whose hello was dropped
 * was then never listed while it stayed connected ("not in the fleet and has not said hello" at
 * each of its messages). Now the host asks such a device for its hello, and every device is listed.
 *
 * The 1,500 devices are one MQTT connection speaking the protocol for each id (a real simulator
 * per device is too heavy for a test): retained hello and online status per id, a heartbeat per id
 * every 2 s, and on a `hello` command the id's hello again and a reply, as docs/protocol.md §4
 * asks of every device.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import type { DeviceId, Message } from '../../src/transports/protocol.js';
import { decodePublish, encodeMessage, topicFor } from '../../src/transports/protocol.js';
import { freePort, waitFor } from './helpers.js';

const MOSQUITTO = '/usr/sbin/mosquitto';
const DEVICES = 1_500;

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
}, 60_000);

/** A private Mosquitto with its defaults (max_queued_messages 1000, max_inflight_messages 20). */
async function privateMosquitto(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'fv-discovery-mosquitto-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', ''].join('\n'),
  );
  const proc = spawn(MOSQUITTO, ['-c', conf], { stdio: 'ignore' });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  );
  const url = `mqtt://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 5000; ; ) {
    const probe = await connectAsync(url, { reconnectPeriod: 0, connectTimeout: 500 }).catch(() => undefined);
    if (probe) {
      await probe.endAsync(true);
      return url;
    }
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error('mosquitto did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const BOOT = 3;
const ids = Array.from({ length: DEVICES }, (_, i) => `farm-${String(i).padStart(4, '0')}` as DeviceId);

const helloOf = (id: DeviceId): Message => ({
  v: 1,
  type: 'hello',
  deviceId: id,
  kind: 'fleetvisor.generic',
  boot: BOOT,
  firmware: { version: '1.0.0', slot: 'A', confirmed: true, slots: { A: '1.0.0', B: null } },
  capabilities: [],
});

/** The devices, as one connection: retained hello and status, heartbeats, answers to `hello`. */
async function startFarm(url: string): Promise<{ client: MqttClient; asked: Set<string> }> {
  const client = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, clientId: 'farm' });
  const asked = new Set<string>();
  const publish = (id: DeviceId, channel: string, m: Message, retain: boolean) =>
    client.publishAsync(topicFor(id, channel as 'hello'), Buffer.from(encodeMessage(m)), { qos: 1, retain });
  for (const id of ids) {
    await publish(id, 'hello', helloOf(id), true);
    await publish(id, 'status', { v: 1, type: 'status', state: 'online', boot: BOOT, conn: 1 }, true);
  }
  await client.subscribeAsync('fleetvisor/v1/+/cmd', { qos: 1 });
  client.on('message', (topic, payload) => {
    const decoded = decodePublish(topic, payload);
    if (!decoded.ok) return;
    const { deviceId, message } = decoded.value;
    if (message.type !== 'cmd' || message.action !== 'hello') return;
    asked.add(deviceId);
    void publish(deviceId, 'hello', helloOf(deviceId), true).then(() =>
      publish(deviceId, 'reply', { v: 1, type: 'reply', cmdId: message.cmdId, ok: true }, false),
    );
  });
  const beat = setInterval(() => {
    for (const id of ids)
      void publish(id, 'heartbeat', { v: 1, type: 'heartbeat', boot: BOOT, uptimeMs: 1000 }, false).catch(
        () => {},
      );
  }, 2_000);
  cleanups.push(async () => {
    clearInterval(beat);
    await client.endAsync(true);
  });
  return { client, asked };
}

describe.runIf(existsSync(MOSQUITTO))(
  'a host starting under a waiting fleet, on Mosquitto’s defaults',
  () => {
    it('lists every device: those whose retained hello Mosquitto dropped are asked for it', async () => {
      const url = await privateMosquitto();
      const farm = await startFarm(url);
      const dir = mkdtempSync(join(tmpdir(), 'fv-discovery-host-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const app: App = await startApp({
        dataDir: dir,
        logger: silentLogger,
        mqtt: { url },
        adopt: 'manual',
        demo: false,
        conventions: [],
      });
      cleanups.push(() => app.stop());
      const listed = () => app.links.hub!.discovered().length;

      // The retained burst: Mosquitto's queue for the host holds 1,000 of the 3,000 messages.
      await new Promise((r) => setTimeout(r, 1_500));
      const fromBurst = listed();
      expect(fromBurst).toBeLessThan(DEVICES);

      await waitFor(
        () => listed() === DEVICES,
        120_000,
        `all ${DEVICES} listed (burst gave ${fromBurst})`,
        200,
      );
      expect(farm.asked.size).toBeGreaterThanOrEqual(DEVICES - fromBurst);
      expect(farm.asked.size).toBeLessThan(DEVICES); // the devices heard in the burst were not asked
      expect(app.links.hub!.discovered().every((d) => d.reason === 'manual')).toBe(true);
      expect(app.fleet.list()).toHaveLength(0); // listed for the operator, none adopted
    }, 180_000);
  },
);

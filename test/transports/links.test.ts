/**
 * The links layer end to end over MQTT: simulated devices (src/sim) on a real broker — the
 * embedded aedes broker always, Mosquitto at FLEETVISOR_TEST_MQTT_URL when set — and the host's
 * fleet on a real SQLite file, on the real clock. What an operator would check: devices come
 * online and go offline with their machines, telemetry lands in the store once, commands run once
 * and wait for offline devices, the broker can restart under the fleet, bad input is named.
 */
import { spawn, spawnSync } from 'node:child_process';
import { connectAsync } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { encodeMessage, type TelemetryMessage } from '../../src/transports/protocol.js';
import type { LinksHost, LinksHostOptions } from '../rig/links-rig.js';
import {
  eachBroker,
  onCleanup,
  rawClient,
  runCleanups,
  simDevice,
  startLinksHost,
} from '../rig/links-rig.js';
import { externalBrokerUrl, freePort, uniqueId, waitFor } from './helpers.js';

afterEach(runCleanups);

type App = LinksHost;

const startApp = (
  url: string,
  ids: readonly string[],
  extra: Omit<LinksHostOptions, 'ids' | 'file'> = {},
): Promise<App> => startLinksHost(url, { ids, ...extra });
const sim = simDevice;

const state = (app: App, id: string) => app.fleet.device(id)?.state;

async function commandStatus(app: App, commandId: string): Promise<string | undefined> {
  await app.fleet.commands.flush();
  const page = await app.store.queryCommands({ limit: 1000 });
  const item = page.items.find((i) => i.ok && i.value.commandId === commandId);
  return item?.ok ? item.value.status : undefined;
}

async function telemetryCount(app: App, id: string, metric: string): Promise<number> {
  const buckets = await app.store.queryTelemetry(id, metric, 0, Date.now() + 60_000, 1);
  return buckets.reduce((n, b) => n + b.count, 0);
}

const brokers = eachBroker();

describe.each(brokers)('links over MQTT ($name)', ({ url: brokerUrl }) => {
  it('a device comes online, its machine connects; its link dies, it goes offline; it returns by itself', async () => {
    const url = brokerUrl();
    const id = uniqueId('life');
    const app = await startApp(url, [id]);
    const d = await sim(url, id);
    await waitFor(() => state(app, id) === 'connected', 5000, 'connected');
    expect(app.fleet.device(id)!.link).toMatchObject({ up: true, via: 'mqtt' });
    expect(app.fleet.device(id)!.status).toMatchObject({ firmware: '1.0.0', slot: 'A', confirmed: true });
    d.dropLink(1000);
    await waitFor(() => state(app, id) === 'disconnected', 5000, 'disconnected after the will');
    expect(app.fleet.device(id)!.link).toMatchObject({
      up: false,
      reason: expect.stringContaining('offline'),
    });
    await waitFor(() => state(app, id) === 'connected', 5000, 'connected again');
  });

  it('a forged retained offline of the device’s own boot and conn does not keep a sending device offline (issue 12 §2)', async () => {
    const url = brokerUrl();
    const id = uniqueId('forged');
    const app = await startApp(url, [id]);
    const d = await sim(url, id, { telemetryIntervalMs: 300 });
    await waitFor(() => state(app, id) === 'connected', 5000, 'connected');
    // What anyone who may publish on the device's status topic can do: the device's own last will,
    // retained, while the device is still up and sending.
    const forger = await rawClient(url);
    const forged = { v: 1, type: 'status', state: 'offline', boot: d.device.boot, conn: d.conn } as const;
    await forger.publishAsync(`fleetvisor/v1/${id}/status`, Buffer.from(encodeMessage(forged)), {
      qos: 1,
      retain: true,
    });
    // The next telemetry of the current boot brings it back, and says so in its events.
    const contradictions = async () => {
      await app.links.hub!.flush();
      const page = await app.store.queryEvents({
        deviceId: id,
        kind: 'device.presenceContradiction',
        limit: 10,
      });
      return page.items.flatMap((i) => (i.ok ? [i.value.data] : []));
    };
    const deadline = Date.now() + 5000;
    while ((await contradictions()).length === 0) {
      if (Date.now() > deadline) throw new Error('no device.presenceContradiction event within 5 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await contradictions()).toEqual([
      expect.objectContaining({
        said: 'offline',
        statusBoot: forged.boot,
        statusConn: forged.conn,
        but: 'telemetry',
      }),
    ]);
    await waitFor(() => state(app, id) === 'connected', 5000, 'connected again');
    expect(app.fleet.device(id)!.link).toMatchObject({ up: true, via: 'mqtt' });
    // Commands reach it: none waits for an online that the forged status would have withheld.
    const r = await app.fleet.act(id, 'identify', { seconds: 1 }, 'ana');
    const commandId = r.ok ? r.value.commandId : '';
    await waitFor(() => app.fleet.commands.get(commandId) === undefined, 5000, 'the reply');
    expect(await commandStatus(app, commandId)).toBe('succeeded');
  });

  it('a reply is a sign of life: a device that only answers commands is not timed out (issue 12 §2)', async () => {
    const url = brokerUrl();
    const id = uniqueId('answers');
    const livenessMs = 2000;
    const app = await startApp(url, [id], { livenessTimeoutMs: livenessMs });
    // No telemetry, no heartbeat: after its hello and online, the device only answers.
    await sim(url, id, { telemetryIntervalMs: 3_600_000, heartbeatMs: 3_600_000 });
    await waitFor(() => state(app, id) === 'connected', 5000, 'connected');
    const states = new Set<string>();
    const watch = setInterval(() => states.add(state(app, id) ?? 'gone'), 10);
    try {
      // A command every half liveness, over 2.5 × liveness.
      for (let i = 0; i < 5; i++) {
        await new Promise((r) => setTimeout(r, livenessMs / 2));
        const r = await app.fleet.act(id, 'ping', {}, 'ana');
        const commandId = r.ok ? r.value.commandId : '';
        await waitFor(() => app.fleet.commands.get(commandId) === undefined, 2000, `reply ${i + 1}`);
        expect(await commandStatus(app, commandId)).toBe('succeeded');
      }
    } finally {
      clearInterval(watch);
    }
    expect([...states]).toEqual(['connected']);
    expect(app.fleet.device(id)!.link.up).toBe(true);
    // Asked nothing, it says nothing: now it is timed out, and its link says so too.
    await waitFor(() => state(app, id) === 'disconnected', livenessMs * 3, 'the liveness timeout');
    expect(app.fleet.device(id)!.link).toMatchObject({
      up: false,
      reason: expect.stringContaining('silent'),
    });
  });

  it('stores telemetry once per (boot, seq), however often it arrives', async () => {
    const url = brokerUrl();
    const id = uniqueId('tel');
    const app = await startApp(url, [id]);
    await sim(url, id, { telemetryIntervalMs: 3_600_000 }); // hello only: the test sends the telemetry
    await waitFor(() => state(app, id) === 'connected', 5000, 'connected');
    const raw = await rawClient(url);
    const t = (seq: number): TelemetryMessage => ({
      v: 1,
      type: 'telemetry',
      boot: 7,
      seq,
      ts: Date.now(),
      values: { probe: seq },
    });
    for (const seq of [1, 2, 2, 2, 3, 1])
      await raw.publishAsync(`fleetvisor/v1/${id}/telemetry`, Buffer.from(encodeMessage(t(seq))), { qos: 1 });
    await waitFor(() => (app.links.hub!.stats(id)?.duplicates ?? 0) >= 3, 5000, 'duplicates counted');
    await app.fleet.flush();
    await waitFor(() => app.links.hub!.stats(id)!.received >= 8, 5000, 'all received');
    await new Promise((r) => setTimeout(r, 100)); // the telemetry batch flushes every 20 ms
    expect(await telemetryCount(app, id, 'probe')).toBe(3);
  });

  it('a duplicate far behind the newest seq (past the hub window) is still stored once (issue 12 §5)', async () => {
    const url = brokerUrl();
    const id = uniqueId('far');
    const app = await startApp(url, [id]);
    await sim(url, id, { telemetryIntervalMs: 3_600_000 });
    await waitFor(() => state(app, id) === 'connected', 5000, 'connected');
    const raw = await rawClient(url);
    const t = (seq: number): TelemetryMessage => ({
      v: 1,
      type: 'telemetry',
      boot: 9,
      seq,
      ts: Date.now(),
      values: { far: seq },
    });
    // 150000 three times, with a jump ahead of 200000 between: the hub's window forgets it.
    const seqs = [150_000, 350_000, 150_000, 350_001, 150_000, 350_001];
    for (const seq of seqs)
      await raw.publishAsync(`fleetvisor/v1/${id}/telemetry`, Buffer.from(encodeMessage(t(seq))), { qos: 1 });
    await waitFor(() => app.links.hub!.stats(id)!.received >= seqs.length + 1, 5000, 'all received');
    await app.fleet.flush();
    await new Promise((r) => setTimeout(r, 100));
    expect(await telemetryCount(app, id, 'far')).toBe(3); // 150000, 350000, 350001: once each
  });

  it('runs a command and records the reply; the device’s setting changes', async () => {
    const url = brokerUrl();
    const id = uniqueId('cmd');
    const app = await startApp(url, [id]);
    const d = await sim(url, id, { telemetryIntervalMs: 1000 });
    await waitFor(() => state(app, id) === 'connected', 5000, 'connected');
    const r = await app.fleet.act(id, 'setInterval', { ms: 250 }, 'ana');
    expect(r).toMatchObject({ ok: true, value: { commandStatus: 'sent' } });
    const commandId = r.ok ? r.value.commandId : '';
    await waitFor(() => d.device.intervalMs === 250, 5000, 'interval applied');
    await waitFor(() => app.fleet.commands.get(commandId) === undefined, 5000, 'reply');
    expect(await commandStatus(app, commandId)).toBe('succeeded');
    expect(await app.fleet.act(id, 'setInterval', { ms: 5 }, 'ana')).toMatchObject({
      ok: false,
      error: { code: 'badArgs', message: expect.stringContaining('ms') },
    });
  });

  it('a command whose reply was lost with the link is sent again and still runs once', async () => {
    const url = brokerUrl();
    const id = uniqueId('dup');
    const app = await startApp(url, [id]);
    const d = await sim(url, id);
    await waitFor(() => state(app, id) === 'connected', 5000, 'connected');
    d.device.setFaults({ slowReplyMs: 400 }); // the reply is still on its way when the link drops
    const r = await app.fleet.act(id, 'identify', { seconds: 1 }, 'ana');
    const commandId = r.ok ? r.value.commandId : '';
    await waitFor(() => d.device.executed.get(commandId) === 1, 5000, 'executed once');
    d.dropLink(200);
    await waitFor(() => state(app, id) === 'disconnected', 5000, 'offline');
    d.device.setFaults({});
    await waitFor(() => app.fleet.commands.get(commandId) === undefined, 8000, 'the resent command answered');
    expect(await commandStatus(app, commandId)).toBe('succeeded');
    expect(d.device.executed.get(commandId)).toBe(1);
  });

  it('a command to an offline device waits, and runs once when it comes online', async () => {
    const url = brokerUrl();
    const id = uniqueId('off');
    const app = await startApp(url, [id]);
    const r = await app.fleet.act(id, 'setConfig', { mode: 'eco' }, 'ana');
    expect(r).toMatchObject({ ok: true, value: { commandStatus: 'pending' } });
    const commandId = r.ok ? r.value.commandId : '';
    expect(await commandStatus(app, commandId)).toBe('pending');
    const d = await sim(url, id);
    await waitFor(() => app.fleet.commands.get(commandId) === undefined, 8000, 'delivered and answered');
    expect(await commandStatus(app, commandId)).toBe('succeeded');
    expect(d.device.executed.get(commandId)).toBe(1);
    expect(d.device.config).toMatchObject({ mode: 'eco' });
  });

  it('a command that waits too long for its device expires, visibly, and is never sent', async () => {
    const url = brokerUrl();
    const id = uniqueId('exp');
    const app = await startApp(url, [id], { commands: { defaultTtlMs: 300 } });
    const r = await app.fleet.act(id, 'reboot', {}, 'ana');
    const commandId = r.ok ? r.value.commandId : '';
    await waitFor(() => app.fleet.commands.get(commandId) === undefined, 3000, 'expired');
    expect(await commandStatus(app, commandId)).toBe('expired');
    const d = await sim(url, id);
    await waitFor(() => state(app, id) === 'connected', 5000, 'connected');
    expect(d.device.executed.size).toBe(0);
    expect(d.device.state().reboots).toBe(0);
  });

  it('names bad input from a device and loses nothing else', async () => {
    const url = brokerUrl();
    const id = uniqueId('bad');
    const app = await startApp(url, [id]);
    await sim(url, id, { telemetryIntervalMs: 3_600_000 });
    await waitFor(() => state(app, id) === 'connected', 5000, 'connected');
    const raw = await rawClient(url);
    const topic = `fleetvisor/v1/${id}/telemetry`;
    const good: TelemetryMessage = { v: 1, type: 'telemetry', boot: 1, seq: 1, ts: 1, values: { ok: 1 } };
    await raw.publishAsync(topic, Buffer.from('{"v":1,"type":"telemetry", oops'), { qos: 1 });
    await raw.publishAsync(
      topic,
      Buffer.from('{"v":1,"type":"telemetry","boot":1,"seq":-1,"ts":1,"values":{}}'),
      {
        qos: 1,
      },
    );
    await raw.publishAsync(
      topic,
      Buffer.from(encodeMessage({ v: 1, type: 'heartbeat', boot: 1, uptimeMs: 1 })),
      {
        qos: 1,
      },
    ); // right message, wrong topic
    await raw.publishAsync(topic, Buffer.from(encodeMessage(good)), { qos: 1 });
    await waitFor(
      () => Object.keys(app.links.hub!.stats(id)?.errors ?? {}).length >= 3,
      5000,
      'errors counted',
    );
    expect(app.links.hub!.stats(id)!.errors).toMatchObject({ notJson: 1, badField: 1, wrongChannel: 1 });
    await app.links.hub!.flush();
    const events = await app.store.queryEvents({ deviceId: id, kind: 'device.badMessage', limit: 10 });
    expect(
      events.items.map((e) => (e.ok ? (e.value.data as { code: string }).code : e.error.message)).sort(),
    ).toEqual(['badField', 'notJson', 'wrongChannel']);
    await new Promise((r) => setTimeout(r, 100));
    expect(await telemetryCount(app, id, 'ok')).toBe(1);
    expect(state(app, id)).toBe('connected');
  });

  it('a device the fleet does not know waits for adoption (manual) or joins by itself (auto)', async () => {
    const url = brokerUrl();
    const a = uniqueId('new');
    const manual = await startApp(url, []);
    await sim(url, a);
    await waitFor(() => manual.links.hub!.discovered().some((d) => d.id === a), 5000, 'discovered');
    expect(manual.fleet.device(a)).toBeUndefined();
    expect(await manual.links.hub!.adopt(a)).toEqual({ ok: true });
    await waitFor(() => state(manual, a) === 'connected', 5000, 'adopted and connected');

    const b = uniqueId('auto');
    const auto = await startApp(url, [], { adopt: 'auto' });
    await sim(url, b);
    await waitFor(() => state(auto, b) === 'connected', 5000, 'auto-adopted and connected');
  });
});

/** A broker of our own that can be stopped and started on the same port, like a broker restart. */
interface RestartableBroker {
  name: string;
  start(port: number): Promise<() => Promise<void>>;
}

const restartable: RestartableBroker[] = [
  {
    name: 'embedded aedes',
    start: async (port) => {
      const b = await startEmbeddedBroker({ port });
      return () => b.close();
    },
  },
];
const hasMosquitto = spawnSync('mosquitto', ['-h'], { stdio: 'ignore' }).error === undefined;
if (hasMosquitto && externalBrokerUrl)
  restartable.push({
    name: 'Mosquitto',
    start: async (port) => {
      const p = spawn('mosquitto', ['-p', String(port)], { stdio: 'ignore' });
      await waitFor(() => p.exitCode === null, 1000);
      const probe = async () =>
        connectAsync(`mqtt://127.0.0.1:${port}`, {
          protocolVersion: 4,
          reconnectPeriod: 0,
          connectTimeout: 500,
        })
          .then((c) => c.endAsync(true).then(() => true))
          .catch(() => false);
      const deadline = Date.now() + 5000;
      while (!(await probe())) {
        if (Date.now() > deadline || p.exitCode !== null) throw new Error('mosquitto did not start');
        await new Promise((r) => setTimeout(r, 50));
      }
      return async () => {
        if (p.exitCode !== null || p.signalCode !== null) return;
        const gone = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        await gone;
      };
    },
  });

describe.each(restartable)('broker restart ($name)', ({ start }) => {
  it('every device is back after the broker restarts, with no operator action and a bounded connect rate', async () => {
    const port = await freePort();
    let stop = await start(port);
    onCleanup(() => stop());
    const url = `mqtt://127.0.0.1:${port}`;
    const ids = Array.from({ length: 5 }, () => uniqueId('rs'));
    const app = await startApp(url, ids);
    const sims = await Promise.all(ids.map((id) => sim(url, id)));
    await waitFor(() => ids.every((id) => state(app, id) === 'connected'), 8000, 'all connected');
    const reconnectsBefore = app.links.mqtt!.stats().reconnects;
    await stop();
    // All offline, and the host's own broker drop is the reason (issue 12 §2), also for a device
    // whose will the broker sent as it shut down, just before the host's connection dropped.
    const hostDrop = /^the host lost its broker connection/;
    await waitFor(
      () =>
        ids.every(
          (id) => state(app, id) === 'disconnected' && hostDrop.test(app.fleet.device(id)!.link.reason ?? ''),
        ),
      5000,
      "all offline, the host's broker drop as the reason",
    );
    const outageMs = 1500;
    await new Promise((r) => setTimeout(r, outageMs));
    stop = await start(port);
    await waitFor(() => ids.every((id) => state(app, id) === 'connected'), 10_000, 'all back');
    // Backoff: 50 ms doubling to 300 ms, with jitter, over ~1.5 s is at most a dozen attempts;
    // a reconnect storm (one per few ms) would be hundreds.
    const attempts = app.links.mqtt!.stats().reconnects - reconnectsBefore;
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(attempts).toBeLessThanOrEqual(Math.ceil(outageMs / 50) + 5);
    for (const s of sims) expect(s.stats.connects).toBeLessThanOrEqual(1 + Math.ceil(outageMs / 100) + 5);
  });
});

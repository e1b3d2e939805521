/**
 * One broker connection for the host's own protocol and Homie (issue 11 §2): the app's MQTT link
 * carries the Homie bridge as a topic-filter handler, so a host with native and Homie devices holds
 * one connection (two with Sparkplug, whose STATE will needs a session of its own). Real parts: the
 * whole app (startApp) on a real SQLite file, a simulated native device (src/sim), a real Homie
 * device (the npm `homie-device` peer in a child process), and a broker we can restart and whose
 * clients we can count: the embedded aedes with the app's broker accounts (so the host's account
 * reads `<base>/+/#` and publishes Homie sets through its ACL; its connected client ids), and — when
 * FLEETVISOR_TEST_MQTT_URL says Mosquitto is there — a private Mosquitto on a free port, counted
 * through `$SYS/broker/clients/connected` (the shared one at that URL counts other tests' clients
 * too, and restarting it would cut them off).
 */
import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { HomieBridge } from '../../src/conventions/homie/homie-bridge.js';
import { homieConvention } from '../../src/conventions/homie/homie-bridge.js';
import { sparkplugConvention } from '../../src/conventions/sparkplug/sparkplug-bridge.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import { startMqttSimDevice } from '../../src/sim/mqtt-device.js';
import type { BrokerAccounts } from '../../src/transports/broker-accounts.js';
import { openBrokerAccounts } from '../../src/transports/broker-accounts.js';
import type { DeviceConvention } from '../../src/transports/broker-acl.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { MqttTopicHandlers } from '../../src/transports/mqtt-topic-handlers.js';
import { onCleanup, runCleanups, startPeer } from '../conventions/homie-helpers.js';
import { actWhenDescribed, externalBrokerUrl, freePort, uniqueId, waitFor } from './helpers.js';

const FAST_RECONNECT = { initialMs: 50, maxMs: 300, jitter: 0.5, stableMs: 2000 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(runCleanups);

/** A broker on `port` that can be stopped and started again there, and that counts its clients. */
interface CountingBroker {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Clients connected now, the test's own probe not counted. */
  connected(): Promise<number>;
  /** Their client ids, where the broker tells them (aedes). homie-device picks its own (`mqttjs_…`). */
  clientIds?(): string[];
  /** Where the broker asks for accounts (aedes): the host's, and a device's issued on demand. */
  readonly accounts?: BrokerAccounts;
}

interface BrokerKind {
  readonly name: string;
  make(port: number): CountingBroker;
}

const aedesKind: BrokerKind = {
  name: 'embedded aedes',
  make(port) {
    let broker: Awaited<ReturnType<typeof startEmbeddedBroker>> | undefined;
    const ids = new Set<string>();
    const dir = mkdtempSync(join(tmpdir(), 'fv-shared-conn-accounts-'));
    onCleanup(() => rmSync(dir, { recursive: true, force: true }));
    const accounts = openBrokerAccounts(dir);
    return {
      accounts,
      async start() {
        ids.clear();
        const b = await startEmbeddedBroker({ port, auth: accounts, accountsRefreshMs: 100 });
        b.aedes.on('client', (c) => ids.add(c.id));
        b.aedes.on('clientDisconnect', (c) => ids.delete(c.id));
        broker = b;
      },
      async stop() {
        await broker?.close();
        broker = undefined;
      },
      async connected() {
        const n = broker?.aedes.connectedClients ?? 0;
        expect(n).toBe(ids.size); // the broker's own count and the ids we saw agree
        return n;
      },
      clientIds: () => [...ids].sort(),
    };
  },
};

const hasMosquitto = spawnSync('mosquitto', ['-h'], { stdio: 'ignore' }).error === undefined;

const mosquittoKind: BrokerKind = {
  name: 'Mosquitto',
  make(port) {
    const dir = mkdtempSync(join(tmpdir(), 'fv-shared-conn-'));
    onCleanup(() => rmSync(dir, { recursive: true, force: true }));
    const conf = join(dir, 'mosquitto.conf');
    // $SYS every second (the default is 10 s); no persistence, so nothing outlives the test.
    writeFileSync(
      conf,
      ['persistence false', 'sys_interval 1', 'allow_anonymous true', `listener ${port} 127.0.0.1`, ''].join(
        '\n',
      ),
    );
    let proc: ChildProcess | undefined;
    let probe: MqttClient | undefined;
    let latest: { value: number; at: number } | undefined;
    return {
      async start() {
        const p = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
        proc = p;
        const deadline = Date.now() + 5000;
        for (;;) {
          const c = await connectAsync(`mqtt://127.0.0.1:${port}`, {
            protocolVersion: 4,
            reconnectPeriod: 0,
            connectTimeout: 500,
            clientId: uniqueId('fv-probe'),
          }).catch(() => undefined);
          if (c) {
            probe = c;
            break;
          }
          if (Date.now() > deadline || p.exitCode !== null) throw new Error('mosquitto did not start');
          await sleep(50);
        }
        probe.on('error', () => {});
        probe.on('message', (_t, payload) => {
          latest = { value: Number(payload.toString()), at: Date.now() };
        });
        await probe.subscribeAsync('$SYS/broker/clients/connected');
      },
      async stop() {
        await probe?.endAsync(true);
        probe = undefined;
        latest = undefined;
        const p = proc;
        proc = undefined;
        if (!p || p.exitCode !== null || p.signalCode !== null) return;
        const gone = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        await gone;
      },
      async connected() {
        // Mosquitto publishes the count (retained) when it changed, at most once a `sys_interval`:
        // after two intervals the last value is the current one.
        await sleep(2200);
        if (!latest) throw new Error('no $SYS/broker/clients/connected from mosquitto');
        return latest.value - 1; // the probe
      },
    };
  },
};

const kinds: BrokerKind[] = [aedesKind];
if (hasMosquitto && externalBrokerUrl) kinds.push(mosquittoKind);

/** The app as `fleetvisor serve` starts it, on `url`, with the given conventions; stopped after the test. */
async function app(
  url: string,
  hostId: string,
  conventions: Parameters<typeof startApp>[0]['conventions'],
  account?: BrokerAccounts['host'],
) {
  const dir = mkdtempSync(join(tmpdir(), 'fv-shared-conn-app-'));
  const a = await startApp({
    dataDir: dir,
    logger: silentLogger,
    mqtt: {
      url,
      clientId: hostId,
      ...account,
      reconnect: FAST_RECONNECT,
      connectTimeoutMs: 1000,
      keepaliveMs: 5000,
    },
    demo: false,
    adopt: 'auto',
    conventions,
  });
  onCleanup(async () => {
    await a.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return a;
}

function homieBridgeOf(a: App): HomieBridge {
  const child = a.links.supervisor?.whichChildren().find((c) => c.id === 'homie');
  if (!child?.process) throw new Error('no homie bridge under links');
  return child.process as HomieBridge;
}

/** A command to the device, waited for to its end: the final status. */
async function command(a: App, id: string, action: string, args: Record<string, unknown>): Promise<string> {
  const r = await actWhenDescribed(a.fleet, id, action, args, 'ana');
  if (!r.ok) throw new Error(`${action} on ${id}: ${r.error.code} ${r.error.message}`);
  return (await a.fleet.commands.settled(r.value.commandId)).status;
}

describe.each(kinds)('the host on one broker connection ($name)', (kind) => {
  it('native and Homie devices through one connection, both back after a broker restart', async () => {
    const port = await freePort();
    const url = `mqtt://127.0.0.1:${port}`;
    const broker = kind.make(port);
    await broker.start();
    onCleanup(() => broker.stop());
    const hostId = uniqueId('fv-host');
    const homieId = uniqueId('fv-homie');
    const base = `fv-${uniqueId('shared')}`;
    const a = await app(
      url,
      hostId,
      [homieConvention({ baseTopic: base, clientId: homieId, statusDelayMs: 20, reconnect: FAST_RECONNECT })],
      broker.accounts?.host,
    );
    const bridge = homieBridgeOf(a);
    await waitFor(() => a.links.mqtt?.stats().connected === true, 10_000, 'the link connected');
    await waitFor(() => bridge.stats().connected, 10_000, 'the Homie bridge receiving');
    // The host's standing connections: with an account on an external broker, the host's start-up
    // pass of broker accounts (src/host/app/broker-accounts-sync.ts) holds a short-lived client of
    // its own until the broker answers or its control call times out; it is not one of them.
    let standing = await broker.connected();
    for (const deadline = Date.now() + 15_000; standing !== 1 && Date.now() < deadline; ) {
      await sleep(100);
      standing = await broker.connected();
    }
    expect(standing).toBe(1);
    if (broker.clientIds) expect(broker.clientIds()).toEqual([hostId]);
    // The host's clients are the ones named `fv-…` here: the link's, and no Homie client.
    const hostClients = () => broker.clientIds?.().filter((c) => c.startsWith('fv-'));

    const nativeId = uniqueId('nat');
    const homieDevice = uniqueId('hom');
    const account = (id: string, rights?: DeviceConvention) =>
      broker.accounts ? { username: id, password: broker.accounts.issueDevice(id, rights) } : {};
    const sim = await startMqttSimDevice(url, {
      id: nativeId,
      ...account(nativeId),
      telemetryIntervalMs: 200,
      reconnectMinMs: 100,
      reconnectMaxMs: 500,
    });
    onCleanup(() => sim.stop());
    const peer = await startPeer(url, {
      id: homieDevice,
      base,
      ...account(homieDevice, { convention: 'homie', base }),
    });
    onCleanup(() => peer.kill());
    const state = (id: string) => a.fleet.device(id)?.state;
    const bothConnected = () => state(nativeId) === 'connected' && state(homieDevice) === 'connected';
    await waitFor(bothConnected, 15_000, 'both devices connected');
    expect(await broker.connected()).toBe(3); // the host and the two devices
    if (broker.clientIds) expect(hostClients()).toEqual([hostId]);
    expect(await command(a, nativeId, 'ping', {})).toBe('succeeded');
    expect(await command(a, homieDevice, 'set', { node: 'sensor', property: 'count', value: 7 })).toBe(
      'succeeded',
    );
    expect(peer.events).toContainEqual({ event: 'set', node: 'sensor', property: 'count', value: '7' });

    await broker.stop();
    await waitFor(
      () => state(nativeId) !== 'connected' && state(homieDevice) !== 'connected',
      5000,
      'both devices down with the broker',
    );
    await waitFor(
      () => !bridge.stats().connected && a.links.mqtt?.stats().connected === false,
      5000,
      'the link and the Homie bridge down',
    );
    await sleep(500);
    await broker.start();
    await waitFor(bothConnected, 15_000, 'both devices back');
    expect(await broker.connected()).toBe(3);
    if (broker.clientIds) expect(hostClients()).toEqual([hostId]);
    expect(await command(a, nativeId, 'ping', {})).toBe('succeeded');
    expect(await command(a, homieDevice, 'set', { node: 'sensor', property: 'count', value: 8 })).toBe(
      'succeeded',
    );
  }, 90_000);
});

describe('the host with Sparkplug too (embedded aedes)', () => {
  it('holds two connections: the link with Homie, and Sparkplug with its STATE will', async () => {
    const port = await freePort();
    const url = `mqtt://127.0.0.1:${port}`;
    const broker = aedesKind.make(port);
    await broker.start();
    onCleanup(() => broker.stop());
    const hostId = uniqueId('fv-host');
    const sparkplugId = uniqueId('fv-spb');
    const a = await app(
      url,
      hostId,
      [
        homieConvention({ baseTopic: `fv-${uniqueId('shared')}`, clientId: uniqueId('fv-homie') }),
        sparkplugConvention({ hostId: uniqueId('fvhost'), clientId: sparkplugId }),
      ],
      broker.accounts?.host,
    );
    await waitFor(() => homieBridgeOf(a).stats().connected, 10_000, 'the Homie bridge receiving');
    // The start-up pass of broker accounts holds a short-lived client of its own (see above).
    await waitFor(
      () => JSON.stringify(broker.clientIds?.()) === JSON.stringify([hostId, sparkplugId].sort()),
      15_000,
      'the two standing host clients',
    ).catch(() => undefined);
    await sleep(300);
    expect(broker.clientIds?.()).toEqual([hostId, sparkplugId].sort());
  }, 60_000);
});

describe('kills from the tree (embedded aedes)', () => {
  it('a killed Homie bridge rejoins the live link; a killed link brings Homie back on its successor', async () => {
    const port = await freePort();
    const url = `mqtt://127.0.0.1:${port}`;
    const broker = aedesKind.make(port);
    await broker.start();
    onCleanup(() => broker.stop());
    const hostId = uniqueId('fv-host');
    const base = `fv-${uniqueId('shared')}`;
    const a = await app(
      url,
      hostId,
      [homieConvention({ baseTopic: base, statusDelayMs: 20 })],
      broker.accounts?.host,
    );
    const id = uniqueId('hom');
    const secret = broker.accounts?.issueDevice(id, { convention: 'homie', base });
    const peer = await startPeer(url, { id, base, username: id, password: secret });
    onCleanup(() => peer.kill());
    await waitFor(() => a.fleet.device(id)?.state === 'connected', 15_000, 'the Homie device connected');
    const hostClients = () => broker.clientIds?.().filter((c) => c.startsWith('fv-'));
    expect(hostClients()).toEqual([hostId]);

    // The bridge leaves the link's connection and its successor joins it: the link never drops.
    const link = a.links.mqtt!;
    const linkReconnects = link.stats().reconnects;
    const bridge = homieBridgeOf(a);
    bridge.kill();
    await waitFor(
      () => homieBridgeOf(a) !== bridge && homieBridgeOf(a).stats().connected,
      5000,
      'a new bridge',
    );
    await waitFor(
      () => a.fleet.device(id)?.state === 'connected',
      10_000,
      'the device seen by the new bridge',
    );
    expect(a.links.mqtt).toBe(link);
    expect(link.stats().reconnects).toBe(linkReconnects);
    expect(hostClients()).toEqual([hostId]);
    expect(await command(a, id, 'set', { node: 'sensor', property: 'count', value: 3 })).toBe('succeeded');

    // The link's successor carries the same bridge: it is subscribed again and hears its device.
    const again = homieBridgeOf(a);
    link.kill();
    await waitFor(
      () => a.links.mqtt !== link && a.links.mqtt?.stats().connected === true,
      5000,
      'a new link',
    );
    await waitFor(
      () => again.stats().connected && again.stats().reconnects === 1,
      5000,
      'Homie subscribed again',
    );
    expect(homieBridgeOf(a)).toBe(again);
    await waitFor(() => a.fleet.device(id)?.state === 'connected', 10_000, 'the device back');
    await waitFor(() => hostClients()?.length === 1, 5000, 'the old link gone');
    expect(hostClients()).toEqual([hostId]);
    expect(await command(a, id, 'set', { node: 'sensor', property: 'count', value: 4 })).toBe('succeeded');
  }, 60_000);
});

describe('the handler table on its own', () => {
  const packet = (topic: string) =>
    ({ cmd: 'publish', topic, payload: Buffer.alloc(0), qos: 0, dup: false, retain: false }) as const;

  it('routes a publish to the handler whose filter matches, and counts what nobody takes', () => {
    const table = new MqttTopicHandlers({ url: 'mqtt://127.0.0.1:1883', username: 'host', password: 'p' });
    const got: string[] = [];
    const hooks = (name: string, filter: string) => ({
      subscriptions: () => ({ [filter]: { qos: 1 as const } }),
      onMessage: (topic: string) => got.push(`${name} ${topic}`),
      onReady: () => {},
      onDropped: () => {},
    });
    const homie = table.share({ label: 'homie', hooks: hooks('homie', 'homie/+/#') });
    const other = table.share({ label: 'other', hooks: hooks('other', 'plant/+/status') });
    homie.open(); // no link bound yet: it waits for the link's CONNACK
    other.open();
    expect(homie.state).toBe('backoff');
    expect(table.filters()).toEqual({ 'homie/+/#': { qos: 1 }, 'plant/+/status': { qos: 1 } });
    for (const t of ['homie/boiler/$state', 'homie/boiler', 'plant/p1/status', 'plant/p1/status/x', 'x/y'])
      table.route(t, Buffer.alloc(0), packet(t));
    // `#` matches its parent level too (MQTT 3.1.1 §4.7.1.2); `+` one level only.
    expect(got).toEqual(['homie homie/boiler/$state', 'homie homie/boiler', 'other plant/p1/status']);
    expect(table.unclaimed).toBe(2); // the deeper plant topic, x/y
    homie.kill();
    expect(homie.state).toBe('closed');
    table.route('homie/boiler/$state', Buffer.alloc(0), packet('homie/boiler/$state'));
    expect(table.unclaimed).toBe(3);
    expect(table.size).toBe(1);
  });

  it('carries a bridge set for the same broker and account only', () => {
    const table = new MqttTopicHandlers({ url: 'mqtt://127.0.0.1:1883', username: 'host', password: 'p' });
    expect(table.carries({ url: 'mqtt://127.0.0.1:1883', username: 'host', password: 'p' })).toBe(true);
    expect(table.carries({ url: 'mqtt://127.0.0.1:1884', username: 'host', password: 'p' })).toBe(false);
    expect(table.carries({ url: 'mqtt://127.0.0.1:1883', username: 'other', password: 'p' })).toBe(false);
    expect(table.carries({ url: 'mqtt://127.0.0.1:1883', username: 'host', password: 'x' })).toBe(false);
    expect(
      table.carries({
        url: 'mqtt://127.0.0.1:1883',
        username: 'host',
        password: 'p',
        rejectUnauthorized: false,
      }),
    ).toBe(false);
    expect(table.carries(undefined)).toBe(false);
  });
});

/**
 * Broker accounts for Homie and Sparkplug devices (issue 12 §1): the app bridges them on its own
 * broker, so they get accounts whose ACL is as tight as a native device's. Real parts: the
 * embedded aedes broker with the app's accounts, a real Homie device (homie-device, in a child
 * process), Eclipse Tahu's Sparkplug client, the app's Homie and Sparkplug bridges on a fleet with
 * a SQLite file; and a real Mosquitto with the files `fleetvisor broker` generates, when installed.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IClientOptions, MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import sparkplugClient from 'sparkplug-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { HomieBridge } from '../../src/conventions/homie/homie-bridge.js';
import { homieConvention } from '../../src/conventions/homie/homie-bridge.js';
import type { SparkplugBridge } from '../../src/conventions/sparkplug/sparkplug-bridge.js';
import { sparkplugConvention } from '../../src/conventions/sparkplug/sparkplug-bridge.js';
import { sparkplugFleetId } from '../../src/conventions/sparkplug/sparkplug-kind.js';
import type { Fleet } from '../../src/devices/fleet.js';
import { createFleet } from '../../src/devices/fleet.js';
import { runBrokerCli } from '../../src/host/broker-cli.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { BrokerAccounts } from '../../src/transports/broker-accounts.js';
import { openBrokerAccounts } from '../../src/transports/broker-accounts.js';
import { mosquittoDynsecConf } from '../../src/transports/broker-accounts-dynsec.js';
import type { BrokerPrincipal } from '../../src/transports/broker-acl.js';
import { HOST_USERNAME, mayPublish, maySubscribe, mosquittoAcl } from '../../src/transports/broker-acl.js';
import type { EmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import type { DeviceId } from '../../src/transports/protocol.js';
import { onCleanup, runCleanups, startPeer } from '../conventions/homie-helpers.js';
import { tempDir } from '../store/helpers.js';
import { freePort, uniqueId, waitFor } from './helpers.js';

const MOSQUITTO = '/usr/sbin/mosquitto';
const FAST_RECONNECT = { initialMs: 50, maxMs: 300, jitter: 0.5, stableMs: 2000 };
/** The fleet id of a Sparkplug node or device. */
function fleetId(group: string, node: string, device?: string): string {
  const id = sparkplugFleetId(group, node, device);
  if (!id.ok) throw new Error(`no fleet id for ${group}/${node}/${device}: ${id.error}`);
  return id.value;
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(runCleanups);

let dataDir: string;
let accounts: BrokerAccounts;
let aedes: EmbeddedBroker;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'fv-broker-conv-'));
  accounts = openBrokerAccounts(dataDir);
  aedes = await startEmbeddedBroker({ port: 0, auth: accounts, accountsRefreshMs: 100 });
});
afterAll(async () => {
  await aedes?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/**
 * A broker to run a scenario on: its URL once `ready` (Mosquitto reads its password and ACL files
 * at start, so a scenario issues its accounts first), and its accounts.
 */
interface Target {
  readonly name: string;
  readonly accounts: () => BrokerAccounts;
  ready(): Promise<string>;
}
let current: BrokerAccounts;
const host = () => ({ username: HOST_USERNAME, password: current.host.password });

async function client(url: string, options: IClientOptions): Promise<MqttClient> {
  const c = await connectAsync(url, {
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...options,
  });
  c.on('error', () => {});
  onCleanup(() => c.endAsync(true));
  return c;
}

async function refusedWith(url: string, options: IClientOptions): Promise<number> {
  try {
    const c = await connectAsync(url, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...options,
    });
    await c.endAsync(true);
    return 0;
  } catch (error) {
    return (error as { code?: number }).code ?? -1;
  }
}

/** The host, subscribed to everything, recording what arrives (topic → payloads). */
async function hostSpy(url: string): Promise<Map<string, string[]>> {
  const seen = new Map<string, string[]>();
  const spy = await client(url, { clientId: uniqueId('fleetvisor-spy'), ...host() });
  spy.on('message', (t, p) => seen.set(t, [...(seen.get(t) ?? []), p.toString()]));
  await spy.subscribeAsync(['#', '$broadcast/#'], { qos: 0 });
  return seen;
}

/**
 * Connects with `creds`, publishes `allowed` (which must arrive: the control) and then each of
 * `forbidden` from a fresh connection (aedes drops a client after a refused publish); returns the
 * forbidden topics that reached the host.
 */
async function leaks(
  url: string,
  creds: IClientOptions,
  allowed: string,
  forbidden: readonly string[],
): Promise<string[]> {
  const seen = await hostSpy(url);
  const marker = uniqueId('m');
  const c = await client(url, creds);
  c.publish(allowed, marker, { qos: 0 });
  await waitFor(
    () => seen.get(allowed)?.includes(marker) === true,
    5000,
    `the allowed publish on ${allowed}`,
  );
  await c.endAsync(true);
  for (const topic of forbidden) {
    const attacker = await client(url, creds);
    attacker.publish(topic, marker, { qos: 0, retain: true });
    await sleep(150);
    await attacker.endAsync(true);
  }
  await sleep(200);
  return forbidden.filter((t) => seen.get(t)?.includes(marker) === true);
}

async function startBridgeApp<B>(
  url: string,
  convention: ReturnType<typeof homieConvention> | ReturnType<typeof sparkplugConvention>,
): Promise<{ fleet: Fleet; bridge: B }> {
  const tmp = tempDir();
  onCleanup(tmp.cleanup);
  const store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 20 });
  const runtime = createRuntime({});
  const fleet = createFleet({ runtime, store, kinds: convention.kinds, reconcileIntervalMs: 0 });
  await fleet.start();
  const bridge = await convention.start({ runtime, fleet, store, broker: { url, ...host() } });
  onCleanup(async () => {
    await bridge.stop();
    await fleet.stop();
    await store.close();
    runtime.dispose();
  });
  return { fleet, bridge: bridge as B };
}

/** A real Homie device with its account, seen by the app's bridge; what it may not publish. */
async function homieScenario(target: Target): Promise<void> {
  const accounts = target.accounts();
  current = accounts;
  const id = uniqueId('hm');
  const other = uniqueId('ho');
  const secret = accounts.issueDevice(id, { convention: 'homie', base: 'homie' });
  accounts.issueDevice(other, { convention: 'homie', base: 'homie' });
  const native = uniqueId('pn');
  accounts.issueDevice(native);
  const url = await target.ready();

  // Without its account, the peer is kept out.
  expect(
    await refusedWith(url, { clientId: uniqueId('mqttjs_'), username: id, password: 'guess' }),
  ).toBeGreaterThan(0);

  const app = await startBridgeApp<HomieBridge>(
    url,
    homieConvention({
      adopt: 'auto',
      reconnect: FAST_RECONNECT,
      connectTimeoutMs: 1000,
      keepaliveMs: 5000,
      statusDelayMs: 20,
    }),
  );
  await waitFor(() => app.bridge.stats().connected, 5000, 'the Homie bridge connected');
  // homie-device picks a random client id: a convention account may, unlike a native one.
  const peer = await startPeer(url, { id, base: 'homie', username: id, password: secret });
  await waitFor(() => app.fleet.device(id)?.state === 'connected', 10_000, 'the Homie device connected');

  const leaked = await leaks(
    url,
    { clientId: uniqueId('mqttjs_'), username: id, password: secret },
    `homie/${id}/sensor/temperature`,
    [
      `homie/${other}/$state`,
      `homie/${other}/sensor/temperature`,
      `homie/${id}/sensor/count/set`,
      'homie/$broadcast/alert',
      `fleetvisor/v1/${native}/cmd`,
      `fleetvisor/v1/${id}/hello`,
      `spBv1.0/g/NBIRTH/${id}`,
    ],
  );
  expect(leaked).toEqual([]);
  // Its will (`$state` = lost, retained) is its own topic: the broker publishes it for the account.
  await peer.kill();
  await waitFor(() => app.fleet.device(id)?.state === 'lost', 6000, 'lost after its will');
}

const aedesTarget: Target = {
  name: 'aedes',
  accounts: () => accounts,
  ready: async () => aedes.url,
};

describe('broker accounts for Homie and Sparkplug devices (aedes)', () => {
  it('a Homie device connects with its account and the app sees it; it cannot speak for another Homie device, set its own properties, or send a native command', () =>
    homieScenario(aedesTarget));
  it("a Sparkplug node (Tahu's client) with its account is born in the app; it cannot publish another node's topics or commands", () =>
    sparkplugScenario(aedesTarget));

  it("a Homie account reads its own device and the broadcasts, not another device's nor '#'", async () => {
    const url = aedes.url;
    const id = uniqueId('hm');
    const secret = accounts.issueDevice(id, { convention: 'homie', base: 'homie' });
    const c = await client(url, { clientId: uniqueId('mqttjs_'), username: id, password: secret });
    const granted = async (filter: string) => {
      try {
        return (await c.subscribeAsync(filter, { qos: 1 }))[0]?.qos;
      } catch (error) {
        return (error as { packet?: { granted?: number[] } }).packet?.granted?.[0];
      }
    };
    expect(await granted(`homie/${id}/#`)).toBe(1);
    expect(await granted(`homie/${id}/+/+/set`)).toBe(1);
    expect(await granted('homie/$broadcast/#')).toBe(1);
    expect(await granted('#')).toBe(128);
    expect(await granted('homie/#')).toBe(128);
    expect(await granted('homie/+/+/+/set')).toBe(128);
    expect(await granted(`fleetvisor/v1/${id}/cmd`)).toBe(128);
  });

  it("a convention account may not take another account's client id or the host's", async () => {
    const url = aedes.url;
    const id = uniqueId('hm');
    const native = uniqueId('pn');
    const secret = accounts.issueDevice(id, { convention: 'homie', base: 'homie' });
    accounts.issueDevice(native);
    expect(await refusedWith(url, { clientId: native, username: id, password: secret })).toBe(5);
    expect(await refusedWith(url, { clientId: 'fleetvisor-homie', username: id, password: secret })).toBe(5);
    expect(await refusedWith(url, { clientId: id, username: id, password: secret })).toBe(0);
  });
});

/** Tahu's client as an edge node with its account, born in the app; what it may not publish. */
async function sparkplugScenario(target: Target): Promise<void> {
  const accounts = target.accounts();
  current = accounts;
  const group = uniqueId('g');
  const node = uniqueId('n');
  const account = uniqueId('sp');
  const secret = accounts.issueDevice(account, { convention: 'sparkplug', group, node });
  const hostId = uniqueId('host');
  const url = await target.ready();
  const app = await startBridgeApp<SparkplugBridge>(
    url,
    sparkplugConvention({
      adopt: 'auto',
      hostId,
      keepaliveMs: 5000,
      reconnect: FAST_RECONNECT,
    }),
  );
  await waitFor(() => app.bridge.stats().connected, 5000, 'the Sparkplug bridge connected');

  const tahu = sparkplugClient.newClient({
    serverUrl: url,
    username: account,
    password: secret,
    groupId: group,
    edgeNode: node,
    clientId: `${group}-${node}`,
    keepalive: 2,
    publishDeath: true,
    mqttOptions: { reconnectPeriod: 500 },
  });
  tahu.on('error', () => {});
  onCleanup(() => tahu.stop());
  tahu.on('birth', () => {
    const now = Date.now();
    tahu.publishNodeBirth({
      timestamp: now,
      metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: false }],
    });
    tahu.publishDeviceBirth('dev1', {
      timestamp: now,
      metrics: [{ name: 'temperature', type: 'Float', value: 21.5 }],
    });
  });
  await waitFor(
    () => app.fleet.device(fleetId(group, node))?.state === 'connected',
    10_000,
    'the Sparkplug node born in the fleet',
  );
  await waitFor(
    () => app.fleet.device(fleetId(group, node, 'dev1')) !== undefined,
    10_000,
    'its device born in the fleet',
  );

  const creds = { clientId: uniqueId('spc'), username: account, password: secret };
  const leaked = await leaks(url, creds, `spBv1.0/${group}/DDATA/${node}/dev9`, [
    `spBv1.0/${group}/NBIRTH/other`,
    `spBv1.0/${group}/DDATA/other/dev1`,
    `spBv1.0/other/NDATA/${node}`,
    `spBv1.0/${group}/NCMD/${node}`,
    `spBv1.0/${group}/DCMD/${node}/dev1`,
    `spBv1.0/STATE/${hostId}`,
    `spBv1.0/${group}/DDATA/${node}/dev1/extra`,
    `fleetvisor/v1/${account}/hello`,
  ]);
  expect(leaked).toEqual([]);
  // Its will, NDEATH, is its own topic: cut its connection and the broker publishes it for the account.
  const nodeId = fleetId(group, node);
  const deaths = app.fleet.device(nodeId)?.link;
  (tahu as unknown as { client: MqttClient }).client.stream.destroy();
  await waitFor(
    () =>
      app.fleet.device(nodeId)?.link !== deaths &&
      /NDEATH/.test(String(app.fleet.device(nodeId)?.link?.reason)),
    6000,
    'the node’s NDEATH seen by the app',
  );
}

describe('the convention ACL, one table for aedes and Mosquitto', () => {
  const homie: BrokerPrincipal = {
    role: 'device',
    id: 'boiler' as DeviceId,
    via: 'account',
    rights: { convention: 'homie', base: 'homie' },
  };
  const sp: BrokerPrincipal = {
    role: 'device',
    id: 'line3' as DeviceId,
    via: 'account',
    rights: { convention: 'sparkplug', group: 'plant', node: 'n1' },
  };
  it('Homie: its own attributes, values and will; never a set, a wildcard, another device', () => {
    for (const t of [
      'homie/boiler/$state',
      'homie/boiler/$fw/name',
      'homie/boiler/$stats/uptime',
      'homie/boiler/$implementation/version',
      'homie/boiler/sensor/$properties',
      'homie/boiler/sensor/temperature',
      'homie/boiler/sensor/temperature/$datatype',
    ])
      expect(mayPublish(homie, t), t).toEqual({ ok: true });
    for (const t of [
      'homie/boiler/sensor/temperature/set',
      'homie/boiler2/$state',
      'homie/other/$state',
      'homie/boiler/+',
      'homie/boiler/a/b/c/d',
      'homie/$broadcast/x',
      'fleetvisor/v1/boiler/telemetry',
    ])
      expect(mayPublish(homie, t).ok, t).toBe(false);
  });
  it('Sparkplug: its node and devices; its commands and STATE to read', () => {
    for (const t of ['spBv1.0/plant/NBIRTH/n1', 'spBv1.0/plant/NDEATH/n1', 'spBv1.0/plant/DDATA/n1/d'])
      expect(mayPublish(sp, t), t).toEqual({ ok: true });
    for (const t of ['spBv1.0/plant/NCMD/n1', 'spBv1.0/plant/NBIRTH/n2', 'spBv1.0/plant/DDATA/n1', 'STATE/x'])
      expect(mayPublish(sp, t).ok, t).toBe(false);
    for (const f of [
      'spBv1.0/plant/NCMD/n1',
      'spBv1.0/plant/NCMD/n1/#',
      'spBv1.0/plant/DCMD/n1/+',
      'spBv1.0/plant/DCMD/n1/#',
      'spBv1.0/STATE/+',
      'spBv1.0/STATE/scada',
      'STATE/+',
    ])
      expect(maySubscribe(sp, f), f).toEqual({ ok: true });
    for (const f of [
      '#',
      'spBv1.0/#',
      'spBv1.0/plant/NCMD/+',
      'spBv1.0/+/DCMD/n1/#',
      'spBv1.0/plant/NDATA/n1',
    ])
      expect(maySubscribe(sp, f).ok, f).toBe(false);
  });
});

describe('convention accounts in the accounts file', () => {
  it('survive a reopen; a file with a bad convention is refused with the device named; a change of convention ends the old session', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fv-broker-conv-file-'));
    onCleanup(() => rmSync(dir, { recursive: true, force: true }));
    const acc = openBrokerAccounts(dir);
    const secret = acc.issueDevice('line3', { convention: 'sparkplug', group: 'plant', node: 'n1' });
    const verified = await acc.verify('line3', Buffer.from(secret), 'any-client');
    expect(verified).toMatchObject({
      ok: true,
      value: { role: 'device', rights: { convention: 'sparkplug', group: 'plant', node: 'n1' } },
    });
    expect(openBrokerAccounts(dir).devices()[0]?.convention).toEqual({
      convention: 'sparkplug',
      group: 'plant',
      node: 'n1',
    });
    expect(() => acc.issueDevice('x1', { convention: 'sparkplug', group: 'STATE', node: 'n' })).toThrow(
      /sparkplug group/,
    );
    // Made a Homie account: the Sparkplug session verified before no longer holds.
    const at = Date.now();
    await sleep(2);
    acc.issueDevice('line3', { convention: 'homie', base: 'homie' });
    if (!verified.ok) throw new Error('line3 was not verified');
    expect(acc.stillValid(verified.value, at)).toBe(false);
    const file = join(dir, 'broker-accounts.json');
    const json = JSON.parse(readFileSync(file, 'utf8')) as {
      devices: Record<string, { convention?: unknown }>;
    };
    json.devices.line3 = {
      ...json.devices.line3,
      convention: { convention: 'sparkplug', group: 'a/b', node: 'n' },
    };
    writeFileSync(file, JSON.stringify(json));
    expect(() => openBrokerAccounts(dir)).toThrow(/device line3: sparkplug group/);
  });
});

describe('fleetvisor broker: convention accounts on the command line', () => {
  const run = (dir: string, ...argv: string[]) => {
    let out = '';
    let err = '';
    const code = runBrokerCli(
      [...argv, '--data-dir', dir],
      {},
      {
        out: (t) => {
          out += t;
        },
        err: (t) => {
          err += t;
        },
      },
    );
    return { code, out, err };
  };

  it('adds Homie and Sparkplug accounts, refuses bad options with the field named, and writes their user blocks', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fv-broker-conv-cli-'));
    onCleanup(() => rmSync(dir, { recursive: true, force: true }));
    expect(run(dir, 'device', 'add', 'boiler', '--convention', 'homie')).toMatchObject({ code: 0 });
    expect(
      run(dir, 'device', 'add', 'line3', '--convention', 'sparkplug', '--group', 'plant', '--node', 'n1'),
    ).toMatchObject({ code: 0 });
    expect(run(dir, 'device', 'add', 'x1', '--convention', 'sparkplug', '--group', 'plant')).toMatchObject({
      code: 2,
      err: expect.stringContaining('needs --group and --node'),
    });
    expect(
      run(dir, 'device', 'add', 'x1', '--convention', 'sparkplug', '--group', 'pl+nt', '--node', 'n'),
    ).toMatchObject({ code: 2, err: expect.stringContaining('sparkplug group') });
    expect(run(dir, 'device', 'add', 'x1', '--convention', 'zigbee')).toMatchObject({
      code: 2,
      err: expect.stringContaining('native, homie or sparkplug'),
    });
    expect(run(dir, 'device', 'add', 'x1', '--group', 'g')).toMatchObject({ code: 2 });
    expect(
      openBrokerAccounts(dir)
        .devices()
        .map((d) => d.id),
    ).toEqual(['boiler', 'line3']);
    // A rotation keeps the convention.
    expect(run(dir, 'device', 'rotate', 'line3')).toMatchObject({ code: 0 });
    expect(run(dir, 'devices').out).toContain('line3\tsince');
    expect(run(dir, 'devices').out).toContain('sparkplug, group plant, node n1');
    const acl = run(dir, 'mosquitto-acl').out;
    expect(acl).toContain('user boiler\ntopic deny fleetvisor/v1/boiler/#\ntopic write homie/boiler/+\n');
    expect(acl).toContain('topic read homie/boiler/#');
    expect(acl).toContain('user line3');
    expect(acl).toContain('topic write spBv1.0/plant/DDATA/n1/+');
    expect(acl).toContain('topic read spBv1.0/plant/DCMD/n1/#');
    expect(acl).not.toContain('topic write homie/boiler/+/+/set');
  });
});

/**
 * A private Mosquitto on the files `fleetvisor broker` generates for `acc`: the password and ACL
 * files, or (`dynsec`) the dynamic security plugin's configuration.
 */
async function startMosquitto(
  dir: string,
  acc: BrokerAccounts,
  mode: 'files' | 'dynsec' = 'files',
): Promise<string> {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(join(dir, 'passwd'), acc.mosquittoPasswordFile(), { mode: 0o600 });
  writeFileSync(
    join(dir, 'acl'),
    mosquittoAcl(acc.devices().map((d) => ({ id: d.id, rights: d.convention }))),
  );
  writeFileSync(join(dir, 'dynsec.json'), acc.mosquittoDynsecConfig(), { mode: 0o600 });
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      ...(mode === 'dynsec'
        ? [mosquittoDynsecConf(join(dir, 'dynsec.json'))]
        : ['allow_anonymous false', `password_file ${join(dir, 'passwd')}`, `acl_file ${join(dir, 'acl')}`]),
      'persistence false',
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      '',
    ].join('\n'),
  );
  const proc = spawn(MOSQUITTO, ['-c', conf], { stdio: 'ignore' });
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) resolve();
        else {
          proc.once('exit', () => resolve());
          proc.kill('SIGTERM');
        }
      }),
  );
  const url = `mqtt://127.0.0.1:${port}`;
  const hostCreds = { username: HOST_USERNAME, password: acc.host.password };
  const deadline = Date.now() + 5000;
  while ((await refusedWith(url, hostCreds)) !== 0) {
    if (Date.now() > deadline) throw new Error('mosquitto did not start');
    await sleep(100);
  }
  return url;
}

/** A Mosquitto of its own for one scenario, started once the scenario has issued its accounts. */
function mosquittoTarget(): Target {
  const dir = mkdtempSync(join(tmpdir(), 'fv-broker-conv-mq-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const acc = openBrokerAccounts(dir);
  return { name: 'mosquitto', accounts: () => acc, ready: () => startMosquitto(dir, acc) };
}

describe.runIf(existsSync(MOSQUITTO))('the generated Mosquitto ACL holds for convention accounts', () => {
  it('a Homie device with its account is seen by the app; it cannot speak for another device or set', () =>
    homieScenario(mosquittoTarget()));
  it("a Sparkplug node with its account is born in the app; it cannot publish another node's topics", () =>
    sparkplugScenario(mosquittoTarget()));
  it('a Homie account and a Sparkplug account publish only their own topics', () => ownTopicsOnly('files'));
  it('the same with the dynamic security plugin, where each connects with its username as client id', () =>
    ownTopicsOnly('dynsec'));
});

/** A Homie and a Sparkplug account on a Mosquitto set up with `mode`: only their own topics arrive. */
async function ownTopicsOnly(mode: 'files' | 'dynsec'): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fv-broker-conv-mq-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const acc = openBrokerAccounts(dir);
  const homieSecret = acc.issueDevice('boiler', { convention: 'homie', base: 'homie' });
  acc.issueDevice('boiler2', { convention: 'homie', base: 'homie' });
  const spSecret = acc.issueDevice('line3', { convention: 'sparkplug', group: 'plant', node: 'n1' });
  const url = await startMosquitto(dir, acc, mode);
  const hostCreds = { username: HOST_USERNAME, password: acc.host.password };

  const seen = new Map<string, string[]>();
  const spy = await client(url, { clientId: 'fleetvisor-spy', ...hostCreds });
  spy.on('message', (t, p) => seen.set(t, [...(seen.get(t) ?? []), p.toString()]));
  await spy.subscribeAsync('#', { qos: 1 });
  const tryAll = async (creds: IClientOptions, topics: readonly string[]) => {
    const c = await client(url, creds);
    for (const t of topics) await c.publishAsync(t, 'x', { qos: 1 });
    await sleep(300);
    return topics.filter((t) => seen.has(t));
  };
  const homieCreds = {
    clientId: mode === 'dynsec' ? 'boiler' : 'mqttjs_1',
    username: 'boiler',
    password: homieSecret,
  };
  expect(
    await tryAll(homieCreds, [
      'homie/boiler/$state',
      'homie/boiler/sensor/temperature',
      'homie/boiler/sensor/count/set',
      'homie/boiler2/$state',
      'fleetvisor/v1/boiler/hello',
      'fleetvisor/v1/pump-1/cmd',
    ]),
  ).toEqual(['homie/boiler/$state', 'homie/boiler/sensor/temperature']);
  const spCreds = {
    clientId: mode === 'dynsec' ? 'line3' : 'plant-n1',
    username: 'line3',
    password: spSecret,
  };
  expect(
    await tryAll(spCreds, [
      'spBv1.0/plant/NBIRTH/n1',
      'spBv1.0/plant/DDATA/n1/dev1',
      'spBv1.0/plant/NBIRTH/n2',
      'spBv1.0/plant/NCMD/n1',
      'fleetvisor/v1/line3/hello',
    ]),
  ).toEqual(['spBv1.0/plant/NBIRTH/n1', 'spBv1.0/plant/DDATA/n1/dev1']);
  if (mode !== 'dynsec') return; // Mosquitto's ACL file grants every subscription and filters delivery
  // The plugin refuses a subscription outside the account's topics (0x80), as aedes does.
  const granted = async (creds: IClientOptions, filters: readonly string[]) => {
    const c = await client(url, creds);
    const out: Record<string, number | undefined> = {};
    for (const f of filters)
      try {
        out[f] = (await c.subscribeAsync(f, { qos: 1 }))[0]?.qos;
      } catch (error) {
        out[f] = (error as { packet?: { granted?: number[] } }).packet?.granted?.[0];
      }
    return out;
  };
  expect(
    await granted(homieCreds, ['homie/boiler/#', 'homie/$broadcast/#', '#', 'homie/#', 'homie/boiler2/#']),
  ).toEqual({
    'homie/boiler/#': 1,
    'homie/$broadcast/#': 1,
    '#': 128,
    'homie/#': 128,
    'homie/boiler2/#': 128,
  });
  expect(
    await granted(spCreds, [
      'spBv1.0/plant/NCMD/n1/#',
      'spBv1.0/STATE/+',
      'spBv1.0/#',
      'spBv1.0/plant/NCMD/+',
    ]),
  ).toEqual({
    'spBv1.0/plant/NCMD/n1/#': 1,
    'spBv1.0/STATE/+': 1,
    'spBv1.0/#': 128,
    'spBv1.0/plant/NCMD/+': 128,
  });
}

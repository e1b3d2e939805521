/**
 * The Sparkplug B convention end to end: the host as Primary Host Application against a REAL edge
 * node — Eclipse Tahu's `sparkplug-client` in a child process (test/conventions/sparkplug-peer.ts)
 * with two devices — on a real broker (the embedded aedes always, Mosquitto at
 * FLEETVISOR_TEST_MQTT_URL when set), with the fleet on a real SQLite file and the real clock.
 *
 * What an operator would check: the node and its devices appear connected and their telemetry is
 * stored; a write reaches the device and is confirmed by the value coming back; a node killed with
 * SIGKILL is taken down by its will (NDEATH) and comes back alone; a seq gap and data before a
 * birth make the host ask for a rebirth; bad payloads are events, never a crash; STATE is right.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { homieDevice } from '../../src/conventions/homie/homie-kind.js';
import type { SparkplugBridge, SparkplugOptions } from '../../src/conventions/sparkplug/sparkplug-bridge.js';
import { sparkplugConvention } from '../../src/conventions/sparkplug/sparkplug-bridge.js';
import {
  decodeSparkplugPayload,
  encodeSparkplugPayload,
  stateTopic,
} from '../../src/conventions/sparkplug/sparkplug-codec.js';
import { sparkplugFleetId } from '../../src/conventions/sparkplug/sparkplug-kind.js';
import type { ConventionHost, ConventionHostOptions } from '../rig/links-rig.js';
import {
  clearRetainedTopics,
  eachBroker,
  FAST_RECONNECT,
  onCleanup,
  rawClient,
  runCleanups,
  startConventionHost,
} from '../rig/links-rig.js';
import { uniqueId, waitFor } from '../transports/helpers.js';
import type { PeerConfig, PeerReport } from './sparkplug-peer.js';

const PEER = fileURLToPath(new URL('./sparkplug-peer.ts', import.meta.url));
/** The peer's MQTT keepalive, in seconds: the broker notices a silent peer within 1.5× of it. */
const PEER_KEEPALIVE_S = 2;

/** The host with the Sparkplug bridge (test/rig/links-rig.ts), as Primary Host Application `hostId`. */
type App = ConventionHost<SparkplugBridge> & { readonly hostId: string };

interface Peer {
  readonly config: PeerConfig;
  readonly reports: PeerReport[];
  child: ChildProcess;
  /** SIGKILL: no goodbye, the broker publishes the will. */
  kill(): Promise<void>;
}

afterEach(runCleanups);

/** What the runtime's logger was told: `level message`. */
type LogLines = string[];

/** The host on `url` as a Primary Host Application (a fresh hostId unless `options` name one), connected. */
async function startApp(
  url: string,
  options: SparkplugOptions = {},
  host: Pick<ConventionHostOptions, 'kinds' | 'logs'> = {},
): Promise<App> {
  const hostId = options.hostId ?? uniqueId('host');
  onCleanup(() => clearRetainedTopics(url, [stateTopic(hostId)])); // after the host stopped
  const convention = sparkplugConvention({
    adopt: 'auto',
    commandTimeoutMs: 4000,
    rebirthMinIntervalMs: 300,
    keepaliveMs: 5000,
    reconnect: FAST_RECONNECT,
    ...options,
    hostId,
  });
  const app = Object.assign(await startConventionHost<SparkplugBridge>(url, convention, host), { hostId });
  await waitFor(() => app.bridge.stats().connected, 5000, 'the host connected');
  return app;
}

/** The edge node's process for `config`, its reports appended to `reports`. */
function launchPeer(config: PeerConfig, reports: PeerReport[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', PEER, JSON.stringify(config)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child.on('message', (m) => reports.push(m as PeerReport));
  return child;
}

function startPeer(url: string, group: string, node: string, extra: Partial<PeerConfig> = {}): Peer {
  const config: PeerConfig = {
    url,
    group,
    node,
    devices: ['dev1', 'dev2'],
    clientId: `${group}-${node}`,
    keepalive: PEER_KEEPALIVE_S,
    dataIntervalMs: 200,
    ...extra,
  };
  const reports: PeerReport[] = [];
  const peer: Peer = {
    config,
    reports,
    child: launchPeer(config, reports),
    async kill() {
      const child = peer.child;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
  onCleanup(() => peer.kill());
  return peer;
}

/** The same edge node again, as a new process (as after a power cycle). */
function restartPeer(peer: Peer): void {
  peer.child = launchPeer(peer.config, peer.reports);
}

/** Rebirth NCMDs published on one node's NCMD topic, as the raw client sees them. */
async function watchRebirths(c: MqttClient, group: string, node: string): Promise<{ count: number }> {
  const topic = `spBv1.0/${group}/NCMD/${node}`;
  const seen = { count: 0 };
  c.on('message', (t, payload) => {
    if (t !== topic) return;
    const p = decodeSparkplugPayload(payload, { maxBytes: 65_536 });
    if (p.ok && p.value.metrics.some((m) => m.name === 'Node Control/Rebirth' && m.value === true))
      seen.count++;
  });
  await c.subscribeAsync(topic, { qos: 0 });
  return seen;
}

const ids = (group: string, node: string) => {
  const n = sparkplugFleetId(group, node);
  const d1 = sparkplugFleetId(group, node, 'dev1');
  const d2 = sparkplugFleetId(group, node, 'dev2');
  if (!n.ok || !d1.ok || !d2.ok) throw new Error('ids');
  return { node: n.value, dev1: d1.value, dev2: d2.value };
};

const state = (app: App, id: string) => app.fleet.device(id)?.state;

/** A group and node of this run only (`g-…`, `<prefix>-…`), with the fleet ids of the node and its devices. */
function newNode(prefix = 'n') {
  const group = uniqueId('g');
  const node = uniqueId(prefix);
  return { group, node, id: ids(group, node) };
}

/** Tahu's edge node on a new group and node, once it and its two devices are connected. */
async function connectedPeer(app: App, url: string, extra: Partial<PeerConfig> = {}) {
  const n = newNode();
  const peer = startPeer(url, n.group, n.node, extra);
  await allIn(app, [n.id.node, n.id.dev1, n.id.dev2], 'connected', 10_000);
  return { ...n, peer };
}

async function allIn(app: App, list: readonly string[], wanted: string, timeoutMs: number): Promise<void> {
  await waitFor(
    () => list.every((id) => state(app, id) === wanted),
    timeoutMs,
    `${list.join(', ')} ${wanted} (now ${list.map((id) => state(app, id)).join(', ')})`,
  );
}

async function telemetryCount(app: App, id: string, metric: string): Promise<number> {
  const buckets = await app.store.queryTelemetry(id, metric, 0, Date.now() + 60_000, 1);
  return buckets.reduce((n, b) => n + b.count, 0);
}

async function commandOf(app: App, commandId: string) {
  await app.bridge.flush();
  const page = await app.store.queryCommands({ limit: 1000 });
  const item = page.items.find((i) => i.ok && i.value.commandId === commandId);
  return item?.ok ? item.value : undefined;
}

async function eventsOf(app: App, deviceId: string | undefined, kind: string) {
  await app.bridge.flush();
  await app.fleet.flush();
  const page = await app.store.queryEvents({
    ...(deviceId !== undefined ? { deviceId } : {}),
    kind,
    limit: 1000,
  });
  return page.items.flatMap((i) => (i.ok ? [i.value] : []));
}

/** The node's last seq, once every message received so far is handled. */
async function lastSeq(app: App, nodeId: string): Promise<number> {
  await app.bridge.flush();
  const seq = app.bridge.node(nodeId)?.seq;
  if (seq === null || seq === undefined) throw new Error(`${nodeId} has no seq`);
  return seq;
}

type Metrics = Parameters<typeof encodeSparkplugPayload>[0]['metrics'];

/** A Tahu-encoded payload, timestamped now, with `seq` unless undefined (a death carries none). */
const message = (seq: number | undefined, metrics: Metrics): Buffer =>
  Buffer.from(
    encodeSparkplugPayload({ timestamp: Date.now(), ...(seq !== undefined ? { seq } : {}), metrics }),
  );

/** A Tahu-encoded DATA message with the given seq, from a raw client. */
async function publishData(c: MqttClient, topic: string, seq: number, metrics: Metrics): Promise<void> {
  await c.publishAsync(topic, message(seq % 256, metrics), { qos: 0 });
}

/**
 * Waits until the bridge handled `count` messages more than `received`, then 800 ms more (past two
 * rebirth intervals of 300 ms), so what they would set off has happened.
 */
async function settled(app: App, received: number, count: number): Promise<void> {
  await waitFor(() => app.bridge.stats().received >= received + count, 5000, `the ${count} handled`);
  await app.bridge.flush();
  await new Promise((r) => setTimeout(r, 800));
}

const brokers = eachBroker();

describe.each(brokers)('Sparkplug B with Tahu’s edge client ($name)', ({ url: brokerUrl }) => {
  it('the edge node and its two devices appear connected, with their births and telemetry stored', async () => {
    const url = brokerUrl();
    const app = await startApp(url);
    const { group, node, id } = await connectedPeer(app, url);

    const n = app.fleet.device(id.node)!;
    expect(n).toMatchObject({
      kind: 'sparkplug.node',
      name: `${group}/${node}`,
      attributes: { group, node },
      link: { up: true, via: 'sparkplug' },
      status: { convention: 'sparkplug', group, node, bdSeq: 0, firmware: '2.1.0' },
    });
    expect(n.status.metrics).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'uptime', datatype: 'Int64', alias: 3 }),
        expect.objectContaining({ name: 'bdSeq', datatype: 'UInt64' }),
      ]),
    );
    const d = app.fleet.device(id.dev1)!;
    expect(d).toMatchObject({
      kind: 'sparkplug.device',
      attributes: { group, node, device: 'dev1' },
      tags: ['sparkplug', `node:${id.node}`],
      status: { parent: id.node, device: 'dev1' },
    });
    expect(d.status.metrics).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'temperature', datatype: 'Float', alias: 101, value: 21.5 }),
        expect.objectContaining({
          name: 'label',
          datatype: 'String',
          value: 'device dev1',
          properties: { readOnly: true },
        }),
      ]),
    );

    // DDATA carries the temperature by alias only: resolved from the DBIRTH, stored per device.
    await waitFor(() => (app.bridge.node(id.node)?.seq ?? 0) > 8, 10_000, 'some DDATA');
    await app.bridge.flush();
    await new Promise((r) => setTimeout(r, 100)); // the telemetry batch flushes every 20 ms
    expect(await telemetryCount(app, id.dev1, 'temperature')).toBeGreaterThanOrEqual(3);
    expect(await telemetryCount(app, id.dev2, 'temperature')).toBeGreaterThanOrEqual(3);
    expect(await telemetryCount(app, id.dev1, 'running')).toBe(1); // a boolean, from the birth
    expect(await telemetryCount(app, id.node, 'uptime')).toBe(1);
    expect(await telemetryCount(app, id.dev1, 'label')).toBe(0); // a string is not telemetry
    expect(app.bridge.stats()).toMatchObject({ gaps: 0, badMessages: 0, births: 3, nodesOnline: 1 });
  });

  it('a write reaches the device (DCMD) and succeeds when its value comes back; bad writes are badArgs', async () => {
    const url = brokerUrl();
    const app = await startApp(url, { commandTimeoutMs: 1500 });
    const { id, peer } = await connectedPeer(app, url);

    const r = await app.fleet.act(id.dev1, 'write', { metric: 'setpoint', value: 42 }, 'ana');
    expect(r).toMatchObject({ ok: true, value: { commandStatus: 'sent' } });
    const commandId = r.ok ? r.value.commandId : '';
    await waitFor(
      () => peer.reports.some((m) => m.type === 'dcmd' && m.device === 'dev1' && m.metrics[0]?.value === 42),
      5000,
      'the peer’s dcmd',
    );
    await waitFor(() => app.bridge.stats().commands.succeeded === 1, 5000, 'the value came back');
    expect(await commandOf(app, commandId)).toMatchObject({
      deviceId: id.dev1,
      action: 'write',
      actor: 'ana',
      status: 'succeeded',
      result: { value: 42, reportedIn: 'DDATA' },
    });

    expect(await app.fleet.act(id.dev1, 'write', { metric: 'setpoint', value: 1.5 })).toMatchObject({
      ok: false,
      error: { code: 'badArgs', message: expect.stringMatching(/setpoint.*Int32 takes an integer/) },
    });
    expect(await app.fleet.act(id.dev2, 'write', { metric: 'running', value: 'yes' })).toMatchObject({
      ok: false,
      error: { code: 'badArgs', message: expect.stringContaining('Boolean takes true or false') },
    });
    expect(await app.fleet.act(id.dev2, 'write', { metric: 'nope', value: 1 })).toMatchObject({
      ok: false,
      error: { code: 'badArgs', message: expect.stringMatching(/no metric 'nope'.*temperature, setpoint/) },
    });

    // The peer ignores writes to `label`: nothing comes back, so the command times out, saying why.
    const t = await app.fleet.act(id.dev2, 'write', { metric: 'label', value: 'renamed' });
    const timedOutId = t.ok ? t.value.commandId : '';
    await waitFor(() => app.bridge.stats().commands.timedOut === 1, 5000, 'the write timed out');
    expect(await commandOf(app, timedOutId)).toMatchObject({
      status: 'timedOut',
      error: { code: 'timedOut', message: expect.stringContaining('did not report label = "renamed"') },
    });

    // A node's rebirth action: NCMD Node Control/Rebirth, done when the NBIRTH arrives.
    const rb = await app.fleet.act(id.node, 'rebirth', {});
    expect(rb).toMatchObject({ ok: true, value: { commandStatus: 'sent' } });
    await waitFor(() => peer.reports.some((m) => m.type === 'ncmd'), 5000, 'the peer’s ncmd');
    await waitFor(() => app.bridge.stats().commands.succeeded === 2, 5000, 'the rebirth arrived');
    expect(await commandOf(app, rb.ok ? rb.value.commandId : '')).toMatchObject({ status: 'succeeded' });
  });

  it('kill -9: the broker publishes its NDEATH, node and devices go down; restarted, they come back', async () => {
    const url = brokerUrl();
    const app = await startApp(url, { commandTimeoutMs: 20_000 }); // the death, not the time, ends the write
    const { group, node, id } = newNode();
    const peer = startPeer(url, group, node);
    const all = [id.node, id.dev1, id.dev2];
    await allIn(app, all, 'connected', 10_000);
    // A write the peer never echoes (it ignores `label`) is in flight when the node dies.
    const inFlight = await app.fleet.act(id.dev2, 'write', { metric: 'label', value: 'lost' });
    expect(inFlight).toMatchObject({ ok: true, value: { commandStatus: 'sent' } });

    await peer.kill();
    await allIn(app, all, 'disconnected', PEER_KEEPALIVE_S * 1500 + 3000);
    expect(await commandOf(app, inFlight.ok ? inFlight.value.commandId : '')).toMatchObject({
      status: 'failed',
      error: { code: 'linkLost', message: expect.stringContaining('may or may not have run') },
    });
    expect(app.fleet.device(id.node)!.link).toMatchObject({ up: false, reason: 'NDEATH (bdSeq 0)' });
    expect(app.fleet.device(id.dev2)!.link).toMatchObject({
      up: false,
      reason: 'its edge node died (NDEATH (bdSeq 0))',
    });
    expect(app.bridge.stats()).toMatchObject({ deaths: 1, nodesOnline: 0 });
    expect(await app.fleet.act(id.dev1, 'write', { metric: 'setpoint', value: 1 })).toMatchObject({
      ok: false,
      error: { code: 'offline', message: expect.stringContaining('offline') },
    });

    restartPeer(peer); // no operator action: its births bring everything back
    await allIn(app, all, 'connected', 10_000);
    expect(app.fleet.list()).toHaveLength(3);
  });

  it('a seq gap makes the host publish a Rebirth NCMD; the node answers and is connected again', async () => {
    const url = brokerUrl();
    const app = await startApp(url);
    const { group, node, id, peer } = await connectedPeer(app, url, { dataIntervalMs: 0 }); // quiet: the test owns the seq
    const raw = await rawClient(url);
    const rebirths = await watchRebirths(raw, group, node);
    const seqBefore = await lastSeq(app, id.node);

    // A crafted NDATA, Tahu-encoded, skipping four seqs.
    await publishData(raw, `spBv1.0/${group}/NDATA/${node}`, seqBefore + 5, [
      { name: 'uptime', type: 'Int64', value: 999 },
    ]);
    await waitFor(() => rebirths.count >= 1, 5000, 'a Rebirth NCMD on the wire');
    await waitFor(() => peer.reports.some((m) => m.type === 'ncmd'), 5000, 'the peer got it');
    await waitFor(() => peer.reports.filter((m) => m.type === 'births').length >= 2, 5000, 'the peer reborn');
    await allIn(app, [id.node, id.dev1, id.dev2], 'connected', 5000);
    expect(app.bridge.node(id.node)).toMatchObject({ gaps: 1, rebirthsRequested: 1, born: true });
    expect(app.bridge.stats()).toMatchObject({ gaps: 1, rebirthsRequested: 1 });
    // Between the request and the NBIRTH the node was stale; the gap's data itself was kept.
    const transitions = await eventsOf(app, id.node, 'device.state');
    expect(transitions.map((e) => (e.data as { to: string }).to)).toContain('stale');
    expect(await eventsOf(app, id.node, 'device.rebirthRequested')).toEqual([
      expect.objectContaining({
        data: { reason: expect.stringMatching(/seq gap: expected \d+, got \d+ \(NDATA\)/) },
      }),
    ]);
    await new Promise((r) => setTimeout(r, 100));
    const buckets = await app.store.queryTelemetry(id.node, 'uptime', 0, Date.now() + 60_000, 1);
    expect(buckets[0]?.max).toBe(999);
  });

  it('data before a birth asks for a rebirth and crashes nothing; unknown devices are not adopted from data', async () => {
    const url = brokerUrl();
    const app = await startApp(url);
    const { group, node, id, peer } = await connectedPeer(app, url, { dataIntervalMs: 0 });
    const raw = await rawClient(url);
    const rebirths = await watchRebirths(raw, group, node);
    const stranger = uniqueId('nobody');
    const strangerRebirths = await watchRebirths(raw, group, stranger);

    // DDATA of a device this node never gave a DBIRTH for (in sequence: no gap).
    await publishData(raw, `spBv1.0/${group}/DDATA/${node}/ghost`, (await lastSeq(app, id.node)) + 1, [
      { name: 'temperature', type: 'Float', value: 1 },
    ]);
    await waitFor(() => rebirths.count >= 1, 5000, 'a Rebirth NCMD for the node');
    await waitFor(() => peer.reports.some((m) => m.type === 'ncmd'), 5000, 'the peer got it');
    // NDATA of an edge node never born at all.
    await raw.publishAsync(
      `spBv1.0/${group}/NDATA/${stranger}`,
      Buffer.from(encodeSparkplugPayload({ seq: 17, metrics: [{ name: 'x', type: 'Int32', value: 1 }] })),
    );
    await waitFor(() => strangerRebirths.count >= 1, 5000, 'a Rebirth NCMD for the stranger');

    expect(app.bridge.stats()).toMatchObject({ dataBeforeBirth: 2, gaps: 0 });
    expect(app.bridge.alive).toBe(true);
    await allIn(app, [id.node, id.dev1, id.dev2], 'connected', 5000);
    expect(app.fleet.device(`${id.node}-ghost`)).toBeUndefined();
    expect(app.fleet.device(`${group}-${stranger}`)).toBeUndefined();
  });

  it('a malformed payload, an unknown alias and a wrong datatype become events on that node or device', async () => {
    const url = brokerUrl();
    const app = await startApp(url);
    const { group, node, id } = await connectedPeer(app, url, { dataIntervalMs: 0 });
    const raw = await rawClient(url);

    const seq = await lastSeq(app, id.node);
    await raw.publishAsync(`spBv1.0/${group}/NDATA/${node}`, Buffer.from([0xff, 0xff, 0xff, 0x01]));
    const ddata = `spBv1.0/${group}/DDATA/${node}/dev1`;
    await publishData(raw, ddata, seq + 1, [{ alias: 9999, type: 'Float', value: 1 }]);
    await publishData(raw, ddata, seq + 2, [
      { name: 'temperature', type: 'Int32', value: 7 },
      { name: 'setpoint', type: 'Int32', value: 23 }, // the rest of the message is used
    ]);
    await waitFor(() => app.bridge.stats().badMessages >= 3, 5000, 'three bad messages');

    const onNode = await eventsOf(app, id.node, 'device.badMessage');
    expect(onNode).toEqual([
      expect.objectContaining({ data: expect.objectContaining({ code: 'protobuf', via: 'sparkplug' }) }),
    ]);
    const onDevice = (await eventsOf(app, id.dev1, 'device.badMessage')).map((e) => e.data);
    expect(onDevice).toEqual([
      expect.objectContaining({ code: 'unknownAlias', message: 'DDATA: alias 9999 is not in the birth' }),
      expect.objectContaining({
        code: 'wrongDatatype',
        message: "DDATA: metric 'temperature' is Float in the birth, Int32 here",
      }),
    ]);
    await new Promise((r) => setTimeout(r, 100));
    const buckets = await app.store.queryTelemetry(id.dev1, 'setpoint', 0, Date.now() + 60_000, 1);
    expect(buckets[0]?.max).toBe(23);
    expect(app.bridge.alive).toBe(true);
    expect(app.bridge.stats()).toMatchObject({ gaps: 0, rebirthsRequested: 0 });
    expect(state(app, id.dev1)).toBe('connected');
  });

  it('bdSeq pairs a death with its birth: a late NDEATH of an older session is ignored', async () => {
    const url = brokerUrl();
    const app = await startApp(url);
    const raw = await rawClient(url);
    const { group, node, id } = newNode('raw');
    const nbirth = (bdSeq: number) =>
      Buffer.from(
        encodeSparkplugPayload({
          timestamp: Date.now(),
          seq: 0,
          metrics: [
            { name: 'bdSeq', type: 'UInt64', value: bdSeq },
            { name: 'level', alias: 1, type: 'Double', value: 0.5 },
          ],
        }),
      );
    const ndeath = (bdSeq: number) =>
      Buffer.from(encodeSparkplugPayload({ metrics: [{ name: 'bdSeq', type: 'UInt64', value: bdSeq }] }));
    await raw.publishAsync(`spBv1.0/${group}/NBIRTH/${node}`, nbirth(5));
    await waitFor(() => state(app, id.node) === 'connected', 5000, 'born');
    expect(app.fleet.device(id.node)!.status).toMatchObject({ bdSeq: 5 });

    await raw.publishAsync(`spBv1.0/${group}/NDEATH/${node}`, ndeath(4), { qos: 1 });
    await waitFor(() => app.bridge.stats().staleDeaths === 1, 5000, 'the stale death counted');
    expect(state(app, id.node)).toBe('connected');

    await raw.publishAsync(`spBv1.0/${group}/NDEATH/${node}`, ndeath(5), { qos: 1 });
    await waitFor(() => state(app, id.node) === 'disconnected', 5000, 'its own death');
    expect(app.fleet.device(id.node)!.link.reason).toBe('NDEATH (bdSeq 5)');
  });

  it('names: made safe for fleet ids; a collision or an id over 64 characters is refused, saying why', async () => {
    const url = brokerUrl();
    const app = await startApp(url);
    const raw = await rawClient(url);
    const group = uniqueId('g');
    const birth = Buffer.from(
      encodeSparkplugPayload({ seq: 0, metrics: [{ name: 'bdSeq', type: 'UInt64', value: 0 }] }),
    );
    await raw.publishAsync(`spBv1.0/${group}/NBIRTH/line 4.a`, birth);
    await waitFor(() => state(app, `${group}-line_4_a`) === 'connected', 5000, 'the sanitized id');
    expect(app.fleet.device(`${group}-line_4_a`)!.attributes).toEqual({ group, node: 'line 4.a' });

    await raw.publishAsync(`spBv1.0/${group}/NBIRTH/line 4_a`, birth); // the same fleet id
    await raw.publishAsync(`spBv1.0/${group}/NBIRTH/${'x'.repeat(70)}`, birth);
    await waitFor(() => app.bridge.stats().refused === 2, 5000, 'two names refused');
    expect(app.fleet.list()).toHaveLength(1);
    const refused = (await eventsOf(app, undefined, 'sparkplug.refused')).map(
      (e) => (e.data as { reason: string }).reason,
    );
    expect(refused).toEqual([
      expect.stringContaining('is already taken by Sparkplug'),
      expect.stringMatching(/would be \d+ characters; the limit is 64/),
    ]);
  });

  it('STATE: retained online with its will; republished when read offline; offline on a graceful stop', async () => {
    const url = brokerUrl();
    const app = await startApp(url);
    const raw = await rawClient(url);
    const seen: { online: boolean; timestamp: number; retain: boolean }[] = [];
    const topic = stateTopic(app.hostId);
    raw.on('message', (t, payload, packet) => {
      if (t === topic && payload.length > 0)
        seen.push({ ...JSON.parse(payload.toString()), retain: packet.retain });
    });
    await raw.subscribeAsync(topic, { qos: 1 });
    await waitFor(() => seen.length >= 1, 5000, 'the retained STATE');
    expect(seen[0]).toMatchObject({ online: true, retain: true });
    const birthTimestamp = seen[0]!.timestamp;

    // A late will of an earlier connection (or a rogue client) says we are offline: we say we are not.
    await raw.publishAsync(topic, Buffer.from(JSON.stringify({ online: false, timestamp: 1 })), {
      qos: 1,
      retain: true,
    });
    await waitFor(() => seen.filter((s) => s.online).length >= 2, 5000, 'online again');

    // Another host, in the older text dialect, is tolerated and listed.
    const other = uniqueId('legacy');
    await raw.publishAsync(stateTopic(other), Buffer.from('ONLINE'), { qos: 1 });
    await waitFor(() => app.bridge.stats().hosts[other]?.online === true, 5000, 'the other host listed');

    await app.bridge.stop();
    await waitFor(() => seen.at(-1)?.online === false, 5000, 'the STATE death');
    expect(seen.at(-1)).toMatchObject({ online: false, timestamp: birthTimestamp });
  });

  it('STATE: a host that dies without a goodbye is declared offline by its will', async () => {
    const url = brokerUrl();
    const app = await startApp(url);
    const raw = await rawClient(url);
    const seen: { online: boolean; timestamp: number }[] = [];
    raw.on('message', (_t, payload) => {
      if (payload.length > 0) seen.push(JSON.parse(payload.toString()));
    });
    await raw.subscribeAsync(stateTopic(app.hostId), { qos: 1 });
    await waitFor(() => seen.length >= 1, 5000, 'the retained STATE');
    app.bridge.kill(); // the socket is destroyed: no DISCONNECT, so the broker publishes the will
    await waitFor(() => seen.at(-1)?.online === false, 5000, 'the will');
    expect(seen.at(-1)!.timestamp).toBe(seen[0]!.timestamp);
  });

  it('a restarted host knows no births: it asks every known node for one and all come back alone', async () => {
    const url = brokerUrl();
    const app = await startApp(url);
    const { group, node, id } = newNode();
    const peer = startPeer(url, group, node, { dataIntervalMs: 0 });
    const all = [id.node, id.dev1, id.dev2];
    await allIn(app, all, 'connected', 10_000);

    await app.restartBridge();
    expect(app.fleet.device(id.dev1)!.link).toMatchObject({
      up: false,
      reason: 'the Sparkplug bridge stopped',
    });
    await waitFor(() => app.bridge.stats().connected, 5000, 'the new bridge connected');
    await waitFor(() => peer.reports.some((m) => m.type === 'ncmd'), 5000, 'the rebirth asked for');
    await allIn(app, all, 'connected', 5000);
    expect(app.bridge.stats()).toMatchObject({ rebirthsRequested: 1, births: 3 });
  });

  it('adopt: manual lists births as discovered until the operator adopts them', async () => {
    const url = brokerUrl();
    const app = await startApp(url, { adopt: 'manual' });
    const { group, node, id } = newNode();
    startPeer(url, group, node, { dataIntervalMs: 0 });
    await waitFor(() => app.bridge.discovered().length === 1, 10_000, 'the node discovered');
    expect(app.fleet.list()).toHaveLength(0);
    expect(app.bridge.discovered()[0]).toMatchObject({
      id: id.node,
      kind: 'sparkplug.node',
      reason: 'manual',
    });

    expect(await app.bridge.adopt(id.node)).toEqual({ ok: true }); // asks the node for its births
    await waitFor(() => state(app, id.node) === 'connected', 5000, 'the node connected');
    await waitFor(() => app.bridge.discovered().length === 2, 5000, 'its devices discovered');
    for (const d of [id.dev1, id.dev2]) expect(await app.bridge.adopt(d)).toEqual({ ok: true });
    await allIn(app, [id.node, id.dev1, id.dev2], 'connected', 5000);
  });

  // ---- identity: a refused name owns nothing (issue 11, peer findings) ----

  it('plant7/line-3 maps to a live Homie device’s id: refused once, and its messages never touch that device', async () => {
    const url = brokerUrl();
    const app = await startApp(url, {}, { kinds: [homieDevice] });
    const raw = await rawClient(url);
    const group = uniqueId('plant');
    const homieId = `${group}-line-3`;
    const added = await app.fleet.addDevice({
      id: homieId,
      kind: homieDevice.kind,
      name: 'a Homie device',
      attributes: { baseTopic: 'homie' },
    });
    expect(added.ok).toBe(true);
    app.fleet.linkUp(homieId, { via: 'homie', firmware: null });
    await waitFor(() => app.fleet.device(homieId)?.link.up === true, 5000, 'the Homie device up');
    const since = app.fleet.device(homieId)!.link.since;
    const rebirths = await watchRebirths(raw, group, 'line-3');

    const received = app.bridge.stats().received;
    const base = `spBv1.0/${group}`;
    const bdSeq = { name: 'bdSeq', type: 'UInt64' as const, value: 3 };
    await raw.publishAsync(
      `${base}/NBIRTH/line-3`,
      message(0, [bdSeq, { name: 'level', type: 'Double', value: 1 }]),
    );
    await raw.publishAsync(`${base}/NDATA/line-3`, message(1, [{ name: 'level', type: 'Double', value: 2 }]));
    await raw.publishAsync(
      `${base}/DBIRTH/line-3/pump`,
      message(2, [{ name: 'rpm', type: 'Int32', value: 1 }]),
    );
    await raw.publishAsync(
      `${base}/DDATA/line-3/pump`,
      message(3, [{ name: 'rpm', type: 'Int32', value: 2 }]),
    );
    await raw.publishAsync(`${base}/NDATA/line-3`, message(9, [{ name: 'level', type: 'Double', value: 3 }])); // a gap
    await raw.publishAsync(`${base}/DDEATH/line-3/pump`, message(10, []));
    await raw.publishAsync(`${base}/NDEATH/line-3`, message(undefined, [{ ...bdSeq, value: 9 }]), { qos: 1 });
    await raw.publishAsync(`${base}/NDEATH/line-3`, message(undefined, [bdSeq]), { qos: 1 });
    await settled(app, received, 8);

    expect(app.fleet.device(homieId)!.link).toMatchObject({ up: true, since });
    expect(app.fleet.list().map((d) => d.id)).toEqual([homieId]);
    for (const kind of ['device.rebirthRequested', 'device.badMessage', 'sparkplug.dataBeforeBirth'])
      expect(await eventsOf(app, homieId, kind)).toEqual([]);
    const refused = await eventsOf(app, undefined, 'sparkplug.refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]!.data).toMatchObject({
      group,
      node: 'line-3',
      reason: expect.stringContaining(
        `fleet id '${homieId}' of ${group}/line-3 is already taken by a homie.device device`,
      ),
    });
    expect(rebirths.count).toBe(0);
    expect(app.bridge.stats()).toMatchObject({ rebirthsRequested: 0, deaths: 0, staleDeaths: 0 });
  });

  it('plant7/line.3 colliding with a live plant7/line_3: the live node and its devices stay connected', async () => {
    const url = brokerUrl();
    const app = await startApp(url);
    const group = uniqueId('plant');
    const id = ids(group, 'line_3');
    const all = [id.node, id.dev1, id.dev2];
    startPeer(url, group, 'line_3', { dataIntervalMs: 200 });
    await allIn(app, all, 'connected', 10_000);
    const raw = await rawClient(url);
    const rebirths = await watchRebirths(raw, group, 'line.3');
    const liveRebirths = await watchRebirths(raw, group, 'line_3');

    const received = app.bridge.stats().received;
    const base = `spBv1.0/${group}`;
    // The same bdSeq as Tahu's (0): the bdSeq check must not let the refused node act.
    const bdSeq = { name: 'bdSeq', type: 'UInt64' as const, value: 0 };
    await raw.publishAsync(`${base}/NBIRTH/line.3`, message(0, [bdSeq]));
    await raw.publishAsync(
      `${base}/DBIRTH/line.3/dev1`,
      message(1, [{ name: 'temperature', type: 'Float', value: 99 }]),
    );
    await raw.publishAsync(
      `${base}/DDATA/line.3/dev1`,
      message(2, [{ name: 'temperature', type: 'Float', value: 98 }]),
    );
    await raw.publishAsync(`${base}/NDATA/line.3`, message(3, [{ name: 'uptime', type: 'Int64', value: 1 }]));
    await raw.publishAsync(`${base}/DDEATH/line.3/dev1`, message(4, []));
    await raw.publishAsync(`${base}/NDEATH/line.3`, message(undefined, [bdSeq]), { qos: 1 });
    await settled(app, received, 6);

    await allIn(app, all, 'connected', 100);
    for (const d of all) expect(app.fleet.device(d)!.link.up).toBe(true);
    expect(await eventsOf(app, id.node, 'device.rebirthRequested')).toEqual([]);
    expect(await eventsOf(app, id.dev1, 'device.badMessage')).toEqual([]);
    const refused = await eventsOf(app, undefined, 'sparkplug.refused');
    expect(refused.map((e) => e.data)).toEqual([
      expect.objectContaining({
        node: 'line.3',
        device: null,
        reason: expect.stringContaining(`is already taken by Sparkplug ${group}/line_3`),
      }),
    ]);
    expect(rebirths.count).toBe(0);
    expect(liveRebirths.count).toBe(0);
    expect(app.bridge.stats()).toMatchObject({ rebirthsRequested: 0, deaths: 0, gaps: 0 });
  });

  it('a refused device (dev.1 beside a live dev_1) gets no rebirth loop, and its node is never made stale', async () => {
    const url = brokerUrl();
    const app = await startApp(url);
    const group = uniqueId('plant');
    const node = uniqueId('n');
    const nodeId = ids(group, node).node;
    const liveId = `${nodeId}-dev_1`;
    const peer = startPeer(url, group, node, { devices: ['dev_1', 'dev.1'], dataIntervalMs: 100 });
    await allIn(app, [nodeId, liveId], 'connected', 10_000);
    const raw = await rawClient(url);
    const rebirths = await watchRebirths(raw, group, node);
    await new Promise((r) => setTimeout(r, 1500)); // ~15 DDATA of the refused device, 5 rebirth intervals

    expect(rebirths.count).toBe(0);
    expect(peer.reports.filter((m) => m.type === 'births')).toHaveLength(1);
    expect(app.bridge.stats()).toMatchObject({ rebirthsRequested: 0, gaps: 0 });
    expect(await eventsOf(app, nodeId, 'device.rebirthRequested')).toEqual([]);
    const states = (await eventsOf(app, liveId, 'device.state')).map((e) => (e.data as { to: string }).to);
    expect(states).not.toContain('stale');
    const refused = await eventsOf(app, undefined, 'sparkplug.refused');
    expect(refused.map((e) => e.data)).toEqual([
      expect.objectContaining({ device: 'dev.1', reason: expect.stringContaining(`'${liveId}'`) }),
    ]);
    await allIn(app, [nodeId, liveId], 'connected', 100);
  });

  it('data before birth: every message counted, a few logged, and the rest summed up in one event', async () => {
    const url = brokerUrl();
    const logs: LogLines = [];
    const app = await startApp(url, { maxErrorEventsPerMinute: 3 }, { logs });
    const raw = await rawClient(url);
    const group = uniqueId('g');
    const stranger = uniqueId('nobody');
    const received = app.bridge.stats().received;
    for (let i = 0; i < 40; i++)
      await raw.publishAsync(
        `spBv1.0/${group}/NDATA/${stranger}`,
        Buffer.from(encodeSparkplugPayload({ seq: i, metrics: [{ name: 'x', type: 'Int32', value: i }] })),
      );
    await waitFor(() => app.bridge.stats().received >= received + 40, 5000, 'the forty handled');
    await app.bridge.flush();
    expect(app.bridge.stats().dataBeforeBirth).toBe(40);
    expect(logs.filter((l) => l.includes('data before birth'))).toHaveLength(3);
    expect(await eventsOf(app, undefined, 'sparkplug.dataBeforeBirth')).toHaveLength(3);

    await app.bridge.stop(); // closes the window: the rest is counted in one summary
    const summaries = await eventsOf(app, undefined, 'device.eventsSuppressed');
    expect(summaries.map((e) => e.data)).toEqual([
      expect.objectContaining({ kind: 'sparkplug.dataBeforeBirth', suppressed: 37, written: 3 }),
    ]);
  });

  it('a metric’s shown value follows DDATA and writes, not only the birth', async () => {
    const url = brokerUrl();
    const app = await startApp(url, { commandTimeoutMs: 3000 });
    const { group, node, id } = await connectedPeer(app, url, { dataIntervalMs: 0 });
    const shown = (deviceId: string, metric: string) =>
      (app.fleet.device(deviceId)?.status.metrics as { name: string; value?: unknown }[] | undefined)?.find(
        (m) => m.name === metric,
      )?.value;
    expect(shown(id.dev2, 'setpoint')).toBe(20);

    const r = await app.fleet.act(id.dev2, 'write', { metric: 'setpoint', value: 37 });
    expect(r).toMatchObject({ ok: true });
    await waitFor(() => app.bridge.stats().commands.succeeded === 1, 5000, 'the write confirmed');
    await waitFor(
      () => shown(id.dev2, 'setpoint') === 37,
      3000,
      `setpoint shown 37 (is ${String(shown(id.dev2, 'setpoint'))})`,
    );

    // A DDATA by alias only (temperature of dev2 is alias 201 in the peer).
    const raw = await rawClient(url);
    await publishData(raw, `spBv1.0/${group}/DDATA/${node}/dev2`, (await lastSeq(app, id.node)) + 1, [
      { alias: 201, type: 'Float', value: 30.5 },
    ]);
    await waitFor(() => shown(id.dev2, 'temperature') === 30.5, 3000, 'temperature shown 30.5');
    expect(shown(id.dev1, 'temperature')).toBe(21.5); // the other device keeps its own
    await app.bridge.flush(); // its status writes
    const stored = await app.store.getDevice(id.dev2);
    expect(JSON.stringify(stored)).toContain('30.5'); // the status is stored, not only shown
  });

  it('a node whose every answer brings a new gap is asked at most maxRebirthsPerMinute times: answers do not reset it', async () => {
    const url = brokerUrl();
    const app = await startApp(url, { maxRebirthsPerMinute: 3 });
    const raw = await rawClient(url);
    const group = uniqueId('plant');
    const node = uniqueId('flaky');
    const nodeId = ids(group, node).node;
    const rebirths = await watchRebirths(raw, group, node);
    const nbirth = () =>
      raw.publishAsync(
        `spBv1.0/${group}/NBIRTH/${node}`,
        Buffer.from(
          encodeSparkplugPayload({
            timestamp: Date.now(),
            seq: 0,
            metrics: [
              { name: 'bdSeq', type: 'UInt64', value: 1 },
              { name: 'level', type: 'Double', value: 0 },
            ],
          }),
        ),
      );
    // A node that answers each rebirth at once (a fresh birth resets the unanswered-request timer).
    raw.on('message', (t) => {
      if (t === `spBv1.0/${group}/NCMD/${node}`) void nbirth();
    });
    await nbirth();
    await waitFor(() => state(app, nodeId) === 'connected', 5000, 'born');
    // Then every NDATA skips a seq: a gap each time.
    for (let i = 0; i < 30; i++) {
      await publishData(raw, `spBv1.0/${group}/NDATA/${node}`, 5, [
        { name: 'level', type: 'Double', value: i },
      ]);
      await new Promise((r) => setTimeout(r, 50));
    }
    await app.bridge.flush();
    expect(rebirths.count).toBe(3);
    expect(app.bridge.stats().rebirthsRequested).toBe(3);
    expect(app.bridge.stats().rebirthsSuppressed).toBeGreaterThan(20);
    const throttled = await eventsOf(app, nodeId, 'sparkplug.rebirthsThrottled');
    expect(throttled.map((e) => e.data)).toEqual([
      expect.objectContaining({ limit: 3, reason: expect.stringContaining('seq gap') }),
    ]);
    // An operator's request is not automatic: it still goes out.
    expect(app.bridge.rebirth(nodeId, 'the operator asked')).toBe(true);
    await waitFor(() => rebirths.count === 4, 5000, 'the operator’s rebirth');
  });

  it('adopt: manual — a node waiting for the operator is not asked for rebirths by its data; adopting asks once', async () => {
    const url = brokerUrl();
    const app = await startApp(url, { adopt: 'manual' });
    const { group, node, id } = newNode();
    const raw = await rawClient(url);
    const rebirths = await watchRebirths(raw, group, node);
    const peer = startPeer(url, group, node, { dataIntervalMs: 100 });
    await waitFor(() => app.bridge.discovered().length === 1, 10_000, 'the node discovered');
    await new Promise((r) => setTimeout(r, 1500)); // ~30 DDATA, five rebirth intervals
    expect(rebirths.count).toBe(0);
    expect(peer.reports.filter((m) => m.type === 'births')).toHaveLength(1);

    expect(await app.bridge.adopt(id.node)).toEqual({ ok: true });
    await waitFor(() => rebirths.count === 1, 5000, 'the adoption’s rebirth');
    await waitFor(() => state(app, id.node) === 'connected', 5000, 'the node connected');
  });

  it('a refused name is judged again at its next birth: once the Homie device is removed, plant7/line-3 is adopted', async () => {
    const url = brokerUrl();
    const app = await startApp(url, {}, { kinds: [homieDevice] });
    const raw = await rawClient(url);
    const group = uniqueId('plant');
    const homieId = `${group}-line-3`;
    await app.fleet.addDevice({ id: homieId, kind: homieDevice.kind, attributes: { baseTopic: 'homie' } });
    const birth = Buffer.from(
      encodeSparkplugPayload({ seq: 0, metrics: [{ name: 'bdSeq', type: 'UInt64', value: 0 }] }),
    );
    await raw.publishAsync(`spBv1.0/${group}/NBIRTH/line-3`, birth);
    await waitFor(() => app.bridge.stats().refused === 1, 5000, 'refused');
    expect(app.fleet.device(homieId)!.kind).toBe(homieDevice.kind);

    expect((await app.fleet.removeDevice(homieId)).ok).toBe(true);
    await raw.publishAsync(`spBv1.0/${group}/NBIRTH/line-3`, birth);
    await waitFor(() => state(app, homieId) === 'connected', 5000, 'adopted now');
    expect(app.fleet.device(homieId)).toMatchObject({
      kind: 'sparkplug.node',
      attributes: { group, node: 'line-3' },
    });
    expect(app.bridge.node(homieId)).toMatchObject({ born: true });

    // Taken again later: refused again, and said again (once per refusal, not once per process).
    expect((await app.fleet.removeDevice(homieId)).ok).toBe(true);
    await app.fleet.addDevice({ id: homieId, kind: homieDevice.kind, attributes: { baseTopic: 'homie' } });
    await raw.publishAsync(`spBv1.0/${group}/NBIRTH/line-3`, birth);
    await waitFor(() => app.bridge.stats().refused === 2, 5000, 'refused again');
    expect(await eventsOf(app, undefined, 'sparkplug.refused')).toHaveLength(2);
  });
});

/**
 * The Homie convention end to end against a real peer: the npm `homie-device` library (Homie
 * 3.0.1) in a child process, on a real broker — the embedded aedes broker always, Mosquitto at
 * FLEETVISOR_TEST_MQTT_URL when set (unique ids and base topics per run, retained messages
 * cleared after) — with the fleet on a real SQLite file, on the real clock. What an operator would
 * check: the device appears with its lifecycle and description, its values land in the store, a
 * `set` reaches it and comes back, a killed device goes `lost` and returns by itself, bad input is
 * named on the device and breaks nothing, the broker can go away under the bridge.
 *
 * @example
 * npx vitest run test/conventions/homie*
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { HomieConventionOptions } from '../../src/conventions/homie/homie-bridge.js';
import { HOMIE_KIND, homieSetForms } from '../../src/conventions/homie/homie-kind.js';
import { startEmbeddedBroker } from '../../src/transports/embedded-broker.js';
import { eachBroker } from '../rig/links-rig.js';
import { actWhenDescribed, freePort, uniqueId, waitFor } from '../transports/helpers.js';
import type { HomieApp, PeerOptions } from './homie-helpers.js';
import {
  badMessages,
  clearRetained,
  commandStatus,
  onCleanup,
  rawClient,
  runCleanups,
  startHomieApp,
  startPeer,
  telemetry,
  waitForCommand,
  waitForValue,
} from './homie-helpers.js';

afterEach(runCleanups);

const brokers = eachBroker();

const state = (app: HomieApp, id: string) => app.fleet.device(id)?.state;

/** A base topic and device ids of this run only; their retained messages are cleared after the test. */
function names(url: string, count = 1): { base: string; ids: string[] } {
  const base = `fv-${uniqueId('h')}`;
  const ids = Array.from({ length: count }, () => uniqueId('peer'));
  onCleanup(() => clearRetained(url, base, ids));
  return { base, ids };
}

/** The Homie host on `url` (a base topic of this run) and a homie-device peer there, once connected. */
async function connectedPeer(
  url: string,
  appOptions: Omit<HomieConventionOptions, 'baseTopic'> = {},
  peerOptions: Omit<PeerOptions, 'id' | 'base'> = {},
) {
  const { base, ids } = names(url);
  const id = ids[0]!;
  const app = await startHomieApp(url, { baseTopic: base, ...appOptions });
  const peer = await startPeer(url, { id, base, ...peerOptions });
  await waitFor(() => state(app, id) === 'connected', 10_000, 'connected');
  return { app, peer, id, base };
}

describe.each(brokers)('Homie convention ($name)', ({ url: brokerUrl }) => {
  it('a Homie device appears in the fleet: ready → connected, its description as status, its values as telemetry', async () => {
    const url = brokerUrl();
    const { base, ids } = names(url);
    const id = ids[0]!;
    const app = await startHomieApp(url, { baseTopic: base });
    await waitFor(() => app.bridge.stats().connected, 5000, 'bridge connected');
    await startPeer(url, { id, base, temperature: 20.5 });
    await waitFor(() => state(app, id) === 'connected', 10_000, 'connected');

    const d = app.fleet.device(id)!;
    expect(d.kind).toBe(HOMIE_KIND);
    expect(d.attributes).toEqual({ baseTopic: base });
    expect(d.link).toMatchObject({ up: true, via: `mqtt:${base}` });
    // On aedes part of the description may come through the bridge's resync: poll for all of it.
    await expect
      .poll(() => app.fleet.device(id)!.status, { timeout: 5000 })
      .toMatchObject({
        homie: '3.0.1',
        name: 'Test peer',
        homieState: 'ready',
        firmware: '1.2.3',
        firmwareName: 'homie-peer',
        implementation: 'nodejs:homie-device',
        nodes: { sensor: { name: 'Sensor', type: 'sensor' } },
        values: { 'sensor/mode': 'eco' },
      });
    await expect
      .poll(() => Object.keys(app.fleet.device(id)!.status.properties as object).length, { timeout: 5000 })
      .toBe(6);
    const status = app.fleet.device(id)!.status;
    const properties = status.properties as Record<string, unknown>;
    expect(Object.keys(properties).sort()).toEqual(
      ['count', 'enabled', 'label', 'mode', 'silent', 'temperature'].map((p) => `sensor/${p}`),
    );
    expect(properties['sensor/count']).toEqual({
      node: 'sensor',
      property: 'count',
      name: 'Count',
      datatype: 'integer',
      format: '0:100',
      unit: null,
      settable: true,
      retained: true,
    });
    expect(properties['sensor/temperature']).toMatchObject({
      datatype: 'float',
      unit: '°C',
      settable: false,
    });
    // The UI's forms: one per settable property, the value typed by $datatype / $format.
    const forms = homieSetForms(status);
    expect(forms.map((f) => f.property).sort()).toEqual(['count', 'enabled', 'label', 'mode', 'silent']);
    expect(forms.find((f) => f.property === 'count')!.argsSchema).toMatchObject({
      properties: { value: { type: 'integer', minimum: 0, maximum: 100, title: 'Count' } },
    });

    // Values: the retained ones at once, then what the device publishes.
    await waitForValue(app, id, 'sensor/temperature', 20.5);
    await waitForValue(app, id, 'sensor/count', 1);
    await waitForValue(app, id, 'sensor/mode', 0); // enum: its index in $format
    expect(app.bridge.device(id)).toMatchObject({
      homie: '3.0.1',
      state: 'ready',
      adopted: true,
      complete: true,
    });
  });

  it('a numeric property the device updates lands in the store, once per update', async () => {
    const { app, peer, id } = await connectedPeer(brokerUrl(), {}, { temperature: 18 });
    await waitForValue(app, id, 'sensor/temperature', 18);
    for (const v of [21.25, 22.5, 23.75]) peer.send({ cmd: 'send', property: 'temperature', value: v });
    await waitForValue(app, id, 'sensor/temperature', 23.75);
    await app.bridge.flush();
    await new Promise((r) => setTimeout(r, 100)); // the telemetry batch flushes every 20 ms
    expect(await telemetry(app, id, 'sensor/temperature')).toEqual({ count: 4, min: 18, max: 23.75 });
    peer.send({ cmd: 'send', property: 'enabled', value: 'true' });
    await waitForValue(app, id, 'sensor/enabled', 1); // boolean: 0/1
    peer.send({ cmd: 'send', property: 'label', value: 'boiler room' });
    await waitFor(
      () => (app.fleet.device(id)!.status.values as Record<string, string>)['sensor/label'] === 'boiler room',
      5000,
      'a string value reported as status',
    );
    expect(await app.store.listMetrics(id)).not.toContain('sensor/label');
  });

  it('set reaches the device, its echo completes the command; bad values are refused naming the property', async () => {
    const { app, peer, id } = await connectedPeer(brokerUrl(), { setTimeoutMs: 800 });
    await waitFor(() => app.bridge.device(id)?.complete === true, 5000, 'described');

    const r = await app.fleet.act(id, 'set', { node: 'sensor', property: 'count', value: 42 }, 'ana');
    expect(r).toMatchObject({ ok: true, value: { commandStatus: 'sent', state: 'connected' } });
    const commandId = r.ok ? r.value.commandId : '';
    await waitFor(
      () => peer.events.some((e) => e.event === 'set' && e.property === 'count' && e.value === '42'),
      5000,
      'the peer’s settable handler ran',
    );
    await waitForCommand(app, commandId, 'succeeded');
    await waitForValue(app, id, 'sensor/count', 42);
    expect(app.fleet.commands.open(id)).toEqual([]);

    const on = await app.fleet.act(id, 'set', { node: 'sensor', property: 'enabled', value: true }, 'ana');
    const mode = await app.fleet.act(
      id,
      'set',
      { node: 'sensor', property: 'mode', value: 'comfort' },
      'ana',
    );
    const label = await app.fleet.act(id, 'set', { node: 'sensor', property: 'label', value: 'hall' }, 'ana');
    for (const x of [on, mode, label]) await waitForCommand(app, x.ok ? x.value.commandId : '', 'succeeded');
    await waitForValue(app, id, 'sensor/mode', 1);
    expect(peer.events.filter((e) => e.event === 'set').map((e) => e.value)).toEqual([
      '42',
      'true',
      'comfort',
      'hall',
    ]);

    // Refused before anything is sent: a clear badArgs naming the property.
    const refused = async (property: string, value: unknown) => {
      const x = await app.fleet.act(id, 'set', { node: 'sensor', property, value }, 'ana');
      expect(x.ok).toBe(false);
      return x.ok ? '' : `${x.error.code}: ${x.error.message}`;
    };
    expect(await refused('count', 500)).toMatch(/^badArgs: .*sensor\/count.*500 is outside 0:100/);
    expect(await refused('count', 'abc')).toMatch(/^badArgs: .*sensor\/count.*"abc" is not an integer/);
    expect(await refused('count', 2.5)).toMatch(/^badArgs: .*sensor\/count.*not an integer/);
    expect(await refused('mode', 'turbo')).toMatch(/^badArgs: .*sensor\/mode.*not one of eco, comfort, off/);
    expect(await refused('enabled', 'yes')).toMatch(/^badArgs: .*sensor\/enabled.*not true or false/);
    expect(await refused('temperature', 20)).toMatch(/^badArgs: .*sensor\/temperature.*not settable/);
    expect(await refused('nope', 1)).toMatch(
      /^badArgs: .*no property sensor\/nope \(settable: .*sensor\/count/,
    );
    expect(await refused('Bad_Prop', 1)).toMatch(/^badArgs: set: property: a Homie id/);
    // Text for a number or a boolean, and null, are refused like any other bad value, naming it.
    expect(await refused('count', '12')).toMatch(/^badArgs: .*sensor\/count.*"12" is not an integer/);
    expect(await refused('count', null)).toMatch(/^badArgs: .*sensor\/count.*got null/);
    expect(await refused('enabled', 'on')).toMatch(/^badArgs: .*sensor\/enabled.*"on" is not true or false/);
    expect(await refused('enabled', null)).toMatch(/^badArgs: .*sensor\/enabled.*got null/);
    expect(peer.events.filter((e) => e.event === 'set')).toHaveLength(4);

    // A device that takes the set but never publishes the new value: timedOut.
    const silent = await app.fleet.act(id, 'set', { node: 'sensor', property: 'silent', value: 7 }, 'ana');
    expect(silent.ok).toBe(true);
    await waitFor(() => peer.events.some((e) => e.property === 'silent'), 5000, 'silent set received');
    await waitForCommand(app, silent.ok ? silent.value.commandId : '', 'timedOut');
    expect(await commandStatus(app, commandId)).toBe('succeeded');
  });

  it('kill -9: the broker publishes the will, the device is lost within the keepalive; restarted, it is back by itself', async () => {
    const url = brokerUrl();
    const { app, peer, id, base } = await connectedPeer(url, {}, { keepalive: 2 });

    const killedAt = Date.now();
    await peer.kill();
    await waitFor(() => state(app, id) === 'lost', 2 * 2000 * 1.5, 'lost after the will');
    expect(Date.now() - killedAt).toBeLessThan(3000 + 500); // within 1.5 × the 2 s keepalive
    expect(app.fleet.device(id)!.link).toMatchObject({ up: false, reason: 'lost (last will)' });
    await waitFor(() => app.fleet.device(id)!.status.homieState === 'lost', 5000, 'status: lost');
    // A set for the lost device is audited and waits for it (a set is not retained by the broker).
    const waiting = await app.fleet.act(id, 'set', { node: 'sensor', property: 'count', value: 5 });
    expect(waiting).toMatchObject({ ok: true, value: { commandStatus: 'pending' } });
    expect(await commandStatus(app, waiting.ok ? waiting.value.commandId : '')).toBe('pending');

    const back = await startPeer(url, { id, base, keepalive: 2, firmware: '1.2.4' });
    await waitFor(() => state(app, id) === 'connected', 10_000, 'connected again, with no operator action');
    await waitForCommand(app, waiting.ok ? waiting.value.commandId : '', 'succeeded');
    expect(back.events.filter((e) => e.event === 'set').map((e) => [e.property, e.value])).toEqual([
      ['count', '5'],
    ]);
    expect(app.fleet.device(id)!.link).toMatchObject({ up: true });
    await waitFor(() => app.fleet.device(id)!.status.firmware === '1.2.4', 5000, 'the new firmware');
    expect(
      (app.fleet.machineOf(id)!.getSnapshot() as { context: { firmware: string } }).context.firmware,
    ).toBe('1.2.4');
    await app.fleet.flush(); // the fleet writes its events in batches
    const states = await app.store.queryEvents({ deviceId: id, kind: 'device.state', limit: 100 });
    const path = states.items.flatMap((e) => (e.ok ? [(e.value.data as { to: string }).to] : []));
    expect(path).toContain('lost');
    expect(path.at(-1)).toBe('connected');
  });

  it('a set asked while the device is away survives an app restart and reaches it when it is back', async () => {
    const url = brokerUrl();
    const { app: first, peer, id, base } = await connectedPeer(url, {}, { keepalive: 2 });
    await waitFor(() => first.bridge.device(id)?.complete === true, 5000, 'described');
    await first.bridge.flush(); // its description is in the store (status.properties)
    await peer.kill();
    await waitFor(() => state(first, id) === 'lost', 6000, 'lost after the will');
    const r = await first.fleet.act(id, 'set', { node: 'sensor', property: 'count', value: 7 }, 'ana');
    expect(r).toMatchObject({ ok: true, value: { commandStatus: 'pending' } });
    const commandId = r.ok ? r.value.commandId : '';
    await first.stop();

    // Restarted on the same data: the set is still open, checked against the stored description.
    const second = await startHomieApp(url, { baseTopic: base }, { file: first.file });
    expect(second.fleet.commands.get(commandId)).toMatchObject({ status: 'pending', carrier: 'homie' });
    expect(
      await second.fleet.act(id, 'set', { node: 'sensor', property: 'count', value: '8' }),
    ).toMatchObject({
      ok: false,
      error: { code: 'badArgs', message: expect.stringContaining('sensor/count') },
    });
    const back = await startPeer(url, { id, base, keepalive: 2 });
    await waitForCommand(second, commandId, 'succeeded');
    expect(back.events.filter((e) => e.event === 'set').map((e) => [e.property, e.value])).toEqual([
      ['count', '7'],
    ]);
  });

  it('bad input is a clear event on its device, counted; nothing else breaks', async () => {
    const url = brokerUrl();
    const { app, peer, id, base } = await connectedPeer(url);
    await waitFor(() => app.bridge.device(id)?.complete === true, 5000, 'described');
    const raw = await rawClient(url);
    const before = app.bridge.stats();
    await raw.publishAsync(`${base}/${id}/sensor/count`, 'abc', { qos: 1 });
    await raw.publishAsync(`${base}/${id}/sensor/count`, '500', { qos: 1 });
    await raw.publishAsync(`${base}/${id}/$state`, 'bogus', { qos: 1 });
    await raw.publishAsync(`${base}/${id}/sensor/enabled`, 'maybe', { qos: 1 });
    await raw.publishAsync(`${base}/Bad_Id/$homie`, '3.0.1', { qos: 1 });
    await raw.publishAsync(`${base}/${id}/Sensor/count`, '1', { qos: 1 });
    await waitFor(() => app.bridge.stats().malformed - before.malformed >= 5, 5000, 'bad input counted');
    await waitFor(() => app.bridge.stats().refused - before.refused >= 1, 5000, 'bad id refused');

    const events = await badMessages(app, id);
    expect(events.map((e) => e.code).sort()).toEqual([
      'badState',
      'badTopic',
      'badValue',
      'badValue',
      'badValue',
    ]);
    const text = events.map((e) => e.message).join('\n');
    expect(text).toContain('sensor/count (integer 0:100): "abc" is not an integer');
    expect(text).toContain('sensor/count (integer 0:100): 500 is outside 0:100');
    expect(text).toContain('sensor/enabled (boolean): "maybe" is not true or false');
    expect(text).toContain('$state "bogus" is not one of');
    expect(app.bridge.device(id)!.errors).toEqual({ badValue: 3, badState: 1, badTopic: 1 });
    expect(app.fleet.device('Bad_Id')).toBeUndefined();
    expect(app.fleet.list().map((d) => d.id)).toEqual([id]);

    // Nothing else broke: the state stands, values still land, a set still works.
    expect(state(app, id)).toBe('connected');
    peer.send({ cmd: 'send', property: 'temperature', value: 30.5 });
    await waitForValue(app, id, 'sensor/temperature', 30.5);
    const r = await app.fleet.act(id, 'set', { node: 'sensor', property: 'count', value: 9 });
    await waitForCommand(app, r.ok ? r.value.commandId : '', 'succeeded');
    await waitForValue(app, id, 'sensor/count', 9); // the echo's telemetry commits after the command ends
    const count = await app.store.queryTelemetry(id, 'sensor/count', 0, Date.now() + 1000, 1);
    expect(count[0]!.max).toBe(9); // neither "abc" nor 500 was stored
  });

  it('manual adoption: a new device waits in discovered until the operator adopts it', async () => {
    const url = brokerUrl();
    const { base, ids } = names(url);
    const id = ids[0]!;
    const app = await startHomieApp(url, { baseTopic: base, adopt: 'manual' });
    await startPeer(url, { id, base });
    await waitFor(
      () => app.bridge.discovered().some((d) => d.id === id && d.name !== null),
      10_000,
      'discovered, with its name',
    );
    expect(app.bridge.discovered()[0]).toMatchObject({
      id,
      homie: '3.0.1',
      reason: 'manual',
      name: 'Test peer',
    });
    expect(app.fleet.device(id)).toBeUndefined();
    expect(await app.bridge.adopt(id)).toEqual({ ok: true });
    await waitFor(() => state(app, id) === 'connected', 5000, 'adopted and connected');
    await waitForValue(app, id, 'sensor/temperature', 20.5);
    expect(app.bridge.discovered()).toEqual([]);
  });
});

describe('Homie bridge and its broker (embedded aedes)', () => {
  it('the broker goes away: every device goes down (broker unreachable) and comes back with no operator action', async () => {
    const port = await freePort();
    let broker = await startEmbeddedBroker({ port });
    onCleanup(() => broker.close());
    const url = `mqtt://127.0.0.1:${port}`;
    const base = `fv-${uniqueId('h')}`;
    const ids = [uniqueId('peer'), uniqueId('peer')];
    const app = await startHomieApp(url, { baseTopic: base });
    for (const id of ids) await startPeer(url, { id, base });
    await waitFor(() => ids.every((id) => state(app, id) === 'connected'), 10_000, 'all connected');
    const reconnectsBefore = app.bridge.stats().reconnects;

    await broker.close();
    await waitFor(() => ids.every((id) => state(app, id) === 'disconnected'), 5000, 'all down');
    // The bridge sees its connection drop; a broker that sends wills as it closes may say `lost` first.
    for (const id of ids) expect(app.fleet.device(id)!.link.reason).toMatch(/broker unreachable|lost/);
    await new Promise((r) => setTimeout(r, 1000));
    broker = await startEmbeddedBroker({ port });
    await waitFor(() => ids.every((id) => state(app, id) === 'connected'), 15_000, 'all back');
    const attempts = app.bridge.stats().reconnects - reconnectsBefore;
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(attempts).toBeLessThanOrEqual(30); // backoff 50 → 300 ms with jitter, not a storm
  });

  it('under a supervisor: a killed bridge is restarted and finds its devices again', async () => {
    const url = brokers[0]!.url(); // the embedded aedes
    const { base, ids } = names(url);
    const id = ids[0]!;
    const app = await startHomieApp(url, { baseTopic: base }, { supervised: true });
    const { fleet } = app; // the bridge is read from `app`: a restart puts another there
    await startPeer(url, { id, base });
    await waitFor(() => fleet.device(id)?.state === 'connected', 10_000, 'connected');
    const first = app.bridge;
    first.kill();
    expect(fleet.device(id)!.link).toMatchObject({ up: false, reason: 'the Homie bridge was killed' });
    await waitFor(() => app.bridge !== first && app.bridge.alive, 5000, 'restarted');
    await waitFor(() => fleet.device(id)?.state === 'connected', 10_000, 'connected through the new bridge');
    expect(fleet.list()).toHaveLength(1);
    // The new bridge reads the device's description again: a set waits for its property.
    const r = await actWhenDescribed(fleet, id, 'set', { node: 'sensor', property: 'count', value: 3 });
    expect(r).toMatchObject({ ok: true, value: { commandStatus: 'sent' } });
  });
});

/**
 * The Sparkplug session model without a broker: payloads encoded with Tahu's codec go in, the
 * effects its process would carry out come out; the fleet is an in-memory map.
 */
import type { UMetric, UPayload } from 'sparkplug-payload/lib/sparkplugbpayload.js';
import { describe, expect, it } from 'vitest';
import { encodeSparkplugPayload } from '../../src/conventions/sparkplug/sparkplug-codec.js';
import type { SparkplugEffect } from '../../src/conventions/sparkplug/sparkplug-effects.js';
import type { SparkplugModelOptions } from '../../src/conventions/sparkplug/sparkplug-model.js';
import { SparkplugModel } from '../../src/conventions/sparkplug/sparkplug-model.js';
import { inMemoryFleetFacts } from './sparkplug-fleet-facts.js';

const NODE_ID = 'Plant1-Line4';
const DEVICE_ID = 'Plant1-Line4-Press2';
const topic = (type: string, device?: string) =>
  `spBv1.0/Plant1/${type}/Line4${device === undefined ? '' : `/${device}`}`;

function setup(options: Partial<SparkplugModelOptions> = {}) {
  const effects: SparkplugEffect[] = [];
  const fleet = inMemoryFleetFacts();
  const model = new SparkplugModel(
    { fleet: fleet.facts, now: () => 1_000_000, connected: () => true, emit: (e) => effects.push(e) },
    {
      hostId: 'fleetvisor',
      groups: undefined,
      adopt: 'auto',
      rebirthMinIntervalMs: 5000,
      maxRebirthsPerMinute: 6,
      maxPayloadBytes: 1024 * 1024,
      ...options,
    },
  );
  const send = async (t: string, payload: UPayload) => {
    model.receive(t, Buffer.from(encodeSparkplugPayload(payload)));
    await model.idle();
  };
  const of = <T extends SparkplugEffect['type']>(type: T) =>
    effects.filter((e): e is Extract<SparkplugEffect, { type: T }> => e.type === type);
  return { model, effects, fleet, send, of };
}

const nbirth = (seq: number, bdSeq = 0): UPayload => ({
  timestamp: 1000,
  seq,
  metrics: [
    { name: 'bdSeq', type: 'UInt64', value: bdSeq },
    { name: 'Node Control/Rebirth', type: 'Boolean', value: false },
    { name: 'uptime', alias: 1, type: 'Int64', value: 5 },
  ],
});

const dbirth = (seq: number): UPayload => ({
  timestamp: 2000,
  seq,
  metrics: [
    { name: 'temperature', alias: 10, type: 'Float', value: 20.5 },
    { name: 'setpoint', alias: 11, type: 'Int32', value: 40 },
  ],
});

const data = (seq: number, metrics: UMetric[]): UPayload => ({ timestamp: 3000, seq, metrics });
const uptime = (value: number): UMetric => ({ name: 'uptime', type: 'Int64', value });

async function born(options: Partial<SparkplugModelOptions> = {}, bdSeq = 0) {
  const t = setup(options);
  await t.send(topic('NBIRTH'), nbirth(0, bdSeq));
  await t.send(topic('DBIRTH', 'Press2'), dbirth(1));
  return t;
}

describe('Sparkplug session model', () => {
  it('NBIRTH then DBIRTH: node and device are added and born, the device with its metrics', async () => {
    const t = await born();
    expect(t.fleet.devices.get(NODE_ID)?.kind).toBe('sparkplug.node');
    expect(t.fleet.devices.get(DEVICE_ID)).toMatchObject({
      kind: 'sparkplug.device',
      attributes: { group: 'Plant1', node: 'Line4', device: 'Press2' },
    });
    expect(t.of('linkUp').map((e) => e.id)).toEqual([NODE_ID, DEVICE_ID]);
    const status = t.of('status').find((e) => e.id === DEVICE_ID)?.status;
    expect(status).toMatchObject({ parent: NODE_ID, device: 'Press2', birthAt: 2000 });
    expect(status?.metrics).toEqual([
      { name: 'temperature', datatype: 'Float', alias: 10, value: 20.5 },
      { name: 'setpoint', datatype: 'Int32', alias: 11, value: 40 },
    ]);
    expect(t.of('telemetry').find((e) => e.id === DEVICE_ID)).toMatchObject({
      values: { temperature: 20.5, setpoint: 40 },
      ts: 2000,
    });
    expect(t.model.born(DEVICE_ID)?.metrics.get('setpoint')?.datatype).toBe('Int32');
    expect(t.model.node(NODE_ID)).toMatchObject({ born: true, seq: 1, bdSeq: 0 });
    expect(t.model.node(NODE_ID)?.devices).toEqual([{ id: DEVICE_ID, device: 'Press2', born: true }]);
    expect(t.model.counters).toMatchObject({ births: 2, gaps: 0, rebirthsRequested: 0, badMessages: 0 });
    expect(t.of('rebirthRequest')).toEqual([]);
  });

  it('a seq gap asks the node once for a rebirth and makes it and its devices stale', async () => {
    const t = await born();
    await t.send(topic('NDATA'), data(2, [uptime(6)]));
    expect(t.of('rebirthRequest')).toEqual([]);
    await t.send(topic('NDATA'), data(7, [uptime(7)]));
    await t.send(topic('NDATA'), data(8, [uptime(8)]));
    await t.send(topic('NDATA'), data(12, [uptime(9)])); // a second gap: the first request is unanswered
    expect(t.of('rebirthRequest')).toEqual([
      { type: 'rebirthRequest', group: 'Plant1', node: 'Line4', at: 1_000_000 },
    ]);
    expect(t.model.counters).toMatchObject({ gaps: 2, rebirthsRequested: 1, rebirthsSuppressed: 1 });
    expect(t.of('machine').map((e) => [e.id, e.event.type])).toEqual([
      [NODE_ID, 'STALE'],
      [DEVICE_ID, 'STALE'],
    ]);
  });

  it('an NDEATH of an older session (another bdSeq) is ignored; the birth’s own takes all down', async () => {
    const t = await born({}, 3);
    await t.send(topic('NDEATH'), {
      timestamp: 4000,
      metrics: [{ name: 'bdSeq', type: 'UInt64', value: 2 }],
    });
    expect(t.of('linkDown')).toEqual([]);
    expect(t.model.counters).toMatchObject({ staleDeaths: 1, deaths: 0 });
    expect(t.model.node(NODE_ID)?.born).toBe(true);

    await t.send(topic('NDEATH'), {
      timestamp: 4001,
      metrics: [{ name: 'bdSeq', type: 'UInt64', value: 3 }],
    });
    expect(t.of('linkDown')).toEqual([
      { type: 'linkDown', id: NODE_ID, reason: 'NDEATH (bdSeq 3)' },
      { type: 'linkDown', id: DEVICE_ID, reason: 'its edge node died (NDEATH (bdSeq 3))' },
    ]);
    expect(t.model.node(NODE_ID)).toMatchObject({ born: false, seq: null });
  });

  it('DDATA by alias updates the value: telemetry, the shown value, the writes it confirms', async () => {
    const t = await born();
    t.effects.length = 0;
    await t.send(topic('DDATA', 'Press2'), data(2, [{ alias: 10, type: 'Float', value: 21.5 } as UMetric]));
    expect(t.of('telemetry')).toEqual([
      { type: 'telemetry', id: DEVICE_ID, values: { temperature: 21.5 }, ts: 3000 },
    ]);
    expect(t.of('valueReported')).toEqual([
      {
        type: 'valueReported',
        id: DEVICE_ID,
        metric: 'temperature',
        datatype: 'Float',
        value: 21.5,
        reportedIn: 'DDATA',
      },
    ]);
    expect(t.of('showValues')[0]?.shown.find((m) => m.name === 'temperature')?.value).toBe(21.5);

    await t.send(topic('DDATA', 'Press2'), data(3, [{ alias: 99, type: 'Float', value: 1 } as UMetric]));
    expect(t.of('limitedEvent').map((e) => [e.kind, e.deviceId, (e.data as { code: string }).code])).toEqual([
      ['device.badMessage', DEVICE_ID, 'unknownAlias'],
    ]);
    expect(t.of('rebirthRequest')).toEqual([]);
  });

  it('data before a birth asks for a rebirth (NDATA before the NBIRTH, DDATA before the DBIRTH)', async () => {
    const t = setup();
    await t.send(topic('NDATA'), data(4, [uptime(1)]));
    expect(t.of('rebirthRequest')).toHaveLength(1);
    expect(t.model.counters.dataBeforeBirth).toBe(1);
    expect(t.of('limitedEvent').map((e) => e.kind)).toEqual(['sparkplug.dataBeforeBirth']);
    expect(t.fleet.devices.size).toBe(0); // data adopts nothing: only a birth does

    await t.send(topic('NBIRTH'), nbirth(0));
    await t.send(topic('DDATA', 'Press2'), data(1, [{ alias: 10, type: 'Float', value: 1 } as UMetric]));
    expect(t.of('rebirthRequest')).toHaveLength(2);
    expect(t.model.counters.dataBeforeBirth).toBe(2);
    expect(t.of('telemetry').filter((e) => e.id === DEVICE_ID)).toEqual([]);
  });

  it('adopt: manual — a birth waits in discovered(), and its data asks no rebirth', async () => {
    const t = setup({ adopt: 'manual' });
    await t.send(topic('NBIRTH'), nbirth(0));
    expect(t.model.discovered().map((d) => d.id)).toEqual([NODE_ID]);
    await t.send(topic('NDATA'), data(1, [uptime(1)]));
    expect(t.of('rebirthRequest')).toEqual([]);
    expect(t.model.counters.dataBeforeBirth).toBe(1);
  });
});

describe('Sparkplug model in a cluster: shards gained', () => {
  it("a device refused because another instance owned its shard makes its node asked for a rebirth once the shard is this instance's", async () => {
    const t = setup();
    // This instance owns the node's shard, not the device's (yet): the fleet refuses it notOwner.
    let ownsDevice = false;
    const add = t.fleet.facts.addDevice;
    t.fleet.facts.addDevice = async (input) =>
      input.id === DEVICE_ID && !ownsDevice
        ? {
            ok: false,
            error: { code: 'notOwner', message: `another instance owns the shard of ${input.id}` },
          }
        : add(input);
    await t.send(topic('NBIRTH'), nbirth(0));
    await t.send(topic('DBIRTH', 'Press2'), dbirth(1));
    expect(t.fleet.devices.has(NODE_ID)).toBe(true);
    expect(t.fleet.devices.has(DEVICE_ID)).toBe(false);
    expect(t.model.discovered().map((d) => [d.id, d.reason.split(':')[0]])).toEqual([
      [DEVICE_ID, 'addFailed'],
    ]);
    expect(t.of('rebirthRequest')).toEqual([]);

    // A gain that does not bring the device's shard asks nothing.
    expect(t.model.ownershipGained(() => false)).toBe(0);
    expect(t.of('rebirthRequest')).toEqual([]);

    // The device's shard comes to this instance: its node is asked for its births, once.
    ownsDevice = true;
    expect(t.model.ownershipGained((id) => id === DEVICE_ID)).toBe(1);
    expect(t.of('rebirthRequest')).toEqual([
      { type: 'rebirthRequest', group: 'Plant1', node: 'Line4', at: 1_000_000 },
    ]);

    // The node answers with its births: the device is taken now.
    await t.send(topic('NBIRTH'), nbirth(0, 1));
    await t.send(topic('DBIRTH', 'Press2'), dbirth(1));
    expect(t.fleet.devices.has(DEVICE_ID)).toBe(true);
    expect(t.model.discovered()).toEqual([]);
  });

  it('a node the gain brought from the store, with no birth heard here, is asked for its births; a born one is not', async () => {
    const t = setup();
    // Restored by the take-over: in the fleet, never born on this instance's bridge.
    await t.fleet.facts.addDevice({
      id: NODE_ID,
      kind: 'sparkplug.node',
      name: NODE_ID,
      tags: [],
      attributes: { group: 'Plant1', node: 'Line4' },
    });
    expect(t.model.ownershipGained((id) => id === 'another-node')).toBe(0);
    expect(t.model.ownershipGained((id) => id === NODE_ID)).toBe(1);
    expect(t.of('rebirthRequest')).toEqual([
      { type: 'rebirthRequest', group: 'Plant1', node: 'Line4', at: 1_000_000 },
    ]);
    // Once born here, a later gain does not ask it again.
    await t.send(topic('NBIRTH'), nbirth(0));
    expect(t.model.ownershipGained((id) => id === NODE_ID)).toBe(0);
    expect(t.of('rebirthRequest')).toHaveLength(1);
  });
});

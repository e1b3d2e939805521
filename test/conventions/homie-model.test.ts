/**
 * The Homie session model (src/conventions/homie/homie-model.ts) without a broker: topics and
 * payloads in, sessions and effects out. The `discover` effect is answered the way the bridge's
 * fleet side answers it for a device it adopts (adopted, then everything known replayed).
 *
 * @example
 * npx vitest run test/conventions/homie-model.test.ts
 */
import { describe, expect, it } from 'vitest';
import type { HomieEffect, HomieModelOptions } from '../../src/conventions/homie/homie-model.js';
import { HomieModel } from '../../src/conventions/homie/homie-model.js';
import type { Session } from '../../src/conventions/homie/homie-session.js';
import { isComplete, statusOf, viewOf } from '../../src/conventions/homie/homie-session.js';

/** An effect without its session (the device id instead), for readable expectations. */
type Seen = Record<string, unknown>;

function setup(options: Partial<HomieModelOptions> & { adopt?: boolean } = {}) {
  const clock = { now: 1_000_000 };
  const effects: HomieEffect[] = [];
  const model = new HomieModel({ baseTopic: 'homie', now: () => clock.now, ...options }, (e) => {
    effects.push(e);
    if (e.type === 'discover' && options.adopt !== false && !e.session.adopted) {
      e.session.adopted = true;
      model.replay(e.session);
    }
  });
  /** Publishes `payload` on `homie/<topic>` (retained unless said otherwise). */
  const send = (topic: string, payload: string | Buffer, retained = true) =>
    model.receive(`homie/${topic}`, typeof payload === 'string' ? Buffer.from(payload) : payload, retained);
  /** The effects since the last call, with `session` replaced by its id. */
  const take = (): Seen[] =>
    effects.splice(0).map((e) => {
      if (!('session' in e)) return { ...e };
      const { session, ...rest } = e;
      return { ...rest, device: session.id };
    });
  const session = (id: string): Session => model.sessions.get(id)!;
  return { model, clock, send, take, session };
}

/** What homie-device (v3.0.1) retains on connect, in its order. */
const V3_ANNOUNCEMENT: [string, string][] = [
  ['boiler/$homie', '3.0.1'],
  ['boiler/$name', 'Boiler'],
  ['boiler/$state', 'init'],
  ['boiler/$localip', '10.0.0.7'],
  ['boiler/$mac', 'AA:BB:CC:DD:EE:FF'],
  ['boiler/$fw/name', 'boiler-fw'],
  ['boiler/$fw/version', '1.2.0'],
  ['boiler/$implementation', 'esp8266'],
  ['boiler/$stats/interval', '60'],
  ['boiler/$nodes', 'heater'],
  ['boiler/heater/$name', 'Heater'],
  ['boiler/heater/$type', 'gas'],
  ['boiler/heater/$properties', 'temperature,target,mode'],
  ['boiler/heater/temperature/$name', 'Temperature'],
  ['boiler/heater/temperature/$datatype', 'float'],
  ['boiler/heater/temperature/$unit', '°C'],
  ['boiler/heater/target/$name', 'Target'],
  ['boiler/heater/target/$datatype', 'float'],
  ['boiler/heater/target/$format', '5:30'],
  ['boiler/heater/target/$settable', 'true'],
  ['boiler/heater/mode/$name', 'Mode'],
  ['boiler/heater/mode/$datatype', 'enum'],
  ['boiler/heater/mode/$format', 'eco,comfort'],
  ['boiler/heater/mode/$settable', 'true'],
  ['boiler/heater/temperature', '21.5'],
  ['boiler/heater/target', '21'],
  ['boiler/heater/mode', 'eco'],
  ['boiler/$state', 'ready'],
];

describe('a device announcement', () => {
  it('a full v3 announcement makes a complete session and the status the fleet stores', () => {
    const { model, send, take, session } = setup();
    // Complete once each declared property has sent an attribute (values are not needed).
    const describedAt = V3_ANNOUNCEMENT.findIndex(([topic]) => topic === 'boiler/heater/mode/$name');
    V3_ANNOUNCEMENT.forEach(([topic, payload], i) => {
      send(topic, payload);
      expect(isComplete(session('boiler'))).toBe(i >= describedAt);
    });
    const s = session('boiler');
    expect(viewOf(s)).toMatchObject({ id: 'boiler', homie: '3.0.1', state: 'ready', complete: true });
    expect(model.counters).toEqual({ received: V3_ANNOUNCEMENT.length, refused: 0, malformed: 0 });
    const status = statusOf(s, 'mqtt:homie');
    expect(status).toMatchObject({
      homie: '3.0.1',
      name: 'Boiler',
      homieState: 'ready',
      firmware: '1.2.0',
      firmwareName: 'boiler-fw',
      implementation: 'esp8266',
      via: 'mqtt:homie',
      nodes: { heater: { name: 'Heater', type: 'gas', properties: ['temperature', 'target', 'mode'] } },
      values: {}, // floats and enums are telemetry, not text values
    });
    expect(status.properties).toMatchObject({
      'heater/target': { datatype: 'float', format: '5:30', settable: true, retained: true },
      'heater/mode': { datatype: 'enum', format: 'eco,comfort', settable: true },
      'heater/temperature': { datatype: 'float', unit: '°C', settable: false },
    });
    const effects = take();
    expect(effects[0]).toEqual({ type: 'discover', device: 'boiler' });
    expect(effects.filter((e) => e.type === 'telemetry')).toEqual([
      { type: 'telemetry', device: 'boiler', metric: 'heater/temperature', value: 21.5 },
      { type: 'telemetry', device: 'boiler', metric: 'heater/target', value: 21 },
      { type: 'telemetry', device: 'boiler', metric: 'heater/mode', value: 0 },
    ]);
    expect(effects.filter((e) => e.type === 'badMessage' || e.type === 'refused')).toEqual([]);
  });

  it('retained before adoption, applied at once when the device is adopted', () => {
    const { send, take } = setup();
    send('boiler/$state', 'ready');
    send('boiler/heater/$properties', 'temperature');
    send('boiler/heater/temperature/$datatype', 'integer');
    send('boiler/heater/temperature', '20');
    expect(take().filter((e) => e.type !== 'status' && e.type !== 'stateChanged')).toEqual([]); // not adopted yet
    send('boiler/$homie', '4.0.0');
    expect(take()).toEqual([
      { type: 'discover', device: 'boiler' },
      { type: 'machineState', device: 'boiler', state: 'ready' },
      { type: 'linkUp', device: 'boiler', firmware: '' },
      { type: 'telemetry', device: 'boiler', metric: 'heater/temperature', value: 20 },
    ]);
  });

  it('a value seen as text before its datatype is taken as what it is once the datatype arrives', () => {
    const { send, take, session } = setup();
    send('boiler/$homie', '4.0.0');
    send('boiler/heater/level', '7');
    expect(session('boiler').values.get('heater/level')).toBe('7');
    take();
    send('boiler/heater/level/$datatype', 'integer');
    expect(session('boiler').values.has('heater/level')).toBe(false);
    expect(take()).toContainEqual({ type: 'telemetry', device: 'boiler', metric: 'heater/level', value: 7 });
  });

  it('a retained value seen again (a resubscription) is echoed but not stored again', () => {
    const { send, take } = setup();
    send('boiler/$homie', '4.0.0');
    send('boiler/heater/target/$datatype', 'float');
    send('boiler/heater/target', '21');
    take();
    send('boiler/heater/target', '21');
    expect(take()).toEqual([
      {
        type: 'echo',
        device: 'boiler',
        node: 'heater',
        property: 'target',
        spec: { datatype: 'float', format: null },
        text: '21',
      },
    ]);
  });
});

describe('bad input', () => {
  it('a bad datatype is refused, naming the attribute and the topic', () => {
    const { model, send, take, session } = setup();
    send('boiler/$homie', '4.0.0');
    take();
    send('boiler/heater/target/$datatype', 'decimal');
    expect(take()).toEqual([
      {
        type: 'badMessage',
        device: 'boiler',
        code: 'badAttribute',
        message: 'heater/target/$datatype "decimal" is not a Homie datatype',
        topic: 'homie/boiler/heater/target/$datatype',
      },
    ]);
    expect(session('boiler').properties.get('heater/target')?.datatype).toBeUndefined();
    expect(session('boiler').errors).toEqual({ badAttribute: 1 });
    expect(model.counters.malformed).toBe(1);
  });

  it('a value outside its $format range is refused and not telemetry; one inside is', () => {
    const { send, take } = setup();
    send('boiler/$homie', '4.0.0');
    send('boiler/heater/target/$datatype', 'integer');
    send('boiler/heater/target/$format', '5:30');
    take();
    send('boiler/heater/target', '31');
    expect(take()).toEqual([
      expect.objectContaining({ type: 'echo', text: '31' }),
      {
        type: 'badMessage',
        device: 'boiler',
        code: 'badValue',
        message: 'heater/target (integer 5:30): 31 is outside 5:30',
        topic: 'homie/boiler/heater/target',
      },
    ]);
    send('boiler/heater/target', '30');
    expect(take()).toContainEqual({
      type: 'telemetry',
      device: 'boiler',
      metric: 'heater/target',
      value: 30,
    });
  });

  it('a malformed $format, an unknown $state, an unsupported version are each refused by name', () => {
    const { send, take } = setup();
    send('boiler/$homie', '2.0.0');
    send('boiler/$homie', '4.0.0');
    send('boiler/$state', 'sleepy');
    send('boiler/heater/mode/$datatype', 'enum');
    send('boiler/heater/mode/$format', 'a,,b');
    const bad = take().filter((e) => e.type === 'badMessage');
    expect(bad.map((e) => [e.code, e.message])).toEqual([
      ['badVersion', '$homie "2.0.0" is not a supported Homie version (3.x, 4.x)'],
      ['badState', '$state "sleepy" is not one of init, ready, disconnected, sleeping, alert, lost'],
      ['badAttribute', 'heater/mode: $format "a,,b" has an empty enum value'],
    ]);
  });

  it('badMessage effects are bounded per device per minute; all are counted', () => {
    const { model, clock, send, take, session } = setup({ maxErrorEventsPerMinute: 2 });
    send('boiler/$homie', '4.0.0');
    take();
    for (let i = 0; i < 5; i++) send('boiler/$state', 'nope');
    expect(take().filter((e) => e.type === 'badMessage')).toHaveLength(2);
    expect(session('boiler').errors).toEqual({ badState: 5 });
    expect(model.counters.malformed).toBe(5);
    clock.now += 60_000;
    send('boiler/$state', 'nope');
    expect(take().filter((e) => e.type === 'badMessage')).toHaveLength(1);
  });

  it('topics with a bad device id, a wildcard, or past maxDevices are refused and make no session', () => {
    const { model, send, take } = setup({ maxDevices: 1 });
    send('Boiler/$homie', '4.0.0');
    send('boiler/+/$name', 'x');
    send('boiler/$homie', '4.0.0');
    send('second/$homie', '4.0.0');
    model.receive('other/boiler/$homie', Buffer.from('4.0.0'), true);
    expect(take().filter((e) => e.type === 'refused')).toEqual([
      { type: 'refused', topic: 'homie/Boiler/$homie', why: '"Boiler" is not a Homie device id' },
      { type: 'refused', topic: 'homie/boiler/+/$name', why: 'a wildcard in a topic name' },
      { type: 'refused', topic: 'homie/second/$homie', why: 'more than 1 Homie devices' },
      { type: 'refused', topic: 'other/boiler/$homie', why: 'not under the base topic' },
    ]);
    expect([...model.sessions.keys()]).toEqual(['boiler']);
    expect(model.counters).toMatchObject({ received: 5, refused: 4 });
  });

  it('a payload over maxPayloadBytes or not UTF-8 is bad input of the device', () => {
    const { send, take } = setup({ maxPayloadBytes: 8 });
    send('boiler/$homie', '4.0.0');
    send('boiler/$name', 'a very long name');
    send('boiler/$name', Buffer.from([0xff, 0xfe]));
    expect(
      take()
        .filter((e) => e.type === 'badMessage')
        .map((e) => e.code),
    ).toEqual(['tooLarge', 'notUtf8']);
  });
});

describe('$state', () => {
  it('each transition of an adopted device is a machine event and a link presence change', () => {
    const { send, take } = setup();
    send('boiler/$homie', '4.0.0');
    send('boiler/$fw/version', '1.0.0');
    take();
    const steps: [string, Seen][] = [
      ['init', { type: 'linkUp', device: 'boiler', firmware: null }],
      ['ready', { type: 'linkUp', device: 'boiler', firmware: '1.0.0' }],
      ['alert', { type: 'linkUp', device: 'boiler', firmware: '1.0.0' }],
      ['sleeping', { type: 'linkDown', device: 'boiler', reason: 'sleeping' }],
      ['disconnected', { type: 'linkDown', device: 'boiler', reason: 'disconnected' }],
      ['lost', { type: 'linkDown', device: 'boiler', reason: 'lost (last will)' }],
    ];
    let from: string | null = null;
    for (const [state, presence] of steps) {
      send('boiler/$state', state);
      expect(take()).toEqual([
        { type: 'stateChanged', device: 'boiler', from, to: state },
        { type: 'machineState', device: 'boiler', state },
        presence,
        { type: 'status', device: 'boiler' },
      ]);
      from = state;
    }
  });

  it('a device not adopted only records its state', () => {
    const { send, take, session } = setup({ adopt: false });
    send('boiler/$homie', '4.0.0');
    send('boiler/$state', 'ready');
    expect(session('boiler').state).toBe('ready');
    expect(take().map((e) => e.type)).toEqual(['discover', 'stateChanged', 'status']);
  });

  it('a new firmware version while ready is a link update', () => {
    const { send, take } = setup();
    send('boiler/$homie', '4.0.0');
    send('boiler/$state', 'ready');
    take();
    send('boiler/$fw/version', '2.0.0');
    expect(take()).toEqual([
      { type: 'linkUp', device: 'boiler', firmware: '2.0.0' },
      { type: 'status', device: 'boiler' },
    ]);
  });

  it('a live ready with no init before it asks for a resync; the broker lost resets every state', () => {
    const { model, send, take, session } = setup();
    for (const [topic, payload] of V3_ANNOUNCEMENT) send(topic, payload);
    expect(model.takeResyncGaps()).toEqual([]); // complete, nothing forces it
    send('boiler/$state', 'disconnected', false);
    send('boiler/$state', 'ready', false);
    expect(session('boiler').forceResync).toBe(true);
    expect(take().filter((e) => e.type === 'live')).toHaveLength(2);
    expect(model.takeResyncGaps()).toEqual(['boiler']);
    expect(session('boiler').resyncAttempts).toBe(1);
    model.brokerLost();
    expect(session('boiler').state).toBeUndefined();
    expect(take()).toEqual([{ type: 'linkDown', device: 'boiler', reason: 'broker unreachable' }]);
  });
});

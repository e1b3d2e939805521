/**
 * The `homie.device` kind without a broker: its machine's mapping of `$state`, how it stays in
 * line with the fleet's link presence across a machine restart, the `set` action's shape, the
 * generated forms, and the convention's options (an idle bridge without a broker).
 *
 * @example
 * npx vitest run test/conventions/homie-kind.test.ts
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { homieConvention, startHomieBridge } from '../../src/conventions/homie/homie-bridge.js';
import type { HomieMachineEvent, HomieState } from '../../src/conventions/homie/homie-kind.js';
import {
  HOMIE_KIND,
  homieDevice,
  homieMachine,
  homieSetForms,
} from '../../src/conventions/homie/homie-kind.js';
import { describeKind } from '../../src/devices/define-device.js';
import type { Fleet } from '../../src/devices/fleet.js';
import { createFleet } from '../../src/devices/fleet.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { tempDir } from '../store/helpers.js';
import { waitFor } from '../transports/helpers.js';
import { onCleanup, runCleanups } from './homie-helpers.js';

afterEach(runCleanups);

function run(...events: HomieMachineEvent[]) {
  const actor = createActor(homieMachine).start();
  for (const e of events) actor.send(e);
  const snap = actor.getSnapshot();
  actor.stop();
  return { state: snap.value as string, context: snap.context };
}
const homie = (state: HomieState): HomieMachineEvent => ({ type: 'HOMIE_STATE', state });

describe('homie machine', () => {
  it('maps each $state to its state', () => {
    expect(run().state).toBe('disconnected');
    expect(run(homie('init')).state).toBe('connecting');
    expect(run(homie('ready'))).toMatchObject({ state: 'connected', context: { homieState: 'ready' } });
    expect(run(homie('ready'), homie('alert')).state).toBe('alert');
    expect(run(homie('ready'), homie('sleeping')).state).toBe('sleeping');
    expect(run(homie('ready'), homie('disconnected')).state).toBe('disconnected');
    expect(run(homie('ready'), homie('lost'))).toMatchObject({
      state: 'lost',
      context: { homieState: 'lost', lastError: 'lost (last will)' },
    });
    expect(run(homie('lost'), homie('init'), homie('ready'))).toMatchObject({
      state: 'connected',
      context: { lastError: null },
    });
  });

  it('follows the fleet’s link presence: CONNECT, HELLO (firmware), LINK_DOWN', () => {
    expect(run({ type: 'CONNECT' }).state).toBe('connecting');
    expect(run({ type: 'CONNECT' }, { type: 'HELLO', firmware: '1.2.3' })).toMatchObject({
      state: 'connected',
      context: { firmware: '1.2.3' },
    });
    expect(run({ type: 'CONNECT' }, { type: 'HELLO', firmware: '' }).context.firmware).toBeNull();
    expect(run(homie('ready'), { type: 'LINK_DOWN', reason: 'broker unreachable' })).toMatchObject({
      state: 'disconnected',
      context: { lastError: 'broker unreachable' },
    });
    expect(run(homie('alert'), { type: 'LINK_DOWN', reason: 'x' }).state).toBe('disconnected');
  });

  it('sleeping, lost and alert are not undone by a restart’s CONNECT / HELLO / LINK_DOWN', () => {
    expect(
      run(homie('sleeping'), { type: 'HELLO', firmware: '1' }, { type: 'LINK_DOWN', reason: 'x' }).state,
    ).toBe('sleeping');
    expect(run(homie('lost'), { type: 'LINK_DOWN', reason: 'x' }).state).toBe('lost');
    expect(run(homie('alert'), { type: 'CONNECT' }, { type: 'HELLO', firmware: '1' }).state).toBe('alert');
  });
});

describe('homie.device kind', () => {
  it('has one command action, set { node, property, value }, checked for shape', () => {
    expect(homieDevice.buildAction('set', { node: 'heater', property: 'target', value: 21.5 })).toEqual({
      ok: true,
      value: { type: 'command', command: 'set', args: { node: 'heater', property: 'target', value: 21.5 } },
    });
    expect(homieDevice.buildAction('set', { node: 'Heater', property: 'x', value: 1 })).toMatchObject({
      ok: false,
      code: 'badArgs',
      message: expect.stringContaining('node: a Homie id'),
    });
    expect(homieDevice.buildAction('set', { node: 'a', property: 'b', value: { x: 1 } })).toMatchObject({
      ok: false,
      code: 'badArgs',
    });
    expect(homieDevice.buildAction('reboot', {})).toMatchObject({ ok: false, code: 'unknownAction' });
    expect(homieDevice.parseAttributes({})).toEqual({ ok: true, value: { baseTopic: 'homie' } });
    expect(homieDevice.parseAttributes({ baseTopic: 'a/#' })).toMatchObject({ ok: false });
    const described = describeKind(homieDevice);
    expect(described.actions).toEqual([
      expect.objectContaining({ name: 'set', target: 'command', argsSchema: expect.any(Object) }),
    ]);
  });

  it('makes a form per settable property from the status', () => {
    const forms = homieSetForms({
      properties: {
        'heater/target': {
          node: 'heater',
          property: 'target',
          name: 'Target',
          datatype: 'float',
          format: '5:30',
          unit: '°C',
          settable: true,
          retained: true,
        },
        'heater/temp': {
          node: 'heater',
          property: 'temp',
          name: null,
          datatype: 'float',
          format: null,
          unit: null,
          settable: false,
          retained: true,
        },
      },
    });
    expect(forms).toEqual([
      {
        node: 'heater',
        property: 'target',
        title: 'Target',
        argsSchema: {
          type: 'object',
          properties: {
            node: { const: 'heater' },
            property: { const: 'target' },
            value: { type: 'number', minimum: 5, maximum: 30, title: 'Target', description: 'in °C' },
          },
          required: ['node', 'property', 'value'],
          additionalProperties: false,
        },
      },
    ]);
    expect(homieSetForms({})).toEqual([]);
  });
});

async function fleetWithHomie(): Promise<{ fleet: Fleet; runtime: ReturnType<typeof createRuntime> }> {
  const tmp = tempDir();
  onCleanup(tmp.cleanup);
  const store = await openSqliteStore({ file: tmp.file });
  const runtime = createRuntime({});
  const fleet = createFleet({ runtime, store, kinds: [homieDevice], reconcileIntervalMs: 0 });
  await fleet.start();
  onCleanup(async () => {
    await fleet.stop();
    await store.close();
    runtime.dispose();
  });
  return { fleet, runtime };
}

describe('homie.device in a fleet (as the bridge drives it)', () => {
  it('a restarted machine agrees with the link: ready stays connected, sleeping stays sleeping', async () => {
    const { fleet } = await fleetWithHomie();
    expect((await fleet.addDevice({ id: 'a', kind: HOMIE_KIND })).ok).toBe(true);
    expect((await fleet.addDevice({ id: 'b', kind: HOMIE_KIND })).ok).toBe(true);
    // What the bridge does for `$state`: HOMIE_STATE, then the link presence.
    fleet.machineOf('a')!.send({ type: 'HOMIE_STATE', state: 'ready' } as never);
    fleet.linkUp('a', { via: 'mqtt:homie', firmware: '2.0.0' });
    fleet.machineOf('b')!.send({ type: 'HOMIE_STATE', state: 'sleeping' } as never);
    fleet.linkDown('b', 'sleeping');
    expect(fleet.device('a')!.state).toBe('connected');
    expect(fleet.device('b')!.state).toBe('sleeping');

    for (const id of ['a', 'b']) {
      const before = fleet.machineOf(id)!;
      before.kill(); // a crash: the device's supervisor restarts the machine from its last state
      await waitFor(
        () => fleet.machineOf(id) !== before && fleet.machineOf(id)!.alive,
        5000,
        `${id} restarted`,
      );
    }
    expect(fleet.device('a')!.state).toBe('connected');
    expect(fleet.device('b')!.state).toBe('sleeping');
    expect(
      (fleet.machineOf('a')!.getSnapshot() as { context: { firmware: string | null } }).context.firmware,
    ).toBe('2.0.0');
  });

  it('init without firmware waits in connecting; the broker dropping takes a ready device down', async () => {
    const { fleet } = await fleetWithHomie();
    await fleet.addDevice({ id: 'c', kind: HOMIE_KIND });
    fleet.machineOf('c')!.send({ type: 'HOMIE_STATE', state: 'init' } as never);
    fleet.linkUp('c', { via: 'mqtt:homie', firmware: null });
    expect(fleet.device('c')!.state).toBe('connecting');
    fleet.machineOf('c')!.send({ type: 'HOMIE_STATE', state: 'ready' } as never);
    fleet.linkUp('c', { via: 'mqtt:homie', firmware: '' });
    expect(fleet.device('c')!.state).toBe('connected');
    fleet.linkDown('c', 'broker unreachable');
    expect(fleet.device('c')).toMatchObject({
      state: 'disconnected',
      link: { reason: 'broker unreachable' },
    });
  });
});

describe('homieConvention options', () => {
  it('refuses a base topic with wildcards and a bad adopt mode; takes homie-device’s trailing slash', () => {
    expect(() => homieConvention({ baseTopic: 'homie/+' })).toThrow(RangeError);
    expect(() => homieConvention({ baseTopic: '$SYS' })).toThrow(/baseTopic/);
    expect(() => homieConvention({ adopt: 'sometimes' as never })).toThrow(/adopt/);
    expect(() => homieConvention({ setTimeoutMs: 0 })).toThrow(/setTimeoutMs/);
    const c = homieConvention({ baseTopic: 'devices/' });
    expect(c).toMatchObject({ name: 'homie', kinds: [homieDevice] });
  });

  it('without a broker the bridge idles, and set answers noLink', async () => {
    const { fleet, runtime } = await fleetWithHomie();
    const tmp = tempDir();
    onCleanup(tmp.cleanup);
    const store = await openSqliteStore({ file: tmp.file });
    onCleanup(() => store.close());
    const bridge = startHomieBridge({ runtime, fleet, store, broker: undefined }, { baseTopic: 'devices/' });
    onCleanup(() => bridge.stop());
    expect(bridge.baseTopic).toBe('devices');
    expect(bridge.stats()).toMatchObject({ state: 'idle', connected: false });
    await fleet.addDevice({ id: 'd', kind: HOMIE_KIND, attributes: { baseTopic: 'devices' } });
    expect(await fleet.act('d', 'set', { node: 'n', property: 'p', value: 1 })).toMatchObject({
      ok: false,
      error: { code: 'noLink', message: expect.stringContaining('has not been seen') },
    });
    // A device of a base no bridge serves.
    await fleet.addDevice({ id: 'e', kind: HOMIE_KIND, attributes: { baseTopic: 'other' } });
    expect(await fleet.act('e', 'set', { node: 'n', property: 'p', value: 1 })).toMatchObject({
      ok: false,
      error: { code: 'noLink', message: "no Homie bridge runs for base topic 'other'" },
    });
    await bridge.stop();
    expect(await fleet.act('d', 'set', { node: 'n', property: 'p', value: 1 })).toMatchObject({
      ok: false,
      error: { code: 'noLink' },
    });
  });
});

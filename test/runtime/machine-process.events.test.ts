/**
 * `machine.event` (src/runtime/machine-process.ts): every event a machine processes is on the
 * runtime's stream with its payload and the state before and after it — sent ones, those that
 * change only the context or nothing, and delays that fire — and a wake from hibernation is not
 * reported as an event.
 */
import { describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import type { RuntimeEventOf } from '../../src/runtime/events.js';
import { startMachine } from '../../src/runtime/machine-process.js';
import { createRig, type TestRig } from './helpers.js';

const device = setup({
  types: {} as {
    context: { firmware: string | null };
    events: { type: 'CONNECT' } | { type: 'HELLO'; firmware: string } | { type: 'NOISE' };
  },
}).createMachine({
  id: 'device',
  initial: 'disconnected',
  context: { firmware: null },
  states: {
    disconnected: { on: { CONNECT: 'connecting' } },
    connecting: {
      after: { 5000: 'disconnected' },
      on: { HELLO: { actions: assign({ firmware: ({ event }) => event.firmware }) } },
    },
  },
});

const machineEvents = (rig: TestRig) =>
  rig.events
    .filter((e): e is RuntimeEventOf<'machine.event'> => e.type === 'machine.event')
    .map(({ name, event, from, to }) => ({ name, event, from, to }));

describe('machine.event on the runtime stream', () => {
  it('reports each processed event with its payload and the states around it', async () => {
    const rig = createRig();
    const p = startMachine(rig.rt, 'd1', { machine: device });
    p.send({ type: 'CONNECT' });
    p.send({ type: 'HELLO', firmware: '2.0' });
    p.send({ type: 'NOISE' });
    await rig.clock.advanceAsync(5000);
    const seen = machineEvents(rig);
    expect(seen.slice(0, 4)).toEqual([
      { name: 'd1', event: { type: 'xstate.init' }, from: '', to: 'disconnected' },
      { name: 'd1', event: { type: 'CONNECT' }, from: 'disconnected', to: 'connecting' },
      { name: 'd1', event: { type: 'HELLO', firmware: '2.0' }, from: 'connecting', to: 'connecting' },
      { name: 'd1', event: { type: 'NOISE' }, from: 'connecting', to: 'connecting' },
    ]);
    expect(seen[4]).toMatchObject({ from: 'connecting', to: 'disconnected' });
    expect(seen[4]!.event.type).toBe('xstate.after.5000.device.connecting');
    expect(seen).toHaveLength(5);
  });

  it('does not report the wake from hibernation as an event, only the one that woke it', async () => {
    const rig = createRig();
    const p = startMachine(rig.rt, 'd1', { machine: device, hibernateAfterMs: 1000 });
    await rig.clock.advanceAsync(1500);
    expect(p.isHibernating).toBe(true);
    rig.events.length = 0;
    p.send({ type: 'CONNECT' });
    expect(machineEvents(rig)).toEqual([
      { name: 'd1', event: { type: 'CONNECT' }, from: 'disconnected', to: 'connecting' },
    ]);
  });
});

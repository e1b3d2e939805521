/**
 * xstate's delayed events other than a root machine's own `after`, in a machine process: a
 * delayed raise cancelled by its id, an invoked child's own delay, a delayed sendTo to a child,
 * and a child's delays going when the child stops. Each runs on the runtime's timer heap and is
 * listed (and so persisted) with the process's timeouts.
 */
import { describe, expect, it } from 'vitest';
import { assign, cancel, raise, sendParent, sendTo, setup } from 'xstate';
import { startMachine } from '../../src/runtime/machine-process.js';
import { createRig } from './helpers.js';

/** A child that reports back 500 ms after it starts, unless told to stop first. */
const child = setup({}).createMachine({
  id: 'child',
  initial: 'waiting',
  states: {
    waiting: {
      after: { 500: { target: 'done', actions: sendParent({ type: 'CHILD_DONE' }) } },
      on: { POKE: { actions: sendParent({ type: 'POKED' }) } },
    },
    done: {},
  },
});

const parent = setup({
  types: {} as {
    context: { pokes: number; reminders: number };
    events:
      | { type: 'ARM' }
      | { type: 'DISARM' }
      | { type: 'REMIND' }
      | { type: 'CHILD_DONE' }
      | { type: 'POKED' }
      | { type: 'LEAVE' };
  },
  actors: { child },
}).createMachine({
  id: 'parent',
  initial: 'working',
  context: { pokes: 0, reminders: 0 },
  states: {
    working: {
      invoke: { id: 'helper', src: 'child' },
      entry: sendTo('helper', { type: 'POKE' }, { delay: 100 }),
      on: {
        ARM: { actions: raise({ type: 'REMIND' }, { id: 'reminder', delay: 200 }) },
        DISARM: { actions: cancel('reminder') },
        REMIND: { actions: assign({ reminders: ({ context }) => context.reminders + 1 }) },
        POKED: { actions: assign({ pokes: ({ context }) => context.pokes + 1 }) },
        CHILD_DONE: 'finished',
        LEAVE: 'away',
      },
    },
    finished: {},
    away: {},
  },
});

describe('machine process: delayed events of every kind run on the timer heap', () => {
  it('a delayed sendTo reaches the child, the child’s own delay fires, a delayed raise is cancelled by its id', async () => {
    const rig = createRig();
    const p = startMachine(rig.rt, 'p1', { machine: parent });
    const listed = () => p.timers().map((t) => [t.kind, t.id, t.event.type, t.delayMs]);
    expect(listed()).toEqual(
      expect.arrayContaining([
        ['after', expect.any(String), 'POKE', 100],
        ['after', 'xstate.after.500.child.waiting', 'xstate.after.500.child.waiting', 500],
      ]),
    );
    expect(rig.rt.timers.size()).toBe(2);

    p.send({ type: 'ARM' });
    expect(listed()).toContainEqual(['after', 'reminder', 'REMIND', 200]);
    await rig.clock.advanceAsync(100);
    expect(p.getSnapshot()?.context.pokes).toBe(1); // the child got POKE and answered
    p.send({ type: 'DISARM' });
    expect(listed().map((t) => t[1])).not.toContain('reminder');

    p.send({ type: 'ARM' });
    await rig.clock.advanceAsync(200); // t = 300: the reminder armed at 100
    expect(p.getSnapshot()?.context.reminders).toBe(1);
    expect(p.state).toBe('working');
    await rig.clock.advanceAsync(200); // t = 500: the child's own delay
    expect(p.state).toBe('finished');
    expect(p.timers()).toEqual([]);
    expect(rig.rt.timers.size()).toBe(0);
    expect(p.alive).toBe(true);
  });

  it('a child’s pending delays go with the child when its state is left', async () => {
    const rig = createRig();
    const p = startMachine(rig.rt, 'p2', { machine: parent });
    await rig.clock.advanceAsync(150);
    expect(p.timers().map((t) => t.id)).toEqual(['xstate.after.500.child.waiting']);
    p.send({ type: 'LEAVE' });
    expect(p.state).toBe('away');
    expect(p.timers()).toEqual([]);
    expect(rig.rt.timers.size()).toBe(0);
    await rig.clock.advanceAsync(1000);
    expect(p.state).toBe('away');
    expect(p.alive).toBe(true);
  });
});

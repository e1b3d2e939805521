/** The state diagram's layout: ranks from the initial state, targets resolved, shared child exits lifted. */
import { describe, expect, it } from 'vitest';
import { layoutMachine } from '../../../renderer/src/lib/machine-layout.js';
import type { MachineView } from '../../../src/host/contract.js';

const machine: MachineView = {
  id: 'device',
  states: [
    { path: 'off', initial: true, transitions: [{ event: 'ON', target: 'on' }], children: [] },
    {
      path: 'on',
      initial: false,
      transitions: [{ event: 'OFF', target: 'off' }],
      children: ['a', 'b'].map((s, i) => ({
        path: `on.${s}`,
        initial: i === 0,
        transitions: [
          { event: 'after stepTimeout', target: 'off' },
          ...(i === 0 ? [{ event: 'NEXT', target: 'on.b' }] : []),
        ],
        children: [],
      })),
    },
  ],
};

describe('machine layout', () => {
  it('places states left to right from the initial one, children inside their parent', () => {
    const { boxes } = layoutMachine(machine);
    const box = (p: string) => boxes.find((b) => b.path === p)!;
    expect(box('off').x).toBeLessThan(box('on').x);
    for (const child of ['on.a', 'on.b']) {
      expect(box(child).x).toBeGreaterThan(box('on').x);
      expect(box(child).y + box(child).h).toBeLessThanOrEqual(box('on').y + box('on').h);
    }
    expect(box('on.a').y).toBeLessThan(box('on.b').y);
  });

  it('merges edges between the same states and lifts an exit every child shares to the parent', () => {
    const { edges } = layoutMachine(machine);
    const onToOff = edges.find((e) => e.from === 'on' && e.to === 'off');
    expect(onToOff?.labels).toEqual(['OFF', 'after stepTimeout']);
    expect(edges.some((e) => e.from.startsWith('on.') && e.to === 'off')).toBe(false);
    expect(edges.find((e) => e.from === 'on.a')?.to).toBe('on.b');
  });
});

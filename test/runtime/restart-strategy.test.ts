import { describe, expect, it } from 'vitest';
import type { RestartType, Strategy } from '../../src/runtime/child-spec.js';
import type { ExitReason } from '../../src/runtime/exit-reason.js';
import { KILLED, NORMAL, SHUTDOWN, shutdownWith } from '../../src/runtime/exit-reason.js';
import { needsRestart, planRestart } from '../../src/runtime/restart-strategy.js';

const crash: ExitReason = { type: 'error', error: new Error('boom') };

describe('needsRestart (OTP restart types, R1–R3)', () => {
  it.each<[RestartType, ExitReason, boolean]>([
    ['permanent', NORMAL, true],
    ['permanent', SHUTDOWN, true],
    ['permanent', shutdownWith('x'), true],
    ['permanent', crash, true],
    ['transient', NORMAL, false],
    ['transient', SHUTDOWN, false],
    ['transient', shutdownWith('x'), false],
    ['transient', crash, true],
    ['transient', KILLED, true],
    ['temporary', NORMAL, false],
    ['temporary', crash, false],
    ['temporary', KILLED, false],
  ])('%s after %j → %s', (restart, reason, expected) => {
    expect(needsRestart(restart, reason)).toBe(expected);
  });
});

describe('planRestart (OTP strategies, G1–G3)', () => {
  const children = ['link', 'parser', 'machine', 'ota'] as const;
  it.each<[Strategy, string, string[]]>([
    ['oneForOne', 'parser', ['parser']],
    ['oneForAll', 'parser', ['link', 'parser', 'machine', 'ota']],
    ['restForOne', 'parser', ['parser', 'machine', 'ota']],
    ['restForOne', 'link', ['link', 'parser', 'machine', 'ota']],
    ['restForOne', 'ota', ['ota']],
  ])('%s, %s failed → %j', (strategy, failed, group) => {
    expect(planRestart(strategy, children, failed)).toEqual(group);
  });

  it('gives a new array, never the children list itself', () => {
    const list = ['a', 'b'];
    const group = planRestart('oneForAll', list, 'a');
    expect(group).toEqual(list);
    expect(group).not.toBe(list);
  });
});

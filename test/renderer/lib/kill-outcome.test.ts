import { describe, expect, it } from 'vitest';
import { killConsequence, killOutcome } from '../../../renderer/src/lib/kill-outcome.js';
import type { TreeNode } from '../../../src/host/contract.js';

const machine = (pid: number | null, status: TreeNode['status'] = 'running', reason?: string): TreeNode => ({
  key: 'fleetvisor/devices/pump-1/machine',
  pid,
  name: 'pump-1',
  childId: 'machine',
  type: 'worker',
  status,
  restarts: 0,
  restartType: 'permanent',
  ...(reason ? { reason } : {}),
});

const deviceSup = (
  children: TreeNode[],
  status: TreeNode['status'] = 'running',
  restartsInWindow = 0,
  reason?: string,
): TreeNode => ({
  key: 'fleetvisor/devices/pump-1',
  pid: status === 'running' ? 10 : null,
  name: 'device:pump-1',
  childId: 'pump-1',
  type: 'supervisor',
  status,
  restarts: 0,
  restartType: 'transient',
  intensity: { restartsInWindow, maxRestarts: 3, periodMs: 5000 },
  children,
  ...(reason ? { reason } : {}),
});

const root = (device: TreeNode): TreeNode => ({
  key: 'fleetvisor',
  pid: 1,
  name: 'fleetvisor',
  childId: 'fleetvisor',
  type: 'supervisor',
  status: 'running',
  restarts: 0,
  children: [
    {
      key: 'fleetvisor/devices',
      pid: 2,
      name: 'devices',
      childId: 'devices',
      type: 'supervisor',
      status: 'running',
      restarts: 0,
      children: [device],
    },
  ],
});

const watch = { key: 'fleetvisor/devices/pump-1/machine', pid: 11, name: 'pump-1' };

describe('the outcome of a kill, read from the next trees', () => {
  it('waits while the old pid is still shown or the child is restarting', () => {
    expect(killOutcome(watch, root(deviceSup([machine(11)])))).toBeNull();
    expect(killOutcome(watch, root(deviceSup([machine(null, 'restarting')])))).toBeNull();
  });

  it('says restarted, with the new pid', () => {
    expect(killOutcome(watch, root(deviceSup([machine(12)])))).toEqual({
      tone: 'ok',
      text: 'Killed pump-1 <11>; its supervisor restarted it as <12>.',
    });
  });

  it('says its supervisor gave up, with the reason, when the device is failed and its children are gone', () => {
    const out = killOutcome(
      watch,
      root(deviceSup([], 'failed', 0, 'shutdown: reached_max_restart_intensity')),
    );
    expect(out?.tone).toBe('err');
    expect(out?.text).toContain('gave up');
    expect(out?.text).toContain('reached_max_restart_intensity');
    expect(out?.text).not.toContain('restarted');
  });

  it('says not restarted, with the reason, for a stopped child', () => {
    expect(killOutcome(watch, root(deviceSup([machine(null, 'stopped', 'killed')])))?.text).toBe(
      'Killed pump-1 <11>; it was not restarted: killed.',
    );
  });
});

describe('what a kill will do, said before it', () => {
  it('a restart within the intensity', () => {
    const text = killConsequence(machine(11), deviceSup([], 'running', 1));
    expect(text).toContain('restarts it');
    expect(text).toContain('2 of 3 within 5 s');
  });

  it('one restart more than allowed: the supervisor gives up', () => {
    expect(killConsequence(machine(11), deviceSup([], 'running', 3))).toContain('give up');
  });

  it('a temporary child is not restarted', () => {
    expect(killConsequence({ ...machine(11), restartType: 'temporary' }, deviceSup([]))).toContain(
      'does not restart it',
    );
  });
});

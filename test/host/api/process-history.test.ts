/**
 * The observer's restart timelines from a bare event stream, no app: an exit and the restart that
 * answers it, a start that is not a restart, a supervisor that gave up, and the bounds (per name,
 * names, remembered exits).
 */
import { describe, expect, it } from 'vitest';
import { ProcessHistory } from '../../../src/host/api/process-history.js';
import { createEventStream } from '../../../src/runtime/events.js';
import { KILLED, SHUTDOWN, shutdownWith } from '../../../src/runtime/exit-reason.js';
import type { Pid } from '../../../src/runtime/process.js';

const pid = (n: number) => n as Pid;

function rig(limits = {}) {
  let now = 1000;
  const events = createEventStream(() => now);
  const history = new ProcessHistory(events, () => now, limits);
  const at = (t: number) => {
    now = t;
  };
  return { events, history, at };
}

describe('ProcessHistory', () => {
  it('attaches a supervisor restart to the exit it answers', () => {
    const { events, history, at } = rig();
    at(2000);
    events.emit({ type: 'process.exited', pid: pid(8), name: 'pump-1', reason: KILLED });
    at(2003);
    events.emit({ type: 'process.started', pid: pid(12), kind: 'statem', name: 'pump-1' });
    events.emit({
      type: 'child.restarted',
      supervisor: pid(7),
      childId: 'machine',
      oldPid: pid(8),
      pid: pid(12),
      restartsInWindow: 1,
      maxRestarts: 3,
      durationMs: 3,
    });
    expect(history.timeline('pump-1')).toEqual([
      {
        at: 2000,
        pid: 8,
        kind: 'crash',
        reason: 'killed',
        replacedBy: { pid: 12, at: 2003, by: 'restart', restartsInWindow: 1, maxRestarts: 3, durationMs: 3 },
      },
    ]);
    expect(history.exitOf(8)).toEqual({ name: 'pump-1', at: 2000, reason: 'killed' });
    expect(history.since).toBe(1000);
  });

  it('a start under a name that exited is a start, not a restart; a clean exit is a stop', () => {
    const { events, history, at } = rig();
    events.emit({ type: 'process.exited', pid: pid(8), name: 'pump-1', reason: SHUTDOWN });
    at(5000);
    events.emit({ type: 'process.started', pid: pid(20), kind: 'statem', name: 'pump-1' });
    // A start of a name with no exit is not recorded.
    events.emit({ type: 'process.started', pid: pid(21), kind: 'statem', name: 'pump-2' });
    expect(history.timeline('pump-1')).toEqual([
      { at: 1000, pid: 8, kind: 'stop', reason: 'shutdown', replacedBy: { pid: 20, at: 5000, by: 'start' } },
    ]);
    expect(history.timeline('pump-2')).toEqual([]);
  });

  it('a supervisor that gave up says so in its exit', () => {
    const { events, history } = rig();
    events.emit({
      type: 'supervisor.gaveUp',
      supervisor: pid(7),
      name: 'device:pump-1',
      childId: 'machine',
      maxRestarts: 3,
      periodMs: 5000,
    });
    events.emit({
      type: 'process.exited',
      pid: pid(7),
      name: 'device:pump-1',
      reason: shutdownWith('reached_max_restart_intensity'),
    });
    expect(history.timeline('device:pump-1')).toEqual([
      {
        at: 1000,
        pid: 7,
        kind: 'gaveUp',
        reason:
          "shutdown: reached_max_restart_intensity (more than 3 restarts within 5000 ms, the last of child 'machine')",
      },
    ]);
  });

  it('is bounded: entries per name, names (least recently touched first), remembered exits', () => {
    const { events, history } = rig({ perName: 3, names: 2, exits: 4 });
    for (let i = 1; i <= 5; i++)
      events.emit({ type: 'process.exited', pid: pid(i), name: 'a', reason: KILLED });
    expect(history.timeline('a').map((e) => e.pid)).toEqual([3, 4, 5]);
    events.emit({ type: 'process.exited', pid: pid(6), name: 'b', reason: KILLED });
    events.emit({ type: 'process.exited', pid: pid(7), name: 'a', reason: KILLED });
    events.emit({ type: 'process.exited', pid: pid(8), name: 'c', reason: KILLED });
    expect(history.timeline('b')).toEqual([]); // touched least recently
    expect(history.timeline('a').map((e) => e.pid)).toEqual([4, 5, 7]);
    expect(history.exitOf(4)).toBeUndefined();
    expect(history.exitOf(5)?.name).toBe('a');
  });

  it('stops listening when closed', () => {
    const { events, history } = rig();
    history.close();
    expect(events.active).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import type { ChildType, FullChildSpec } from '../../src/runtime/child-spec.js';
import { NORMAL } from '../../src/runtime/exit-reason.js';
import type { ChildRecord } from '../../src/runtime/supervisor-children.js';
import {
  childInfo,
  countChildrenOf,
  newChildRecord,
  whichChildrenOf,
} from '../../src/runtime/supervisor-children.js';
import { createRig, TestWorker } from './helpers.js';

const spec = (id: string, type: ChildType = 'worker'): FullChildSpec => ({
  id,
  start: () => null,
  restart: 'permanent',
  shutdown: type === 'worker' ? 5000 : 'infinity',
  type,
  significant: false,
});

/** link running, parser restarting, a nested supervisor stopped after a clean exit. */
function table(): { records: ChildRecord[]; link: TestWorker } {
  const rig = createRig();
  const link = new TestWorker(rig.rt, 'link', rig);
  const running = { ...newChildRecord(spec('link')), process: link, state: 'running' as const };
  const restarting = { ...newChildRecord(spec('parser')), state: 'restarting' as const, restartCount: 2 };
  const stopped = { ...newChildRecord(spec('ota', 'supervisor')), lastExit: NORMAL };
  return { records: [running, restarting, stopped], link };
}

describe('the reports over a static supervisor’s children', () => {
  it('a new record is stopped, never restarted, with no process', () => {
    expect(childInfo(newChildRecord(spec('link')))).toEqual({
      id: 'link',
      pid: undefined,
      process: undefined,
      status: 'stopped',
      type: 'worker',
      restart: 'permanent',
      significant: false,
      restartCount: 0,
      lastExit: undefined,
    });
  });

  it('whichChildren lists newest first (OTP A3), each with its status', () => {
    const { records, link } = table();
    const infos = whichChildrenOf(records);
    expect(infos.map((i) => [i.id, i.status, i.pid])).toEqual([
      ['ota', 'stopped', undefined],
      ['parser', 'restarting', undefined],
      ['link', 'running', link.pid],
    ]);
    expect(infos[1]!.restartCount).toBe(2);
    expect(infos[0]!.lastExit).toBe(NORMAL);
  });

  it('countChildren: a restarting or stopped child is a spec, not active (OTP A2)', () => {
    expect(countChildrenOf(table().records)).toEqual({ specs: 3, active: 1, supervisors: 1, workers: 2 });
  });

  it('countChildren counts a process that has exited as not active', () => {
    const { records, link } = table();
    link.finish();
    expect(countChildrenOf(records).active).toBe(0);
    expect(countChildrenOf([])).toEqual({ specs: 0, active: 0, supervisors: 0, workers: 0 });
  });
});

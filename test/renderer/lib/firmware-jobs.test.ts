import { describe, expect, it } from 'vitest';
import { activeJobs, markText, updateHistory } from '../../../renderer/src/lib/firmware-jobs.js';
import type { EventView, FirmwareJobView, Json } from '../../../src/host/contract.js';

let seq = 0;
const ev = (at: number, data: Json, kind = 'firmware.update'): EventView => ({
  seq: ++seq,
  at,
  deviceId: 'pump-1',
  kind,
  data,
});
const step = (at: number, s: string, extra: Record<string, Json> = {}) =>
  ev(at, { step: s, version: '1.1.0', transferId: 'fw-a', offset: 0, size: 100, ...extra });

const job = (over: Partial<FirmwareJobView> = {}): FirmwareJobView => ({
  deviceId: 'pump-1',
  transferId: 'fw-a',
  version: '1.1.0',
  size: 100,
  sha256: 'ab',
  step: 'transferring',
  offset: 42,
  resumedFrom: 0,
  bytesPerSecond: 0,
  resent: 0,
  deadline: null,
  error: null,
  trialChecks: [],
  ...over,
});

describe('updateHistory', () => {
  it('makes one entry per job, newest first, with from, actor, start, end and the error', () => {
    const first = { startedAt: 1000, actor: 'ui', from: '1.0.0' };
    const second = { startedAt: 5000, actor: 'api', from: '1.0.0' };
    const error = { step: 'onTrial', code: 'deviceError', message: 'boot loop' };
    const entries = updateHistory([
      step(1000, 'transferring', first),
      step(1500, 'onTrial', first),
      step(2000, 'rolledBack', { ...first, error }),
      ev(2100, { step: 'x' }, 'device.state'),
      step(5000, 'transferring', second),
      step(7000, 'succeeded', { ...second, offset: 100 }),
    ]);
    expect(entries.map((e) => [e.step, e.startedAt, e.endedAt, e.actor, e.from])).toEqual([
      ['succeeded', 5000, 7000, 'api', '1.0.0'],
      ['rolledBack', 1000, 2000, 'ui', '1.0.0'],
    ]);
    expect(entries[1]!.error).toEqual(error);
    expect(entries[0]!.running).toBe(false);
  });

  it('tells apart jobs of the same image in events without startedAt, and overlays the live job', () => {
    const entries = updateHistory(
      [step(1000, 'transferring'), step(2000, 'cancelled'), step(3000, 'transferring')],
      job({ step: 'onTrial', offset: 100, deadline: 9000 }),
    );
    expect(entries.map((e) => [e.step, e.running, e.startedAt])).toEqual([
      ['onTrial', true, 3000],
      ['cancelled', false, 1000],
    ]);
    expect(entries[0]!.deadline).toBe(9000);
  });

  it('shows a running job the events do not have yet', () => {
    const entries = updateHistory([], job());
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ step: 'transferring', running: true, startedAt: null, offset: 42 });
  });
});

describe('activeJobs', () => {
  it('keeps running jobs by device, the same Map back when nothing moved', () => {
    const a = activeJobs([job(), job({ deviceId: 'pump-2', step: 'succeeded' })], new Map());
    expect([...a.keys()]).toEqual(['pump-1']);
    expect(activeJobs([job()], a)).toBe(a);
    const b = activeJobs([job({ offset: 50 })], a);
    expect(b).not.toBe(a);
    expect(markText(b.get('pump-1')!)).toBe('updating 50 %');
    expect(activeJobs([job({ step: 'succeeded' })], b).size).toBe(0);
  });
});

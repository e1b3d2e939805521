import { describe, expect, it } from 'vitest';
import type { AlarmChange, AlarmInput } from '../../src/alarms/evaluate.js';
import { compileRule } from '../../src/alarms/evaluate.js';
import { parseRule } from '../../src/alarms/rules.js';
import { createSimulatedClock } from '../../src/runtime/clock.js';

function setup(input: unknown) {
  const parsed = parseRule(input);
  if (!parsed.ok) throw new Error(parsed.error.message);
  const clock = createSimulatedClock();
  const rule = compileRule(parsed.value, (id) => id !== 'other');
  const changes: AlarmChange[] = [];
  type NoAt<T> = T extends unknown ? Omit<T, 'atMs'> : never;
  const feed = (i: NoAt<AlarmInput>) =>
    rule.handle({ ...i, atMs: clock.now() } as AlarmInput, (c) => changes.push(c));
  const tel = (deviceId: string, values: Record<string, number>) =>
    feed({ type: 'telemetry', deviceId, values });
  const tick = () => feed({ type: 'tick' });
  const facts = (
    deviceId: string,
    f: Partial<{ online: boolean; crashLoop: boolean; drift: boolean; stuck: boolean; circuitOpen: boolean }>,
  ) =>
    feed({
      type: 'facts',
      deviceId,
      facts: { online: true, crashLoop: false, drift: false, stuck: false, circuitOpen: false, ...f },
    });
  const seen = () => changes.map((c) => `${c.type} ${c.deviceId}@${c.atMs}`);
  return { clock, rule, changes, tel, tick, facts, seen, feed };
}

describe('parseRule', () => {
  it('fills defaults and names bad fields', () => {
    const ok = parseRule({ id: 'hot', type: 'threshold', metric: 'temp', op: 'above', value: 30 });
    expect(ok.ok && ok.value).toMatchObject({ severity: 'major', enabled: true, forMs: 0, hysteresis: 0 });
    const bad = parseRule({
      id: 'hot',
      type: 'threshold',
      metric: 'temp',
      op: 'over',
      value: 'x',
      forMs: -1,
    });
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.error.code).toBe('badRule');
      expect(bad.error.message).toMatch(/op: /);
      expect(bad.error.message).toMatch(/value: /);
      expect(bad.error.message).toMatch(/forMs: /);
    }
    expect(parseRule({ id: 'x', type: 'nope' }).ok).toBe(false);
    expect(parseRule({ id: 'bad id!', type: 'crashLoop' }).ok).toBe(false);
    expect(parseRule({ id: 'n', type: 'noData', forMs: 0 }).ok).toBe(false);
    expect(parseRule({ id: 'x', type: 'crashLoop', extra: 1 }).ok).toBe(false);
  });
});

describe('threshold', () => {
  it('raises only after forMs above, on the tick, and clears below the hysteresis band', () => {
    const t = setup({
      id: 'hot',
      type: 'threshold',
      metric: 'temp',
      op: 'above',
      value: 30,
      forMs: 2000,
      hysteresis: 2,
    });
    t.tel('d1', { temp: 31 });
    t.clock.advance(1000);
    t.tick();
    expect(t.changes).toEqual([]);
    t.clock.advance(1000);
    t.tick();
    expect(t.seen()).toEqual(['raise d1@2000']);
    expect(t.changes[0]?.message).toBe('temp above 30 for 2 s (hysteresis 2): 31');
    // Inside the band (28, 30]: still up.
    t.tel('d1', { temp: 29 });
    t.tel('d1', { temp: 30 });
    expect(t.changes).toHaveLength(1);
    t.clock.advance(500);
    t.tel('d1', { temp: 28 });
    expect(t.seen()).toEqual(['raise d1@2000', 'clear d1@2500']);
  });

  it('a dip below the threshold before forMs restarts the wait', () => {
    const t = setup({ id: 'hot', type: 'threshold', metric: 'temp', op: 'above', value: 30, forMs: 2000 });
    t.tel('d1', { temp: 31 });
    t.clock.advance(1500);
    t.tel('d1', { temp: 29 });
    t.clock.advance(500);
    t.tel('d1', { temp: 31 });
    t.clock.advance(1900);
    t.tick();
    expect(t.changes).toEqual([]);
    t.clock.advance(100);
    t.tick();
    expect(t.seen()).toEqual(['raise d1@4000']);
  });

  it('below, forMs 0 raises at once; other metrics and out-of-scope devices are ignored', () => {
    const t = setup({ id: 'cold', type: 'threshold', metric: 'temp', op: 'below', value: 5, hysteresis: 1 });
    t.tel('d1', { hum: 1 });
    t.tel('other', { temp: 0 });
    t.tel('d1', { temp: 4 });
    t.tel('d1', { temp: 5.5 });
    t.tel('d1', { temp: 6 });
    t.tel('d1', { temp: 4.9 });
    expect(t.seen()).toEqual(['raise d1@0', 'clear d1@0', 'raise d1@0']);
    expect(t.rule.activeDevices()).toEqual(['d1']);
  });
});

describe('rateOfChange', () => {
  it('raises when the value moves faster than maxPerSecond', () => {
    const t = setup({ id: 'jump', type: 'rateOfChange', metric: 'temp', maxPerSecond: 1 });
    t.tel('d1', { temp: 20 });
    t.clock.advance(2000);
    t.tel('d1', { temp: 21 });
    t.clock.advance(1000);
    t.tel('d1', { temp: 25 });
    t.clock.advance(1000);
    t.tel('d1', { temp: 25.5 });
    expect(t.seen()).toEqual(['raise d1@3000', 'clear d1@4000']);
  });
});

describe('noData', () => {
  it('raises a device silent for forMs and clears on its next data', () => {
    const t = setup({ id: 'silent', type: 'noData', forMs: 5000 });
    t.facts('d1', {});
    t.tel('d2', { temp: 1 });
    t.clock.advance(3000);
    t.tel('d2', { temp: 1 });
    t.clock.advance(2000);
    t.tick();
    expect(t.seen()).toEqual(['raise d1@5000']);
    t.clock.advance(2900);
    t.tick();
    expect(t.seen()).toEqual(['raise d1@5000']);
    t.clock.advance(100);
    t.tick();
    t.tel('d1', { temp: 2 });
    expect(t.seen()).toEqual(['raise d1@5000', 'raise d2@8000', 'clear d1@8000']);
  });
});

describe('lifecycle rules', () => {
  it('offline for forMs; repeated facts do not restart the wait; online clears', () => {
    const t = setup({ id: 'off', type: 'offline', forMs: 10_000 });
    t.facts('d1', { online: false });
    t.clock.advance(6000);
    t.facts('d1', { online: false, drift: true });
    t.clock.advance(4000);
    t.tick();
    t.facts('d1', { online: true });
    expect(t.seen()).toEqual(['raise d1@10000', 'clear d1@10000']);
  });

  it('crash loop, drift and stuck follow their facts; a removed device clears', () => {
    for (const [type, fact] of [
      ['crashLoop', 'crashLoop'],
      ['drift', 'drift'],
      ['stuck', 'stuck'],
      ['circuitOpen', 'circuitOpen'],
    ] as const) {
      const t = setup({ id: type, type });
      t.facts('d1', { [fact]: true });
      t.facts('d2', { [fact]: true });
      t.facts('d1', { [fact]: false });
      t.feed({ type: 'removed', deviceId: 'd2' });
      expect(t.seen()).toEqual(['raise d1@0', 'raise d2@0', 'clear d1@0', 'clear d2@0']);
    }
  });

  it('an alarm restored from the store clears when its condition ends', () => {
    const t = setup({ id: 'off', type: 'offline' });
    t.rule.restoreActive('d1', 0);
    t.facts('d1', { online: false });
    t.facts('d1', { online: true });
    expect(t.seen()).toEqual(['clear d1@0']);
  });
});

/**
 * Telemetry checks of a firmware trial (trial-checks.ts): what an operator may write, what is
 * refused and why (naming the check), and what a watch says of a trial's readings.
 */
import { describe, expect, it } from 'vitest';
import {
  createTrialWatch,
  MAX_TRIAL_CHECKS,
  parseTrialCheck,
  parseTrialChecks,
  type TrialCheck,
} from '../../src/firmware/trial-checks.js';

/** 12:03:04 UTC on a day in 2026. */
const AT = Date.UTC(2026, 0, 5, 12, 3, 4);

describe('parseTrialCheck', () => {
  it.each<[string, TrialCheck]>([
    ['temp<=90', { kind: 'atMost', metric: 'temp', limit: 90, text: 'temp<=90' }],
    ['rssi>=-90', { kind: 'atLeast', metric: 'rssi', limit: -90, text: 'rssi>=-90' }],
    [' temp <= 90.5 ', { kind: 'atMost', metric: 'temp', limit: 90.5, text: 'temp<=90.5' }],
    ['rssi', { kind: 'reported', metric: 'rssi', text: 'rssi' }],
    ['motor.rpm_2-a>=0', { kind: 'atLeast', metric: 'motor.rpm_2-a', limit: 0, text: 'motor.rpm_2-a>=0' }],
    ['x<=-0.25', { kind: 'atMost', metric: 'x', limit: -0.25, text: 'x<=-0.25' }],
  ])('takes %j', (text, expected) => {
    expect(parseTrialCheck(text)).toEqual({ ok: true, value: expected });
  });

  it.each<[string, string]>([
    ['', 'an empty check'],
    ['   ', 'an empty check'],
    ['temp<=abc', 'the limit must be a number'],
    ['temp<=', 'the limit must be a number'],
    ['temp<=1e3', 'the limit must be a number'],
    ['temp<>5', 'unknown comparison'],
    ['temp<5', 'unknown comparison'],
    ['temp==5', 'unknown comparison'],
    ['<=5', 'the metric name is missing'],
    ['+', "the MQTT wildcard '+' at position 0"],
    ['temp/#', "'/' (U+002F) at position 4"],
    ['#<=4', "the MQTT wildcard '#' at position 0"],
    ['te mp', 'U+0020 at position 2'],
    ['temp<=90<=100', 'the limit must be a number'],
    [`${'m'.repeat(65)}`, 'the metric name has 65 characters; at most 64'],
    [`t<=${'9'.repeat(98)}`, '101 characters; a check has at most 100'],
  ])('refuses %j, naming the check', (text, why) => {
    const r = parseTrialCheck(text);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('badCheck');
    expect(r.error.message).toContain(
      `trial check ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)}`,
    );
    expect(r.error.message).toContain(why);
  });
});

describe('parseTrialChecks', () => {
  it('takes none, and up to the most, in order', () => {
    expect(parseTrialChecks([])).toEqual({ ok: true, value: [] });
    const most = Array.from({ length: MAX_TRIAL_CHECKS }, (_, i) => `m${i}<=${i}`);
    const r = parseTrialChecks(most);
    expect(r.ok && r.value.map((c) => c.text)).toEqual(most);
  });

  it('refuses too many, and names the first bad check of a list', () => {
    const tooMany = parseTrialChecks(Array.from({ length: MAX_TRIAL_CHECKS + 1 }, () => 'temp'));
    expect(tooMany).toMatchObject({
      ok: false,
      error: { code: 'badCheck', message: '17 trial checks; at most 16' },
    });
    const named = parseTrialChecks(['temp<=90', 'rssi>=x', 'up time']);
    expect(named).toMatchObject({ ok: false, error: { code: 'badCheck' } });
    expect(!named.ok && named.error.message).toMatch(/^trial check "rssi>=x": the limit must be a number/);
  });
});

const watchOf = (...texts: string[]) => {
  const r = parseTrialChecks(texts);
  if (!r.ok) throw new Error(r.error.message);
  return createTrialWatch(r.value);
};

describe('createTrialWatch', () => {
  it.each<[string, string[], readonly Record<string, number>[], string | undefined]>([
    ['no checks: healthy', [], [{ temp: 1000 }], undefined],
    [
      'limits held and the metric seen',
      ['temp<=90', 'rssi>=-90', 'rssi'],
      [{ temp: 90, rssi: -90 }],
      undefined,
    ],
    [
      'a reading above a limit',
      ['temp<=90'],
      [{ temp: 21 }, { temp: 97.2 }, { temp: 99 }],
      "temp read 97.2 at 12:03:04 UTC, above the trial's limit temp<=90",
    ],
    [
      'a reading below a limit',
      ['rssi>=-90'],
      [{ rssi: -91 }],
      "rssi read -91 at 12:03:04 UTC, below the trial's limit rssi>=-90",
    ],
    ['a required metric never reported', ['rssi'], [{ temp: 21 }], 'no rssi reading during the trial'],
    ['no reading at all', ['temp<=90', 'rssi'], [], 'no rssi reading during the trial'],
    [
      'a broken limit and a missing metric, both',
      ['nosuchmetric', 'temp<=-1000'],
      [{ temp: 21.5 }],
      "temp read 21.5 at 12:03:04 UTC, above the trial's limit temp<=-1000; no nosuchmetric reading during the trial",
    ],
  ])('%s', (_what, texts, readings, verdict) => {
    const watch = watchOf(...texts);
    for (const values of readings) watch.observe(values, AT);
    expect(watch.verdict()).toBe(verdict);
  });

  it('answers the first bad reading of each limit once, and keeps it', () => {
    const watch = watchOf('temp<=90', 'rssi>=-90');
    expect(watch.observe({ temp: 50, rssi: -50 }, AT)).toBeUndefined();
    expect(watch.observe({ temp: 95 }, AT)).toBe(
      "temp read 95 at 12:03:04 UTC, above the trial's limit temp<=90",
    );
    expect(watch.observe({ temp: 99 }, AT + 1000)).toBeUndefined(); // the same check: already broken
    expect(watch.observe({ rssi: -95 }, AT + 2000)).toBe(
      "rssi read -95 at 12:03:06 UTC, below the trial's limit rssi>=-90",
    );
    expect(watch.verdict()).toBe(
      "temp read 95 at 12:03:04 UTC, above the trial's limit temp<=90; rssi read -95 at 12:03:06 UTC, below the trial's limit rssi>=-90",
    );
  });

  it('is fresh for each trial: a new watch has seen nothing', () => {
    const checks = parseTrialChecks(['rssi']);
    if (!checks.ok) throw new Error(checks.error.message);
    const first = createTrialWatch(checks.value);
    first.observe({ rssi: -40 }, AT);
    expect(first.verdict()).toBeUndefined();
    expect(createTrialWatch(checks.value).verdict()).toBe('no rssi reading during the trial');
  });
});

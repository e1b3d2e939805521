/**
 * Routed operations as a row keeps them (src/cluster/routed-ops.ts) and their answers as stored
 * (src/cluster/routed-reply.ts), without a database: every kind round-trips, an action's row is
 * what it was before other kinds were routed, and a damaged or unknown row is a clear refusal.
 */
import { describe, expect, it } from 'vitest';
import type { RoutedAnswer, RoutedOp } from '../../src/cluster/routed-ops.js';
import { kindOfColumn, opOfRow, ROUTED_KINDS, rowOfOp } from '../../src/cluster/routed-ops.js';
import { answerText, parseAnswer } from '../../src/cluster/routed-reply.js';

const row = (op: RoutedOp) => {
  const r = rowOfOp(op);
  return { device_id: op.deviceId, action: r.action, args: JSON.stringify(r.args), actor: r.actor };
};

describe('routed operations', () => {
  it('every kind round-trips through its row', () => {
    const ops: RoutedOp[] = [
      { kind: 'act', deviceId: 'pump-7', actor: 'ann', action: 'identify', args: { seconds: 5 } },
      { kind: 'cancelCommand', deviceId: 'pump-7', actor: 'ann', commandId: 'c-1' },
      { kind: 'restartDevice', deviceId: 'pump-7', actor: 'ann' },
      { kind: 'sendEvent', deviceId: 'pump-7', actor: 'ann', event: 'HELLO', payload: { firmware: '2.1.0' } },
      { kind: 'sendEvent', deviceId: 'pump-7', event: 'PING' },
      { kind: 'adopt', deviceId: 'pump-9', actor: 'bob' },
      { kind: 'device', deviceId: 'pump-7' },
      { kind: 'deviceInspect', deviceId: 'pump-7', actor: 'carol' },
      {
        kind: 'firmwareUpdate',
        deviceId: 'pump-7',
        actor: 'ann',
        sha256: 'ab'.repeat(32),
        trialMs: 5000,
        trialChecks: ['temp<=90'],
      },
      { kind: 'firmwareUpdate', deviceId: 'pump-8', sha256: 'cd'.repeat(32) },
      { kind: 'firmwareCancel', deviceId: 'pump-7', actor: 'ann' },
      { kind: 'firmwareJobs', deviceId: 'pump-7' },
    ];
    expect(new Set(ops.map((o) => o.kind))).toEqual(new Set(ROUTED_KINDS));
    for (const op of ops) expect(opOfRow(row(op))).toEqual({ ok: true, value: op });
  });

  it("an action's row is its name and its arguments; other kinds are 'op:' and never an action name", () => {
    expect(rowOfOp({ kind: 'act', deviceId: 'p', actor: 'ann', action: 'ping', args: { a: 1 } })).toEqual({
      action: 'ping',
      args: { a: 1 },
      actor: 'ann',
    });
    expect(rowOfOp({ kind: 'sendEvent', deviceId: 'p', event: 'HELLO' })).toEqual({
      action: 'op:sendEvent',
      args: { event: 'HELLO' },
      actor: '',
    });
    expect(kindOfColumn('device')).toBe('act'); // an action may be called 'device'
    expect(kindOfColumn('op:device')).toBe('device');
    expect(kindOfColumn('op:act')).toBeUndefined();
    expect(kindOfColumn('op:launchMissiles')).toBeUndefined();
  });

  it('a damaged or unknown row is a clear badArgs', () => {
    const cases: [Parameters<typeof opOfRow>[0], RegExp][] = [
      [
        { device_id: 'p', action: 'op:launchMissiles', args: '{}', actor: '' },
        /no operation this instance knows/,
      ],
      [{ device_id: 'p', action: 'op:sendEvent', args: '{"event":', actor: '' }, /not JSON/],
      [{ device_id: 'p', action: 'op:sendEvent', args: '{}', actor: '' }, /'sendEvent' do not check: event/],
      [{ device_id: 'p', action: 'op:device', args: '{"extra":1}', actor: '' }, /'device' do not check/],
      [{ device_id: 'p', action: 'op:cancelCommand', args: '{"commandId":""}', actor: '' }, /commandId/],
      [
        { device_id: 'p', action: 'op:firmwareUpdate', args: '{"sha256":"ABC"}', actor: '' },
        /'firmwareUpdate' do not check: sha256/,
      ],
      [
        {
          device_id: 'p',
          action: 'op:firmwareUpdate',
          args: `{"sha256":"${'a'.repeat(64)}","trialMs":5}`,
          actor: '',
        },
        /trialMs/,
      ],
      [{ device_id: 'p', action: 'no such!', args: '{}', actor: '' }, /'act' do not check: action/],
    ];
    for (const [r, message] of cases) {
      const parsed = opOfRow(r);
      expect(parsed.ok).toBe(false);
      expect(!parsed.ok && parsed.error.code).toBe('badArgs');
      expect(!parsed.ok && parsed.error.message).toMatch(message);
    }
  });
});

describe('routed answers', () => {
  it("round-trip: an action's reply, and another kind's envelope with any JSON value", () => {
    const answers: [Parameters<typeof answerText>[0], RoutedAnswer][] = [
      ['act', { ok: true, value: { commandId: 'c1', state: 'connected', commandStatus: 'sent' } }],
      ['device', { ok: true, value: { id: 'pump-7', transitions: [{ at: 1, from: 'a', to: 'b' }] } }],
      ['cancelCommand', { ok: true, value: { cancelled: false } }],
      ['sendEvent', { ok: false, error: { code: 'unknownEvent', message: "no 'X'" } }],
      ['restartDevice', { ok: false, error: { code: 'rateLimited', message: 'slow', retryAt: 5 } }],
    ];
    for (const [kind, a] of answers) expect(parseAnswer(kind, answerText(kind, a))).toEqual(a);
  });

  it('a stored answer without a value, or not JSON, is badAnswer', () => {
    for (const text of ['{"ok":true}', '{"ok":', 'null', '42', null]) {
      const a = parseAnswer('deviceInspect', text);
      expect(a.ok).toBe(false);
      expect(!a.ok && a.error.code).toBe('badAnswer');
    }
  });
});

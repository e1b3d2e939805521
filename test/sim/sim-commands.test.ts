/**
 * The simulated device's commands without a device (src/sim/sim-commands.ts): each action's
 * reply and effect, argument errors, expiry, and the bounded reply cache.
 */
import { describe, expect, it } from 'vitest';
import {
  expiredReply,
  MAX_INTERVAL_MS,
  planCommand,
  REPLY_CACHE_SIZE,
  ReplyCache,
} from '../../src/sim/sim-commands.js';
import type { JsonObject } from '../../src/transports/protocol.js';

const cmd = (action: string, args?: JsonObject) =>
  ({ v: 1, type: 'cmd', cmdId: 'c1', action, ...(args && { args }) }) as const;

describe('planCommand', () => {
  it('replies ok and names the effect of each action', () => {
    expect(planCommand(cmd('ping'), {})).toEqual({ reply: { v: 1, type: 'reply', cmdId: 'c1', ok: true } });
    expect(planCommand(cmd('hello'), {}).effect).toEqual({ kind: 'hello' });
    expect(planCommand(cmd('reboot'), {}).effect).toEqual({ kind: 'reboot' });
    expect(planCommand(cmd('identify'), {})).toMatchObject({
      reply: { ok: true, result: { seconds: 5 } },
      effect: { kind: 'identify', seconds: 5, ms: 5000 },
    });
    expect(planCommand(cmd('identify', { seconds: 0.25 }), {}).effect).toEqual({
      kind: 'identify',
      seconds: 0.25,
      ms: 250,
    });
    expect(planCommand(cmd('setInterval', { ms: 500 }), {})).toMatchObject({
      reply: { ok: true, result: { ms: 500 } },
      effect: { kind: 'setInterval', ms: 500 },
    });
  });

  it('setConfig merges into the config it is given, and the reply carries the result', () => {
    const plan = planCommand(cmd('setConfig', { b: 2 }), { a: 1, b: 1 });
    expect(plan.effect).toEqual({ kind: 'setConfig', config: { a: 1, b: 2 } });
    expect(plan.reply).toMatchObject({ ok: true, result: { a: 1, b: 2 } });
  });

  it('refuses bad arguments with badArgs naming them, and unknown actions', () => {
    const error = (c: ReturnType<typeof cmd>) => {
      const { reply, effect } = planCommand(c, {});
      expect(effect).toBeUndefined();
      return reply.ok ? undefined : reply.error;
    };
    expect(error(cmd('identify', { seconds: 0 }))?.message).toMatch(/args\.seconds .* got 0$/);
    expect(error(cmd('identify', { seconds: 'x' }))?.code).toBe('badArgs');
    expect(error(cmd('setInterval', { ms: 50 }))?.message).toMatch(/args\.ms .* got 50$/);
    expect(error(cmd('setInterval', { ms: MAX_INTERVAL_MS + 1 }))?.code).toBe('badArgs');
    expect(error(cmd('setInterval'))?.message).toMatch(/got nothing$/);
    expect(error(cmd('setConfig'))?.code).toBe('badArgs');
    expect(error(cmd('setConfig', { big: 'x'.repeat(300_000) }))?.message).toMatch(/does not fit in a reply/);
    expect(error(cmd('toString'))).toMatchObject({ code: 'unknownAction' });
  });
});

describe('expiredReply', () => {
  it('names both clocks', () => {
    expect(expiredReply('c1', 0, 1000)).toEqual({
      v: 1,
      type: 'reply',
      cmdId: 'c1',
      ok: false,
      error: {
        code: 'expired',
        message: 'command expired at 1970-01-01T00:00:00.000Z; device clock is 1970-01-01T00:00:01.000Z',
      },
    });
  });
});

describe('ReplyCache', () => {
  it('keeps the last REPLY_CACHE_SIZE replies and counts executions', () => {
    const cache = new ReplyCache();
    for (let i = 0; i <= REPLY_CACHE_SIZE; i++)
      cache.remember({ v: 1, type: 'reply', cmdId: `c${i}`, ok: true });
    expect(cache.get('c0')).toBeUndefined();
    expect(cache.get('c1')).toBeDefined();
    expect(cache.get(`c${REPLY_CACHE_SIZE}`)).toBeDefined();
    cache.countExecution('c1');
    cache.countExecution('c1');
    expect(cache.executed.get('c1')).toBe(2);
  });
});

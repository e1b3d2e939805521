/**
 * A routed action's reply as stored in `fleetvisor_routed_actions.result`
 * (src/cluster/routed-reply.ts), without a database: what is written, and what a damaged row
 * reads as.
 */
import { describe, expect, it } from 'vitest';
import type { RoutedReply } from '../../src/cluster/routed-reply.js';
import { messageOf, parseReply, refuse, replyText } from '../../src/cluster/routed-reply.js';

describe('routed reply', () => {
  it('round-trips what the contract carries', () => {
    const replies: RoutedReply[] = [
      { ok: true, value: { commandId: 'c1', state: 'connected.idle' } },
      { ok: true, value: { commandId: 'c1', state: 'connected.idle', commandStatus: 'sent' } },
      refuse('busy', 'updating firmware'),
      { ok: false, error: { code: 'rateLimited', message: 'too many', retryAt: 1_700_000_000_000 } },
    ];
    for (const r of replies) expect(parseReply(replyText(r))).toEqual(r);
  });

  it('writes only the contract’s fields of a failure', () => {
    const failure = {
      ok: false,
      error: { code: 'noLink', message: 'down', cause: new Error('socket closed'), detail: 1 },
    } as RoutedReply;
    expect(JSON.parse(replyText(failure))).toEqual({ ok: false, error: { code: 'noLink', message: 'down' } });
  });

  it('reads a damaged row as badAnswer, quoting at most 200 characters of it', () => {
    for (const text of [
      null,
      '{"ok":',
      '{"ok":true,"value":{"commandId":1}}',
      '{"ok":false,"error":{}}',
      '[]',
    ]) {
      const r = parseReply(text);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('badAnswer');
    }
    const long = parseReply('x'.repeat(500));
    expect(long.ok ? '' : long.error.message).toBe(
      `the owner's answer could not be read: ${'x'.repeat(200)}`,
    );
  });

  it('drops fields of the wrong type instead of passing them on', () => {
    expect(
      parseReply('{"ok":true,"value":{"commandId":"c","state":"s","commandStatus":3,"extra":1}}'),
    ).toEqual({ ok: true, value: { commandId: 'c', state: 's' } });
    expect(parseReply('{"ok":false,"error":{"code":"busy","message":"m","retryAt":"soon"}}')).toEqual(
      refuse('busy', 'm'),
    );
  });

  it('says what an error is, thrown or not', () => {
    expect(messageOf(new Error('boom'))).toBe('boom');
    expect(messageOf('plain')).toBe('plain');
  });
});

/**
 * The caller checks the headless server's two transports share (src/host/server/auth.ts): the
 * token verdict and its limiter, the subprotocol token, what of an Origin may be logged, and the
 * logger that never writes the token. Deterministic: the limiter runs on a simulated clock.
 *
 * @example
 * // npx vitest run test/host/server/auth.test.ts
 */
import { describe, expect, it } from 'vitest';
import { allowedNames, createAuthLimiter } from '../../../src/host/security.js';
import type { Gate } from '../../../src/host/server/auth.js';
import { checkToken, offeredToken, originForLog, redacting } from '../../../src/host/server/auth.js';
import type { Logger } from '../../../src/runtime/runtime.js';

const TOKEN = 'right-token-0123456789';

function gateOn(clock: { t: number }, max = 3): Gate {
  return {
    names: allowedNames({ port: 4310 }),
    token: TOKEN,
    limiter: createAuthLimiter({ max, windowMs: 10_000, now: () => clock.t }),
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  };
}

describe('checkToken', () => {
  it('counts wrong tokens until the limit, then refuses without counting; the right one always passes', () => {
    const clock = { t: 0 };
    const gate = gateOn(clock);
    expect([1, 2, 3].map(() => checkToken(gate, 'wrong-token-0123456789'))).toEqual([
      'wrong',
      'wrong',
      'wrong',
    ]);
    expect(checkToken(gate, 'wrong-token-0123456789')).toBe('limited');
    expect(checkToken(gate, TOKEN)).toBe('ok');
    clock.t = 10_001;
    expect(checkToken(gate, 'wrong-token-0123456789')).toBe('wrong');
  });

  it('does not count a wrong token while limited (the window is not extended)', () => {
    const clock = { t: 0 };
    const gate = gateOn(clock, 1);
    expect(checkToken(gate, 'nope')).toBe('wrong');
    clock.t = 9_000;
    expect(checkToken(gate, 'nope')).toBe('limited');
    clock.t = 10_001;
    expect(checkToken(gate, 'nope')).toBe('wrong');
  });
});

describe('offeredToken', () => {
  it.each([
    [undefined, undefined],
    ['fleetvisor', undefined],
    ['fleetvisor, fleetvisor.token.abc', 'abc'],
    ['fleetvisor.token.abc,fleetvisor', 'abc'],
    ['fleetvisor,  fleetvisor.token.  ', ''],
  ])('%j → %j', (header, token) => {
    expect(offeredToken(header)).toBe(token);
  });
});

describe('originForLog', () => {
  it.each([
    [undefined, '(none)'],
    ['file:///home/user/page.html', 'null'],
    ['http://evil.example:8080/path?q=1', 'http://evil.example:8080'],
    ['not a url', '(malformed)'],
  ])('%j → %j', (origin, logged) => {
    expect(originForLog(origin)).toBe(logged);
  });
});

describe('redacting', () => {
  it('replaces the secret in the message, string fields, errors and arrays; other values pass', () => {
    const lines: [string, Record<string, unknown> | undefined][] = [];
    const sink: Logger = {
      debug: (m, f) => lines.push([m, f]),
      info: (m, f) => lines.push([m, f]),
      warn: (m, f) => lines.push([m, f]),
      error: (m, f) => lines.push([m, f]),
    };
    const logger = redacting(sink, TOKEN);
    logger.warn(`url /#token=${TOKEN}`, {
      url: `x${TOKEN}y`,
      error: new Error(`bad ${TOKEN}`),
      list: [TOKEN, 1],
      port: 4310,
    });
    logger.info('plain');
    expect(lines).toEqual([
      [
        'url /#token=[redacted]',
        { url: 'x[redacted]y', error: 'bad [redacted]', list: ['[redacted]', 1], port: 4310 },
      ],
      ['plain', undefined],
    ]);
  });
});

/**
 * How a call reaches the API (src/host/server/calls.ts), the same over HTTP and the WebSocket:
 * the actor passed along, absent args as `{}`, args nested too deep refused before the API is
 * asked, and a throwing handler answered `internal` and logged.
 *
 * @example
 * // npx vitest run test/host/server/calls.test.ts
 */
import { describe, expect, it } from 'vitest';
import type { Envelope, HostApi } from '../../../src/host/contract.js';
import { MAX_ARGS_DEPTH } from '../../../src/host/security.js';
import { createInvoker } from '../../../src/host/server/calls.js';

function fakeApi(answer: (method: string, args: unknown) => Envelope<unknown>) {
  const seen: { method: string; args: unknown; actor: string | undefined }[] = [];
  const api: HostApi = {
    async call(method, args, context) {
      seen.push({ method, args, actor: context?.actor });
      return answer(method, args);
    },
    openStream: () => () => {},
  };
  return { api, seen };
}

function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

describe('createInvoker', () => {
  it('passes the method, the args (absent: {}) and the actor', async () => {
    const { api, seen } = fakeApi(() => ({ ok: true, value: 7 }));
    const invoke = createInvoker(api, 'operator', { debug() {}, info() {}, warn() {}, error() {} });
    expect(await invoke('devices', { limit: 5 })).toEqual({ ok: true, value: 7 });
    expect(await invoke('overview', undefined)).toEqual({ ok: true, value: 7 });
    expect(seen).toEqual([
      { method: 'devices', args: { limit: 5 }, actor: 'operator' },
      { method: 'overview', args: {}, actor: 'operator' },
    ]);
  });

  it('refuses args nested deeper than the cap without asking the API', async () => {
    const { api, seen } = fakeApi(() => ({ ok: true, value: null }));
    const invoke = createInvoker(api, 'operator', { debug() {}, info() {}, warn() {}, error() {} });
    const envelope = await invoke('devices', nested(MAX_ARGS_DEPTH + 2));
    expect(envelope).toEqual({
      ok: false,
      error: { code: 'badRequest', message: `args nest deeper than ${MAX_ARGS_DEPTH} levels` },
    });
    expect(seen).toEqual([]);
  });

  it('answers internal when the API throws, and logs the method', async () => {
    const { api } = fakeApi(() => {
      throw new Error('boom');
    });
    const errors: unknown[] = [];
    const invoke = createInvoker(api, 'operator', {
      debug() {},
      info() {},
      warn() {},
      error: (message, fields) => errors.push({ message, fields }),
    });
    expect(await invoke('devices', {})).toEqual({
      ok: false,
      error: { code: 'internal', message: 'internal error' },
    });
    expect(errors).toEqual([{ message: 'api call threw', fields: { method: 'devices', error: 'boom' } }]);
  });
});

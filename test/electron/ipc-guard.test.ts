/**
 * The main process's IPC checks and handlers (electron/ipc-guard.ts, electron/ipc-handlers.ts)
 * on a fake HostApi: untrusted senders, unknown methods, oversized or non-JSON payloads are
 * refused before the host sees them; streams open, reopen and close per webContents.
 */
import { describe, expect, it, vi } from 'vitest';
import type { IpcSender } from '../../electron/ipc-guard.js';
import {
  isTrustedSender,
  MAX_CALL_PAYLOAD_CHARS,
  senderRefusal,
  validateCallPayload,
} from '../../electron/ipc-guard.js';
import { createIpcHandlers } from '../../electron/ipc-handlers.js';
import { APP_ORIGIN } from '../../electron/window-options.js';
import type { HostApi, PushMessage, StreamSink } from '../../src/host/contract.js';

const trusted: IpcSender = { id: 1, url: `${APP_ORIGIN}/index.html`, isMainFrame: true };

const untrusted: [string, IpcSender][] = [
  ['a remote page', { id: 1, url: 'https://evil.example/', isMainFrame: true }],
  ['a file: page', { id: 1, url: 'file:///home/ana/evil.html', isMainFrame: true }],
  ['a look-alike host', { id: 1, url: 'app://fleetvisor.evil/index.html', isMainFrame: true }],
  ['another app:// host', { id: 1, url: 'app://other/index.html', isMainFrame: true }],
  ['a srcdoc iframe', { id: 1, url: 'about:srcdoc', isMainFrame: false }],
  ['about:blank', { id: 1, url: 'about:blank', isMainFrame: true }],
  ['a same-origin iframe', { id: 1, url: `${APP_ORIGIN}/index.html`, isMainFrame: false }],
  ['a frame that is gone', { id: 1, url: undefined, isMainFrame: true }],
  ['a data: page', { id: 1, url: 'data:text/html,x', isMainFrame: true }],
];

function fakeApi() {
  const sinks: StreamSink[] = [];
  const closed: number[] = [];
  const api = {
    call: vi.fn(async (method: string, args: unknown, context?: { actor?: string }) => ({
      ok: true as const,
      value: { method, args, actor: context?.actor },
    })),
    openStream: vi.fn((sink: StreamSink) => {
      const n = sinks.push(sink) - 1;
      return () => {
        closed.push(n);
      };
    }),
  } satisfies HostApi;
  return { api, sinks, closed };
}

describe('isTrustedSender / senderRefusal', () => {
  it('trusts the app origin only', () => {
    expect(isTrustedSender(`${APP_ORIGIN}/index.html`, APP_ORIGIN)).toBe(true);
    expect(isTrustedSender(`${APP_ORIGIN}/devices/x?y=1#z`, APP_ORIGIN)).toBe(true);
    expect(isTrustedSender(undefined, APP_ORIGIN)).toBe(false);
    expect(senderRefusal(trusted, APP_ORIGIN)).toBeNull();
  });

  it.each(untrusted)('refuses %s', (_name, sender) => {
    expect(senderRefusal(sender, APP_ORIGIN)).toEqual(expect.any(String));
  });
});

describe('validateCallPayload', () => {
  it('accepts { method, args } for a contract method', () => {
    expect(validateCallPayload({ method: 'device', args: { id: 'pump-7' } })).toEqual({
      ok: true,
      method: 'device',
      args: { id: 'pump-7' },
    });
    expect(validateCallPayload({ method: 'tree' })).toMatchObject({ ok: true, method: 'tree' });
  });

  it.each([
    ['an unknown method', { method: 'shell', args: {} }],
    ['a prototype key', { method: '__proto__', args: {} }],
    ['toString', { method: 'toString', args: {} }],
    ['constructor', { method: 'constructor', args: {} }],
    ['hasOwnProperty', { method: 'hasOwnProperty', args: {} }],
    ['a method that is not a string', { method: 7, args: {} }],
    ['no method', { args: {} }],
    ['extra fields', { method: 'tree', args: {}, channel: 'x' }],
    ['null', null],
    ['a string', 'tree'],
    ['an array', ['tree', {}]],
    ['a Map', new Map([['method', 'tree']])],
    ['a Date', new Date()],
  ])('refuses %s', (_name, payload) => {
    expect(validateCallPayload(payload)).toMatchObject({ ok: false, reason: expect.any(String) });
  });

  it('refuses an oversized payload and accepts the largest legitimate act', () => {
    const ids = Array.from({ length: 10_000 }, (_, i) => `device-${String(i).padStart(57, '0')}`);
    expect(ids[0]).toHaveLength(64);
    expect(validateCallPayload({ method: 'act', args: { ids, action: 'reboot' } }).ok).toBe(true);
    const huge = 'x'.repeat(MAX_CALL_PAYLOAD_CHARS);
    expect(validateCallPayload({ method: 'devices', args: { text: huge } })).toMatchObject({
      ok: false,
      reason: expect.stringContaining('too large'),
    });
    expect(validateCallPayload({ method: 'devices', args: { text: 'x'.repeat(200) } }, 100).ok).toBe(false);
  });

  it('refuses payloads that are not JSON (cycles, BigInt, absurd nesting)', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(validateCallPayload({ method: 'device', args: cyclic }).ok).toBe(false);
    expect(validateCallPayload({ method: 'device', args: { id: 10n } }).ok).toBe(false);
    let deep: unknown = {};
    for (let i = 0; i < 200_000; i++) deep = { d: deep };
    expect(validateCallPayload({ method: 'device', args: deep }).ok).toBe(false);
  });
});

describe('createIpcHandlers', () => {
  const make = (api: Promise<HostApi>) => {
    const refused = vi.fn();
    const handlers = createIpcHandlers({ api, appOrigin: APP_ORIGIN, actor: 'ana', onRefused: refused });
    return { handlers, refused };
  };

  it('passes a trusted, valid call to the host with the operator as actor', async () => {
    const { api } = fakeApi();
    const { handlers } = make(Promise.resolve(api));
    const r = await handlers.call(trusted, { method: 'device', args: { id: 'pump-7' } });
    expect(r).toEqual({ ok: true, value: { method: 'device', args: { id: 'pump-7' }, actor: 'ana' } });
    expect(api.call).toHaveBeenCalledWith('device', { id: 'pump-7' }, { actor: 'ana' });
  });

  it.each(untrusted)('refuses every channel from %s before the host sees it', async (_name, sender) => {
    const { api } = fakeApi();
    const { handlers, refused } = make(Promise.resolve(api));
    const call = await handlers.call(sender, { method: 'tree', args: {} });
    const sub = await handlers.subscribe(sender, () => {});
    const unsub = await handlers.unsubscribe(sender);
    for (const r of [call, sub, unsub])
      expect(r).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    expect(api.call).not.toHaveBeenCalled();
    expect(api.openStream).not.toHaveBeenCalled();
    expect(refused).toHaveBeenCalledTimes(3);
  });

  it('refuses unknown methods and oversized payloads as badRequest', async () => {
    const { api } = fakeApi();
    const { handlers, refused } = make(Promise.resolve(api));
    expect(await handlers.call(trusted, { method: 'eval', args: 'process.exit()' })).toMatchObject({
      ok: false,
      error: { code: 'badRequest' },
    });
    expect(
      await handlers.call(trusted, { method: 'devices', args: { text: 'x'.repeat(MAX_CALL_PAYLOAD_CHARS) } }),
    ).toMatchObject({ ok: false, error: { code: 'badRequest' } });
    expect(api.call).not.toHaveBeenCalled();
    expect(refused).toHaveBeenCalledTimes(2);
  });

  it('answers unavailable when the host failed to start, internal when it throws', async () => {
    const failed = make(Promise.reject(new Error('database is locked')));
    expect(await failed.handlers.call(trusted, { method: 'tree', args: {} })).toEqual({
      ok: false,
      error: { code: 'unavailable', message: 'the host did not start: database is locked' },
    });
    expect(await failed.handlers.subscribe(trusted, () => {})).toMatchObject({
      ok: false,
      error: { code: 'unavailable' },
    });
    expect(failed.handlers.streams).toBe(0);

    const { api } = fakeApi();
    api.call.mockRejectedValueOnce(new Error('bug'));
    const { handlers } = make(Promise.resolve(api));
    expect(await handlers.call(trusted, { method: 'tree', args: {} })).toEqual({
      ok: false,
      error: { code: 'internal', message: 'bug' },
    });
  });

  it('calls made while the host starts wait for it', async () => {
    const { api } = fakeApi();
    let resolve!: (a: HostApi) => void;
    const { handlers } = make(new Promise<HostApi>((r) => (resolve = r)));
    const pending = handlers.call(trusted, { method: 'stats', args: {} });
    resolve(api);
    await expect(pending).resolves.toMatchObject({ ok: true });
  });

  it('opens one stream per webContents, never congested, and closes it on every way out', async () => {
    const { api, sinks, closed } = fakeApi();
    const { handlers } = make(Promise.resolve(api));
    const got: PushMessage[] = [];
    expect(await handlers.subscribe(trusted, (m) => got.push(m))).toEqual({
      ok: true,
      value: { subscribed: true },
    });
    expect(handlers.streams).toBe(1);
    expect(sinks[0]?.congested()).toBe(false);
    sinks[0]?.send({ type: 'resync', reason: 'x' });
    expect(got).toEqual([{ type: 'resync', reason: 'x' }]);

    // Resubscribing (a second listener in the page) replaces the stream: a fresh snapshot.
    await handlers.subscribe(trusted, () => {});
    expect(closed).toEqual([0]);
    expect(handlers.streams).toBe(1);

    expect(await handlers.unsubscribe(trusted)).toEqual({ ok: true, value: { unsubscribed: true } });
    expect(closed).toEqual([0, 1]);
    expect(await handlers.unsubscribe(trusted)).toEqual({ ok: true, value: { unsubscribed: false } });

    await handlers.subscribe(trusted, () => {});
    await handlers.subscribe({ ...trusted, id: 2 }, () => {});
    expect(handlers.streams).toBe(2);
    handlers.senderGone(1);
    expect(closed).toEqual([0, 1, 2]);
    handlers.closeAll();
    expect(closed).toEqual([0, 1, 2, 3]);
    expect(handlers.streams).toBe(0);
  });

  it('a stream cancelled while the host starts is never opened', async () => {
    const { api } = fakeApi();
    let resolve!: (a: HostApi) => void;
    const { handlers } = make(new Promise<HostApi>((r) => (resolve = r)));
    const pending = handlers.subscribe(trusted, () => {});
    await handlers.unsubscribe(trusted);
    resolve(api);
    expect(await pending).toEqual({ ok: true, value: { subscribed: false } });
    expect(api.openStream).not.toHaveBeenCalled();
    expect(handlers.streams).toBe(0);
  });
});

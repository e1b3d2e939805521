/**
 * The object the preload exposes on `window.fleetvisor` (electron/preload-api.ts), built on fake
 * IPC primitives: exactly one function per contract method plus `subscribe`, nothing else.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildBridge, METHOD_NAMES, PRELOAD_CHANNELS } from '../../electron/preload-api.js';
import type { PushMessage } from '../../src/host/contract.js';
import { METHODS } from '../../src/host/contract.js';

function fakeIpc(reply: (channel: string, payload: unknown) => unknown = () => ({ ok: true, value: 1 })) {
  const invoked: [string, unknown][] = [];
  const listeners = new Map<string, Set<(payload: unknown) => void>>();
  const invoke = vi.fn(async (channel: string, payload: unknown) => {
    invoked.push([channel, payload]);
    return reply(channel, payload);
  });
  const on = vi.fn((channel: string, listener: (payload: unknown) => void) => {
    let set = listeners.get(channel);
    if (!set) {
      set = new Set();
      listeners.set(channel, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  });
  const push = (payload: unknown) => {
    for (const l of listeners.get(PRELOAD_CHANNELS.push) ?? []) l(payload);
  };
  const listening = () => listeners.get(PRELOAD_CHANNELS.push)?.size ?? 0;
  return { invoke, on, invoked, push, listening };
}

const snapshot = { type: 'resync', reason: 'test' } satisfies PushMessage;

afterEach(() => {
  vi.restoreAllMocks();
});

describe('buildBridge', () => {
  it('lists exactly the contract methods', () => {
    expect([...METHOD_NAMES].sort()).toEqual(Object.keys(METHODS).sort());
    expect(new Set(METHOD_NAMES).size).toBe(METHOD_NAMES.length);
  });

  it('exposes exactly one function per method plus subscribe and exportToFile, and nothing else', () => {
    const ipc = fakeIpc();
    const bridge = buildBridge(ipc.invoke, ipc.on);
    expect(Object.keys(bridge).sort()).toEqual([...Object.keys(METHODS), 'subscribe', 'exportToFile'].sort());
    expect(Reflect.ownKeys(bridge)).toHaveLength(Object.keys(METHODS).length + 2);
    for (const [key, value] of Object.entries(bridge)) expect(typeof value, key).toBe('function');
    for (const key of ['invoke', 'send', 'on', 'ipcRenderer', 'call', 'removeListener'])
      expect(key in bridge, key).toBe(false);
    expect(Object.isFrozen(bridge)).toBe(true);
    expect(ipc.invoke).not.toHaveBeenCalled();
    expect(ipc.on).not.toHaveBeenCalled();
  });

  it.each(Object.keys(METHODS))('%s invokes the call channel with { method, args }', async (method) => {
    const ipc = fakeIpc((_c, payload) => ({ ok: true, value: payload }));
    const bridge = buildBridge(ipc.invoke, ipc.on) as unknown as Record<string, (a: unknown) => unknown>;
    const args = { probe: method };
    const result = await bridge[method]?.(args);
    expect(ipc.invoked).toEqual([[PRELOAD_CHANNELS.call, { method, args }]]);
    expect(result).toEqual({ ok: true, value: { method, args } });
  });

  it('sends an export on its own channel as { kind, query }, and a failed round trip comes back unavailable', async () => {
    const saved = { ok: true, path: '/home/ann/x.csv', fileName: 'x.csv', bytes: 12 };
    const ipc = fakeIpc(() => saved);
    const bridge = buildBridge(ipc.invoke, ipc.on);
    expect(await bridge.exportToFile('events', 'format=csv&device=pump-7')).toEqual(saved);
    expect(ipc.invoked).toEqual([
      [PRELOAD_CHANNELS.export, { kind: 'events', query: 'format=csv&device=pump-7' }],
    ]);
    const dead = fakeIpc(() => {
      throw new Error('channel closed');
    });
    expect(await buildBridge(dead.invoke, dead.on).exportToFile('events', '')).toEqual({
      ok: false,
      code: 'unavailable',
      message: 'channel closed',
    });
  });

  it('turns a failed IPC round trip into an unavailable envelope', async () => {
    const ipc = fakeIpc(() => {
      throw new Error('No handler registered');
    });
    const bridge = buildBridge(ipc.invoke, ipc.on);
    await expect(bridge.device({ id: 'pump-7' })).resolves.toEqual({
      ok: false,
      error: { code: 'unavailable', message: 'No handler registered' },
    });
  });

  it('subscribe listens once for all subscribers and asks for a fresh stream each time', async () => {
    const ipc = fakeIpc();
    const bridge = buildBridge(ipc.invoke, ipc.on);
    const a = vi.fn();
    const b = vi.fn();
    const offA = bridge.subscribe(a);
    const offB = bridge.subscribe(b);
    expect(ipc.on).toHaveBeenCalledTimes(1);
    expect(ipc.on).toHaveBeenCalledWith(PRELOAD_CHANNELS.push, expect.any(Function));
    expect(ipc.invoked).toEqual([
      [PRELOAD_CHANNELS.subscribe, null],
      [PRELOAD_CHANNELS.subscribe, null],
    ]);

    ipc.push(snapshot);
    expect(a).toHaveBeenCalledWith(snapshot);
    expect(a.mock.calls[0]).toHaveLength(1); // the payload only, never an IPC event
    expect(b).toHaveBeenCalledWith(snapshot);

    offA();
    offA(); // idempotent
    ipc.push(snapshot);
    expect(a).toHaveBeenCalledTimes(1);
    expect(b).toHaveBeenCalledTimes(2);
    expect(ipc.listening()).toBe(1);

    offB();
    expect(ipc.listening()).toBe(0);
    expect(ipc.invoked.at(-1)).toEqual([PRELOAD_CHANNELS.unsubscribe, null]);
    expect(ipc.invoked.filter(([c]) => c === PRELOAD_CHANNELS.unsubscribe)).toHaveLength(1);

    bridge.subscribe(a);
    expect(ipc.on).toHaveBeenCalledTimes(2);
    expect(ipc.listening()).toBe(1);
  });

  it('the same function subscribed twice gets two subscriptions', () => {
    const ipc = fakeIpc();
    const bridge = buildBridge(ipc.invoke, ipc.on);
    const a = vi.fn();
    const off1 = bridge.subscribe(a);
    bridge.subscribe(a);
    ipc.push(snapshot);
    expect(a).toHaveBeenCalledTimes(2);
    off1();
    ipc.push(snapshot);
    expect(a).toHaveBeenCalledTimes(3);
  });

  it('a throwing listener does not starve the others', () => {
    const ipc = fakeIpc();
    const bridge = buildBridge(ipc.invoke, ipc.on);
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const good = vi.fn();
    bridge.subscribe(() => {
      throw new Error('boom');
    });
    bridge.subscribe(good);
    ipc.push(snapshot);
    expect(good).toHaveBeenCalledWith(snapshot);
    expect(error).toHaveBeenCalled();
  });

  it('subscribe refuses a non-function', () => {
    const ipc = fakeIpc();
    const bridge = buildBridge(ipc.invoke, ipc.on);
    expect(() => bridge.subscribe('x' as unknown as () => void)).toThrow(TypeError);
    expect(ipc.on).not.toHaveBeenCalled();
  });

  it('a failed subscribe signal is logged, not thrown', async () => {
    const ipc = fakeIpc(() => {
      throw new Error('gone');
    });
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const bridge = buildBridge(ipc.invoke, ipc.on);
    expect(() => bridge.subscribe(() => {})).not.toThrow();
    await vi.waitFor(() => expect(error).toHaveBeenCalled());
  });
});

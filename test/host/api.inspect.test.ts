/**
 * The machine inspector over the host API on the real app (embedded broker, real SQLite file):
 * a device's context and accepted events are read; an event it accepts, sent by hand, moves its
 * machine and is audited (`device.eventSent`) with the operator's name; an event its state does
 * not accept, an unknown one and bad payloads are refused with their codes and change nothing, as
 * is any event to a failed device;
 * the last events include those no one sent by hand (a connect timeout), with their payloads.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostApiHandle } from '../../src/host/api.js';
import { createHostApi } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { Results } from '../../src/host/contract.js';
import { silentLogger } from '../../src/runtime/runtime.js';

let dir: string;
let app: App;
let api: HostApiHandle;

async function call<M extends keyof Results>(method: M, args: unknown, actor = 'alice'): Promise<Results[M]> {
  const r = await api.call(method, args, { actor });
  if (!r.ok) throw new Error(`${method}: ${r.error.code}: ${r.error.message}`);
  return r.value as Results[M];
}

async function refused(method: keyof Results, args: unknown) {
  const r = await api.call(method, args, { actor: 'alice' });
  if (r.ok) throw new Error(`${method} succeeded`);
  return r.error;
}

async function sentAudits(id: string) {
  await app.fleet.flush();
  const page = await call('events', { id, kind: 'device.eventSent' });
  return page.items.map((e) => e.data as Record<string, unknown>).reverse();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fv-api-inspect-'));
  app = await startApp({ dataDir: dir, logger: silentLogger, broker: { port: 0 }, demo: false });
  api = createHostApi(app);
  // No link: the machine moves only by what is sent to it (and its own timeouts).
  await call('deviceAdd', {
    id: 'bench-1',
    kind: 'fleetvisor.generic',
    attributes: { connectTimeoutMs: 600_000 },
  });
  await call('deviceAdd', {
    id: 'bench-2',
    kind: 'fleetvisor.generic',
    attributes: { connectTimeoutMs: 200 },
  });
}, 60_000);

afterAll(async () => {
  api?.close();
  await app?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the machine inspector over the API', () => {
  it("reads a device's state, context, the events it knows and those its state accepts", async () => {
    const m = await call('deviceInspect', { id: 'bench-1' });
    expect(m).toMatchObject({
      id: 'bench-1',
      state: 'disconnected',
      running: true,
      context: { connectTimeoutMs: 600_000, attempts: 0, firmware: null, lastError: null },
      events: ['CONNECT', 'DISCONNECT', 'HELLO', 'LINK_DOWN', 'LIVENESS_TIMEOUT'],
      accepts: ['CONNECT'],
      maxPayloadChars: 4096,
    });
    expect((await refused('deviceInspect', { id: 'nobody' })).code).toBe('notFound');
  });

  it('sends a permitted event by hand: the state changes and the audit names the operator', async () => {
    const connect = await call('sendEvent', { id: 'bench-1', event: 'CONNECT' }, 'alice');
    expect(connect).toEqual({ from: 'disconnected', to: 'connecting', state: 'connecting', crashed: false });
    expect(app.fleet.device('bench-1')!.state).toBe('connecting');

    const hello = await call(
      'sendEvent',
      { id: 'bench-1', event: 'HELLO', payload: { firmware: '9.9.9' } },
      'bob',
    );
    expect(hello).toMatchObject({ from: 'connecting', to: 'connected' });

    const m = await call('deviceInspect', { id: 'bench-1' });
    expect(m.state).toBe('connected');
    expect(m.context).toMatchObject({ firmware: '9.9.9', attempts: 0 });
    expect(m.accepts).toEqual(['DISCONNECT', 'HELLO', 'LINK_DOWN', 'LIVENESS_TIMEOUT']);
    expect(m.lastEvents.slice(0, 2)).toMatchObject([
      { type: 'HELLO', payload: { firmware: '9.9.9' }, from: 'connecting', to: 'connected' },
      { type: 'CONNECT', payload: {}, from: 'disconnected', to: 'connecting' },
    ]);

    expect(await sentAudits('bench-1')).toEqual([
      { event: 'CONNECT', payload: {}, actor: 'alice', from: 'disconnected', to: 'connecting' },
      { event: 'HELLO', payload: { firmware: '9.9.9' }, actor: 'bob', from: 'connecting', to: 'connected' },
    ]);
  });

  it('refuses an event not accepted in the state, an unknown event and bad payloads, changing nothing', async () => {
    const before = await call('deviceInspect', { id: 'bench-1' });
    const send = (event: string, payload?: unknown) =>
      refused('sendEvent', { id: 'bench-1', event, ...(payload !== undefined ? { payload } : {}) });

    const notAccepted = await send('CONNECT');
    expect(notAccepted.code).toBe('notAccepted');
    expect(notAccepted.message).toBe('bench-1 does not accept CONNECT while connected');

    const unknown = await send('REBOOT');
    expect(unknown.code).toBe('unknownEvent');
    expect(unknown.message).toContain("has no event 'REBOOT'");
    expect(unknown.message).toContain('CONNECT, DISCONNECT, HELLO, LINK_DOWN, LIVENESS_TIMEOUT');
    expect((await send('xstate.init')).code).toBe('unknownEvent');

    const notObject = await send('HELLO', [1, 2]);
    expect(notObject).toMatchObject({ code: 'badPayload', message: expect.stringContaining('an array') });
    expect((await send('HELLO', 'x')).message).toContain('not string');
    expect((await send('HELLO', null)).message).toContain('not null');
    expect((await send('HELLO', { type: 'CONNECT' })).message).toContain("must not carry 'type'");
    const tooBig = await send('HELLO', { firmware: 'x'.repeat(5000) });
    expect(tooBig).toMatchObject({ code: 'badPayload', message: expect.stringContaining('over the 4096') });

    expect((await refused('sendEvent', { id: 'nobody', event: 'CONNECT' })).code).toBe('notFound');
    // The contract's own schema: an event name is 1 to 64 characters.
    expect((await refused('sendEvent', { id: 'bench-1', event: '' })).code).toBe('badRequest');

    const after = await call('deviceInspect', { id: 'bench-1' });
    expect(after.state).toBe('connected');
    expect(after.context).toEqual(before.context);
    expect(after.lastEvents).toEqual(before.lastEvents);
    expect(await sentAudits('bench-1')).toHaveLength(2);
  });

  it('refuses to send to a device that has failed, and offers it nothing', async () => {
    await call('deviceAdd', { id: 'bench-3', kind: 'fleetvisor.generic' });
    // Past its supervisor's intensity (3 restarts within 5 s): failed, not restarted.
    for (let i = 0; i < 10 && app.fleet.device('bench-3')!.health !== 'failed'; i++) {
      app.fleet.machineOf('bench-3')?.kill();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(app.fleet.device('bench-3')!.health).toBe('failed');
    const m = await call('deviceInspect', { id: 'bench-3' });
    expect(m).toMatchObject({ running: false, accepts: [] });
    const r = await refused('sendEvent', { id: 'bench-3', event: 'CONNECT' });
    expect(r.code).toBe('notRunning');
    expect(r.message).toContain('restart it first');
  });

  it('keeps the events no one sent by hand too: a connect timeout, with the state it left', async () => {
    await call('sendEvent', { id: 'bench-2', event: 'CONNECT' });
    await expect.poll(() => app.fleet.device('bench-2')!.state, { timeout: 5_000 }).toBe('disconnected');
    const m = await call('deviceInspect', { id: 'bench-2' });
    expect(m.lastEvents[0]).toMatchObject({ from: 'connecting', to: 'disconnected' });
    expect(m.lastEvents[0]!.type).toMatch(/^xstate\.after\./);
    expect(m.lastEvents[1]).toMatchObject({ type: 'CONNECT', from: 'disconnected', to: 'connecting' });
    expect(m.context).toMatchObject({ attempts: 1, lastError: 'connect timed out' });
  });
});

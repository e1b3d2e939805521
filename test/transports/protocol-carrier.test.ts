/**
 * The protocol carrier with the fleet's command tracker over a real SQLite file, on a simulated
 * clock (ported from the command outbox's tests). The link is the carrier's `send` seam: here a
 * list that records what would go on the wire (test/transports/links.test.ts covers the wire).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { CommandTracker } from '../../src/devices/command-tracker.js';
import { createCommandTracker } from '../../src/devices/create-command-tracker.js';
import type { SimulatedClock } from '../../src/runtime/clock.js';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { CommandMessage, ReplyMessage } from '../../src/transports/protocol.js';
import { createProtocolCarrier, settleReply } from '../../src/transports/protocol-carrier.js';
import { tempDir } from '../store/helpers.js';

interface Outbox extends CommandTracker {
  handleReply(deviceId: string, reply: ReplyMessage): ReturnType<typeof settleReply>;
}

interface Rig {
  clock: SimulatedClock;
  store: SqliteStore;
  outbox: Outbox;
  wire: { deviceId: string; cmd: CommandMessage }[];
  file: string;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function rig(
  file?: string,
  clock = createSimulatedClock({ wallStartMs: 1_700_000_000_000 }),
): Promise<Rig> {
  let path = file;
  if (!path) {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    path = tmp.file;
  }
  const store = await openSqliteStore({ file: path, telemetryFlushMs: 0, now: () => clock.wallNow() });
  const runtime = createRuntime({ clock });
  const wire: Rig['wire'] = [];
  const online = new Set<string>();
  const carrier = createProtocolCarrier({
    replyTimeoutMs: 5000,
    send: (deviceId, cmd) => {
      if (!online.has(deviceId) || cmd.type !== 'cmd') return false;
      wire.push({ deviceId, cmd });
      return true;
    },
  });
  const tracker = createCommandTracker({ runtime, store, carrierOf: () => carrier });
  // What the fleet does on linkUp / linkDown, and the hub on a reply.
  const outbox: Outbox = {
    ...tracker,
    deviceOnline: (id) => {
      online.add(id);
      tracker.deviceOnline(id);
    },
    deviceOffline: (id) => {
      online.delete(id);
      tracker.deviceOffline(id);
    },
    handleReply: (deviceId, reply) => settleReply(tracker, deviceId, reply),
  };
  cleanups.push(async () => {
    await outbox.stop();
    await store.close().catch(() => {});
  });
  return { clock, store, outbox, wire, file: path };
}

async function audited(r: Rig, commandId: string) {
  await r.outbox.flush();
  const page = await r.store.queryCommands({ limit: 100 });
  const item = page.items.find((i) => i.ok && i.value.commandId === commandId);
  return item?.ok ? item.value : undefined;
}

describe('protocol carrier + command tracker', () => {
  it('sends at once to an online device and records the reply', async () => {
    const r = await rig();
    r.outbox.deviceOnline('pump-7');
    const s = await r.outbox.submit({
      deviceId: 'pump-7',
      action: 'setInterval',
      args: { ms: 500 },
      actor: 'ana',
    });
    expect(s.ok && s.value.status).toBe('sent');
    const id = s.ok ? s.value.commandId : '';
    expect(r.wire).toHaveLength(1);
    expect(r.wire[0]!.cmd).toMatchObject({
      type: 'cmd',
      cmdId: id,
      action: 'setInterval',
      args: { ms: 500 },
    });
    expect(r.wire[0]!.cmd.expiresAt).toBeGreaterThan(r.clock.wallNow());
    expect(
      r.outbox.handleReply('pump-7', { v: 1, type: 'reply', cmdId: id, ok: true, result: { ms: 500 } }),
    ).toBe('completed');
    expect(await audited(r, id)).toMatchObject({ status: 'succeeded', result: { ms: 500 }, actor: 'ana' });
    expect(r.outbox.open('pump-7')).toEqual([]);
  });

  it('keeps a command for an offline device and sends it once, oldest first, when it returns', async () => {
    const r = await rig();
    const a = await r.outbox.submit({
      deviceId: 'd1',
      action: 'identify',
      args: { seconds: 3 },
      actor: 'ana',
    });
    const b = await r.outbox.submit({ deviceId: 'd1', action: 'reboot', actor: 'ana' });
    expect(a.ok && a.value.status).toBe('pending');
    expect(r.wire).toHaveLength(0);
    expect((await audited(r, a.ok ? a.value.commandId : ''))?.status).toBe('pending');
    r.outbox.deviceOnline('d1');
    expect(r.wire.map((w) => w.cmd.action)).toEqual(['identify', 'reboot']);
    r.outbox.deviceOnline('d1'); // a second hello: nothing is sent twice
    expect(r.wire).toHaveLength(2);
    expect((await audited(r, b.ok ? b.value.commandId : ''))?.status).toBe('sent');
  });

  it('ignores a duplicate reply and drops a reply for a command it never sent to that device', async () => {
    const r = await rig();
    r.outbox.deviceOnline('d1');
    const s = await r.outbox.submit({ deviceId: 'd1', action: 'ping', actor: 'ana' });
    const id = s.ok ? s.value.commandId : '';
    const reply = { v: 1, type: 'reply', cmdId: id, ok: true } as const;
    expect(r.outbox.handleReply('d1', reply)).toBe('completed');
    expect(r.outbox.handleReply('d1', reply)).toBe('duplicate');
    expect(r.outbox.handleReply('d2', reply)).toBe('unknownCommand');
    expect(r.outbox.handleReply('d1', { ...reply, cmdId: 'never-sent' })).toBe('unknownCommand');
    expect((await audited(r, id))?.status).toBe('succeeded');
  });

  it('a failed reply is recorded with the device’s error', async () => {
    const r = await rig();
    r.outbox.deviceOnline('d1');
    const s = await r.outbox.submit({ deviceId: 'd1', action: 'setInterval', args: { ms: 1 }, actor: 'ana' });
    const id = s.ok ? s.value.commandId : '';
    r.outbox.handleReply('d1', {
      v: 1,
      type: 'reply',
      cmdId: id,
      ok: false,
      error: { code: 'badArgs', message: 'ms: must be at least 100' },
    });
    expect(await audited(r, id)).toMatchObject({ status: 'failed', error: { code: 'badArgs' } });
  });

  it('sends an unanswered command again, with the same id, when the link drops and comes back', async () => {
    const r = await rig();
    r.outbox.deviceOnline('d1');
    const s = await r.outbox.submit({ deviceId: 'd1', action: 'reboot', actor: 'ana' });
    r.outbox.deviceOffline('d1');
    expect(r.outbox.get(s.ok ? s.value.commandId : '')?.status).toBe('pending');
    r.outbox.deviceOnline('d1');
    expect(r.wire.map((w) => w.cmd.cmdId)).toEqual([r.wire[0]!.cmd.cmdId, r.wire[0]!.cmd.cmdId]);
    expect(r.outbox.get(s.ok ? s.value.commandId : '')?.attempts).toBe(2);
  });

  it('expires a command whose device does not come back in time, visibly, and never sends it', async () => {
    const r = await rig();
    const s = await r.outbox.submit({ deviceId: 'd1', action: 'reboot', actor: 'ana', ttlMs: 60_000 });
    const id = s.ok ? s.value.commandId : '';
    await r.clock.advanceAsync(59_999);
    expect(r.outbox.get(id)?.status).toBe('pending');
    await r.clock.advanceAsync(1);
    expect(r.outbox.get(id)).toBeUndefined();
    expect(await audited(r, id)).toMatchObject({ status: 'expired', error: { code: 'expired' } });
    r.outbox.deviceOnline('d1');
    expect(r.wire).toHaveLength(0);
  });

  it('times out a sent command that gets no reply', async () => {
    const r = await rig();
    r.outbox.deviceOnline('d1');
    const s = await r.outbox.submit({ deviceId: 'd1', action: 'ping', actor: 'ana' });
    const id = s.ok ? s.value.commandId : '';
    const settled = r.outbox.settled(id);
    await r.clock.advanceAsync(5000);
    expect((await settled).status).toBe('timedOut');
    expect(await audited(r, id)).toMatchObject({ status: 'timedOut', error: { code: 'timedOut' } });
  });

  it('refuses past its bound per device, and refuses wildcard device ids', async () => {
    const r = await rig();
    for (let i = 0; i < 100; i++) await r.outbox.submit({ deviceId: 'd1', action: 'ping', actor: 'ana' });
    const over = await r.outbox.submit({ deviceId: 'd1', action: 'ping', actor: 'ana' });
    expect(over).toMatchObject({ ok: false, error: { code: 'outboxFull' } });
    expect(await r.outbox.submit({ deviceId: 'd2', action: 'ping', actor: 'ana' })).toMatchObject({
      ok: true,
    });
    for (const bad of ['+', 'a/#', '$SYS', 'a b', ''])
      expect(await r.outbox.submit({ deviceId: bad, action: 'ping', actor: 'ana' })).toMatchObject({
        ok: false,
        error: { code: 'badDeviceId' },
      });
  });

  it('refuses a command the protocol cannot carry (oversized, bad action name) at once, with the reason', async () => {
    const r = await rig();
    const big = await r.outbox.submit({
      deviceId: 'd1',
      action: 'setConfig',
      args: { blob: 'x'.repeat(20_000) },
      actor: 'ana',
    });
    expect(big).toMatchObject({
      ok: false,
      error: { code: 'badArgs', message: expect.stringMatching(/16384|large/) },
    });
    const badName = await r.outbox.submit({ deviceId: 'd1', action: 're boot', actor: 'ana' });
    expect(badName).toMatchObject({ ok: false, error: { code: 'badArgs' } });
    expect(r.outbox.open('d1')).toEqual([]);
    expect((await r.store.queryCommands({ limit: 10 })).items).toEqual([]);
  });

  it('after an app restart, resends what was waiting or unanswered with the same ids', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const first = await rig(tmp.file);
    first.outbox.deviceOnline('d1');
    const sent = await first.outbox.submit({ deviceId: 'd1', action: 'reboot', actor: 'ana' });
    const waiting = await first.outbox.submit({ deviceId: 'd2', action: 'identify', actor: 'ana' });
    await first.outbox.stop();
    await first.store.close();
    const second = await rig(first.file, first.clock);
    expect(await second.outbox.load()).toBe(2);
    second.outbox.deviceOnline('d1');
    second.outbox.deviceOnline('d2');
    const ids = second.wire.map((w) => w.cmd.cmdId).sort();
    expect(ids).toEqual(
      [sent.ok ? sent.value.commandId : '', waiting.ok ? waiting.value.commandId : ''].sort(),
    );
    await flushMicrotasks();
  });
});

/**
 * The command tracker over a real SQLite file, on a simulated clock, with a small carrier written
 * here (its wire is a list; its options are the switches every carrier has). What is checked: each
 * final status reached once and written to the store, the carriers' refusal codes, TTL expiry,
 * cancel, and the reload after a restart for a carrier that resends and one that cannot.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type {
  CommandCarrier,
  CommandErrorCode,
  DispatchOutcome,
  TrackedCommand,
} from '../../src/devices/command-tracker.js';
import { isCommandErrorCode } from '../../src/devices/command-tracker.js';
import type { CommandTrackerOptions } from '../../src/devices/create-command-tracker.js';
import { createCommandTracker, isFinalStatus } from '../../src/devices/create-command-tracker.js';
import type { Failure, Result } from '../../src/lib/result.js';
import type { SimulatedClock } from '../../src/runtime/clock.js';
import { createSimulatedClock } from '../../src/runtime/clock.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { JsonObject } from '../../src/store/store.js';
import { tempDir } from '../store/helpers.js';

interface TestCarrier extends CommandCarrier {
  wire: TrackedCommand[];
  /** What the next dispatches answer (default `sent`). */
  answer: DispatchOutcome;
}

function carrier(options: Partial<CommandCarrier> = {}): TestCarrier {
  const c: TestCarrier = {
    name: 'test',
    queuesWhileOffline: true,
    resendsAfterDrop: true,
    replyTimeoutMs: 5000,
    wire: [],
    answer: 'sent',
    prepare(command): Result<JsonObject, Failure<CommandErrorCode>> {
      if (command.args.value === 'bad')
        return { ok: false, error: { code: 'badArgs', message: 'value: "bad" is not a level' } };
      return { ok: true, value: command.args };
    },
    dispatch(command) {
      if (c.answer === 'sent') c.wire.push(command);
      return c.answer;
    },
    ...options,
  };
  return c;
}

interface Rig {
  clock: SimulatedClock;
  store: SqliteStore;
  tracker: ReturnType<typeof createCommandTracker>;
  file: string;
  finals: TrackedCommand[];
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function rig(
  carrierOf: CommandTrackerOptions['carrierOf'],
  options: { file?: string; clock?: SimulatedClock; defaultTtlMs?: number | null } = {},
): Promise<Rig> {
  const clock = options.clock ?? createSimulatedClock({ wallStartMs: 1_700_000_000_000 });
  let file = options.file;
  if (!file) {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    file = tmp.file;
  }
  const store = await openSqliteStore({ file, telemetryFlushMs: 0, now: () => clock.wallNow() });
  const runtime = createRuntime({ clock });
  const tracker = createCommandTracker({
    runtime,
    store,
    carrierOf,
    ...(options.defaultTtlMs !== undefined ? { defaultTtlMs: options.defaultTtlMs } : {}),
  });
  const finals: TrackedCommand[] = [];
  tracker.listen((c) => {
    if (isFinalStatus(c.status)) finals.push(c);
  });
  cleanups.push(async () => {
    await tracker.stop();
    await store.close().catch(() => {});
  });
  return { clock, store, tracker, file, finals };
}

async function audited(r: Rig, commandId: string) {
  await r.tracker.flush();
  const page = await r.store.queryCommands({ limit: 1000 });
  const item = page.items.find((i) => i.ok && i.value.commandId === commandId);
  return item?.ok ? item.value : undefined;
}

async function submitted(
  r: Rig,
  input: { deviceId?: string; action?: string; args?: JsonObject; ttlMs?: number | null } = {},
) {
  const s = await r.tracker.submit({
    deviceId: input.deviceId ?? 'pump-7',
    action: input.action ?? 'set',
    args: input.args ?? { value: 1 },
    actor: 'ana',
    ...(input.ttlMs !== undefined ? { ttlMs: input.ttlMs } : {}),
  });
  if (!s.ok) throw new Error(`submit refused: ${s.error.code} ${s.error.message}`);
  return s.value;
}

describe('command tracker: one lifecycle, one final status', () => {
  it('succeeded: audited before the wire, sent, confirmed once; a second confirmation is a duplicate', async () => {
    const c = carrier();
    const r = await rig(() => c);
    r.tracker.deviceOnline('pump-7');
    const cmd = await submitted(r);
    expect(cmd).toMatchObject({ status: 'sent', carrier: 'test', attempts: 1 });
    expect(c.wire.map((w) => w.commandId)).toEqual([cmd.commandId]);
    expect((await audited(r, cmd.commandId))?.status).toBe('sent');
    expect(r.tracker.settle(cmd.commandId, { ok: true, result: { value: 1 } }, 'pump-7')).toBe('completed');
    expect(r.tracker.settle(cmd.commandId, { ok: true }, 'pump-7')).toBe('duplicate');
    expect(r.tracker.settle(cmd.commandId, { ok: true }, 'other-1')).toBe('unknownCommand');
    expect(await audited(r, cmd.commandId)).toMatchObject({
      status: 'succeeded',
      result: { value: 1 },
      actor: 'ana',
      completedAt: r.clock.wallNow(),
    });
    expect(r.finals.map((f) => f.status)).toEqual(['succeeded']);
    expect(r.tracker.open()).toEqual([]);
  });

  it('failed: the device’s own code is kept as it sent it', async () => {
    const c = carrier();
    const r = await rig(() => c);
    r.tracker.deviceOnline('pump-7');
    const cmd = await submitted(r);
    r.tracker.settle(cmd.commandId, { ok: false, error: { code: 'deviceBusy', message: 'pump running' } });
    expect(await audited(r, cmd.commandId)).toMatchObject({
      status: 'failed',
      error: { code: 'deviceBusy', message: 'pump running' },
    });
  });

  it('timedOut after the carrier’s reply time; a late confirmation changes nothing', async () => {
    const c = carrier({ replyTimeoutMs: 2000 });
    const r = await rig(() => c);
    r.tracker.deviceOnline('pump-7');
    const cmd = await submitted(r);
    const settled = r.tracker.settled(cmd.commandId);
    await r.clock.advanceAsync(1999);
    expect(r.tracker.get(cmd.commandId)?.status).toBe('sent');
    await r.clock.advanceAsync(1);
    expect((await settled).status).toBe('timedOut');
    expect(r.tracker.settle(cmd.commandId, { ok: true }, 'pump-7')).toBe('duplicate');
    expect(await audited(r, cmd.commandId)).toMatchObject({
      status: 'timedOut',
      error: { code: 'timedOut' },
    });
    expect(r.finals).toHaveLength(1);
  });

  it('expired: waits for an offline device until its TTL (the carrier’s default), never sent', async () => {
    const c = carrier({ defaultTtlMs: 60_000 });
    const r = await rig(() => c, { defaultTtlMs: 10 });
    const cmd = await submitted(r);
    expect(cmd).toMatchObject({ status: 'pending', expiresAt: cmd.requestedAt + 60_000 });
    await r.clock.advanceAsync(59_999);
    expect(r.tracker.get(cmd.commandId)?.status).toBe('pending');
    await r.clock.advanceAsync(1);
    expect(r.tracker.get(cmd.commandId)).toBeUndefined();
    expect(await audited(r, cmd.commandId)).toMatchObject({ status: 'expired', error: { code: 'expired' } });
    r.tracker.deviceOnline('pump-7');
    expect(c.wire).toEqual([]);
  });

  it('cancelled by an operator, named; cancelling again is refused; a removed device’s commands end too', async () => {
    const c = carrier();
    const r = await rig(() => c);
    const a = await submitted(r);
    expect(await r.tracker.cancel(a.commandId, 'ana')).toBe(true);
    expect(await r.tracker.cancel(a.commandId, 'ana')).toBe(false);
    expect(await audited(r, a.commandId)).toMatchObject({
      status: 'cancelled',
      error: { code: 'cancelled', message: expect.stringContaining('ana') },
    });
    await submitted(r);
    await submitted(r);
    expect(r.tracker.cancelDevice('pump-7', 'device pump-7 was removed')).toBe(2);
    expect(r.tracker.open('pump-7')).toEqual([]);
    r.tracker.deviceOnline('pump-7');
    expect(c.wire).toEqual([]);
  });

  it('a link drop: a resending carrier sends the same id again; another ends linkLost', async () => {
    const resends = carrier();
    const once = carrier({ name: 'once', resendsAfterDrop: false });
    const r = await rig((id) => (id.startsWith('r-') ? resends : once));
    r.tracker.deviceOnline('r-1');
    r.tracker.deviceOnline('o-1');
    const a = await submitted(r, { deviceId: 'r-1' });
    const b = await submitted(r, { deviceId: 'o-1' });
    r.tracker.deviceOffline('r-1');
    r.tracker.deviceOffline('o-1');
    expect(r.tracker.get(a.commandId)?.status).toBe('pending');
    expect(await audited(r, b.commandId)).toMatchObject({ status: 'failed', error: { code: 'linkLost' } });
    r.tracker.deviceOnline('r-1');
    expect(resends.wire.map((w) => w.commandId)).toEqual([a.commandId, a.commandId]);
    expect(r.tracker.get(a.commandId)?.attempts).toBe(2);
  });

  it('the carrier’s answers: done at once, refused by the link (failed, its code), not reachable (waits)', async () => {
    const c = carrier();
    const r = await rig(() => c);
    r.tracker.deviceOnline('pump-7');
    c.answer = { ok: true, result: { written: 1 } };
    const done = await submitted(r);
    expect(done).toMatchObject({ status: 'succeeded', result: { written: 1 }, attempts: 1 });
    c.answer = { ok: false, error: { code: 'noLink', message: 'port closed' } };
    const refused = await submitted(r);
    expect(refused).toMatchObject({ status: 'failed', error: { code: 'noLink' } });
    c.answer = 'notReachable';
    const waits = await submitted(r);
    expect(waits.status).toBe('pending');
    c.answer = 'sent';
    r.tracker.deviceOnline('pump-7');
    expect(r.tracker.get(waits.commandId)?.status).toBe('sent');
    expect(await audited(r, refused.commandId)).toMatchObject({
      status: 'failed',
      error: { code: 'noLink' },
    });
  });
});

describe('command tracker: refusals (nothing audited, a code of the closed set)', () => {
  it('names each refusal with a CommandErrorCode and records none of them', async () => {
    const queues = carrier();
    const noQueue = carrier({ name: 'qos0', queuesWhileOffline: false });
    const r = await rig((id) => (id === 'nocarrier' ? undefined : id.startsWith('q0') ? noQueue : queues));
    const codes: string[] = [];
    const refuse = async (input: Parameters<typeof r.tracker.submit>[0]) => {
      const s = await r.tracker.submit(input);
      expect(s.ok).toBe(false);
      if (!s.ok) codes.push(s.error.code);
      return s.ok ? undefined : s.error;
    };
    expect(await refuse({ deviceId: 'a/#', action: 'set', actor: 'ana' })).toMatchObject({
      code: 'badDeviceId',
    });
    expect(await refuse({ deviceId: 'nocarrier', action: 'set', actor: 'ana' })).toMatchObject({
      code: 'noLink',
    });
    expect(await refuse({ deviceId: 'q0-1', action: 'set', actor: 'ana' })).toMatchObject({
      code: 'offline',
      message: expect.stringContaining('q0-1'),
    });
    expect(
      await refuse({ deviceId: 'd1', action: 'set', args: { value: 'bad' }, actor: 'ana' }),
    ).toMatchObject({
      code: 'badArgs',
      message: expect.stringContaining('value'),
    });
    expect(await refuse({ deviceId: 'd1', action: 'set', actor: 'ana', ttlMs: -5 })).toMatchObject({
      code: 'badArgs',
      message: expect.stringContaining('ttlMs'),
    });
    const off = r.tracker.addGuard({
      check: ({ deviceId }) =>
        deviceId === 'd2' ? { code: 'circuitOpen', message: 'd2 failed 5 times in a row' } : undefined,
    });
    expect(await refuse({ deviceId: 'd2', action: 'set', actor: 'ana' })).toMatchObject({
      code: 'circuitOpen',
    });
    off();
    for (let i = 0; i < 100; i++) await submitted(r, { deviceId: 'd3' });
    expect(await refuse({ deviceId: 'd3', action: 'set', actor: 'ana' })).toMatchObject({
      code: 'outboxFull',
    });
    await r.tracker.stop();
    expect(await refuse({ deviceId: 'd1', action: 'set', actor: 'ana' })).toMatchObject({ code: 'stopped' });
    expect(codes.every(isCommandErrorCode)).toBe(true);
    await r.tracker.flush();
    const page = await r.store.queryCommands({ limit: 1000 });
    expect(page.items.filter((i) => i.ok && i.value.deviceId !== 'd3')).toEqual([]);
  });
});

describe('command tracker: after a restart', () => {
  it('reloads open commands; a resending carrier sends them again, another ends them linkLost; TTLs hold', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const resends = carrier();
    const once = carrier({ name: 'once', resendsAfterDrop: false });
    const pick = (id: string) => (id.startsWith('r-') ? resends : once);
    const first = await rig(pick, { file: tmp.file });
    first.tracker.deviceOnline('r-1');
    first.tracker.deviceOnline('o-1');
    const sentR = await submitted(first, { deviceId: 'r-1' });
    const sentO = await submitted(first, { deviceId: 'o-1' });
    const waiting = await submitted(first, { deviceId: 'o-2', ttlMs: 30_000 });
    const done = await submitted(first, { deviceId: 'r-1' });
    first.tracker.settle(done.commandId, { ok: true }, 'r-1');
    await first.tracker.stop();
    await first.store.close();

    // The carriers register after the tracker loads (a bridge starts after the fleet).
    let ready = false;
    const second = await rig((id) => (ready ? pick(id) : undefined), { file: tmp.file, clock: first.clock });
    expect(await second.tracker.load()).toBe(3);
    expect(
      second.tracker
        .open()
        .map((c) => c.commandId)
        .sort(),
    ).toEqual([sentR.commandId, sentO.commandId, waiting.commandId].sort());
    second.tracker.deviceOnline('r-1');
    expect(resends.wire.filter((w) => w.commandId === sentR.commandId)).toHaveLength(1); // no carrier yet
    ready = true;
    second.tracker.deviceOnline('r-1');
    second.tracker.deviceOnline('o-1');
    expect(resends.wire.filter((w) => w.commandId === sentR.commandId)).toHaveLength(2);
    expect(second.tracker.get(sentR.commandId)).toMatchObject({ status: 'sent', attempts: 2 });
    expect(await audited(second, sentO.commandId)).toMatchObject({
      status: 'failed',
      error: { code: 'linkLost' },
    });
    await second.clock.advanceAsync(30_000);
    expect(await audited(second, waiting.commandId)).toMatchObject({ status: 'expired' });
    expect(once.wire.map((w) => w.commandId)).toEqual([sentO.commandId]);
  });
});

/**
 * The command guards (circuit breaker per device, token buckets per device and for the fleet) in
 * the command tracker's lifecycle, over a real SQLite file, on a simulated clock: a carrier whose
 * wire is a list, replies settled by hand, timeouts fired by moving the clock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { GuardSettings } from '../../src/devices/command-guards.js';
import {
  createCommandGuards,
  refill,
  resolveGuardSettings,
  waitForTokenMs,
} from '../../src/devices/command-guards.js';
import type { CommandCarrier, TrackedCommand } from '../../src/devices/command-tracker.js';
import { createCommandTracker } from '../../src/devices/create-command-tracker.js';
import { createSimulatedClock } from '../../src/runtime/clock.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { tempDir } from '../store/helpers.js';

const T0 = 1_700_000_000_000;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function rig(settings: GuardSettings, fleetRate?: { perSecond: number; burst: number }) {
  const clock = createSimulatedClock({ wallStartMs: T0 });
  const tmp = tempDir();
  cleanups.push(tmp.cleanup);
  const store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 0, now: () => clock.wallNow() });
  const runtime = createRuntime({ clock });
  const wire: TrackedCommand[] = [];
  const carrier: CommandCarrier = {
    name: 'test',
    queuesWhileOffline: true,
    resendsAfterDrop: true,
    replyTimeoutMs: 1000,
    prepare: (c) => ({ ok: true, value: c.args }),
    dispatch(c) {
      wire.push(c);
      return 'sent';
    },
  };
  const tracker = createCommandTracker({ runtime, store, carrierOf: () => carrier });
  const guards = createCommandGuards({
    clock,
    settingsOf: () => settings,
    ...(fleetRate ? { fleetRate } : {}),
  });
  tracker.addGuard(guards);
  const changes: string[] = [];
  guards.listen((id) => changes.push(`${id}:${guards.breakerState(id)}`));
  cleanups.push(async () => {
    await tracker.stop();
    await store.close().catch(() => {});
  });
  const submit = (deviceId = 'pump-7') => tracker.submit({ deviceId, action: 'ping', actor: 'ana' });
  /** Submits one command and lets it time out (the reply time passes). */
  async function timeOut(deviceId = 'pump-7') {
    const r = await submit(deviceId);
    if (!r.ok) throw new Error(`refused: ${r.error.code}`);
    clock.advance(1000);
    expect(tracker.get(r.value.commandId)).toBeUndefined();
    return r.value;
  }
  for (const id of ['pump-7', 'pump-8', 'pump-9']) tracker.deviceOnline(id);
  return { clock, tracker, guards, wire, changes, submit, timeOut, store };
}

describe('circuit breaker', () => {
  it('opens after N timeouts in a row, refuses at once, probes after the cool-down, closes on success', async () => {
    const r = await rig({
      breaker: { failures: 3, coolDownMs: 10_000 },
      rate: { perSecond: 100, burst: 100 },
    });
    await r.timeOut();
    await r.timeOut();
    expect(r.guards.breaker('pump-7')).toMatchObject({ state: 'closed', consecutiveFailures: 2, opens: 0 });
    await r.timeOut();
    const openedAt = r.clock.wallNow();
    expect(r.guards.breaker('pump-7')).toMatchObject({
      state: 'open',
      consecutiveFailures: 3,
      opens: 1,
      nextProbeAt: openedAt + 10_000,
      lastFailure: expect.stringMatching(/^timedOut: /),
    });
    expect(r.changes).toEqual(['pump-7:open']);

    // Refused at once: nothing audited, nothing on the wire, the next probe time given.
    const sentBefore = r.wire.length;
    const refused = await r.submit();
    expect(refused).toMatchObject({
      ok: false,
      error: {
        code: 'circuitOpen',
        retryAt: openedAt + 10_000,
        message: expect.stringContaining('3 failures'),
      },
    });
    expect(r.wire).toHaveLength(sentBefore);
    expect(r.tracker.open('pump-7')).toEqual([]);
    // Other devices are not concerned.
    expect((await r.submit('pump-8')).ok).toBe(true);

    // Cool-down over: shown half-open; the next command goes as the probe, others wait for it.
    r.clock.advance(10_000 - 1000);
    expect(r.guards.breakerState('pump-7')).toBe('open');
    r.clock.advance(1000);
    expect(r.guards.breakerState('pump-7')).toBe('halfOpen');
    // Told at the end of the cool-down (the fleet row turns half-open with no command).
    expect(r.changes).toEqual(['pump-7:open', 'pump-7:halfOpen']);
    const probe = await r.submit();
    expect(probe.ok && probe.value.status).toBe('sent');
    expect(r.guards.breaker('pump-7')).toMatchObject({ state: 'halfOpen', probing: true });
    expect(await r.submit()).toMatchObject({
      ok: false,
      error: { code: 'circuitOpen', message: expect.stringContaining('probe') },
    });
    r.tracker.settle(probe.ok ? probe.value.commandId : '', { ok: true }, 'pump-7');
    expect(r.guards.breaker('pump-7')).toMatchObject({
      state: 'closed',
      consecutiveFailures: 0,
      opens: 1,
      nextProbeAt: null,
    });
    expect((await r.submit()).ok).toBe(true);
    expect(r.changes).toEqual(['pump-7:open', 'pump-7:halfOpen', 'pump-7:closed']);
  });

  it('opens again for another cool-down when the probe fails', async () => {
    const r = await rig({ breaker: { failures: 2, coolDownMs: 5000 }, rate: { perSecond: 100, burst: 100 } });
    await r.timeOut();
    await r.timeOut();
    expect(r.guards.breaker('pump-7').opens).toBe(1);
    r.clock.advance(5000);
    await r.timeOut(); // the probe times out
    const reopenedAt = r.clock.wallNow();
    expect(r.guards.breaker('pump-7')).toMatchObject({
      state: 'open',
      opens: 2,
      consecutiveFailures: 3,
      nextProbeAt: reopenedAt + 5000,
      probing: false,
    });
    expect(await r.submit()).toMatchObject({
      ok: false,
      error: { code: 'circuitOpen', retryAt: reopenedAt + 5000 },
    });
    r.clock.advance(5000);
    expect((await r.submit()).ok).toBe(true);
  });

  it("counts lost links and timeouts, not the device's own answers; a cancelled probe lets the next one go", async () => {
    const r = await rig({ breaker: { failures: 2, coolDownMs: 5000 }, rate: { perSecond: 100, burst: 100 } });
    // A device refusing (badArgs, busy) answered: it is alive, the count starts again.
    await r.timeOut();
    const a = await r.submit();
    r.tracker.settle(a.ok ? a.value.commandId : '', { ok: false, error: { code: 'badArgs', message: 'no' } });
    expect(r.guards.breaker('pump-7').consecutiveFailures).toBe(0);
    await r.timeOut();
    const b = await r.submit();
    r.tracker.settle(b.ok ? b.value.commandId : '', { ok: false, error: { code: 'busy', message: 'later' } });
    expect(r.guards.breaker('pump-7').consecutiveFailures).toBe(0);
    // Cancelled and expired are neutral.
    const c = await r.submit();
    await r.tracker.cancel(c.ok ? c.value.commandId : '');
    expect(r.guards.breaker('pump-7').consecutiveFailures).toBe(0);
    // A link lost after the send counts (for a carrier that cannot resend it is linkLost).
    await r.timeOut();
    expect(r.guards.breakerState('pump-7')).toBe('closed');
    const d = await r.submit();
    r.tracker.settle(d.ok ? d.value.commandId : '', {
      ok: false,
      error: { code: 'linkLost', message: 'the link dropped' },
    });
    expect(r.guards.breaker('pump-7')).toMatchObject({ state: 'open', consecutiveFailures: 2 });
    // Half-open: a probe cancelled by the operator frees the way for the next one.
    r.clock.advance(5000);
    const probe = await r.submit();
    expect(probe.ok).toBe(true);
    expect((await r.submit()).ok).toBe(false);
    await r.tracker.cancel(probe.ok ? probe.value.commandId : '');
    expect(r.guards.breaker('pump-7')).toMatchObject({ state: 'halfOpen', probing: false });
    const next = await r.submit();
    expect(next.ok).toBe(true);
    r.tracker.settle(next.ok ? next.value.commandId : '', { ok: true });
    expect(r.guards.breakerState('pump-7')).toBe('closed');
  });
});

describe('rate limits', () => {
  it("a device's bucket: a burst, then refused with the retry time; it refills at its rate", async () => {
    const r = await rig({ rate: { perSecond: 2, burst: 3 } });
    for (let i = 0; i < 3; i++) expect((await r.submit()).ok).toBe(true);
    const refused = await r.submit();
    // Empty: one token comes in 500 ms at 2 a second.
    expect(refused).toMatchObject({ ok: false, error: { code: 'rateLimited', retryAt: T0 + 500 } });
    expect(r.tracker.open('pump-7')).toHaveLength(3);
    // Another device has its own bucket.
    expect((await r.submit('pump-8')).ok).toBe(true);
    r.clock.advance(499);
    expect(await r.submit()).toMatchObject({ ok: false, error: { code: 'rateLimited', retryAt: T0 + 500 } });
    r.clock.advance(1);
    expect((await r.submit()).ok).toBe(true);
    expect(await r.submit()).toMatchObject({ ok: false, error: { code: 'rateLimited', retryAt: T0 + 1000 } });
    // A long quiet time fills it up to the burst, no more.
    r.clock.advance(60_000);
    expect(r.guards.rate('pump-7')).toMatchObject({ perSecond: 2, burst: 3, tokens: 3 });
  });

  it('the fleet-wide bucket refuses across devices, each device under its own limit', async () => {
    const r = await rig({ rate: { perSecond: 10, burst: 10 } }, { perSecond: 4, burst: 4 });
    const ids = ['pump-7', 'pump-8', 'pump-9', 'pump-7'];
    for (const id of ids) expect((await r.submit(id)).ok).toBe(true);
    const refused = await r.submit('pump-9');
    expect(refused).toMatchObject({
      ok: false,
      error: { code: 'rateLimited', retryAt: T0 + 250, message: expect.stringContaining('the fleet') },
    });
    // Refused by the fleet: the device's token was not taken.
    expect(r.guards.rate('pump-9').tokens).toBe(9);
    r.clock.advance(250);
    expect((await r.submit('pump-9')).ok).toBe(true);
  });

  it('an open breaker takes no token; pure bucket arithmetic', async () => {
    const r = await rig({ breaker: { failures: 1, coolDownMs: 1000 }, rate: { perSecond: 1, burst: 2 } });
    await r.timeOut();
    for (let i = 0; i < 5; i++) expect((await r.submit()).ok).toBe(false);
    expect(r.guards.rate('pump-7').tokens).toBeCloseTo(2, 5);
    const b = { tokens: 0.25, at: 0 };
    expect(waitForTokenMs(b, { perSecond: 4, burst: 8 })).toBe(188);
    expect(refill(b, { perSecond: 4, burst: 8 }, 500)).toBe(2.25);
    expect(refill(b, { perSecond: 4, burst: 8 }, 10_000)).toBe(8);
  });
});

describe('guard settings', () => {
  it('fill in defaults and name a bad field', () => {
    expect(resolveGuardSettings('k', undefined)).toEqual({
      breaker: { failures: 5, coolDownMs: 30_000 },
      rate: { perSecond: 5, burst: 10 },
    });
    expect(() => resolveGuardSettings('k', { breaker: { failures: 0 } })).toThrow(/k\.breaker\.failures/);
    expect(() => resolveGuardSettings('k', { rate: { perSecond: -1 } })).toThrow(/k\.rate\.perSecond/);
  });
});

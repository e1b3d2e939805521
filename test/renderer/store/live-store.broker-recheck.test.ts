/**
 * The live store after a (re)connect whose snapshot says the host does not hear its broker
 * (renderer/src/store/live-store.ts, issue 13: "Broker unreachable" stayed seconds after the host's
 * broker was back): it asks the host's `stats` again on a short backoff until the broker is back,
 * takes no answer older than what the stream brought, and stops asking when stopped or after its
 * window. Simulated clock and timers, a hand-cranked frame.
 */
import { describe, expect, it } from 'vitest';
import { createLiveStore } from '../../../renderer/src/store/live-store.js';
import type { PushMessage, SystemStats, TypedClient } from '../../../src/host/contract.js';

const stats = (at: number, connected: boolean): SystemStats => ({
  at,
  devices: { total: 0, online: 0, failed: 0 },
  processes: 5,
  ingestRate: 0,
  restarts: 0,
  commandLatencyMs: { p50: null, p95: null, p99: null },
  queues: {},
  broker: {
    url: 'mqtt://127.0.0.1:1883',
    connected,
    embedded: false,
    refused: { connect: 0, publish: 0, subscribe: 0 },
  },
  dataLoss: { total: 0, byCause: {} },
  duplicatesIgnored: 0,
  heapUsedBytes: 1,
});

const snapshot = (seq: number, s: SystemStats): PushMessage => ({
  type: 'snapshot',
  seq,
  at: s.at,
  tree: { key: 'app', pid: 1, name: 'app', childId: 'app', type: 'app', status: 'running', restarts: 0 },
  devices: [],
  stats: s,
});

function setup(answer: () => SystemStats) {
  let clock = 10_000;
  const timers: { at: number; run: () => void }[] = [];
  const frames: (() => void)[] = [];
  let listener: ((m: PushMessage) => void) | null = null;
  const asked: number[] = [];
  const client: TypedClient = {
    call: (async (method: string) => {
      if (method !== 'stats') return { ok: false, error: { code: 'unavailable', message: 'test' } };
      asked.push(clock);
      return { ok: true, value: answer() };
    }) as TypedClient['call'],
    subscribe: (l) => {
      listener = l;
      return () => {
        listener = null;
      };
    },
  };
  const store = createLiveStore(client, {
    now: () => clock,
    requestFrame: (cb) => frames.push(cb),
    setTimer: (ms, run) => {
      const timer = { at: clock + ms, run };
      timers.push(timer);
      return () => {
        const i = timers.indexOf(timer);
        if (i >= 0) timers.splice(i, 1);
      };
    },
  });
  /** Moves the clock on by `ms`, firing the timers due on the way, each answer settled. */
  const advance = async (ms: number) => {
    const end = clock + ms;
    for (;;) {
      timers.sort((a, b) => a.at - b.at);
      const due = timers[0];
      if (!due || due.at > end) break;
      timers.shift();
      clock = due.at;
      due.run();
      for (let i = 0; i < 5; i++) await Promise.resolve();
    }
    clock = end;
    for (const cb of frames.splice(0)) cb();
  };
  const broker = () => store.getState().stats?.broker.connected;
  return {
    store,
    push: (m: PushMessage) => listener?.(m),
    advance,
    asked,
    broker,
    pending: () => timers.length,
  };
}

describe('live store: the broker state after a (re)connect', () => {
  it('asks again while the snapshot says the broker is down, and shows it back as soon as the host says so', async () => {
    let linkUpAt = Number.POSITIVE_INFINITY;
    let clock = 0;
    const t = setup(() => stats(clock, clock >= linkUpAt));
    const stop = t.store.start();
    clock = 10_000;
    t.push(snapshot(1, stats(10_000, false)));
    await t.advance(0);
    expect(t.broker()).toBe(false);
    // The host's link comes up 1.2 s after the page reconnected; the stream says nothing of it.
    linkUpAt = 11_200;
    for (let i = 0; i < 40 && t.broker() !== true; i++) {
      await t.advance(100);
      clock += 100;
    }
    expect(t.broker()).toBe(true);
    // Asked at 250, 750, 1,750 ms after the snapshot (doubling), the third answer has it back.
    expect(t.asked.map((at) => at - 10_000)).toEqual([250, 750, 1_750]);
    expect(t.pending()).toBe(0);
    stop();
  });

  it('does not ask when the snapshot says the broker is connected, nor once stopped', async () => {
    const t = setup(() => stats(0, true));
    const stop = t.store.start();
    t.push(snapshot(1, stats(10_000, true)));
    await t.advance(5_000);
    expect(t.asked).toEqual([]);
    t.push(snapshot(2, stats(15_000, false)));
    stop();
    await t.advance(5_000);
    expect(t.asked).toEqual([]);
    expect(t.pending()).toBe(0);
  });

  it('gives up after its window while the broker stays down, at most every 2 s', async () => {
    const t = setup(() => stats(0, false));
    const stop = t.store.start();
    t.push(snapshot(1, stats(10_000, false)));
    await t.advance(60_000);
    const waits = t.asked.slice(1).map((at, i) => at - t.asked[i]!);
    expect(Math.max(...waits)).toBe(2_000);
    expect(t.asked.at(-1)! - 10_000).toBeLessThanOrEqual(32_000);
    expect(t.pending()).toBe(0);
    stop();
  });

  it('takes no answer older than the figures the stream brought meanwhile', async () => {
    // The answer was computed before the stream's newer figures arrived.
    const t = setup(() => stats(10_100, false));
    const stop = t.store.start();
    t.push(snapshot(1, stats(10_000, false)));
    t.push({
      type: 'diff',
      seq: 2,
      at: 10_200,
      devices: [],
      removed: [],
      telemetry: [],
      events: [],
      stats: stats(10_200, true),
    });
    await t.advance(1_000);
    expect(t.broker()).toBe(true);
    expect(t.store.getState().stats?.at).toBe(10_200);
    stop();
  });
});

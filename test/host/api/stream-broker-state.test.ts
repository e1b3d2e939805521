/**
 * The push stream carries a change of the broker's state at its next tick, not with the next
 * second's figures (issue 13): the System view's and the banner's "broker unreachable" follow the
 * host's own link within one tick (50 ms), both ways. The stream's own logic under fake timers;
 * the whole path on a real broker is test/renderer/broker-banner-reconnect.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PushStream } from '../../../src/host/api/stream.js';
import type { App } from '../../../src/host/app.js';
import type { PushMessage, SystemStats } from '../../../src/host/contract.js';
import { STATS, TREE } from '../helpers.js';

let connected = true;

/** Only what the stream reads of the app: the clock, an empty fleet, an empty event log. */
const app = {
  runtime: { clock: { wallNow: () => Date.now() } },
  fleet: { list: () => [], device: () => undefined },
  store: { queryEvents: async () => ({ items: [] }) },
} as unknown as App;

const stats = (): SystemStats => ({
  ...STATS,
  at: Date.now(),
  broker: { ...STATS.broker, url: 'mqtt://127.0.0.1:1883', connected },
});

function open(withBrokerState: boolean) {
  const stream = new PushStream(
    app,
    {
      tree: () => TREE,
      row: () => {
        throw new Error('no devices here');
      },
      stats,
      ...(withBrokerState ? { brokerConnected: () => connected } : {}),
    },
    { resyncAfterMs: 5000, maxPendingEvents: 200 },
  );
  const got: { at: number; m: PushMessage }[] = [];
  const close = stream.open({ send: (m) => got.push({ at: Date.now(), m }), congested: () => false });
  const brokerSeen = () =>
    got.flatMap(({ at, m }) => (m.type === 'diff' && m.stats ? [{ at, up: m.stats.broker.connected }] : []));
  return { stream, close, brokerSeen };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 });
  connected = true;
});
afterEach(() => vi.useRealTimers());

describe('broker state on the push stream', () => {
  it('a lost broker is pushed at the next tick, and so is its return', async () => {
    const { stream, close, brokerSeen } = open(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(brokerSeen().at(-1)?.up).toBe(true);

    await vi.advanceTimersByTimeAsync(100);
    const lostAt = Date.now();
    connected = false;
    await vi.advanceTimersByTimeAsync(60);
    const down = brokerSeen().find((s) => !s.up);
    expect(down, 'the loss was pushed').toBeDefined();
    expect(down!.at - lostAt).toBeLessThanOrEqual(50);

    await vi.advanceTimersByTimeAsync(300);
    const backAt = Date.now();
    connected = true;
    await vi.advanceTimersByTimeAsync(60);
    const back = brokerSeen().filter((s) => s.at >= backAt);
    expect(back[0]?.up).toBe(true);
    expect(back[0]!.at - backAt).toBeLessThanOrEqual(50);
    close();
    stream.close();
  });

  it('without a change, the figures still come once a second, not every tick', async () => {
    const { stream, close, brokerSeen } = open(true);
    await vi.advanceTimersByTimeAsync(5_000);
    const seen = brokerSeen();
    expect(seen.length).toBeGreaterThanOrEqual(4);
    expect(seen.length).toBeLessThanOrEqual(5);
    close();
    stream.close();
  });

  it('a stream told nothing of the broker keeps the one-second cadence (the loss waits for it)', async () => {
    const { stream, close, brokerSeen } = open(false);
    await vi.advanceTimersByTimeAsync(1_100);
    const lostAt = Date.now();
    connected = false;
    await vi.advanceTimersByTimeAsync(1_000);
    const down = brokerSeen().find((s) => !s.up);
    expect(down!.at - lostAt).toBeGreaterThan(500);
    close();
    stream.close();
  });
});

/**
 * The renderer's polling asks one request at a time: the next only `refreshMs` after the last
 * answer, so a late answer can never overwrite a newer one and a slow host gets no pile of calls;
 * nothing is handed over after stop.
 */
import { describe, expect, it } from 'vitest';
import { type PollTimers, pollInTurn } from '../../../renderer/src/lib/poll.js';

/** A clock the test moves, and asks the test answers by hand. */
function rig() {
  const timers: { at: number; fn: () => void; id: number }[] = [];
  let now = 0;
  let nextId = 1;
  const clock: PollTimers = {
    setTimeout: (fn, ms) => {
      const id = nextId++;
      timers.push({ at: now + ms, fn, id });
      return id;
    },
    clearTimeout: (id) => {
      const i = timers.findIndex((t) => t.id === id);
      if (i >= 0) timers.splice(i, 1);
    },
  };
  const pending: ((value: number) => void)[] = [];
  const ask = () => new Promise<number>((resolve) => pending.push(resolve));
  const advance = async (ms: number) => {
    now += ms;
    for (const t of timers.filter((x) => x.at <= now)) {
      timers.splice(timers.indexOf(t), 1);
      t.fn();
    }
    await Promise.resolve();
  };
  const settle = () => new Promise((r) => setTimeout(r, 0));
  return { clock, pending, ask, advance, settle, timers };
}

describe('pollInTurn', () => {
  it('asks again only refreshMs after the answer, however slow the host', async () => {
    const r = rig();
    const seen: number[] = [];
    pollInTurn(
      r.ask,
      (v) => seen.push(v),
      500,
      () => {},
      r.clock,
    );
    expect(r.pending).toHaveLength(1);
    await r.advance(5_000); // the host is slow: no second request meanwhile
    expect(r.pending).toHaveLength(1);
    r.pending[0]!(1);
    await r.settle();
    expect(seen).toEqual([1]);
    await r.advance(499);
    expect(r.pending).toHaveLength(1);
    await r.advance(1);
    expect(r.pending).toHaveLength(2);
    r.pending[1]!(2);
    await r.settle();
    expect(seen).toEqual([1, 2]);
  });

  it('hands nothing over after stop, and asks no more', async () => {
    const r = rig();
    const seen: number[] = [];
    const stop = pollInTurn(
      r.ask,
      (v) => seen.push(v),
      500,
      () => {},
      r.clock,
    );
    stop();
    r.pending[0]!(1);
    await r.settle();
    await r.advance(10_000);
    expect(seen).toEqual([]);
    expect(r.pending).toHaveLength(1);
    expect(r.timers).toEqual([]);
  });

  it('asks once without refreshMs, and keeps polling after a failed ask', async () => {
    const r = rig();
    const seen: number[] = [];
    pollInTurn(
      r.ask,
      (v) => seen.push(v),
      undefined,
      () => {},
      r.clock,
    );
    r.pending[0]!(7);
    await r.settle();
    await r.advance(60_000);
    expect(seen).toEqual([7]);
    expect(r.pending).toHaveLength(1);

    const errors: unknown[] = [];
    let calls = 0;
    const flaky = async () => {
      calls++;
      if (calls === 1) throw new Error('socket closed');
      return calls;
    };
    pollInTurn(
      flaky,
      (v) => seen.push(v),
      100,
      (e) => errors.push(e),
      r.clock,
    );
    await r.settle();
    expect(errors).toHaveLength(1);
    await r.advance(100);
    await r.settle();
    expect(seen).toEqual([7, 2]);
  });
});

/**
 * The follower of `--wait` (src/host/cli-follow.ts) on its own: what it does with each answer of
 * the app client. The real binary through a real kill -9 is in rollout-wait-restart.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { AppClient } from '../../src/host/app-client.js';
import { followThroughRestarts } from '../../src/host/cli-follow.js';
import type { Envelope } from '../../src/host/contract.js';
import { err, ok } from '../../src/lib/result.js';

/** An app client whose calls answer from `answers` in turn (the last one repeats). */
function client(pid: number, answers: Envelope<unknown>[]): AppClient & { calls: number } {
  const c = {
    origin: `http://127.0.0.1:${4000 + pid}`,
    pid,
    calls: 0,
    async call() {
      const a = answers[Math.min(c.calls, answers.length - 1)]!;
      c.calls += 1;
      return a as never;
    },
    async get() {
      return err('unreachable', 'not used') as never;
    },
  };
  return c;
}

const gone = err('unreachable', 'the app at http://127.0.0.1:4001 did not answer: fetch failed');

describe('following an app through its restarts', () => {
  it('a refusal ends the wait at once, with the app’s code', async () => {
    const lines: string[] = [];
    const f = followThroughRestarts(client(1, [err('notFound', "no rollout 'ro-1'")]), {
      reconnect: () => err('notRunning', 'no app'),
      deadline: Date.now() + 60_000,
      say: (l) => lines.push(l),
      retryMs: 1,
    });
    await expect(f.call('rollouts', {})).rejects.toMatchObject({ code: 'notFound' });
    expect(lines).toEqual([]);
  });

  it('an app gone is found again on the data folder, and the call answered by the new one', async () => {
    const lines: string[] = [];
    const second = client(2, [ok([])]);
    let tries = 0;
    const f = followThroughRestarts(client(1, [gone]), {
      // Twice nobody (the lock names the dead pid), then the restarted app.
      reconnect: () => (++tries < 3 ? err('notRunning', 'no app') : ok(second)),
      deadline: Date.now() + 60_000,
      say: (l) => lines.push(l),
      retryMs: 1,
    });
    await expect(f.call('rollouts', {})).resolves.toEqual([]);
    expect(tries).toBe(3);
    expect(second.calls).toBe(1);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^the app \(pid 1\) stopped answering: waiting for it to come back/);
    expect(lines[1]).toMatch(
      /^the app is back \(pid 2, http:\/\/127\.0\.0\.1:4002\) after \d+ s; following on$/,
    );
  });

  it('gives up at the deadline, saying the work goes on', async () => {
    const lines: string[] = [];
    const f = followThroughRestarts(client(1, [gone]), {
      reconnect: () => err('notRunning', 'no app'),
      deadline: Date.now() + 30,
      say: (l) => lines.push(l),
      retryMs: 5,
    });
    const e = await f.call('rollouts', {}).catch((error: unknown) => error);
    expect(e).toMatchObject({ code: 'unreachable' });
    expect((e as Error).message).toMatch(
      /gave up waiting after \d+ s \(the work goes on when the app starts again\)/,
    );
    expect(lines).toHaveLength(1);
  });
});

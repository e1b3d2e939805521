/**
 * A bulk action goes through the fleet's rate limit instead of being cut off by it (issue 15:
 * "bulk act over the fleet bucket answers rateLimited for the rest and does not retry"): the pacing
 * on a simulated clock, and the real app with a small fleet rate acting on 30 demo devices.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActPacing } from '../../../src/host/api/act-pacing.js';
import { createHostApi, type HostApiHandle } from '../../../src/host/api.js';
import type { App } from '../../../src/host/app.js';
import { startApp } from '../../../src/host/app.js';
import type { ActResult } from '../../../src/host/contract.js';
import { createSimulatedClock } from '../../../src/runtime/clock.js';
import { silentLogger } from '../../../src/runtime/runtime.js';

describe('act pacing (simulated clock)', () => {
  it('waits until retryAt and asks again; past the budget answers the refusal', async () => {
    const clock = createSimulatedClock();
    const pace = createActPacing(clock, 1000);
    let tokensAt = clock.wallNow() + 300;
    let asked = 0;
    const attempt = async () => {
      asked++;
      return clock.wallNow() >= tokensAt
        ? ({ ok: true } as const)
        : ({ ok: false, error: { code: 'rateLimited', retryAt: tokensAt } } as const);
    };
    const first = pace(attempt);
    await Promise.resolve();
    clock.advance(300);
    await expect(first).resolves.toEqual({ ok: true });
    expect(asked).toBe(2);

    tokensAt = clock.wallNow() + 5000; // beyond the budget: not waited for
    await expect(pace(attempt)).resolves.toMatchObject({ ok: false, error: { code: 'rateLimited' } });
    // Other refusals are answered at once.
    await expect(
      pace(async () => ({ ok: false, error: { code: 'offline' } }) as const),
    ).resolves.toMatchObject({
      error: { code: 'offline' },
    });
  });
});

describe('act on more devices than the fleet rate lets through at once', () => {
  let dir: string;
  let app: App;
  let api: HostApiHandle;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fv-act-pacing-'));
    app = await startApp({
      dataDir: dir,
      logger: silentLogger,
      broker: { port: 0 },
      demo: { mqtt: 30, serial: 0, telemetryIntervalMs: 1000 },
      conventions: [],
      commandRate: { perSecond: 20, burst: 5 },
    });
    api = createHostApi(app);
  }, 60_000);

  afterAll(async () => {
    api?.close();
    await app?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every device gets its command, paced at the fleet rate, none refused rateLimited', async () => {
    for (const deadline = Date.now() + 20_000; app.fleet.list().filter((d) => d.link.up).length < 30; ) {
      if (Date.now() > deadline) throw new Error('the 30 demo devices never came online');
      await new Promise((r) => setTimeout(r, 100));
    }
    const ids = app.fleet.list().map((d) => d.id);
    expect(ids).toHaveLength(30);
    const started = Date.now();
    const r = await api.call('act', { ids, action: 'ping', args: {} });
    const tookMs = Date.now() - started;
    if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
    const results = r.value as ActResult[];
    expect(results.filter((x) => !x.ok).map((x) => `${x.id}: ${x.error?.code}`)).toEqual([]);
    expect(results).toHaveLength(30);
    // 5 at once, then 20 a second: the last of the other 25 about 1.25 s later.
    expect(tookMs).toBeGreaterThanOrEqual(1000);
  }, 30_000);
});

/**
 * Devices benchmark: restoring a fleet from its SQLite file, and crash → restart of a device
 * with its persisted state (real clock, real file in a temp folder).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setup } from 'xstate';
import { z } from 'zod';
import { defineDevice } from '../../src/devices/define-device.js';
import { createFleet } from '../../src/devices/fleet.js';
import { createRealClock } from '../../src/runtime/clock.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { nowUs, percentile, report } from './bench-kit.js';

const SUITE = 'devices';
const N = process.env.BENCH_QUICK === '1' ? 2000 : 10_000;
const CRASHES = process.env.BENCH_QUICK === '1' ? 500 : 2000; // each a different device: one crash each

const machine = setup({
  types: {} as { context: { n: number }; events: { type: 'ARM' } | { type: 'POISON' } },
  actions: {
    explode: () => {
      throw new Error('poison');
    },
  },
}).createMachine({
  id: 'bench',
  initial: 'idle',
  context: { n: 0 },
  states: {
    idle: { on: { ARM: 'armed' } },
    armed: { after: { 600000: 'idle' }, on: { POISON: { actions: 'explode' } } },
  },
});
const kind = defineDevice({
  kind: 'bench.device',
  attributes: z.object({}),
  machine,
  actions: { arm: { args: z.object({}), toEvent: () => ({ type: 'ARM' }) } },
});

const dir = mkdtempSync(join(tmpdir(), 'fleetvisor-bench-'));
const file = join(dir, 'fleet.sqlite');
try {
  // Build the fleet: N devices, each armed (a running 10-minute timeout to persist).
  {
    const store = await openSqliteStore({ file });
    const fleet = createFleet({
      runtime: createRuntime({ clock: createRealClock() }),
      store,
      kinds: [kind],
      reconcileIntervalMs: 0,
    });
    await fleet.start();
    for (let i = 0; i < N; i += 500) {
      const ids = Array.from({ length: Math.min(500, N - i) }, (_, k) => `dev-${i + k}`);
      await Promise.all(ids.map((id) => fleet.addDevice({ id, kind: 'bench.device' })));
      await Promise.all(ids.map((id) => fleet.act(id, 'arm', {}, 'bench')));
    }
    await fleet.stop();
    await store.close();
  }

  // Restore: open the file and bring every device back, running, in its state with its timer.
  const t0 = nowUs();
  const store = await openSqliteStore({ file });
  const runtime = createRuntime({ clock: createRealClock() });
  const fleet = createFleet({ runtime, store, kinds: [kind], reconcileIntervalMs: 0 });
  const summary = await fleet.start();
  const restoreMs = (nowUs() - t0) / 1000;
  const armed = fleet.list().filter((d) => d.state === 'armed' && d.timers.length === 1).length;
  report(
    SUITE,
    'restore_10k_ms',
    Math.round(restoreMs),
    'ms',
    '<=',
    2000,
    `${summary.started} of ${N} devices running again, ${armed} armed with their timer, ${summary.failed.length} failed`,
  );

  // Crash → restarted, resuming the last good state (the one the store was written from).
  const samples: number[] = [];
  let pending: ((t: number) => void) | undefined;
  runtime.events.subscribe((e) => {
    if (e.type === 'child.restarted' && pending) {
      const done = pending;
      pending = undefined;
      done(nowUs());
    }
  });
  for (let i = 0; i < CRASHES; i++) {
    const id = `dev-${i % N}`;
    const p = fleet.machineOf(id)!;
    const restarted = new Promise<number>((resolve) => {
      pending = resolve;
    });
    const t = nowUs();
    p.send({ type: 'POISON' });
    samples.push((await restarted) - t);
    if (fleet.machineOf(id)?.state !== 'armed') throw new Error(`${id} did not come back armed`);
  }
  samples.sort((a, b) => a - b);
  report(
    SUITE,
    'crash_restart_median',
    Math.round(percentile(samples, 50)),
    'us',
    '<=',
    100,
    `${samples.length} crashes, state resumed with its remaining time`,
  );
  report(
    SUITE,
    'crash_restart_p99',
    Math.round(percentile(samples, 99)),
    'us',
    '<=',
    450,
    'includes writing the new snapshot',
  );

  // The same state read back from the store, as after an app restart (one row per device).
  const reads: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const t = nowUs();
    await store.loadSnapshot(`dev-${(i * 7) % N}`);
    reads.push(nowUs() - t);
  }
  reads.sort((a, b) => a - b);
  report(
    SUITE,
    'snapshot_load_p99',
    Math.round(percentile(reads, 99)),
    'us',
    '<=',
    1000,
    `median ${Math.round(percentile(reads, 50))} us: one device's row from SQLite`,
  );
  await fleet.stop();
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

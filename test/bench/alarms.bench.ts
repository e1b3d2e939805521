/**
 * Alarms benchmark (`npm run bench -- alarms`; `BENCH_QUICK=1` for a smaller run).
 *
 * The cost of the alarm engine on the telemetry ingest path: 10,000 generic devices in a real
 * fleet on a temp SQLite file, N telemetry messages (temp and rssi, round-robin over the
 * devices, 1,000 in flight) through `fleet.ingestTelemetry`, with no alarm engine and then with
 * the engine running 5 rules (temp above 30 for 5 s with hysteresis, rssi below -90, temp faster
 * than 5/s, no data for 60 s, offline for 5 min; 1 % of the devices report a weak signal, so
 * 100 alarms are raised and written in each run). Each run ends when the store has committed every point and, with
 * rules, when every rule has seen every message (`settle`), so a backlog in the event manager
 * counts. Runs go without, with, with, without (the telemetry table grows with every run, so
 * neither side always meets the larger one) and each side keeps its best.
 *
 * This is the in-process ingest rate, without the MQTT hop the links bench adds in front: the
 * rules' share of the work is measured against less, so the ratio is the stricter one.
 * Goal (issue 15 §3): with the rules, the ingest rate holds within 10 %.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAlarmEngine } from '../../src/alarms/alarm-engine.js';
import { openSqliteAlarmStore } from '../../src/alarms/sqlite-alarm-store.js';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import { createRealClock } from '../../src/runtime/clock.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { gc, nowUs, report } from './bench-kit.js';

const SUITE = 'alarms';
const QUICK = process.env.BENCH_QUICK === '1';
const DEVICES = 10_000;
const N = QUICK ? 50_000 : 200_000;
const IN_FLIGHT = 1000;
const RULES = [
  { id: 'hot', type: 'threshold', metric: 'temp', op: 'above', value: 30, forMs: 5000, hysteresis: 1 },
  { id: 'weak', type: 'threshold', metric: 'rssi', op: 'below', value: -90 },
  { id: 'jump', type: 'rateOfChange', metric: 'temp', maxPerSecond: 5 },
  { id: 'silent', type: 'noData', forMs: 60_000 },
  { id: 'gone', type: 'offline', forMs: 300_000 },
];

const dir = mkdtempSync(join(tmpdir(), 'fleetvisor-bench-alarms-'));
const file = join(dir, 'fleet.sqlite');
try {
  const runtime = createRuntime({ clock: createRealClock() });
  const store = await openSqliteStore({ file });
  const fleet = createFleet({ runtime, store, kinds: [genericDevice], reconcileIntervalMs: 0 });
  await fleet.start();
  const ids = Array.from({ length: DEVICES }, (_, i) => `dev-${String(i).padStart(5, '0')}`);
  for (let i = 0; i < DEVICES; i += 500)
    await Promise.all(ids.slice(i, i + 500).map((id) => fleet.addDevice({ id, kind: 'fleetvisor.generic' })));
  await fleet.flush();

  let seq = 0;
  const run = async (n: number): Promise<number> => {
    const t0 = nowUs();
    for (let i = 0; i < n; i += IN_FLIGHT) {
      const batch: Promise<unknown>[] = [];
      for (let k = 0; k < IN_FLIGHT && i + k < n; k++) {
        const d = (seq + k) % DEVICES;
        const temp = d % 100 === 0 ? 35 : 20 + ((seq + k) % 50) / 10;
        batch.push(fleet.ingestTelemetry(ids[d]!, { temp, rssi: d % 100 === 1 ? -95 : -60 - (d % 20) }));
      }
      seq += IN_FLIGHT;
      await Promise.all(batch);
    }
    return n / ((nowUs() - t0) / 1e6);
  };

  const alarmStore = await openSqliteAlarmStore({ file });
  const withRules = async (n: number): Promise<{ rate: number; raised: number }> => {
    const alarms = createAlarmEngine({ runtime, fleet, store: alarmStore });
    await alarms.start();
    for (const r of RULES) {
      const set = await alarms.setRule(r, 'bench');
      if (!set.ok) throw new Error(set.error.message);
    }
    gc();
    const t0 = nowUs();
    await run(n);
    await alarms.settle();
    const rate = n / ((nowUs() - t0) / 1e6);
    const raised = alarms.counts().active;
    for (const r of RULES) await alarms.deleteRule(r.id, 'bench');
    await alarms.stop();
    return { rate, raised };
  };
  const without = async (n: number) => {
    gc();
    return run(n);
  };

  await without(Math.min(N, 20_000)); // warm-up
  await withRules(Math.min(N, 20_000));
  let base = 0;
  let rules = 0;
  let raised = 0;
  // A B B A: the telemetry table grows with every run, so neither side always runs on the larger one.
  for (const side of ['without', 'with', 'with', 'without'] as const) {
    if (side === 'without') base = Math.max(base, await without(N));
    else {
      const w = await withRules(N);
      rules = Math.max(rules, w.rate);
      raised = w.raised;
    }
  }
  report(
    SUITE,
    'ingest_rate_baseline',
    Math.round(base),
    'msg/s',
    '>=',
    0,
    `${DEVICES} devices, no alarm rules`,
  );
  report(
    SUITE,
    'ingest_rate_5_rules',
    Math.round(rules),
    'msg/s',
    '>=',
    Math.round(base * 0.9),
    `${DEVICES} devices × ${RULES.length} rules, until every rule has seen every message; ${raised} alarms open at the end`,
  );
  report(
    SUITE,
    'ingest_ratio',
    rules / base,
    'ratio',
    '>=',
    0.9,
    'with the 5 rules ÷ without, best of 2 each',
  );
  await alarmStore.close();
  await fleet.stop();
  await store.close();
  runtime.dispose();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

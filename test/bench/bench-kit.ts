/** Small helpers shared by the benchmark suites: the one output format, GC, percentiles. */
import type { Store, TelemetryPoint } from '../../src/store/store.js';

export type GoalOp = '<=' | '>=';

/** Prints `BENCH <suite>.<figure> <value> <unit> goal <op> <goal>` followed by optional prose. */
export function report(
  suite: string,
  figure: string,
  value: number,
  unit: string,
  op: GoalOp,
  goal: number,
  note = '',
): void {
  const v = Number.isInteger(value) ? String(value) : value.toFixed(value < 10 ? 3 : 1);
  const met = op === '<=' ? value <= goal : value >= goal;
  console.log(
    `BENCH ${suite}.${figure} ${v} ${unit} goal ${op} ${goal}  ${met ? 'met' : 'MISSED'}${note ? `  ${note}` : ''}`,
  );
}

export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('run benchmarks with --expose-gc (npm run bench does)');
  for (let i = 0; i < 3; i++) g();
}

export function heapUsed(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function nowUs(): number {
  return Number(process.hrtime.bigint()) / 1000;
}

/**
 * Appends `total` telemetry points through the Store port as the app does: `perCall` points a
 * call, at most `inFlight` calls waiting; every call must write all its points. Rows per second.
 */
export async function appendAll(
  store: Pick<Store, 'appendTelemetry'>,
  total: number,
  point: (i: number) => TelemetryPoint,
  perCall = 100,
  inFlight = 2_000,
): Promise<number> {
  const start = nowUs();
  const waiting = new Set<Promise<unknown>>();
  for (let i = 0; i < total; i += perCall) {
    const batch: TelemetryPoint[] = new Array(perCall);
    for (let k = 0; k < perCall; k++) batch[k] = point(i + k);
    const call = store.appendTelemetry(batch).then((r) => {
      if (!r.ok || r.value.written !== perCall) throw new Error(`append failed: ${JSON.stringify(r)}`);
      waiting.delete(call);
    });
    waiting.add(call);
    if (waiting.size >= inFlight) await Promise.race(waiting);
  }
  await Promise.all(waiting);
  return total / ((nowUs() - start) / 1e6);
}

/** Small helpers shared by the benchmark suites: the one output format, GC, percentiles. */

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

/**
 * Health checks: every long-lived service registers one; the host runs them all at once and
 * shows the worst status. A check that throws, rejects, answers garbage or takes longer than
 * the timeout counts as `down`, with why in `detail`.
 *
 * @example
 * const health = createHealthRegistry(runtime);
 * health.register('broker', () => (client.connected ? { status: 'ok' } : { status: 'down', detail: 'offline' }));
 * health.register(
 *   'db',
 *   async () => ((await db.walBytes()) > limit ? { status: 'degraded', detail: 'WAL large' } : { status: 'ok' }),
 *   { process: dbServer }, // unregistered when dbServer exits
 * );
 * const report = await health.checkAll(2_000);
 * report.status;  // 'ok' | 'degraded' | 'down', the worst of report.checks
 */
import { toError } from './exit-reason.js';
import type { Process } from './process.js';
import type { Runtime } from './runtime.js';
import type { TimerRef } from './timers.js';

export const DEFAULT_HEALTH_TIMEOUT_MS = 5000;

export type HealthLevel = 'ok' | 'degraded' | 'down';

export interface HealthStatus {
  readonly status: HealthLevel;
  readonly detail?: string;
}

export type HealthCheck = () => HealthStatus | Promise<HealthStatus>;

export interface HealthCheckResult extends HealthStatus {
  readonly name: string;
  /** How long the check took (the timeout for one that timed out). */
  readonly durationMs: number;
}

export interface HealthReport {
  /** The worst status of all checks; `ok` when there are none. */
  readonly status: HealthLevel;
  /** One per check, in registration order. */
  readonly checks: readonly HealthCheckResult[];
}

/**
 * - `alreadyRegistered`: a check with that name is registered;
 * - `noproc`: the `process` it was tied to has already exited.
 */
export type RegisterHealthResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly error: { readonly code: 'alreadyRegistered' | 'noproc'; readonly message: string };
    };

export interface HealthRegistry {
  /** Adds a check; tied to `process`, it is removed when the process exits. */
  register(name: string, check: HealthCheck, options?: { readonly process?: Process }): RegisterHealthResult;
  /** False when no check had that name. */
  unregister(name: string): boolean;
  /** Registered check names, in registration order. */
  names(): string[];
  /** Runs every check concurrently, each bounded by `timeoutMs` (default 5000, may be Infinity). */
  checkAll(timeoutMs?: number): Promise<HealthReport>;
}

const RANK: Readonly<Record<HealthLevel, number>> = { ok: 0, degraded: 1, down: 2 };

/** The worst of `levels`; `ok` for none. */
export function worstHealth(levels: Iterable<HealthLevel>): HealthLevel {
  let worst: HealthLevel = 'ok';
  for (const level of levels) if (RANK[level] > RANK[worst]) worst = level;
  return worst;
}

export function isHealthStatus(value: unknown): value is HealthStatus {
  if (typeof value !== 'object' || value === null) return false;
  const { status, detail } = value as { status?: unknown; detail?: unknown };
  return (
    (status === 'ok' || status === 'degraded' || status === 'down') &&
    (detail === undefined || typeof detail === 'string')
  );
}

interface Registered {
  readonly name: string;
  readonly check: HealthCheck;
  unlink: (() => void) | undefined;
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof (value as PromiseLike<unknown> | null)?.then === 'function';

export function createHealthRegistry(runtime: Runtime): HealthRegistry {
  const checks = new Map<string, Registered>();

  const down = (detail: string): HealthStatus => ({ status: 'down', detail });
  const normalize = (value: unknown): HealthStatus => {
    if (!isHealthStatus(value)) return down(`invalid health status: ${describe(value)}`);
    return value.detail === undefined
      ? { status: value.status }
      : { status: value.status, detail: value.detail };
  };

  const run = (entry: Registered, timeoutMs: number): Promise<HealthCheckResult> => {
    const startMs = runtime.clock.now();
    const done = (status: HealthStatus): HealthCheckResult => {
      const durationMs = runtime.clock.now() - startMs;
      const events = runtime.events;
      if (events.active)
        events.emit({
          type: 'measurement',
          name: 'health.check',
          value: durationMs,
          unit: 'ms',
          tags: { check: entry.name, status: status.status },
        });
      return { name: entry.name, ...status, durationMs };
    };
    let out: unknown;
    try {
      out = entry.check();
    } catch (error) {
      return Promise.resolve(done(down(`check threw: ${toError(error).message}`)));
    }
    if (!isThenable(out)) return Promise.resolve(done(normalize(out)));
    return new Promise((resolve) => {
      let timer: TimerRef | undefined;
      let settled = false;
      const finish = (status: HealthStatus) => {
        if (settled) return;
        settled = true;
        if (timer) runtime.timers.cancel(timer);
        resolve(done(status));
      };
      if (Number.isFinite(timeoutMs))
        timer = runtime.timers.schedule(timeoutMs, () => finish(down(`no answer within ${timeoutMs} ms`)), {
          label: `health:${entry.name}`,
        });
      Promise.resolve(out).then(
        (value) => finish(normalize(value)),
        (error: unknown) => finish(down(`check failed: ${toError(error).message}`)),
      );
    });
  };

  return {
    register(name, check, options = {}) {
      if (typeof name !== 'string' || name.length === 0)
        throw new TypeError('health.register: name must be a non-empty string');
      if (typeof check !== 'function')
        throw new TypeError(`health.register(${name}): check must be a function`);
      if (checks.has(name))
        return {
          ok: false,
          error: { code: 'alreadyRegistered', message: `a health check named ${name} exists` },
        };
      const process = options.process;
      if (process && !process.alive)
        return {
          ok: false,
          error: { code: 'noproc', message: `${process.name} (pid ${process.pid}) has exited` },
        };
      const entry: Registered = { name, check, unlink: undefined };
      if (process)
        entry.unlink = process.onExit(() => {
          if (checks.get(name) === entry) checks.delete(name);
        });
      checks.set(name, entry);
      return { ok: true };
    },
    unregister(name) {
      const entry = checks.get(name);
      if (!entry) return false;
      entry.unlink?.();
      checks.delete(name);
      return true;
    },
    names() {
      return [...checks.keys()];
    },
    async checkAll(timeoutMs = DEFAULT_HEALTH_TIMEOUT_MS) {
      if (!(timeoutMs >= 0))
        throw new RangeError(`health.checkAll: timeoutMs must be >= 0, got ${timeoutMs}`);
      const results = await Promise.all([...checks.values()].map((entry) => run(entry, timeoutMs)));
      return { status: worstHealth(results.map((r) => r.status)), checks: results };
    },
  };
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

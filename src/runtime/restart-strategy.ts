/**
 * OTP's restart rules as pure functions; the supervisors act on their answers.
 *
 * - Restart types: `permanent` is always restarted, `temporary` never, `transient` only after an
 *   abnormal exit (not `normal`, `shutdown` or `{shutdown, _}`).
 * - Strategies: which children a restart takes with it — one clause each.
 *
 * @example
 * if (needsRestart(child.spec.restart, reason)) {
 *   const group = planRestart('restForOne', children, child); // stop newest first, start in order
 * }
 */
import type { RestartType, Strategy } from './child-spec.js';
import type { ExitReason } from './exit-reason.js';
import { isCleanExit } from './exit-reason.js';

/** OTP restart types: does this exit call for a restart? */
export function needsRestart(restart: RestartType, reason: ExitReason): boolean {
  if (restart === 'permanent') return true;
  if (restart === 'temporary') return false;
  return !isCleanExit(reason);
}

/**
 * The children a restart of `failed` stops and starts again, in start order: `oneForOne` just
 * the failed child, `oneForAll` every child, `restForOne` the failed child and every child
 * started after it.
 */
export function planRestart<T>(strategy: Strategy, children: readonly T[], failed: T): T[] {
  if (strategy === 'oneForOne') return [failed];
  if (strategy === 'oneForAll') return [...children];
  return children.slice(children.indexOf(failed)); // restForOne
}

/**
 * A bulk action paced through the fleet's rate limit instead of cut off by it: the fleet takes at
 * most 200 commands a second (burst 400, docs/commands.md), so an operator who asked 2,000 devices
 * to reboot used to get 400 sent and 1,600 refused `rateLimited`, to be retried by hand. Within a
 * budget (default 20 s, under the command line's 30 s call timeout) a refused command waits until
 * its `retryAt` and is asked again; what is still refused when the budget is spent is answered
 * `rateLimited` with its `retryAt`, as before. Nothing is queued behind the caller's back: the
 * call answers once every device has its outcome.
 *
 * @example
 * const pace = createActPacing(runtime.clock);
 * const r = await pace(() => fleet.act(id, 'reboot', {}, 'ana')); // waits out the fleet's rate
 */
import type { Clock } from '../../runtime/clock.js';

/** How long a bulk action keeps retrying what the rate limits refused. */
export const ACT_PACING_BUDGET_MS = 20_000;

type Answer =
  | { readonly ok: true }
  | { readonly ok: false; readonly error: { code: string; retryAt?: number } };

/** Paces attempts of one call (one `act`): the budget counts from the first attempt of any device. */
export function createActPacing(
  clock: Clock,
  budgetMs = ACT_PACING_BUDGET_MS,
): <R extends Answer>(attempt: () => Promise<R>) => Promise<R> {
  const deadline = clock.wallNow() + budgetMs;
  return async (attempt) => {
    for (;;) {
      const r = await attempt();
      if (r.ok || r.error.code !== 'rateLimited' || r.error.retryAt === undefined) return r;
      const now = clock.wallNow();
      if (r.error.retryAt > deadline) return r;
      // At least a few ms: a token that is "there now" by the clock may still be a fraction short.
      const waitMs = Math.max(5, r.error.retryAt - now);
      await new Promise<void>((resolve) => clock.setTimeout(resolve, waitMs));
    }
  };
}
